--- Proposed hunks, kept by buffer and previewed with extmarks (frugal.hunks.draw: only the
--- lines a hunk changes are marked, new lines as virtual lines under them, a label `frugal k/N`):
--- where each is, what it would write, and the one way a hunk leaves (|M.remove()|, with its
--- fate). The buffer text is untouched until a hunk is accepted (frugal.accept);
--- frugal.navigate finds them.
local M = {}
local H = {}
local util = require("frugal.util")
local draw = require("frugal.hunks.draw")
local note = require("frugal.hunks.note")
H.ns = draw.ns

---@class frugal.Hunk
---@field mark integer|nil  range extmark over the old lines, with the label (set by |M.add()|)
---@field lines integer[]|nil  marks of its changed lines (frugal.hunks.draw)
---@field virts frugal.Virt[]|nil  its new lines as virtual lines (frugal.hunks.draw)
---@field edit integer  the edit that proposed it
---@field index integer  its index among the edit's hunks (the backend's)
---@field number integer|nil  k: its number in its edit, in answer order across every buffer
---@field block integer  its (first) block's ordinal in the answer: its outcome is kept under it
---@field total integer|nil  N: the edit's placed hunks, once its answer is done
---@field instruction string|nil  the edit's instruction, for its label
---@field label_note string|nil  what else its label says (a budget file, a new file)
---@field old string[]
---@field new string[]
---@field changes frugal.Change[]|nil  what it changes, line by line (the backend's diff)
---@field title string
---@field new_file boolean|nil  it fills a new (empty) buffer
---@field note { text: string, hl: string, mark: integer|nil }|nil  the judge's verdict
---@field check frugal.PathCheck|nil  its buffer was loaded for the edit: its path is checked again at accept

---@class frugal.PathCheck
---@field root string  the checkout root
---@field path string  the file, relative to `root`

--- How many hunks are pending in a buffer.
---@param buf integer|nil  nil or 0: the current buffer
---@return integer
function M.count(buf)
  buf = util.buf(buf)
  return #(H.by_buf[buf] or {})
end

--- Where the hunk's old lines are now: the row its snapshot position maps to, provided those
--- lines are still exactly there. A hunk whose lines were edited while the answer streamed is
--- not placed (nil) rather than guessed elsewhere: a wrong place would be worse than none.
---@param buf integer
---@param old string[]
---@param start integer|nil  mapped first row
---@param last integer|nil  mapped last row
---@return integer|nil
function M.anchor(buf, old, start, last)
  if start and last and last - start + 1 == #old and M.lines_at(buf, start, old) then
    return start
  end
  return nil
end

--- What a hunk's header says besides its number: a budget file is named as such (writing it
--- changes caps; Neovim asks to trust it again), a new file whose directory does not exist
--- says how to write it.
---@param buf integer
---@param new_file boolean|nil
---@return string
function H.note(buf, new_file)
  local name = vim.api.nvim_buf_get_name(buf)
  if vim.fs.basename(name) == ".frugal.toml" then
    return " (the budget file .frugal.toml)"
  end
  if not new_file then
    return ""
  end
  if not vim.uv.fs_stat(vim.fs.dirname(name)) then
    return " (new file in a new directory: :w ++p)"
  end
  return " (new file)"
end

