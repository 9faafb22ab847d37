--- `:LlmHistory`: this project's past edits, asks and reviews (the backend joins the ledger's
--- rows with the conversation store's text), newest first, a page at a time. `<CR>` opens a
--- conversation as Markdown (`frugal://history/<id>`, with `b:frugal_answer` for `:LlmApply`),
--- `dd` deletes an entry's text, `:LlmHistory clear` the project's.
local M = {}
local H = {}

--- One line for the user. With the built-in |vim.notify|, a message wider than the echo area
--- keeps what is wrong (it comes first) and loses the start of the file it names (last): no
--- hit-enter prompt. A notification plugin, the event and the log get the whole text.
---@param msg string
---@param level integer
local function notify(msg, level)
  local util = require("frugal.util")
  local whole = msg
  -- The room the path has once `util.notify` prefixes `frugal: `.
  local room = util.echo_width() - vim.fn.strdisplaywidth("frugal: ")
  if util.builtin_notify() and vim.fn.strdisplaywidth(msg) > room then
    local head, file = msg:match("^(.*: )(.-)$")
    local keep = head and room - vim.fn.strdisplaywidth(head) - 1 or 0
    if keep > 8 then
      msg = head .. "…" .. vim.fn.strcharpart(file, vim.fn.strchars(file) - keep)
    end
  end
  util.notify(msg, level, whole)
end

---@class frugal.HistoryView  `b:frugal_history` of a listing buffer
---@field root string  the ledger's project key
---@field ids integer[]  the request of each line (0: a line that is not an entry)
---@field more integer[]|nil  where the next page starts (`{ created_at, id }`)

---@class frugal.HistoryEntry
---@field id integer
---@field line string
---@field text boolean  whether its conversation is kept

--- The project key of `buf`: a listing's own, else the backend's answer for its file.
---@param buf integer
---@return string|nil root, string|nil err
function H.root(buf)
  local view = vim.b[buf].frugal_history
  if view then
    return view.root
  end
  local answer = vim.b[buf].frugal_answer
  if answer and answer.root then
    return answer.root
  end
  local where, err = require("frugal.project").where(buf, { start = true, label = "history" })
  if not where then
    return nil, err
  end
  return where.root
end

--- `:LlmHistory [clear]` (`:LlmHistory! clear` or `:LlmHistory clear!`: without asking).
---@param args string
---@param bang boolean
function M.command(args, bang)
  args = vim.trim(args or "")
  if args == "clear" or args == "clear!" then
    return M.clear(bang or args == "clear!")
  elseif args ~= "" then
    return notify(("frugal: :LlmHistory takes `clear` or nothing, not %q"):format(args), vim.log.levels.ERROR)
  end
  M.open()
end

--- The first page of the listing of the current buffer's project, in the current window.
function M.open()
  local root, err = H.root(vim.api.nvim_get_current_buf())
  if not root then
    return notify(("frugal: no project for :LlmHistory: %s"):format(err), vim.log.levels.ERROR)
  end
  local page, perr = require("frugal.rpc").request("history", H.params(root), nil, "history")
  if not page then
    return notify(("frugal: cannot read history: %s"):format(perr), vim.log.levels.ERROR)
  end
  if page.problem and page.problem ~= vim.NIL then
    notify(("frugal: %s"):format(page.problem), vim.log.levels.WARN)
  end
  if #page.entries == 0 then
    return notify("frugal: no requests in this project yet", vim.log.levels.INFO)
  end
  local buf = H.buffer(root)
  vim.api.nvim_win_set_buf(0, buf)
  vim.wo[0][0].wrap = false
  H.render(buf, root, page, false)
end

--- The `history` call's params: lines as wide as the window (less its sign and number columns).
---@param root string
---@param before integer[]|nil
---@return table
function H.params(root, before)
  local info = vim.fn.getwininfo(vim.api.nvim_get_current_win())[1]
  local width = vim.api.nvim_win_get_width(0) - ((info and info.textoff) or 0) - 1
  return { project = root, before = before, width = math.max(width, 40) }
end

--- The listing buffer of `root` (one per project, reused).
---@param root string
---@return integer
function H.buffer(root)
  local name = "frugal://history"
  local buf = vim.fn.bufnr("^" .. name .. "$")
  if buf > 0 and (vim.b[buf].frugal_history or {}).root ~= root then
    vim.api.nvim_buf_delete(buf, { force = true })
    buf = -1
  end
  if buf > 0 then
    return buf
  end
  buf = vim.api.nvim_create_buf(true, true)
  vim.api.nvim_buf_set_name(buf, name)
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].filetype = "frugalhistory"
  local map = function(lhs, fn, desc)
    vim.keymap.set("n", lhs, fn, { buffer = buf, nowait = true, desc = desc })
  end
  map("<CR>", H.enter, "frugal: open this conversation")
  map("dd", H.delete_line, "frugal: delete this entry's text")
  map("q", "<Cmd>bwipeout<CR>", "frugal: close")
  return buf
