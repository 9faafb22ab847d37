--- frugal.nvim: AI code edits through OpenRouter under per-project budgets.
--- Public API. Every function here is safe to call before `setup()` (defaults apply).
local M = {}
local H = {}

---@type string|nil  the model chosen with :LlmModel for this session
H.session_model = nil

--- Optional: sets options (see `:h frugal-config`). Bad keys get one warning each and their
--- defaults are kept. Starts nothing: the backend starts on the first command.
---@param opts table|nil
function M.setup(opts)
  local config = require("frugal.config")
  local resolved, warnings = config.resolve(opts)
  config.options = resolved
  for _, w in ipairs(warnings) do
    vim.notify(w, vim.log.levels.WARN, { title = "frugal" })
  end
end

--- `:LlmEdit`
---@param opts frugal.EditOpts|nil
function M.edit(opts)
  require("frugal.edit").start(opts or {})
end

--- `:LlmAccept` (`{ all = true }`: `:LlmAccept!`)
---@param opts { all: boolean }|nil
function M.accept(opts)
  require("frugal.hunks").accept(opts or { all = false })
end

--- `:LlmReject` (`{ all = true }`: `:LlmReject!`)
---@param opts { all: boolean }|nil
function M.reject(opts)
  require("frugal.hunks").reject(opts or { all = false })
end

--- `:LlmCancel`
function M.cancel()
  require("frugal.edit").cancel()
end

--- The model of this session (`:LlmModel`), or nil for the configured one.
---@return string|nil
function M.session_model()
  return H.session_model
end

return M
