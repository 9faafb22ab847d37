--- What the backend says when it starts (its answer to `hello`, sent again when setup()
--- changes): its version and protocol against the plugin's, its warnings about the settings,
--- and the settings it decided.
local M = {}
local H = {}

local notify = require("frugal.util").notify

--- Whether this start's version was checked already.
H.checked = false

---@class frugal.Notice
---@field level "info"|"warn"|"error"
---@field message string

---@class frugal.Hello
---@field version string
---@field protocol integer|nil  nil from a backend older than the handshake
---@field pid integer
---@field log_file string|nil
---@field warnings frugal.Notice[]
---@field settings frugal.Settings

---@class frugal.Settings
---@field model string
---@field judge_model string
---@field context_lines integer
---@field base_url string
---@field data_dir string
---@field stall_timeout_s integer

--- A new backend started: its version is checked at its first `hello`.
function M.started()
  H.checked = false
end

--- What a `hello` answered: a version mismatch is said once per start, each warning once.
---@param info frugal.Hello
function M.took(info)
  H.check_version(info)
  local warned = require("frugal.config").warned
  for _, w in ipairs(info.warnings or {}) do
    if not warned[w.message] then
      warned[w.message] = true
      notify(w.message, w.level)
    end
  end
  local status = package.loaded["frugal.status"]
  if status then
    vim.schedule(status.backend_ready)
  end
end

--- The backend's version and protocol against the plugin's (lua/frugal/version.lua): a
--- mismatch (a backend older or newer than the Lua, after an update) is said once per start.
---@param info frugal.Hello
function H.check_version(info)
  if H.checked then
    return
  end
  H.checked = true
  local mine = require("frugal.version")
  local protocol = type(info.protocol) == "number" and info.protocol or nil
  if info.version == mine.version and protocol == mine.protocol then
    return
  end
  local fix = require("frugal.build").fix()
  local head = ("frugal: backend %s ≠ plugin %s"):format(tostring(info.version), mine.version)
  local proto = (" (protocol %s ≠ %d)"):format(protocol and tostring(protocol) or "none", mine.protocol)
  local msg = head .. proto .. ": " .. fix
  if vim.fn.strdisplaywidth(msg) > 68 then
    msg = head .. ": run " .. fix
  end
  notify(msg, vim.log.levels.WARN)
end

return M
