--- `:LlmUsage`: a floating dashboard of spend, caps, models and footprint. The backend builds
--- the report (lines and highlight ranges); this module only displays it.
local M = {}
local H = {}

---@class frugal.UsageView
---@field buf integer
---@field win integer
---@field all boolean
---@field source integer  the buffer whose project is shown
---@field token integer
---@field augroup integer
---@field report table|nil  what is shown

local notify = require("frugal.util").notify
local float = require("frugal.float")

require("frugal.highlight").link("frugal_usage_hl", {
  FrugalUsageTitle = "Title",
  FrugalUsageLabel = "Label",
  FrugalUsageMoney = "Number",
  FrugalUsageBarFill = "DiagnosticOk",
  FrugalUsageBarEmpty = "NonText",
  FrugalUsageWarn = "DiagnosticWarn",
  FrugalUsageOver = "DiagnosticError",
  FrugalUsageDim = "Comment",
  FrugalUsageSpark = "Special",
})

--- Closes the dashboard (window, buffer, autocmds), if open.
function M.close()
  local view = H.view
  H.view = nil
  float.destroy(view)
end

--- Opens (or refreshes) the dashboard.
---@param opts { all: boolean }|nil
function M.open(opts)
  opts = opts or {}
  local source = vim.api.nvim_get_current_buf()
  if H.view then
    source = H.view.source
    M.close()
  end
  local project, perr = require("frugal.project").project_quiet(source, true, "usage")
  if perr then
    return notify(perr, vim.log.levels.ERROR)
  end
  local all = opts.all or project == nil
  ---@type frugal.UsageView
  local view = { all = all, source = source, token = 0 }
  local report, err = H.fetch(view)
  if not report then
    return notify(err or "no usage report", vim.log.levels.ERROR)
  end
  view.buf = vim.api.nvim_create_buf(false, true)
  vim.bo[view.buf].bufhidden = "wipe"
  vim.bo[view.buf].filetype = "frugalusage"
  local ok, win = pcall(vim.api.nvim_open_win, view.buf, true, H.layout(report))
  if not ok then
    pcall(vim.api.nvim_buf_delete, view.buf, { force = true })
    return notify(("cannot open the usage window here: %s"):format(win), vim.log.levels.ERROR)
  end
  view.win = win
  vim.wo[view.win].wrap = false
  vim.wo[view.win].cursorline = false
  H.view = view
  H.render(view, report)

  local map = function(lhs, fn, desc)
    vim.keymap.set("n", lhs, fn, { buffer = view.buf, nowait = true, desc = desc })
  end
  map("q", M.close, "frugal: close")
  map("<Esc>", M.close, "frugal: close")
  map("r", function()
    M.refresh()
  end, "frugal: refresh")
  map("a", function()
    M.toggle_all()
  end, "frugal: this project / all projects")

  view.augroup = vim.api.nvim_create_augroup("frugal_usage_view", { clear = true })
  vim.api.nvim_create_autocmd("VimResized", {
    group = view.augroup,
    callback = function()
      -- The backend lays the report out for a width: ask again for the new one.
      vim.schedule(M.refresh)
    end,
  })
  vim.api.nvim_create_autocmd({ "WinClosed", "BufWipeout" }, {
    group = view.augroup,
    buffer = view.buf,
    callback = function()
      vim.schedule(M.close)
    end,
  })
  vim.api.nvim_create_autocmd("WinLeave", {
    group = view.augroup,
    buffer = view.buf,
    callback = function()
      vim.schedule(M.close)
    end,
  })
end

--- Asks the backend for the report again and redraws the open dashboard.
function M.refresh()
  local view = H.view
  if not view then
    return
  end
  local report, err = H.fetch(view)
  if not report then
    return notify(err or "no usage report", vim.log.levels.ERROR)
  end
  H.render(view, report)
end

--- Switches the open dashboard between the buffer's project and all projects.
function M.toggle_all()
  local view = H.view
  if not view then
    return
  end
  if view.all and require("frugal.project").project_quiet(view.source, true) == nil then
    return notify("the buffer behind this window has no project", vim.log.levels.WARN)
  end
  view.all = not view.all
  M.refresh()
end

--- A newer report (e.g. once the key's figures arrived) for the open window, if still open.
--- Registered for the backend's `usage` event.
---@param ev { token: integer, report: table }
function M._update(ev)
  local view = H.view
  if view and ev.token == view.token and vim.api.nvim_buf_is_valid(view.buf) then
    H.render(view, ev.report)
  end
end

--- The open dashboard, if any.
---@return frugal.UsageView|nil
function M.view()
  return H.view
end

-- Private ---------------------------------------------------------------------------------

H.ns = vim.api.nvim_create_namespace("frugal_usage")

---@type frugal.UsageView|nil
H.view = nil
---@type integer  the last report asked for; a later `usage` event must match it
H.token = 0

--- The float's placement for a report: centred, as wide as its lines, within the editor.
---@param report table
---@return table config for nvim_open_win / nvim_win_set_config
function H.layout(report)
  local cols = float.editor_size()
  local width = math.max(20, math.min((report.width or 60) + 2, cols - 4))
  return float.centred(width, #report.lines, report.title or "frugal usage")
end

--- Puts the report's lines and highlights in the view's buffer and fits the window to it.
---@param view frugal.UsageView
---@param report table
function H.render(view, report)
  local buf = view.buf
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, report.lines)
  vim.api.nvim_buf_clear_namespace(buf, H.ns, 0, -1)
  for _, h in ipairs(report.highlights or {}) do
    pcall(vim.api.nvim_buf_set_extmark, buf, H.ns, h[1], h[2], { end_col = h[3], hl_group = h[4] })
  end
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  view.report = report
  if vim.api.nvim_win_is_valid(view.win) then
    vim.api.nvim_win_set_config(view.win, H.layout(report))
  end
end

--- Asks the backend for the view's report, at a width that fits the editor.
---@param view frugal.UsageView
---@return table|nil report
---@return string|nil err
function H.fetch(view)
  H.token = H.token + 1
  view.token = H.token
  local cols = float.editor_size()
  local res, err = require("frugal.rpc").request("usage", {
    project = (not view.all) and require("frugal.project").project_quiet(view.source, true) or vim.NIL,
    all = view.all,
    width = math.max(20, math.min(cols - 6, 78)),
    token = view.token,
  })
  if not res then
    return nil, err
  end
  if not res.ok then
    return nil, res.message
  end
  return res
end

require("frugal.rpc").on("usage", M._update)

return M
