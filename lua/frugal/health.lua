--- `:checkhealth frugal`
local M = {}

function M.check()
  local h = vim.health
  local config = require("frugal.config")
  local o = config.options

  h.start("frugal: Neovim")
  if vim.fn.has("nvim-0.10") == 1 then
    h.ok(("Neovim %s"):format(tostring(vim.version())))
  else
    h.error("Neovim 0.10 or newer is required")
  end

  h.start("frugal: backend")
  if vim.fn.executable(o.binary) ~= 1 then
    h.error(("backend not found at %s"):format(o.binary), {
      ("build it: cd %s && cargo build --release"):format(config.root()),
      "or point setup({ binary = ... }) at it",
    })
  else
    local res = vim.system({ o.binary, "--version" }, { text = true }):wait(5000)
    local version = vim.trim(res.stdout or "")
    if res.code == 0 and version ~= "" then
      h.ok(("%s (%s)"):format(version, o.binary))
    else
      h.error(("%s --version failed (exit %s): %s"):format(o.binary, tostring(res.code), res.stderr or ""))
    end
    local info = require("frugal.rpc").info()
    if info then
      h.ok(("running: pid %s, log %s"):format(tostring(info.pid), require("frugal.rpc").log_path()))
    else
      h.info("not running yet (it starts with the first command)")
    end
  end

  h.start("frugal: API key")
  local function check_key(label, spec)
    local kind, rest = spec:match("^(%a+):(.+)$")
    if kind == "env" then
      local v = vim.env[rest]
      if v and vim.trim(v) ~= "" then
        h.ok(("%s: environment variable %s is set (value not shown)"):format(label, rest))
      else
        h.error(("%s: environment variable %s is not set"):format(label, rest), {
          ("export %s=sk-or-v1-… before starting Neovim"):format(rest),
        })
      end
    elseif kind == "cmd" then
      h.info(("%s: read from a command when first needed (not run here)"):format(label))
    else
      h.error(("%s: %s"):format(label, 'must be "env:NAME" or "cmd:<command>"'))
    end
  end
  check_key("api_key", o.api_key)
  for name, spec in pairs(o.keys) do
    check_key(("keys.%s"):format(name), spec)
  end

  h.start("frugal: settings")
  h.info(("endpoint: %s"):format(o.base_url))
  h.info(("model: %s"):format(require("frugal").session_model() or o.model))
  h.info(("log: %s"):format(require("frugal.rpc").log_path()))
end

return M
