--- A hunk's words: its label `frugal k/N <start of the instruction>` and a judge's verdict as
--- virtual lines under it, wrapped to the window's width (again when it changes, through
--- frugal.hunks.draw), control characters removed.
local M = {}
local H = {}

local draw = require("frugal.hunks.draw")

--- Display cells of the instruction's start in a label.
H.label_cells = 28

--- `text` on one line, each run of control characters and white space as one space (an
--- instruction, a reason).
---@param text string
---@return string
function M.one_line(text)
  return vim.trim((text:gsub("[%c%s]+", " ")))
end

--- The start of `text`, at most `cells` display cells, cut with `…`.
---@param text string
---@param cells integer
---@return string
function M.start_of(text, cells)
  text = M.one_line(text)
  if vim.fn.strdisplaywidth(text) <= cells then
    return text
  end
  local n = vim.fn.strchars(text)
  while n > 0 and vim.fn.strdisplaywidth(vim.fn.strcharpart(text, 0, n)) > cells - 1 do
    n = n - 1
  end
  return vim.trim(vim.fn.strcharpart(text, 0, n)) .. "…"
end

--- A hunk's label: `frugal k/N <start of the instruction>`, `k/…` until N is known.
---@param hunk frugal.Hunk
---@return string
function M.label(hunk)
  local text = ("frugal %s/%s"):format(hunk.number or "?", hunk.total or "…")
  if hunk.instruction and hunk.instruction ~= "" then
    text = text .. " " .. M.start_of(hunk.instruction, H.label_cells)
  end
  return " " .. text .. (hunk.label_note or "") .. " "
end

--- Sets (or updates) a hunk's range mark over rows `row`..`stop` (exclusive) with its label:
--- at the window's right edge when it fits beside the line, else right after the line's
--- text, so that it never covers code.
---@param buf integer
---@param hunk frugal.Hunk  `mark` is set here
---@param row integer
---@param stop integer
function M.label_mark(buf, hunk, row, stop)
  local label = M.label(hunk)
  local width = draw.geometry(buf)
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  local fits = vim.fn.strdisplaywidth(line) + vim.fn.strdisplaywidth(label) + 1 <= width
  hunk.mark = vim.api.nvim_buf_set_extmark(buf, draw.ns, row, 0, {
    id = hunk.mark,
    end_row = stop,
    end_col = 0,
    end_right_gravity = false,
    virt_text = { { label, "FrugalHunkHeader" } },
    virt_text_pos = fits and "right_align" or "eol",
    priority = 200,
  })
end

--- `text` wrapped to `width` cells at spaces (a word longer than a line is cut into pieces).
---@param text string
---@param width integer
---@return string[]
function M.wrap(text, width)
  width = math.max(width, 8)
  local lines, cur = {}, ""
  for word in text:gmatch("%S+") do
    while vim.fn.strdisplaywidth(word) > width do
      if cur ~= "" then
        table.insert(lines, cur)
        cur = ""
      end
      local n = vim.fn.strchars(word)
      while vim.fn.strdisplaywidth(vim.fn.strcharpart(word, 0, n)) > width do
        n = n - 1
      end
      table.insert(lines, vim.fn.strcharpart(word, 0, n))
      word = vim.fn.strcharpart(word, n)
    end
    local joined = cur == "" and word or (cur .. " " .. word)
    if vim.fn.strdisplaywidth(joined) <= width then
      cur = joined
    else
      table.insert(lines, cur)
      cur = word
    end
  end
  if cur ~= "" or #lines == 0 then
    table.insert(lines, cur)
  end
  return lines
end

--- A verdict as virtual lines under the hunk's last line, wrapped to the window's width (and
--- again when it changes): replaces the hunk's earlier note.
---@param buf integer
---@param row integer  the hunk's last row
---@param hunk frugal.Hunk  `note` is set here
---@param verdict { text: string, hl: string }
function M.note(buf, row, hunk, verdict)
  hunk.note = { text = M.one_line(verdict.text), hl = verdict.hl }
  M.relayout(buf, hunk, row)
end

--- Lays out a hunk's note again at `row` (nil: where its mark is).
---@param buf integer
---@param hunk frugal.Hunk
---@param row integer|nil
function M.relayout(buf, hunk, row)
  local n = hunk.note
  if not n then
    return
  end
  if not row then
    local m = n.mark and vim.api.nvim_buf_get_extmark_by_id(buf, draw.ns, n.mark, {})
    if not m or not m[1] then
      return
    end
    row = m[1]
  end
  local width = draw.geometry(buf)
  local v = { mark = n.mark, lines = {} }
  for _, l in ipairs(M.wrap(n.text, width - 2)) do
    table.insert(v.lines, { { "  " .. l, n.hl } })
  end
  draw.place(buf, row, v)
  n.mark = v.mark
end

return M
