-- Test Neovim's init: the plugin from this checkout, its backend from the test build, the
-- loopback OpenRouter from the test process.
vim.opt.rtp:prepend(vim.env.FRUGAL_ROOT)
vim.opt.swapfile = false
vim.opt.shadafile = "NONE"
local opts = {
  -- Empty: no `binary`, the plugin finds its own (tests/build.rs).
  binary = (vim.env.FRUGAL_BIN or "") ~= "" and vim.env.FRUGAL_BIN or nil,
  base_url = vim.env.FRUGAL_URL,
  log_level = "debug",
  context_lines = tonumber(vim.env.FRUGAL_CONTEXT or "200"),
}
-- Per-test options, as JSON.
if vim.env.FRUGAL_SETUP and vim.env.FRUGAL_SETUP ~= "" then
  opts = vim.tbl_extend("force", opts, vim.json.decode(vim.env.FRUGAL_SETUP))
end
require("frugal").setup(opts)

-- Forwarding of what the plugin tells the user to the test (the embedding client's channel).
package.loaded["frugal_test"] = {
  attach = function(chan)
    vim.api.nvim_create_autocmd("User", {
      pattern = { "FrugalEditDone", "FrugalEditFailed", "FrugalReviewDone" },
      callback = function(ev)
        vim.rpcnotify(chan, "event", ev.match, ev.data)
      end,
    })
    -- Screen tests keep the built-in vim.notify: its messages are what a person sees.
    if vim.env.FRUGAL_TEST_UI ~= "1" then
      vim.notify = function(msg, level, opts)
        vim.rpcnotify(chan, "notify", msg, level or vim.log.levels.INFO, (opts or {}).title or "")
      end
    end
  end,
}
