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
  -- A running backend gets the new settings at once (a lowered cap applies to the next request).
  local rpc = package.loaded["frugal.rpc"]
  if rpc and rpc.running() then
    rpc.request("hello", config.backend())
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

--- `:LlmModel [id]`: sets the session's model, or picks one from the catalogue (prices per
--- million tokens, filtered by the project's allow-list).
---@param id string|nil
function M.model(id)
  local notify = function(msg, level)
    vim.notify(msg, level or vim.log.levels.INFO, { title = "frugal" })
  end
  local buf = vim.api.nvim_get_current_buf()
  local project = vim.api.nvim_buf_get_name(buf) ~= "" and require("frugal.edit").project(buf) or vim.NIL
  local res, err = require("frugal.rpc").request("models", project)
  if not res then
    return notify(err, vim.log.levels.ERROR)
  end
  if not res.ok then
    if id then
      H.session_model = id
      return notify(("model for this session: %s (%s)"):format(id, res.message), vim.log.levels.WARN)
    end
    return notify(res.message, vim.log.levels.ERROR)
  end
  local by_id = {}
  for _, m in ipairs(res.models) do
    by_id[m.id] = m
  end
  if id then
    if not by_id[id] then
      return notify(("model %s is not in the catalogue%s; the model stays %s"):format(
        id,
        res.filtered and " (or not allowed in this project)" or "",
        M.current_model()
      ), vim.log.levels.ERROR)
    end
    H.session_model = id
    return notify(("model for this session: %s"):format(id))
  end
  table.sort(res.models, function(a, b)
    return a.id < b.id
  end)
  vim.ui.select(res.models, {
    prompt = ("frugal model (now %s)"):format(M.current_model()),
    format_item = function(m)
      if m.free then
        return ("%s  free"):format(m.id)
      elseif not m.priced then
        return ("%s  price unknown"):format(m.id)
      end
      return ("%s  $%.2f in / $%.2f out per M tokens"):format(m.id, m.prompt_per_m, m.completion_per_m)
    end,
  }, function(choice)
    if choice then
      H.session_model = choice.id
      notify(("model for this session: %s"):format(choice.id))
    end
  end)
end

--- The model the next edit would use when no project default applies.
---@return string
function M.current_model()
  return H.session_model or require("frugal.config").options.model
end

--- `:LlmUsage [all]`
---@param opts { all: boolean }|nil
function M.usage(opts)
  require("frugal.usage").open(opts or {})
end

--- A short string for the statusline, e.g. `$0.42/$1.00 today`: read from a cache that events
--- refresh, so it costs nothing per redraw and never starts the backend.
---@return string
function M.statusline()
  return require("frugal.status").get()
end

--- The model of this session (`:LlmModel`), or nil for the configured one.
---@return string|nil
function M.session_model()
  return H.session_model
end

return M
