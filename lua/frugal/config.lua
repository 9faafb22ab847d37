--- frugal.nvim configuration: defaults, validation, and what the backend receives.
--- One schema both validates `setup()` and documents the defaults (see doc/frugal.txt).
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
---@field api_key string
---@field keys table<string,string>
---@field model string
---@field budget table
---@field global_budget table
---@field data_dir string
---@field log_level string
---@field binary string
---@field max_tokens integer
---@field temperature number
---@field context_lines integer
---@field keymaps frugal.Keymaps|false
---@field max_price boolean
---@field min_useful_tokens integer
---@field footprint frugal.Footprint|false

---@class frugal.Footprint
---@field gco2e_per_token number
---@field ml_water_per_token number
---@field source string

---@class frugal.Budget
---@field daily_usd number|nil
---@field monthly_usd number|nil
---@field total_usd number|nil
---@field per_request_usd number|nil
---@field warn_at number|nil

--- The plugin's root directory (this file is <root>/lua/frugal/config.lua).
---@return string
function M.root()
  local src = debug.getinfo(1, "S").source:sub(2)
  return vim.fn.fnamemodify(src, ":p:h:h:h")
end

---@return frugal.Config
function M.defaults()
  return {
    base_url = "https://openrouter.ai/api/v1",
    api_key = "env:OPENROUTER_API_KEY",
    keys = {},
    model = "anthropic/claude-sonnet-4.5",
    budget = {},
    global_budget = {},
    data_dir = vim.fn.stdpath("data") .. "/frugal",
    log_level = "info",
    binary = M.root() .. "/target/release/frugal",
    max_tokens = 4096,
    temperature = 0,
    context_lines = 200,
    max_price = true,
    min_useful_tokens = 512,
    footprint = false,
    keymaps = {
      accept = "<localleader>a",
      reject = "<localleader>r",
      accept_all = "<localleader>A",
      reject_all = "<localleader>R",
      next = "]h",
      prev = "[h",
    },
  }
end

--- Field checks: key → { expected type(s), extra check returning an error string or nil }.
H.schema = {
  base_url = { "string", function(v)
    return not v:match("^https?://") and "must start with http:// or https://" or nil
  end },
  api_key = { "string", function(v)
    return not (v:match("^env:.+") or v:match("^cmd:.+")) and 'must be "env:NAME" or "cmd:<command>"' or nil
  end },
  keys = { "table", function(v)
    for name, spec in pairs(v) do
      if type(name) ~= "string" or type(spec) ~= "string" or not (spec:match("^env:.+") or spec:match("^cmd:.+")) then
        return ('entry %s must be "env:NAME" or "cmd:<command>"'):format(vim.inspect(name))
      end
    end
  end },
  model = { "string", function(v)
    return v == "" and "must not be empty" or nil
  end },
  budget = { "table", function(v)
    return H.check_budget(v)
  end },
  global_budget = { "table", function(v)
    return H.check_budget(v)
  end },
  max_price = { "boolean" },
  footprint = { { "table", "boolean" }, function(v)
    if v == true then
      return "must be a table or false"
    end
    if type(v) == "table" then
      if type(v.gco2e_per_token) ~= "number" or type(v.ml_water_per_token) ~= "number" or type(v.source) ~= "string" then
        return "needs gco2e_per_token (number), ml_water_per_token (number) and source (string)"
      end
    end
  end },
  min_useful_tokens = { "number", function(v)
    return (v < 16 or v % 1 ~= 0) and "must be a whole number of at least 16" or nil
  end },
  data_dir = { "string" },
  log_level = { "string", function(v)
    local ok = ({ trace = 1, debug = 1, info = 1, warn = 1, error = 1 })[v]
    return not ok and "must be one of trace, debug, info, warn, error" or nil
  end },
  binary = { "string" },
  max_tokens = { "number", function(v)
    return (v < 16 or v % 1 ~= 0) and "must be a whole number of at least 16" or nil
  end },
  temperature = { "number", function(v)
    return (v < 0 or v > 2) and "must be between 0 and 2" or nil
  end },
  context_lines = { "number", function(v)
    return (v < 0 or v % 1 ~= 0) and "must be a whole number, 0 or more" or nil
  end },
  keymaps = { { "table", "boolean" }, function(v)
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
  end },
}

