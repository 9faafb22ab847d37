--- The statusline component: a cached string per project, refreshed on events (edits ending,
--- entering a buffer), never computed on redraw and never starting the backend.
local M = {}
local H = {}

--- Asks the backend for the buffer's project figures, if the backend runs.
---@param buf integer|nil  nil: the current buffer
function M.refresh(buf)
  buf = buf or vim.api.nvim_get_current_buf()
  local rpc = require("frugal.rpc")
  if not rpc.running() then
    return
  end
  local input = require("frugal.project").project_quiet(buf)
  if input then
    rpc.call("status", { project = input }, function(res)
      if res then
        M._update(input.file, res.text)
      end
    end)
  end
end

--- The backend (re)started or got new settings: refresh what is shown, if anything is.
function M.backend_ready()
  if H.armed then
    M.refresh()
  end
end

--- The backend's figures for a project, by its file: the worktrees of one repository share
--- their spend, yet each has its own file (and caps).
---@param file string
---@param text string
function M._update(file, text)
  if H.text[file] ~= text then
    H.text[file] = text
    vim.cmd.redrawstatus({ bang = true })
  end
end

--- e.g. `$0.42/$1.00 today`; "" when nothing is known yet.
---@return string
function M.get()
  if not H.armed then
    H.armed = true
    local group = vim.api.nvim_create_augroup("frugal_status", { clear = true })
    vim.api.nvim_create_autocmd("BufEnter", {
      group = group,
      callback = function(ev)
        M.refresh(ev.buf)
      end,
    })
    vim.api.nvim_create_autocmd({ "BufWipeout", "BufFilePost" }, {
      group = group,
      callback = function(ev)
        H.root_of[ev.buf] = nil
        if ev.event == "BufFilePost" then
          M.refresh(ev.buf)
        end
      end,
    })
    M.refresh()
  end
  -- In a %!-evaluated statusline, the window being drawn, not necessarily the current one.
  local win = vim.g.statusline_winid
  local buf = (win and vim.api.nvim_win_is_valid(win)) and vim.api.nvim_win_get_buf(win)
    or vim.api.nvim_get_current_buf()
  local r = H.root(buf)
  return r and H.text[r] or ""
end

-- Private ---------------------------------------------------------------------------------

---@type table<string, string>  project file → text
H.text = {}
---@type table<integer, string>  buffer → project file
H.root_of = {}
---@type boolean  the statusline asked once: the autocmds that keep the cache fresh are set
H.armed = false

--- The project file of a buffer (cached until the buffer is wiped or renamed), nil for none.
---@param buf integer
---@return string|nil
function H.root(buf)
  local r = H.root_of[buf]
  if r == nil then
    -- Only what the backend said already (|M.refresh()| asks it): never a call on redraw.
    local input = require("frugal.project").project_quiet(buf, "cached")
    r = input and input.file or nil
    H.root_of[buf] = r
  end
  return r or nil
end

return M
