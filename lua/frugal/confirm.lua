--- A question the backend waits on (a confirmation before a dear request): shown with
--- `vim.ui.select`, saying how long it waits and until when (local time), and never closed by
--- frugal. The backend holds the deadline: at it, the request is released and fails
--- (`cancelled`). A "Send" given after it is answered `expired` by the backend, and the shim,
--- which holds the instruction, the range and the buffer, starts the request anew with the
--- worst case that was shown (asked again only above it) — unless the buffer is busy, or the
--- request's kind cannot start again: then one line says it was not sent.
local M = {}
local H = {}

local notify = require("frugal.util").notify

---@class frugal.Question
---@field question integer
---@field prompt string
---@field choices string[]
---@field wait_ms integer
---@field deadline_ms integer  Unix time
---@field id integer|nil  the request it holds up
---@field buf integer|nil
---@field worst_usd number|nil  the worst case it shows

--- Shows the question; the 1-based choice (nil when dismissed) goes back with `choose`.
---@param ev frugal.Question
function M.ask(ev)
  local until_ = os.date("%H:%M:%S", math.floor((ev.deadline_ms or 0) / 1000))
  local prompt = ev.prompt
  if ev.wait_ms then
    prompt = ("%s (waits %d s, until %s)"):format(prompt, math.floor(ev.wait_ms / 1000 + 0.5), until_)
  end
  -- Taken now: at the deadline the request ends, and a late "Send" starts it anew.
  local request = require("frugal.request")
  local job = ev.id and request.get(ev.id) or nil
  local again = job and request.again(job) or nil
  -- The built-in select blocks at once: the events before it (progress, foresight) are drawn
  -- first, so the progress line says what it waits for.
  vim.cmd.redraw()
  vim.ui.select(ev.choices, { prompt = prompt }, function(_, idx)
    local rpc = require("frugal.rpc")
    if not rpc.running() then
      -- The backend that asked is gone (and the request with it): as late as can be.
      return idx == 1 and H.late(ev, again, until_ --[[@as string]]) or nil
    end
    rpc.call("choose", { question = ev.question, choice = idx }, function(result)
      if type(result) == "table" and result.expired == true and idx == 1 then
        H.late(ev, again, until_ --[[@as string]])
      end
    end)
  end)
end

--- "Send" came after the deadline: the request is started anew, or one line says why not.
---@param ev frugal.Question
---@param again (fun(confirmed_usd: number))|nil
---@param until_ string
function H.late(ev, again, until_)
  if not again or not ev.worst_usd then
    return notify(("late Send not sent: the request ended at %s"):format(until_), vim.log.levels.WARN)
  end
  again(ev.worst_usd)
end

return M
