--- The ask buffer of a tab page: `frugal://ask/<tab number>`, a Markdown scratch buffer
--- (`buftype=nofile`: `:w {file}` saves a copy) shown in a split, one per tab page and reused,
--- where each question is written above its answer as the answer streams in.
local M = {}
local H = {}

--- The tab page variable holding its ask buffer.
H.var = "frugal_ask_buf"

--- Whether `buf` is an ask buffer.
---@param buf integer
---@return boolean
function M.is(buf)
  return vim.api.nvim_buf_is_valid(buf) and vim.b[buf].frugal_ask == true
end

--- The ask buffer of the current tab page, created (hidden) when it has none.
---@return integer buf
function M.get()
  local tab = vim.api.nvim_get_current_tabpage()
  local ok, b = pcall(vim.api.nvim_tabpage_get_var, tab, H.var)
  if ok and type(b) == "number" and M.is(b) then
    return b
  end
  local name = H.name(tab)
  local buf
  -- A buffer of that name left by a tab page that was closed (or deleted, which forgets its
  -- variables): this tab page takes it over. One that a live tab page still holds (tab
  -- numbers shift when a tab page closes) is renamed after its own tab page first.
  for _, other in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(other) == name then
      local owner = H.owner(other)
      if owner and owner ~= tab then
        pcall(vim.api.nvim_buf_set_name, other, H.name(owner))
      else
        buf = other
      end
    end
  end
  if not buf then
    buf = vim.api.nvim_create_buf(false, true)
    if not pcall(vim.api.nvim_buf_set_name, buf, name) then
      vim.api.nvim_buf_set_name(buf, ("%s-%d"):format(name, buf))
    end
  end
  vim.fn.bufload(buf)
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].swapfile = false
  if vim.bo[buf].filetype ~= "markdown" then
    vim.bo[buf].filetype = "markdown"
  end
  vim.b[buf].frugal_ask = true
  vim.api.nvim_tabpage_set_var(tab, H.var, buf)
  return buf
end

--- The ask buffer's name for tab page `tab`.
---@param tab integer
---@return string
function H.name(tab)
  return ("frugal://ask/%d"):format(vim.api.nvim_tabpage_get_number(tab))
end

--- The live tab page whose ask buffer `buf` is, if any.
---@param buf integer
---@return integer|nil
function H.owner(buf)
  for _, t in ipairs(vim.api.nvim_list_tabpages()) do
    local ok, b = pcall(vim.api.nvim_tabpage_get_var, t, H.var)
    if ok and b == buf then
      return t
    end
  end
end

--- Shows `buf` in a split of the current tab page unless a window there shows it already
--- (the cursor stays where it is). Returns that window.
---@param buf integer
---@return integer win
function M.show(buf)
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == buf then
      return win
    end
  end
  local wide = vim.o.columns >= 120
  local win = vim.api.nvim_open_win(buf, false, { split = wide and "right" or "below", win = -1 })
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  return win
end

--- Writes into `buf`, whatever its 'modifiable' (left as it was).
---@param buf integer
---@param write fun()
function H.write(buf, write)
  local was = vim.bo[buf].modifiable
  vim.bo[buf].modifiable = true
  local ok, err = pcall(write)
  vim.bo[buf].modifiable = was
  if not ok then
    error(err, 0)
  end
end

--- Empties the buffer (a conversation started afresh).
---@param buf integer
function M.clear(buf)
  H.write(buf, function()
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
  end)
end

--- Writes a question's heading under what the buffer holds; returns its row (0-based), where
--- the progress line shows. The answer is appended after it (|M.append()|).
---@param buf integer
---@param question string
---@param about string  what it is about ("m.lua, lines 3-5")
---@return integer row
function M.heading(buf, question, about)
  local n = vim.api.nvim_buf_line_count(buf)
  local empty = n == 1 and vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ""
  local lines = {}
  if not empty then
    vim.list_extend(lines, { "", "---", "" })
  end
  local first = #lines
  for i, l in ipairs(vim.split(question, "\n", { plain = true })) do
    table.insert(lines, (i == 1 and "## " or "") .. l)
  end
  vim.list_extend(lines, { ("*about %s*"):format(about), "", "" })
  H.write(buf, function()
    vim.api.nvim_buf_set_lines(buf, empty and 0 or n, -1, false, lines)
  end)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(buf), 0 })
  end
  return (empty and 0 or n) + first
end

--- Appends a piece of the answer at the end of the buffer (a piece may end inside a line).
--- Windows whose cursor was on the last line follow the text.
---@param buf integer
---@param text string
function M.append(buf, text)
  if not vim.api.nvim_buf_is_valid(buf) or text == "" then
    return
  end
  local last = vim.api.nvim_buf_line_count(buf) - 1
  local col = #vim.api.nvim_buf_get_lines(buf, last, last + 1, false)[1]
  local follow = vim.tbl_filter(function(win)
    return vim.api.nvim_win_get_cursor(win)[1] == last + 1
  end, vim.fn.win_findbuf(buf))
  local lines = vim.split((text:gsub("\r\n", "\n")), "\n", { plain = true })
  H.write(buf, function()
    vim.api.nvim_buf_set_text(buf, last, col, last, col, lines)
  end)
  local n = vim.api.nvim_buf_line_count(buf)
  for _, win in ipairs(follow) do
    vim.api.nvim_win_set_cursor(win, { n, 0 })
  end
end

return M