H.budget_fields = { daily_usd = true, monthly_usd = true, total_usd = true, per_request_usd = true, warn_at = true }

---@param v table
---@return string|nil
function H.check_budget(v)
  for k, x in pairs(v) do
    if not H.budget_fields[k] then
      return ("has an unknown field %s (known: daily_usd, monthly_usd, total_usd, per_request_usd, warn_at)"):format(
        vim.inspect(k)
      )
    end
    if type(x) ~= "number" or x < 0 or x ~= x or x == math.huge then
      return ("field %s must be a positive number"):format(k)
    end
    if k == "warn_at" and (x <= 0 or x > 1) then
      return "field warn_at must be a fraction in (0, 1]"
    end
  end
end

---@type frugal.Config
M.options = M.defaults()

--- Bad caps from the last `setup()`: the backend refuses every request until they are fixed
--- (a cap that could not be read must not become no cap).
---@type string[]
M.errors = {}

--- Merges `opts` over the defaults. Bad keys are dropped with one warning each, naming the key;
--- bad caps are also returned as errors.
---@param opts table|nil
---@return frugal.Config, string[] warnings, string[] errors
function M.resolve(opts)
  local out = M.defaults()
  local warnings = {}
  local errors = {}
  if opts ~= nil and type(opts) ~= "table" then
    return out, { ("setup() takes a table, got %s"):format(type(opts)) }, errors
  end
  for key, value in pairs(opts or {}) do
    local rule = H.schema[key]
    if rule == nil then
      table.insert(warnings, ("unknown setup key %s (ignored)"):format(vim.inspect(key)))
    else
      local types = type(rule[1]) == "table" and rule[1] or { rule[1] }
      -- A bad cap must not fall back to no cap: it blocks requests until fixed.
      local is_cap = key == "budget" or key == "global_budget"
      local fallback = is_cap and "no request is sent until it is fixed" or "default used"
      if not vim.tbl_contains(types, type(value)) then
        local msg = ("setup key %s must be a %s, got %s (%s)"):format(
          key,
          table.concat(types, " or "),
          type(value),
          fallback
        )
        table.insert(warnings, msg)
        if is_cap then
          table.insert(errors, msg)
        end
      else
        local err = rule[2] and rule[2](value)
        if err then
          local msg = ("setup key %s %s (%s)"):format(key, err, fallback)
          table.insert(warnings, msg)
          if is_cap then
            table.insert(errors, msg)
          end
        elseif key == "keymaps" and type(value) == "table" then
          out.keymaps = vim.tbl_extend("force", out.keymaps, value)
        else
          out[key] = value
        end
      end
    end
  end
  return out, warnings, errors
end

--- What the backend receives in `hello`: everything it decides with, nothing it does not need.
---@return table
function M.backend()
  local o = M.options
  return {
    base_url = o.base_url,
    api_key = o.api_key,
    keys = vim.tbl_isempty(o.keys) and vim.empty_dict() or o.keys,
    model = o.model,
    max_tokens = o.max_tokens,
    temperature = o.temperature,
    context_lines = o.context_lines,
    budget = vim.tbl_isempty(o.budget) and vim.empty_dict() or o.budget,
    global_budget = vim.tbl_isempty(o.global_budget) and vim.empty_dict() or o.global_budget,
    data_dir = o.data_dir,
    max_price = o.max_price,
    min_useful_tokens = o.min_useful_tokens,
    footprint = o.footprint or nil,
    config_errors = M.errors,
  }
end

return M
