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
  local resolved, warnings, errors = config.resolve(opts)
  config.options = resolved
  config.errors = errors
  for _, w in ipairs(warnings) do
    vim.notify(w, vim.log.levels.WARN, { title = "frugal" })
  end
  -- A running backend gets the new settings at once (a lowered cap applies to the next request).
  local rpc = package.loaded["frugal.rpc"]
  if rpc and rpc.running() then
    rpc.request("hello", config.backend())
    local status = package.loaded["frugal.status"]
    if status then
      status.backend_ready()
    end
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
--- million tokens, filtered by the project's allow-list). Never waits on the network: when no
--- catalogue is at hand yet, the picker opens once the backend has fetched one.
---@param id string|nil
function M.model(id)
  local project = require("frugal.edit").project_quiet(vim.api.nvim_get_current_buf()) or vim.NIL
  H.token = H.token + 1
  local token = H.token
  local res, err = require("frugal.rpc").request("models", { project = project, token = token })
  if not res then
    return H.notify(err, vim.log.levels.ERROR)
  end
  if res.pending then
    H.notify("fetching OpenRouter's model catalogue…")
    H.model_waiters[token] = function(list)
      H.pick(id, list)
    end
    return
  end
  H.pick(id, res)
end

--- The list that was not at hand when `:LlmModel` asked (see `M.model`).
---@param ev { token: integer, list: table }
function M._models(ev)
  local cb = H.model_waiters[ev.token]
  H.model_waiters[ev.token] = nil
  if cb then
    cb(ev.list)
  end
end

H.token = 0
---@type table<integer, fun(list: table)>
H.model_waiters = {}

function H.notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = "frugal" })
end

---@param id string|nil
---@param res table  the backend's model list
function H.pick(id, res)
  local default = res.project_default
  H.project_default = (default ~= nil and default ~= vim.NIL) and default or nil
  if not res.ok then
    if id then
      H.session_model = id
      return H.notify(
        ("model for this session: %s (not checked: %s)"):format(id, res.message or "no catalogue"),
        vim.log.levels.WARN
      )
    end
    return H.notify(res.message or "no model catalogue", vim.log.levels.ERROR)
  end
  local known = {}
  for _, m in ipairs(res.models) do
    known[m.id] = true
  end
  if id then
    if not known[id] then
      return H.notify(
        ("model %s is not in the catalogue%s; the model stays %s"):format(
          id,
          res.filtered and " (or not allowed in this project)" or "",
          M.current_model()
        ),
        vim.log.levels.ERROR
      )
    end
    H.session_model = id
    return H.notify(("model for this session: %s"):format(id))
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
      H.notify(("model for this session: %s"):format(choice.id))
    end
  end)
end

--- The model the next edit would use: the session's, else the project's `[model] default`
--- (as last seen by :LlmModel), else the configured one.
---@return string
function M.current_model()
  return H.session_model or H.project_default or require("frugal.config").options.model
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
