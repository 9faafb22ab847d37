--- Highlight groups: linked with `default = true` (a colorscheme may override them) and linked
--- again after every `:colorscheme`, which clears them.
local M = {}

--- The judge's verdicts on hunks (`:LlmReview`), linked by lua/frugal/review.lua.
M.review = {
  FrugalReviewOk = "DiagnosticOk",
  FrugalReviewRisky = "DiagnosticWarn",
  FrugalReviewWrong = "DiagnosticError",
  FrugalReviewNone = "DiagnosticHint",
}

--- Links each group of `links` (name → target) now and after every colorscheme change.
---@param augroup string  a name unique to the caller, so reloading replaces its autocmd
---@param links table<string, string>
function M.link(augroup, links)
  local function set()
    for name, target in pairs(links) do
      vim.api.nvim_set_hl(0, name, { link = target, default = true })
    end
  end
  set()
  vim.api.nvim_create_autocmd("ColorScheme", {
    group = vim.api.nvim_create_augroup(augroup, { clear = true }),
    callback = set,
  })
end

return M
