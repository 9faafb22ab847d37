--- `:LlmModel`: the model of this session, set by id or picked from OpenRouter's catalogue
--- (prices per million tokens, filtered by the project's allow-list).
local M = {}
local H = {}

local notify = require("frugal.util").notify

---@class frugal.ModelEntry
---@field id string
---@field free boolean
---@field priced boolean
---@field prompt_per_m number
---@field completion_per_m number
---@field price_text string  "$3.00 in / $15.00 out per M tokens", as the backend shows money

---@class frugal.ModelList  the backend's answer to `models`
---@field ok boolean
---@field message string|nil  why there is no catalogue (when not ok)
---@field models frugal.ModelEntry[]
---@field filtered boolean  the project's allow-list hid some models
---@field model string|nil  the model an edit of the project uses without :LlmModel (the backend decides)
---@field pending boolean|nil  no catalogue at hand yet: it comes later as a `models` event
---@field suggestions string[]|nil  the closest ids to the one asked for, when it is not listed

--- `:LlmModel [id]`: sets the session's model, or picks one from the catalogue. Never waits on
--- the network: when no catalogue is at hand yet, the picker opens once the backend has fetched
--- one (|M._models()|).
---@param id string|nil
function M.choose(id)
  local project = require("frugal.project").project_quiet(vim.api.nvim_get_current_buf(), true) or vim.NIL
  H.token = H.token + 1
  local token = H.token
  local res, err = require("frugal.rpc").request("models", { project = project, token = token, id = id })
  if not res then
    return notify(err, vim.log.levels.ERROR)
  end
  H.seen(res)
  if res.pending then
    notify("fetching OpenRouter's model catalogue…")
    H.waiters[token] = function(list)
      H.pick(id, list)
    end
    return
  end
  H.pick(id, res)
end

--- The list that was not at hand when `:LlmModel` asked (see |M.choose()|).
---@param ev { token: integer, list: frugal.ModelList }
function M._models(ev)
  local cb = H.waiters[ev.token]
  H.waiters[ev.token] = nil
  if cb then
    cb(ev.list)
  end
end

--- The model the next edit would use: the session's, else the one the backend last said the
--- project uses (its `[model] default` or the configured one, as of the last :LlmModel), else
--- the configured one as the backend resolved it.
---@return string
function M.current()
  local settings = require("frugal.rpc").settings()
  -- What the backend said holds for the settings it said it under (a new setup() or a restarted
  -- backend answers `hello` anew).
  local effective = settings and H.effective_for == settings and H.effective or nil
  return H.session_model or effective or (settings and settings.model) or require("frugal.config").options.model
end

--- The model of this session (`:LlmModel`), or nil for the configured one.
---@return string|nil
function M.session()
  return H.session_model
end

---@type string|nil  the model chosen with :LlmModel for this session
H.session_model = nil
---@type string|nil  the model the backend said the project uses without :LlmModel, as last seen
H.effective = nil
---@type table|nil  the backend's settings (`hello`) when it said so
H.effective_for = nil
---@type integer  the last `models` request, to match a later `models` event to its request
H.token = 0
---@type table<integer, fun(list: frugal.ModelList)>  requests waiting for the catalogue
H.waiters = {}

--- Keeps the model the backend says the project uses, with the settings it said it under.
---@param res frugal.ModelList
function H.seen(res)
  if type(res.model) == "string" then
    H.effective, H.effective_for = res.model, require("frugal.rpc").settings()
  end
end

---@param id string|nil  the model asked for; nil: pick one
---@param res frugal.ModelList
function H.pick(id, res)
  H.seen(res)
  if not res.ok then
    if id then
      H.session_model = id
      return notify(
        ("model for this session: %s (not checked: %s)"):format(id, res.message or "no catalogue"),
        vim.log.levels.WARN
      )
    end
    return notify(res.message or "no model catalogue", vim.log.levels.ERROR)
  end
  local known = {}
  for _, m in ipairs(res.models) do
    known[m.id] = true
  end
  if id then
    if not known[id] then
      -- The closest ids first: they are what the user acts on.
      local close = res.suggestions or {}
      return notify(
        ("%smodel %s is not in the catalogue%s; the model stays %s"):format(
          #close > 0 and ("did you mean %s? "):format(table.concat(close, ", ")) or "",
          id,
          res.filtered and " (or not allowed in this project)" or "",
          M.current()
        ),
        vim.log.levels.ERROR
      )
    end
    H.session_model = id
    return notify(("model for this session: %s"):format(id))
  end
  table.sort(res.models, function(a, b)
    return a.id < b.id
  end)
  vim.ui.select(res.models, {
    prompt = ("frugal model (now %s)"):format(M.current()),
    format_item = function(m)
      if m.free then
        return ("%s  free"):format(m.id)
      elseif not m.priced then
        return ("%s  price unknown"):format(m.id)
      end
      return ("%s  %s"):format(m.id, m.price_text)
    end,
  }, function(choice)
    if choice then
      H.session_model = choice.id
      notify(("model for this session: %s"):format(choice.id))
    end
  end)
end

require("frugal.rpc").on("models", M._models)

return M
