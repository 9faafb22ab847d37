--- Output of several lines that the user asked for (the `:LlmContext` listing, `:LlmKey`'s
--- answers, an answer that held no SEARCH/REPLACE block): a float centred in the editor, as
--- `:LlmUsage`'s, closed with `q` or `<Esc>` (or by leaving it). One float at a time: a new one
--- replaces the last. Messages stay one line (|frugal.util.notify()|).
local M = {}
local H = {}

---@class frugal.FloatOpts
---@field title string  shown in the border (" frugal context ")
---@field filetype string|nil  e.g. "markdown" for a model's answer
---@field wrap boolean|nil  wrap long lines (a model's prose) instead of widening the float
---@field enter boolean|nil  move the cursor into it (default true)

---@class frugal.Float
---@field buf integer
---@field win integer
---@field augroup integer

---@type frugal.Float|nil
H.open = nil

--- Opens `lines` in a float. Returns its buffer and window, or nil and why not.
---@param lines string[]
---@param opts frugal.FloatOpts
---@return frugal.Float|nil
---@return string|nil err
function M.open(lines, opts)
  M.close()
  local buf = vim.api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = "wipe"
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, H.clean(lines))
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  if opts.filetype then
    vim.bo[buf].filetype = opts.filetype
  end
  local ok, win = pcall(vim.api.nvim_open_win, buf, opts.enter ~= false, H.layout(lines, opts))
  if not ok then
    pcall(vim.api.nvim_buf_delete, buf, { force = true })
    return nil, tostring(win)
  end
  vim.wo[win].wrap = opts.wrap == true
  vim.wo[win].linebreak = opts.wrap == true
  vim.wo[win].cursorline = false
  ---@type frugal.Float
  local f = { buf = buf, win = win, augroup = vim.api.nvim_create_augroup("frugal_float", { clear = true }) }
  H.open = f
  for _, lhs in ipairs({ "q", "<Esc>" }) do
    vim.keymap.set("n", lhs, M.close, { buffer = buf, nowait = true, desc = "frugal: close" })
  end
  vim.api.nvim_create_autocmd({ "WinLeave", "BufWipeout" }, {
    group = f.augroup,
    buffer = buf,
    callback = function()
      vim.schedule(M.close)
    end,
  })
  if opts.enter == false then
    -- Not entered (it came unasked for, while the user may be typing): it goes as a hover
    -- does, when the cursor moves on in the window it opened over.
    vim.api.nvim_create_autocmd({ "CursorMoved", "InsertEnter", "BufLeave" }, {
      group = f.augroup,
      buffer = vim.api.nvim_get_current_buf(),
      once = true,
      callback = function()
        vim.schedule(M.close)
      end,
    })
  end
  return f
end

--- Closes the float, if one is open.
function M.close()
  local f = H.open
  H.open = nil
  M.destroy(f)
end

--- Closes a float's window, wipes its buffer and drops its autocmds (each if still there):
--- this module's float, or another of the same shape (`:LlmUsage`'s dashboard).
---@param f { buf: integer|nil, win: integer|nil, augroup: integer|nil }|nil
function M.destroy(f)
  if not f then
    return
  end
  if f.augroup then
    pcall(vim.api.nvim_del_augroup_by_id, f.augroup)
  end
  if f.win and vim.api.nvim_win_is_valid(f.win) then
    pcall(vim.api.nvim_win_close, f.win, true)
  end
  if f.buf and vim.api.nvim_buf_is_valid(f.buf) then
    pcall(vim.api.nvim_buf_delete, f.buf, { force = true })
  end
end

--- The open float, if any.
---@return frugal.Float|nil
function M.current()
  return H.open
end

--- Tells the answer to a command the user gave: one line when it fits the echo area, else its
--- first line as the message and the whole text in a float (home directory as `~`), entered
--- (`q` closes it). A notification plugin gets the whole text as its message, and no float.
---@param text string
---@param title string  the float's title
---@param level integer|nil
function M.tell(text, title, level)
  local util = require("frugal.util")
  local lines = vim.split(M.short_path(text), "\n")
  local line = util.one_line(lines[1], math.huge)
  -- A notification plugin shows the whole text itself.
  local fits = #lines == 1 and vim.fn.strdisplaywidth(line) <= util.echo_width()
  if fits or not util.builtin_notify() then
    return util.notify(line, level, text)
  end
  M.open(lines, { title = title, wrap = true })
  util.notify(line, level, text)
end

--- Shortens absolute paths in a text for display: `~` for the home directory.
---@param text string
---@return string
function M.short_path(text)
  local home = vim.uv.os_homedir()
  if not home or home == "" or home == "/" then
    return text
  end
  return (text:gsub(vim.pesc(home) .. "/", "~/"))
end

--- Lines split at line breaks, control characters shown as spaces.
---@param lines string[]
---@return string[]
function H.clean(lines)
  local out = {}
  for _, l in ipairs(lines) do
    for _, part in ipairs(vim.split(l, "\r?\n")) do
      table.insert(out, (part:gsub("%c", " ")))
    end
  end
  return out
end

--- Centred, as wide as its lines (wrapped text: as wide as the editor allows), within the
--- editor less the command line.
---@param lines string[]
---@param opts frugal.FloatOpts
---@return table config for nvim_open_win
function H.layout(lines, opts)
  local cols = M.editor_size()
  local widest = vim.fn.strdisplaywidth(opts.title) + 4
  for _, l in ipairs(H.clean(lines)) do
    widest = math.max(widest, vim.fn.strdisplaywidth(l))
  end
  local width = math.max(20, math.min(widest + 1, cols - 4, opts.wrap and 78 or cols))
  local height = #H.clean(lines)
  if opts.wrap then
    height = 0
    for _, l in ipairs(H.clean(lines)) do
      height = height + math.max(1, math.ceil(vim.fn.strdisplaywidth(l) / width))
    end
  end
  -- Only an entered float takes `q`; one that was not closes when the cursor moves on.
  return M.centred(width, height, opts.title, opts.enter ~= false and " q close " or nil)
end

--- The editor's size less the command line and a last status line.
---@return integer width
---@return integer height
function M.editor_size()
  return vim.o.columns, vim.o.lines - vim.o.cmdheight - (vim.o.laststatus > 0 and 1 or 0)
end

--- A float's placement: `width` wide, `height` high (at most the editor's, less the command
--- line and 4), centred in the editor, the title in its border
--- ('winborder', else rounded), a footer at its right if given.
---@param width integer
---@param height integer
---@param title string
---@param footer string|nil
---@return table config for nvim_open_win / nvim_win_set_config
function M.centred(width, height, title, footer)
  local cols, rows = M.editor_size()
  height = math.max(1, math.min(height, rows - 4))
  -- 'winborder' exists from Neovim 0.11 on.
  local ok, border = pcall(function()
    return vim.o.winborder
  end)
  if not ok or border == nil or border == "" then
    border = "rounded"
  end
  return {
    relative = "editor",
    style = "minimal",
    border = border,
    title = (" %s "):format(title),
    title_pos = "center",
    footer = footer,
    footer_pos = footer and "right" or nil,
    width = width,
    height = height,
    row = math.max(0, math.floor((rows - height) / 2) - 1),
    col = math.max(0, math.floor((cols - width) / 2)),
    zindex = 60,
  }
end

return M
