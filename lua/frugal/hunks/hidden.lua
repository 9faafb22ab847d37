--- An edit's hunks hidden while a follow-up that will replace them streams (SPEC: a follow-up
--- replaces, it does not stack): their drawing goes and they leave the pending lists (nothing
--- navigates to, accepts or counts them), each keeping only a plain mark of its place; the
--- buffers are unchanged. They come back when the follow-up fails or is cancelled, or are
--- settled (`replaced`) when its answer arrives.
local M = {}
local H = {}

---@type table<integer, { buf: integer, hunk: frugal.Hunk }[]>  hidden hunks, by edit
H.hidden = {}

--- Hides every pending hunk of `edit`, in every buffer.
---@param edit integer
function M.hide(edit)
  local hunks, draw = require("frugal.hunks"), require("frugal.hunks.draw")
  local by_buf = hunks.all()
  local hidden = H.hidden[edit] or {}
  H.hidden[edit] = hidden
  for _, buf in ipairs(vim.tbl_keys(by_buf)) do
    for _, h in ipairs(by_buf[buf]) do
      if h.edit == edit then
        local s, e = hunks.span(buf, h)
        draw.clear(buf, h)
        pcall(vim.api.nvim_buf_del_extmark, buf, draw.ns, h.mark)
        if h.note then
          h.note.mark = nil
        end
        h.mark = s and vim.api.nvim_buf_set_extmark(buf, draw.ns, s, 0, { end_row = e, end_col = 0 }) or nil
        table.insert(hidden, { buf = buf, hunk = h })
      end
    end
    by_buf[buf] = vim.tbl_filter(function(h)
      return h.edit ~= edit
    end, by_buf[buf])
    if #by_buf[buf] == 0 then
      by_buf[buf] = nil
      require("frugal.navigate").unmap_keys(buf)
    end
  end
end

--- Shows an edit's hidden hunks again, where their lines are now (the follow-up failed or was
--- cancelled). A hunk whose lines changed meanwhile is not shown again: abandoned.
---@param edit integer
function M.unhide(edit)
  local hunks, draw = require("frugal.hunks"), require("frugal.hunks.draw")
  local hidden = H.hidden[edit] or {}
  H.hidden[edit] = nil
  local gone = {}
  for _, x in ipairs(hidden) do
    local buf, h = x.buf, x.hunk
    local valid = vim.api.nvim_buf_is_valid(buf)
    local row = valid and h.mark and hunks.span(buf, h) or nil
    if h.mark and valid then
      pcall(vim.api.nvim_buf_del_extmark, buf, draw.ns, h.mark)
    end
    h.mark = nil
    if row and (h.new_file or hunks.lines_at(buf, row, h.old)) then
      hunks.add(buf, row, h)
    else
      table.insert(gone, h)
    end
  end
  for i, h in ipairs(gone) do
    require("frugal.request").settled(edit, "abandoned", #gone < #hidden or i < #gone, h)
  end
end

--- Settles an edit's hidden hunks with `fate` (a follow-up's answer replaced them): each
--- keeps only its plain mark, taken away here, and its fate goes where every fate goes.
---@param edit integer
---@param fate frugal.Fate
function M.drop(edit, fate)
  local draw = require("frugal.hunks.draw")
  local hidden = H.hidden[edit] or {}
  H.hidden[edit] = nil
  for i, x in ipairs(hidden) do
    if vim.api.nvim_buf_is_valid(x.buf) and x.hunk.mark then
      pcall(vim.api.nvim_buf_del_extmark, x.buf, draw.ns, x.hunk.mark)
    end
    require("frugal.request").settled(edit, fate, i < #hidden, x.hunk)
  end
end

return M
