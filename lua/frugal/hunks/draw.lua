--- How a proposed hunk looks (SPEC, "Reviewing a proposal: what a person sees"): only the
--- lines it changes are marked — removed or changed buffer lines in `FrugalDelete` with a sign,
--- the words that differ in `FrugalDeleteText`; new lines as virtual lines under them in
--- `FrugalAdd` padded to the window's edge, their changed words in `FrugalAddText`, a mark in
--- the gutter. Its label and a judge's verdict are frugal.hunks.note's.
--- Virtual lines neither wrap nor fill by themselves: they are laid out from the width of a
--- window showing the buffer, again when a window is resized or shows the buffer.
local M = {}
local H = {}

M.ns = vim.api.nvim_create_namespace("frugal_hunks")
--- Per-line decoration (line and word highlights, signs), apart from the hunk's own marks.
M.lines_ns = vim.api.nvim_create_namespace("frugal_hunk_lines")

require("frugal.highlight").link("frugal_hl", {
  FrugalDelete = "DiffDelete",
  FrugalAdd = "DiffAdd",
  FrugalDeleteText = "DiffText",
  FrugalAddText = "DiffText",
  FrugalSignAdd = "Added",
  FrugalSignChange = "Changed",
  FrugalSignDelete = "Removed",
  FrugalHunkHeader = "DiagnosticVirtualTextInfo",
  FrugalProgress = "Comment",
})

--- Signs: a changed line, a deleted line, an added (virtual) line.
H.sign = { change = "~", delete = "-", add = "+" }

---@class frugal.Change  one run of changed lines (src/edit/diff.rs), 0-based, ends exclusive
---@field old integer[]  `{ first, last + 1 }` in the hunk's `old`
---@field new integer[]  `{ first, last + 1 }` in the hunk's `new`
---@field old_words integer[][]|nil  `{ row, start byte, end byte }`, row in `old`
---@field new_words integer[][]|nil  `{ row, start byte, end byte }`, row in `new`

---@class frugal.Virt  virtual lines of a hunk, laid out again when a window changes
---@field mark integer
---@field lines { [1]: string, [2]: string }[][]  each line's segments (text, group)
---@field above boolean|nil
---@field gutter string|nil  the mark shown in the gutter column (`FrugalSignAdd`)

