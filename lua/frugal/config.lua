--- frugal.nvim configuration on the Neovim side: the types and shape of `setup()`.
---
--- Every setting is described once, in the schema `lua/frugal/settings.json` (default, types,
--- range, where it may be set, a one-line doc), read by both sides. The meaning of the settings
--- (ranges, key-spec forms, budget rules) lives in the backend, which answers `hello` with a
--- warning for each bad value; this module checks from the schema only that each key is known
--- and of the right type (so a typo warns at once, without starting anything), and owns the
--- keys only Neovim uses (marked `shim_only`: `binary`, `download_url`, `keymaps`).
local M = {}
local H = {}

---@class frugal.Keymaps
---@field accept string|false
---@field reject string|false
---@field accept_all string|false
---@field reject_all string|false
---@field next string|false
---@field prev string|false

---@class frugal.Config
---@field base_url string
---@field api_key string|false  false: no key (a local server that takes none)
---@field management_key string  an OpenRouter management key spec (`:LlmKey`), never sent with a model request
---@field keys table<string,string>
---@field model string
---@field judge_model string  the model `:LlmReview` asks for verdicts
---@field budget table
---@field global_budget table
---@field data_dir string|nil  nil: `stdpath("data") .. "/frugal"`
---@field log_level string
---@field binary string|nil  nil: the newer of bin/frugal and target/release/frugal
---@field download_url string  where `:LlmBuild` finds releases (FRUGAL_DOWNLOAD_URL wins)
---@field max_tokens integer
---@field temperature number
---@field context_lines integer
---@field max_context_bytes integer
---@field instructions string[]  the project's instruction files (AGENTS.md…), relative to its root; {}: none
---@field max_instructions_bytes integer  the instruction files of a request, in bytes in all (the rest is cut)
---@field keymaps frugal.Keymaps|false
---@field max_price boolean
---@field min_useful_tokens integer
---@field stall_timeout_s integer
---@field history_days integer  days `:LlmHistory` keeps conversations' text (0: none)
---@field footprint table|false
---@field prices table<string, { prompt: number, completion: number }>  USD per million tokens, by model id

--- The plugin's root directory (this file is <root>/lua/frugal/config.lua).
---@return string
function M.root()
  local src = debug.getinfo(1, "S").source:sub(2)
  return vim.fn.fnamemodify(src, ":p:h:h:h")
end

---@class frugal.SchemaEntry  one setting of `lua/frugal/settings.json`
---@field default any  nil where it is computed (`data_dir`, `binary`)
---@field type string[]  the Lua types it takes, as `type()` names them
---@field range { min: number, max: number, whole: boolean }|nil  checked by the backend
---@field project string|nil  where a project file may set it too
---@field shim_only boolean|nil  only Neovim uses it: never sent to the backend
---@field doc string

--- The settings schema shared with the backend, read once.
---@return table<string, frugal.SchemaEntry>
function M.schema()
  if not H.schema then
    local path = M.root() .. "/lua/frugal/settings.json"
    local ok, decoded = pcall(function()
      return vim.json.decode(table.concat(vim.fn.readfile(path), "\n"), { luanil = { object = true } })
    end)
    H.schema = ok and type(decoded) == "table" and decoded or {}
  end
  return H.schema
end

---@return frugal.Config
function M.defaults()
  local out = {}
  for key, entry in pairs(M.schema()) do
    out[key] = vim.deepcopy(entry.default)
  end
  return out
end

--- The backend to run: `binary` when set, else the newer of `bin/frugal` (downloaded by
--- `:LlmBuild`) and `target/release/frugal` (built by cargo); nil when there is none.
---@return string|nil path, "setup"|"downloaded"|"built"|nil how
function M.binary()
  if M.options.binary then
    return M.options.binary, "setup"
  end
  return require("frugal.build").pick(M.root())
end

--- The keymaps' shape (they mean nothing to the backend, so they are checked here in full).
---@param v table|boolean
---@return string|nil
function H.check_keymaps(v)
  if v == true then
    return "must be a table or false"
  end
  if type(v) == "table" then
    local known = M.defaults().keymaps
    for k, lhs in pairs(v) do
      if known[k] == nil then
        return ("has an unknown entry %s (known: accept, reject, accept_all, reject_all, next, prev)"):format(
          vim.inspect(k)
        )
      end
      if type(lhs) ~= "string" and lhs ~= false then
        return ("entry %s must be a string or false"):format(k)
      end
    end
  end
end

---@type frugal.Config
M.options = M.defaults()

--- What `setup()` gave for the backend's keys, of the right types (sent in `hello`).
---@type table
M.given = {}

--- The `setup()` warnings already shown since the last `setup()`, at once or from the
--- backend's `hello`: each is shown once.
---@type table<string, boolean>
M.warned = {}

--- Merges `opts` over the defaults. A key that is unknown or of the wrong type is dropped with
--- one warning naming it. A cap (`budget`, `global_budget`) of the wrong type is sent on as
--- given, so the backend refuses requests until it is fixed: a cap that could not be read must
--- not become no cap.
---@param opts table|nil
---@return frugal.Config options, string[] warnings, table given
function M.resolve(opts)
  local out = M.defaults()
  local given = {}
  local warnings = {}
  if opts ~= nil and type(opts) ~= "table" then
    return out, { ("setup() takes a table, got %s"):format(type(opts)) }, given
  end
  for key, value in pairs(opts or {}) do
    local entry = M.schema()[key]
    local types = entry and entry.type
    if types == nil then
      table.insert(warnings, ("unknown setup key %s (ignored)"):format(vim.inspect(key)))
    elseif not vim.tbl_contains(types, type(value)) then
      local is_cap = key == "budget" or key == "global_budget"
      table.insert(
        warnings,
        ("setup key %s must be a %s, got %s (%s)"):format(
          key,
          table.concat(types, " or "),
          type(value),
          is_cap and "no request is sent until it is fixed" or "default used"
        )
      )
      if is_cap then
        given[key] = value
      end
    else
      local err = key == "keymaps" and H.check_keymaps(value)
      if err then
        table.insert(warnings, ("setup key %s %s (default used)"):format(key, err))
      elseif key == "keymaps" and type(value) == "table" then
        out.keymaps = vim.tbl_extend("force", out.keymaps, value)
      else
        out[key] = value
        if not entry.shim_only then
          given[key] = value
        end
      end
    end
  end
  return out, warnings, given
end

--- What the backend receives in `hello`: `setup()` as given (types checked), and where Neovim
--- keeps its data.
---@return table
function M.backend()
  local given = vim.deepcopy(M.given)
  for key, value in pairs(given) do
    if type(value) == "table" and vim.tbl_isempty(value) then
      given[key] = vim.empty_dict()
    end
  end
  return {
    config = vim.tbl_isempty(given) and vim.empty_dict() or given,
    data_home = vim.fn.stdpath("data"),
  }
end

return M