end

--- Shows `page` in `buf` (appended to what is there when `append`).
---@param buf integer
---@param root string
---@param page { entries: frugal.HistoryEntry[], more: integer[]|nil }
---@param append boolean
function H.render(buf, root, page, append)
  local view = append and vim.b[buf].frugal_history or { root = root, ids = {} }
  local lines = append and vim.api.nvim_buf_get_lines(buf, 0, -1, false) or {}
  if append and #lines > 0 and view.more then
    -- The "more" line goes; the page takes its place.
    table.remove(lines)
    table.remove(view.ids)
  end
  for _, e in ipairs(page.entries) do
    lines[#lines + 1] = e.line
    view.ids[#view.ids + 1] = e.id
  end
  local more = page.more ~= vim.NIL and page.more or nil
  if more then
    lines[#lines + 1] = "… older requests: <CR> here shows more"
    view.ids[#view.ids + 1] = 0
  end
  view.more = more
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  vim.b[buf].frugal_history = view
end

--- The request of the cursor's line in a listing, and the view.
---@return integer|nil id, frugal.HistoryView view
function H.under_cursor()
  local view = vim.b.frugal_history
  local id = view.ids[vim.api.nvim_win_get_cursor(0)[1]]
  return (id and id > 0) and id or nil, view
end

--- `<CR>`: opens the conversation under the cursor, or the next page on the last line.
function H.enter()
  local id, view = H.under_cursor()
  if not id then
    if view.more then
      local page, err = require("frugal.rpc").request("history", H.params(view.root, view.more), nil, "history")
      if not page then
        return notify(("frugal: cannot read history: %s"):format(err), vim.log.levels.ERROR)
      end
      H.render(vim.api.nvim_get_current_buf(), view.root, page, true)
    end
    return
  end
  local c, err = require("frugal.rpc").request("history_open", { project = view.root, id = id }, nil, "history")
  if not c then
    return notify(("frugal: %s"):format(err), vim.log.levels.WARN)
  end
  H.conversation(view.root, c)
end

--- Shows a conversation in `frugal://history/<id>` (a scratch Markdown buffer).
---@param root string
---@param c { id: integer, lines: string[], answer: string }
function H.conversation(root, c)
  local name = ("frugal://history/%d"):format(c.id)
  local buf = vim.fn.bufnr("^" .. name .. "$")
  if buf <= 0 then
    buf = vim.api.nvim_create_buf(true, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.bo[buf].bufhidden = "wipe"
  end
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, c.lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  vim.bo[buf].filetype = "markdown"
  vim.b[buf].frugal_answer = { text = c.answer, request = c.id, root = root }
  vim.api.nvim_win_set_buf(0, buf)
end

--- `dd`: deletes the text of the entry under the cursor (its ledger row stays).
function H.delete_line()
  local id, view = H.under_cursor()
  if not id then
    return
  end
  local res, err = require("frugal.rpc").request("history_delete", { project = view.root, id = id }, nil, "history")
  if not res then
    return notify(("frugal: cannot delete: %s"):format(err), vim.log.levels.ERROR)
  end
  H.refresh(view.root)
end

--- Lists `root` afresh in the current (listing) buffer, keeping the cursor's line.
---@param root string
function H.refresh(root)
  local page, err = require("frugal.rpc").request("history", H.params(root), nil, "history")
  if not page then
    return notify(("frugal: cannot read history: %s"):format(err), vim.log.levels.ERROR)
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  H.render(vim.api.nvim_get_current_buf(), root, page, false)
  local last = vim.api.nvim_buf_line_count(0)
  pcall(vim.api.nvim_win_set_cursor, 0, { math.min(cursor[1], last), 0 })
end

--- `:LlmHistory clear[!]`: deletes the text of every request of the project (asks first
--- unless `bang`).
---@param bang boolean
function M.clear(bang)
  local buf = vim.api.nvim_get_current_buf()
  local root, err = H.root(buf)
  if not root then
    return notify(("frugal: no project for :LlmHistory: %s"):format(err), vim.log.levels.ERROR)
  end
  if not bang then
    local yes = vim.fn.confirm(("Delete the history text of %s?"):format(root), "&Yes\n&No", 2) == 1
    if not yes then
      return
    end
  end
  local res, derr = require("frugal.rpc").request("history_clear", { project = root }, nil, "history")
  if not res then
    return notify(("frugal: cannot clear history: %s"):format(derr), vim.log.levels.ERROR)
  end
  notify(("frugal: history text deleted (%d conversations)"):format(res.deleted), vim.log.levels.INFO)
  if vim.b[buf].frugal_history then
    H.refresh(root)
  end
end

return M