--- The changes of a hunk: the backend's, or the whole block when it sent none.
---@param hunk frugal.Hunk
---@return frugal.Change[]
function H.changes(hunk)
  if hunk.changes then
    return hunk.changes
  end
  return { { old = { 0, #hunk.old }, new = { 0, #hunk.new } } }
end

--- `text` with control characters as Neovim shows them (`^X`) and tabs expanded from cell
--- `col`; returns the text and the cell after it.
---@param text string
---@param col integer
---@param ts integer  'tabstop'
---@return string
---@return integer
function H.printable(text, col, ts)
  local out = {}
  for ch in text:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if ch == "\t" then
      local n = ts - col % ts
      table.insert(out, (" "):rep(n))
      col = col + n
    else
      local shown = ch:find("^%c$") and vim.fn.strtrans(ch) or ch
      table.insert(out, shown)
      col = col + vim.fn.strdisplaywidth(shown)
    end
  end
  return table.concat(out), col
end

--- One line of text as segments, the byte ranges `words` in `word_hl`, the rest in `hl`.
---@param line string
---@param words integer[][]  `{ start, end }` byte ranges, in order
---@param hl string
---@param word_hl string
---@return { [1]: string, [2]: string }[]
function H.segments(line, words, hl, word_hl)
  local segs, at = {}, 0
  for _, w in ipairs(words) do
    if w[1] > at then
      table.insert(segs, { line:sub(at + 1, w[1]), hl })
    end
    table.insert(segs, { line:sub(w[1] + 1, w[2]), word_hl })
    at = w[2]
  end
  if at < #line or #segs == 0 then
    table.insert(segs, { line:sub(at + 1), hl })
  end
  return segs
end

--- A window showing `buf` (the current one first), or nil.
---@param buf integer
---@return integer|nil
function H.window(buf)
  if vim.api.nvim_win_get_buf(0) == buf then
    return vim.api.nvim_get_current_win()
  end
  local win = vim.fn.bufwinid(buf)
  return win ~= -1 and win or nil
end

--- The text width and the gutter width of a window showing `buf` (80 and 0 when none does).
---@param buf integer
---@return integer width
---@return integer textoff
function M.geometry(buf)
  local win = H.window(buf)
  if not win then
    return 80, 0
  end
  local info = vim.fn.getwininfo(win)[1]
  local textoff = H.textoff(win, buf, info.textoff)
  return math.max(1, info.width - textoff), textoff
end

--- A window's gutter width once frugal's signs show: `getwininfo()` says what was drawn last,
--- and an 'signcolumn=auto' column that the signs just placed will open is not drawn yet.
---@param win integer
---@param buf integer
---@param drawn integer  `getwininfo().textoff`
---@return integer
function H.textoff(win, buf, drawn)
  local wo = vim.wo[win]
  if not wo.signcolumn:match("^auto") or wo.statuscolumn ~= "" then
    return drawn
  end
  local signs = vim.api.nvim_buf_get_extmarks(buf, M.lines_ns, 0, -1, { limit = 1 })
  if #signs == 0 then
    return drawn
  end
  local base = tonumber(wo.foldcolumn) or 0
  if wo.number or wo.relativenumber then
    base = base + math.max(wo.numberwidth, #tostring(vim.api.nvim_buf_line_count(buf)) + 1)
  end
  return drawn > base and drawn or base + 2
end

--- The gutter chunk of a virtual line: `mark` in the sign column's place, `textoff` cells.
---@param buf integer
---@param textoff integer
---@param mark string|nil
---@return string
function H.gutter(buf, textoff, mark)
  if textoff <= 0 then
    return ""
  end
  local win = H.window(buf)
  local fold = win and tonumber(vim.wo[win].foldcolumn) or 0
  local signs = win and vim.wo[win].signcolumn ~= "no"
  local text = (" "):rep(math.min(fold, textoff))
  if mark and signs and fold + 1 <= textoff then
    text = text .. mark
  end
  return text .. (" "):rep(textoff - vim.fn.strdisplaywidth(text))
end

--- The virtual lines of `v` laid out for the window: gutter, text, padding to the edge.
---@param buf integer
---@param v frugal.Virt
---@return table[]
function H.layout(buf, v)
  local width, textoff = M.geometry(buf)
  local ts = vim.bo[buf].tabstop
  local out = {}
  local gutter = H.gutter(buf, textoff, v.gutter)
  for _, segs in ipairs(v.lines) do
    local chunks, col = {}, 0
    if gutter ~= "" then
      table.insert(chunks, v.gutter and { gutter, "FrugalSignAdd" } or { gutter })
    end
    local fill = segs[#segs][2]
    for _, s in ipairs(segs) do
      local text
      text, col = H.printable(s[1], col, ts)
      if text ~= "" then
        table.insert(chunks, { text, s[2] })
      end
    end
    if col < width then
      table.insert(chunks, { (" "):rep(width - col), fill })
    end
    table.insert(out, chunks)
  end
  return out
end

--- Sets (or updates) the virtual lines `v` below (above) `row`.
---@param buf integer
---@param row integer
---@param v frugal.Virt
function M.place(buf, row, v)
  v.mark = vim.api.nvim_buf_set_extmark(buf, M.ns, row, 0, {
    id = v.mark,
    virt_lines = H.layout(buf, v),
    virt_lines_above = v.above or nil,
    virt_lines_leftcol = true,
    priority = 200,
  })
end

--- Lays out a hunk's virtual lines again (the window's width or gutter changed).
---@param buf integer
---@param hunk frugal.Hunk
function M.relayout(buf, hunk)
  for _, v in ipairs(hunk.virts or {}) do
    local m = vim.api.nvim_buf_get_extmark_by_id(buf, M.ns, v.mark, {})
    if m and m[1] then
      M.place(buf, m[1], v)
    end
  end
end

--- Marks one changed buffer line: its highlight, its changed words, its sign.
---@param buf integer
---@param row integer
---@param sign "change"|"delete"
---@param words integer[][]  `{ start, end }`
---@param marks integer[]  the mark ids are added here
function H.mark_line(buf, row, sign, words, marks)
  local group = sign == "change" and "FrugalSignChange" or "FrugalSignDelete"
  local function mark(col, opts)
    table.insert(marks, vim.api.nvim_buf_set_extmark(buf, M.lines_ns, row, col, opts))
  end
  mark(0, { end_row = row + 1, end_col = 0, hl_group = "FrugalDelete", hl_eol = true, priority = 200 })
  -- Apart: a sign on a range would show on the row its end reaches too.
  mark(0, { sign_text = H.sign[sign], sign_hl_group = group, priority = 200 })
  for _, w in ipairs(words) do
    mark(w[1], { end_row = row, end_col = w[2], hl_group = "FrugalDeleteText", priority = 201 })
  end
end

--- The word ranges of `row` among a change's `words`.
---@param words integer[][]|nil  `{ row, start, end }`
---@param row integer
---@return integer[][]  `{ start, end }`
function H.words_of(words, row)
  local out = {}
  for _, w in ipairs(words or {}) do
    if w[1] == row then
      table.insert(out, { w[2], w[3] })
    end
  end
  return out
end

--- Draws a hunk whose old lines start at `row`: its changed lines, its new lines, no label.
---@param buf integer
---@param row integer
---@param hunk frugal.Hunk  `lines` (decoration marks) and `virts` are set here
function M.hunk(buf, row, hunk)
  hunk.lines, hunk.virts = {}, {}
  local changes = H.changes(hunk)
  for _, c in ipairs(changes) do
    local kept = c.new[2] - c.new[1]
    for r = c.old[1], c.old[2] - 1 do
      local sign = r - c.old[1] < kept and "change" or "delete"
      H.mark_line(buf, row + r, sign, H.words_of(c.old_words, r), hunk.lines)
    end
  end
  for _, c in ipairs(changes) do
    if c.new[2] > c.new[1] then
      local v = { lines = {}, gutter = H.sign.add }
      for r = c.new[1], c.new[2] - 1 do
        local words = H.words_of(c.new_words, r)
        table.insert(v.lines, H.segments(hunk.new[r + 1], words, "FrugalAdd", "FrugalAddText"))
      end
      local at
      if c.old[2] > c.old[1] then
        at = row + c.old[2] - 1
      elseif c.old[1] > 0 or #hunk.old == 0 then
        at = row + math.max(c.old[1] - 1, 0)
      else
        at, v.above = row, true
      end
      if not H.has_sign(buf, at) then
        -- Opens an 'signcolumn=auto' column for the added lines' gutter mark.
        table.insert(hunk.lines, vim.api.nvim_buf_set_extmark(buf, M.lines_ns, at, 0, { sign_text = " " }))
      end
      table.insert(hunk.virts, v)
      v.row = at
    end
  end
  for _, v in ipairs(hunk.virts) do
    M.place(buf, v.row, v)
    v.row = nil
  end
end

--- Whether frugal put a sign on `row`.
---@param buf integer
---@param row integer
---@return boolean
function H.has_sign(buf, row)
  local marks = vim.api.nvim_buf_get_extmarks(buf, M.lines_ns, { row, 0 }, { row, -1 }, { details = true })
  for _, m in ipairs(marks) do
    if m[4].sign_text then
      return true
    end
  end
  return false
end

--- Every extmark of a hunk's drawing, removed (its range mark stays with frugal.hunks).
---@param buf integer
---@param hunk frugal.Hunk
function M.clear(buf, hunk)
  for _, id in ipairs(hunk.lines or {}) do
    pcall(vim.api.nvim_buf_del_extmark, buf, M.lines_ns, id)
  end
  for _, v in ipairs(hunk.virts or {}) do
    pcall(vim.api.nvim_buf_del_extmark, buf, M.ns, v.mark)
  end
  if hunk.note and hunk.note.mark then
    pcall(vim.api.nvim_buf_del_extmark, buf, M.ns, hunk.note.mark)
  end
  hunk.lines, hunk.virts = {}, {}
end

--- Lays out every buffer's hunks again when a window's size or gutter changes or a window
--- shows another buffer (once per event loop turn).
function H.watch()
  local queued = false
  vim.api.nvim_create_autocmd({ "WinResized", "VimResized", "BufWinEnter", "WinNew" }, {
    group = vim.api.nvim_create_augroup("frugal_hunks_layout", { clear = true }),
    callback = function()
      if queued then
        return
      end
      queued = true
      vim.schedule(function()
        queued = false
        local hunks, note = require("frugal.hunks"), require("frugal.hunks.note")
        for buf, list in pairs(hunks.all()) do
          if vim.api.nvim_buf_is_valid(buf) then
            for _, h in ipairs(list) do
              M.relayout(buf, h)
              note.relayout(buf, h)
              local s, e = hunks.span(buf, h)
              if s then
                note.label_mark(buf, h, s, e)
              end
            end
          end
        end
      end)
    end,
  })
end
H.watch()

return M
