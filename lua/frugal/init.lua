--- frugal.nvim: AI code edits through OpenRouter under per-project budgets.
--- Public API. Every function here is safe to call before `setup()` (defaults apply).
local M = {}

--- Optional: sets options (see `:h frugal-config`). A key that is unknown or of the wrong type
--- gets one warning at once; a bad value gets one when the backend starts (the first command).
--- Bad keys keep their defaults. Starts nothing: the backend starts on the first command.
---@param opts table|nil
function M.setup(opts)
  local config = require("frugal.config")
  local resolved, warnings, given = config.resolve(opts)
  config.options = resolved
  config.given = given
  config.warned = {}
  for _, w in ipairs(warnings) do
    config.warned[w] = true
    require("frugal.util").notify(w, vim.log.levels.WARN)
  end
  -- A running backend gets the new settings at once (a lowered cap applies to the next request);
  -- what it finds wrong with the values is shown then, else at the first command.
  local rpc = package.loaded["frugal.rpc"]
  if rpc then
    rpc.reconfigure()
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
  require("frugal.accept").accept(opts or { all = false })
end

--- `:LlmReject` (`{ all = true }`: `:LlmReject!`)
---@param opts { all: boolean }|nil
function M.reject(opts)
  require("frugal.accept").reject(opts or { all = false })
end

--- `:LlmContext [add|remove|clear] [path…]`: the project's context files for this session.
---@param args string[]|nil
function M.context(args)
  require("frugal.context").command(args or {})
end

--- `:LlmHunks`: every pending hunk in the quickfix list.
function M.hunks()
  require("frugal.navigate").quickfix()
end

--- `:LlmCancel`: stops this buffer's edit, or its review.
function M.cancel()
  require("frugal.request").cancel(0)
end

--- `:LlmReview`: the judge model's verdict on every pending hunk of this buffer's edit.
function M.review()
  require("frugal.review").start()
end

--- `:[range]LlmAsk[!] [question]`: a question about the range, answered in the tab page's
--- `frugal://ask/<tab>` buffer (`bang`: start the conversation afresh).
---@param opts frugal.AskOpts|nil
function M.ask(opts)
  require("frugal.ask").start(opts or {})
end

--- `:LlmApply`: proposes the SEARCH/REPLACE blocks of the current buffer's `b:frugal_answer`
--- as pending hunks (no request, no cost).
function M.apply()
  require("frugal.apply").run()
end

--- `:LlmModel [id]`: sets the session's model, or picks one from the catalogue (prices per
--- million tokens, filtered by the project's allow-list). Never waits on the network: when no
--- catalogue is at hand yet, the picker opens once the backend has fetched one.
---@param id string|nil
function M.model(id)
  require("frugal.model").choose(id)
end

--- The list that was not at hand when `:LlmModel` asked (see `M.model`).
---@param ev { token: integer, list: frugal.ModelList }
function M._models(ev)
  require("frugal.model")._models(ev)
end

--- The model the next edit would use: the session's, else the project's `[model] default`
--- (as last seen by :LlmModel), else the configured one.
---@return string
function M.current_model()
  return require("frugal.model").current()
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
  return require("frugal.model").session()
end

return M
