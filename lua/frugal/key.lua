--- `:LlmKey`: the project's own OpenRouter key, capped by OpenRouter itself. The backend does
--- the work (creating, binding, changing, disabling: see `:h frugal-key`); this module sends the
--- command's words and shows the answer. Never waits: the answer arrives as a reply event.
local M = {}
local H = {}

local notify = require("frugal.util").notify

--- The subcommands, for completion.
M.subcommands = { "create", "limit", "disable" }

--- The periods `:LlmKey create` takes after the limit.
M.periods = { "daily", "weekly", "monthly" }

--- `:LlmKey [create [limit_usd] [daily|weekly|monthly] | limit {usd} | disable]`
---@param args string[]  the command's words
function M.run(args)
  local sub = args[1]
  local method = sub == nil and "key" or H.methods[sub]
  if not method then
    return notify(("unknown :LlmKey subcommand %s: use %s"):format(vim.inspect(sub), H.usage), vim.log.levels.ERROR)
  end
  local project = require("frugal.project").project_quiet(0, true)
  if not project then
    return notify(
      ":LlmKey acts on the current buffer's project: open a file of the project first",
      vim.log.levels.ERROR
    )
  end
  local rpc = require("frugal.rpc")
  local chan, err = rpc.ensure()
  if not chan then
    return notify(err or "the backend does not run", vim.log.levels.ERROR)
  end
  local params = { project = project, args = vim.list_slice(args, 2) }
  if #params.args == 0 then
    params.args = nil
  end
  rpc.call(method, params, function(res, e)
    if not res then
      return notify(e or "no answer", vim.log.levels.ERROR)
    end
    if res.ask_limit then
      return H.ask_limit(args, res.message)
    end
    require("frugal.float").tell(res.message, "frugal key", vim.log.levels.INFO)
  end, H.timeout_ms)
end

--- `:LlmKey create` without a limit, for a project without caps: asks for the limit (as the
--- doc says) and creates the key with it; dismissed, says why nothing was created.
---@param args string[]  the command's words (`create` and maybe a period)
---@param why string  the backend's reason
function H.ask_limit(args, why)
  vim.ui.input({ prompt = "frugal: limit in USD for the project's new key: " }, function(input)
    input = vim.trim(input or "")
    if input == "" then
      return require("frugal.float").tell(why, "frugal key", vim.log.levels.WARN)
    end
    M.run(vim.list_extend({ "create", input }, vim.list_slice(args, 2)))
  end)
end

--- Completion of `:LlmKey`'s arguments.
---@param arg_lead string
---@param cmd_line string
---@return string[]
function M.complete(arg_lead, cmd_line)
  local words = vim.split(cmd_line, "%s+", { trimempty = true })
  -- The words before the one being typed (the command itself is the first).
  local before = #words - (arg_lead == "" and 0 or 1)
  local items = {}
  if before == 1 then
    items = M.subcommands
  elseif words[2] == "create" and (before == 2 or before == 3) then
    -- After `create`: a period alone (the limit from that period's cap), or after the limit.
    items = M.periods
  end
  return vim.tbl_filter(function(s)
    return vim.startswith(s, arg_lead)
  end, items)
end

H.usage = ":LlmKey, :LlmKey create [limit_usd] [daily|weekly|monthly], :LlmKey limit {usd} or :LlmKey disable"

---@type table<string, string>  subcommand → backend method
H.methods = { create = "key_create", limit = "key_limit", disable = "key_disable" }

--- Key-management calls wait on OpenRouter (up to 15 s each, two for `create`).
H.timeout_ms = 45000

return M
