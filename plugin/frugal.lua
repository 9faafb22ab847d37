-- frugal.nvim: user commands only. Nothing here requires a module; the backend starts on the
-- first command, never at start-up.
if vim.g.loaded_frugal then
  return
end
vim.g.loaded_frugal = true

local cmd = vim.api.nvim_create_user_command

cmd("LlmEdit", function(o)
  require("frugal").edit({ line1 = o.line1, line2 = o.line2, range = o.range, instruction = o.args, bang = o.bang })
end, {
  range = "%",
  nargs = "*",
  bang = true,
  complete = function(lead)
    return require("frugal.context").complete_mention(lead)
  end,
  desc = "frugal: propose an edit of the range (! drop the pending hunks first; @path adds a file)",
})

cmd("LlmAccept", function(o)
  require("frugal").accept({ all = o.bang })
end, { bang = true, desc = "frugal: accept the hunk under the cursor (! all)" })

cmd("LlmReject", function(o)
  require("frugal").reject({ all = o.bang })
end, { bang = true, desc = "frugal: reject the hunk under the cursor (! all)" })

cmd("LlmCancel", function()
  require("frugal").cancel()
end, { desc = "frugal: stop the request in flight for this buffer" })

cmd("LlmReview", function()
  require("frugal").review()
end, { desc = "frugal: the judge model's verdict on every pending hunk" })

cmd("LlmAsk", function(o)
  require("frugal").ask({ line1 = o.line1, line2 = o.line2, range = o.range, question = o.args, bang = o.bang })
end, {
  range = "%",
  nargs = "*",
  bang = true,
  complete = function(lead)
    return require("frugal.context").complete_mention(lead)
  end,
  desc = "frugal: ask about the range, answered in frugal://ask (! starts afresh; @path adds a file)",
})

cmd("LlmApply", function()
  require("frugal").apply()
end, { desc = "frugal: propose the last answer's SEARCH/REPLACE blocks as hunks (no request)" })

cmd("LlmHistory", function(o)
  require("frugal.history").command(o.args, o.bang)
end, {
  nargs = "?",
  bang = true,
  complete = function()
    return { "clear" }
  end,
  desc = "frugal: this project's past edits, asks and reviews (clear[!]: delete their text)",
})

cmd("LlmModel", function(o)
  require("frugal").model(o.args ~= "" and o.args or nil)
end, { nargs = "?", desc = "frugal: show or set the model for this session" })

cmd("LlmUsage", function(o)
  require("frugal").usage({ all = o.args == "all" })
end, {
  nargs = "?",
  complete = function()
    return { "all" }
  end,
  desc = "frugal: spend, caps, models and footprint",
})

cmd("LlmContext", function(o)
  require("frugal").context(o.fargs)
end, {
  nargs = "*",
  complete = function(lead, line)
    return require("frugal.context").complete(lead, line)
  end,
  desc = "frugal: list, add, remove or clear this project's context files",
})

cmd("LlmHunks", function()
  require("frugal").hunks()
end, { desc = "frugal: every pending hunk in the quickfix list" })

cmd("LlmKey", function(o)
  require("frugal.key").run(o.fargs)
end, {
  nargs = "*",
  complete = function(lead, line)
    return require("frugal.key").complete(lead, line)
  end,
  desc = "frugal: the project's own OpenRouter key (create, limit, disable)",
})

cmd("LlmBuild", function()
  local ok, config = pcall(require, "frugal.config")
  require("frugal.build").run({ download_url = ok and config.options.download_url or nil })
end, { desc = "frugal: install the backend for this plugin version (release download, else cargo)" })