--- Shows one hunk whose old lines start at `row` (a new file's: in its empty buffer).
---@param buf integer
---@param row integer
---@param hunk frugal.Hunk  its marks are set here
function M.add(buf, row, hunk)
  local old = hunk.old
  local list = H.by_buf[buf] or {}
  H.by_buf[buf] = list
  hunk.label_note = H.note(buf, hunk.new_file)
  draw.hunk(buf, row, hunk)
  note.label_mark(buf, hunk, row, #old == 0 and row or row + #old)
  table.insert(list, hunk)
  if #list == 1 then
    require("frugal.navigate").map_keys(buf)
    H.watch_unload(buf)
  end
end

--- When `buf` is unloaded (`:bdelete`, `:bwipeout`) its pending hunks go with it: abandoned.
---@param buf integer
function H.watch_unload(buf)
  vim.api.nvim_create_autocmd("BufUnload", {
    group = vim.api.nvim_create_augroup("frugal_hunks_unload", { clear = false }),
    buffer = buf,
    once = true,
    callback = function()
      for _, h in ipairs(vim.list_slice(H.by_buf[buf] or {})) do
        M.remove(buf, h, "abandoned")
      end
    end,
  })
end

--- The edit's answer is done: its `total` placed hunks read `k/N` (never renumbered after).
---@param edit integer
---@param total integer
function M.total(edit, total)
  for buf, list in pairs(H.by_buf) do
    for _, h in ipairs(list) do
      local s, e = M.span(buf, h)
      if h.edit == edit and s then
        h.total = total
        note.label_mark(buf, h, s, e)
      end
    end
  end
end

--- The edits with hunks pending in a buffer.
---@param buf integer|nil  nil or 0: the current buffer
---@return integer[]
function M.edits_in(buf)
  local ids = {}
  for _, h in ipairs(H.by_buf[util.buf(buf)] or {}) do
    if not vim.tbl_contains(ids, h.edit) then
      table.insert(ids, h.edit)
    end
  end
  return ids
end

---@class frugal.PendingHunk
---@field buf integer
---@field path string  relative to the project's checkout
---@field line integer  1-based first old line, where it is now
---@field old string[]
---@field new string[]
---@field edit integer
---@field index integer  the hunk's index in its edit
---@field number integer|nil  k, the hunk's number in its edit (its label's)

--- Every pending hunk of the edit that owns `buf`'s hunks, in every buffer it touched, in
--- path-then-line order: what `:LlmReview` sends. The one place that knows how hunks are kept,
--- so that edits spanning several buffers change only this function.
---@param buf integer|nil  nil or 0: the current buffer
---@return frugal.PendingHunk[]
function M.pending_of_edit(buf)
  buf = util.buf(buf)
  local mine = H.by_buf[buf]
  if not mine or #mine == 0 then
    return {}
  end
  local edit = mine[1].edit
  local out = {}
  for b, list in pairs(H.by_buf) do
    for _, h in ipairs(list) do
      local s = h.edit == edit and M.span(b, h) or nil
      if s then
        table.insert(out, {
          buf = b,
          path = h.path or M.path_of(b),
          line = s + 1,
          old = h.old,
          new = h.new,
          edit = h.edit,
          index = h.index,
          number = h.number,
        })
      end
    end
  end
  table.sort(out, function(x, y)
    if x.path ~= y.path then
      return x.path < y.path
    end
    return x.line < y.line
  end)
  return out
end

--- Shows a note (the judge's verdict) as virtual lines under a pending hunk, wrapped to the
--- window's width, replacing what was shown there before; nil removes it. Gone with the hunk
--- when it is accepted or rejected.
---@param buf integer
---@param edit integer
---@param index integer
---@param verdict { text: string, hl: string }|nil
---@return boolean shown  false when the hunk is no longer pending
function M.annotate(buf, edit, index, verdict)
  for _, h in ipairs(H.by_buf[buf] or {}) do
    if h.edit == edit and h.index == index then
      if h.note and h.note.mark then
        pcall(vim.api.nvim_buf_del_extmark, buf, H.ns, h.note.mark)
      end
      h.note = nil
      local s, e = M.span(buf, h)
      if verdict and s then
        note.note(buf, math.max(s, e - 1), h, verdict)
      end
      return s ~= nil
    end
  end
  return false
end

--- The hunk at a row (its old lines), if any.
---@param buf integer
---@param row integer  0-based
---@return frugal.Hunk|nil hunk
---@return integer|nil index
function M.at(buf, row)
  for i, h in ipairs(H.by_buf[buf] or {}) do
    local s, e = M.span(buf, h)
    if s and row >= s and row < math.max(e, s + 1) then
      return h, i
    end
  end
end

--- Withdraws every hunk an edit proposed, in every buffer (it failed, was cancelled, or was
--- dropped by `:LlmEdit!`: abandoned; a follow-up's answer replaced it: replaced).
---@param edit integer
---@param fate frugal.Fate
function M.drop_edit(edit, fate)
  for _, buf in ipairs(vim.tbl_keys(H.by_buf)) do
    for _, h in ipairs(vim.list_slice(H.by_buf[buf])) do
      if h.edit == edit then
        M.remove(buf, h, fate)
      end
    end
  end
end

--- Withdraws one hunk of an edit, by its index (a later hunk of the edit replaces it).
---@param buf integer
---@param edit integer
---@param index integer
---@return boolean withdrawn  false when no such hunk is shown
function M.withdraw(buf, edit, index)
  for _, h in ipairs(H.by_buf[buf] or {}) do
    if h.edit == edit and h.index == index then
      M.remove(buf, h, "replaced")
      return true
    end
  end
  return false
end

--- Hiding an edit's hunks while a follow-up that will replace them streams (frugal.hunks.hidden).
M.hide = function(edit)
  require("frugal.hunks.hidden").hide(edit)
end
M.unhide = function(edit)
  require("frugal.hunks.hidden").unhide(edit)
end
M.drop_hidden = function(edit, fate)
  require("frugal.hunks.hidden").drop(edit, fate)
end

-- Private ---------------------------------------------------------------------------------

---@type table<integer, frugal.Hunk[]>
H.by_buf = {}

--- Every buffer's pending hunks (to read, not to change: |M.remove()| takes one off).
---@return table<integer, frugal.Hunk[]>
function M.all()
  return H.by_buf
end

--- A buffer's file relative to its project's checkout, as edits name it to the model.
---@param buf integer
---@return string
function M.path_of(buf)
  local file = vim.api.nvim_buf_get_name(buf)
  local ok, where = pcall(require("frugal.project").where, buf, { start = true })
  if ok and where and where.rel then
    return where.rel
  end
  return vim.fn.fnamemodify(file, ":t")
end

--- Whether `lines` are exactly the buffer's lines from `row` on.
---@param buf integer
---@param row integer
---@param lines string[]
---@return boolean
function M.lines_at(buf, row, lines)
  if row < 0 or row + #lines > vim.api.nvim_buf_line_count(buf) then
    return false
  end
  local cur = vim.api.nvim_buf_get_lines(buf, row, row + #lines, false)
  for i, l in ipairs(lines) do
    if cur[i] ~= l then
      return false
    end
  end
  return true
end

--- The current span of a hunk: first row and one past its last row.
---@param buf integer
---@param hunk frugal.Hunk
---@return integer|nil start
---@return integer|nil stop
function M.span(buf, hunk)
  local m = vim.api.nvim_buf_get_extmark_by_id(buf, H.ns, hunk.mark, { details = true })
  if not m or not m[1] then
    return nil
  end
  return m[1], m[3].end_row
end

--- Takes a hunk off the buffer (its preview and its entry): the one way a hunk leaves, so
--- its fate is known in one place (frugal.request). The last one unmaps the keys.
---@param buf integer
---@param hunk frugal.Hunk
---@param fate frugal.Fate
function M.remove(buf, hunk, fate)
  draw.clear(buf, hunk)
  pcall(vim.api.nvim_buf_del_extmark, buf, H.ns, hunk.mark)
  local list = H.by_buf[buf] or {}
  for i, h in ipairs(list) do
    if h == hunk then
      table.remove(list, i)
      break
    end
  end
  if #list == 0 then
    H.by_buf[buf] = nil
    require("frugal.navigate").unmap_keys(buf)
  end
  local pending = false
  for _, l in pairs(H.by_buf) do
    for _, h in ipairs(l) do
      pending = pending or h.edit == hunk.edit
    end
  end
  require("frugal.request").settled(hunk.edit, fate, pending, hunk)
end

return M
