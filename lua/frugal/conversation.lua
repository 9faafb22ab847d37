--- The edits whose answer has finished but whose hunks are still pending, across the buffers
--- they touched: what a follow-up (`:LlmEdit` on those hunks) continues, and what
--- `:LlmAccept!` / `:LlmReject!` act on.
local M = {}
local H = {}

---@class frugal.Conversation
---@field id integer  the edit
---@field buf integer  the buffer it started in
---@field root string  the checkout root its paths are relative to
---@field paths string[]  its files besides the one it started in (relative to `root`)
---@field turns { instruction: string, answer: string }[]  every exchange so far, oldest first

---@type table<integer, frugal.Conversation>  by edit id
H.by_id = {}

--- Records a finished edit's conversation (its own turn last).
---@param c frugal.Conversation
function M.finished(c)
  H.by_id[c.id] = c
end

--- The conversation of an edit, if it finished.
---@param id integer
---@return frugal.Conversation|nil
function M.get(id)
  return H.by_id[id]
end

--- Forgets an edit (its hunks are all accepted, rejected or replaced).
---@param id integer
function M.forget(id)
  H.by_id[id] = nil
end

--- The most recent finished edit that started in `buf`, if any.
---@param buf integer
---@return frugal.Conversation|nil
function M.started_in(buf)
  local best
  for id, c in pairs(H.by_id) do
    if c.buf == buf and (not best or id > best) then
      best = id
    end
  end
  return best and H.by_id[best] or nil
end

--- The most recent finished edit with hunks pending in `buf`, if any.
---@param buf integer
---@return frugal.Conversation|nil
function M.of_buffer(buf)
  local best
  for _, id in ipairs(require("frugal.hunks").edits_in(buf)) do
    if H.by_id[id] and (not best or id > best) then
      best = id
    end
  end
  return best and H.by_id[best] or nil
end

return M
