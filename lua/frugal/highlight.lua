--- Highlight groups: linked with `default = true` (a colorscheme may override them) and linked
--- again after every `:colorscheme`, which clears them.
local M = {}
local H = {}

--- The judge's verdicts on hunks (`:LlmReview`), set by lua/frugal/review.lua with |M.tint()|:
--- the diagnostic's colour on the background of `CursorLine`, italic, so that a verdict never
--- reads as a removed line (`FrugalDelete` is `DiffDelete`, the same red as `DiagnosticError`
--- in the default colorscheme).
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
  H.now_and_after_colorscheme(augroup, set)
end

--- Defines each group of `from` (name → the group whose foreground it takes) on the
--- background of `bg`, italic, now and after every colorscheme change; `default = true`, so a
--- colorscheme's or the user's own definition wins.
---@param augroup string  a name unique to the caller
---@param from table<string, string>
---@param bg string
function M.tint(augroup, from, bg)
  local function set()
    local back = vim.api.nvim_get_hl(0, { name = bg, link = false })
    for name, source in pairs(from) do
      local fore = vim.api.nvim_get_hl(0, { name = source, link = false })
      vim.api.nvim_set_hl(0, name, {
        fg = fore.fg,
        ctermfg = fore.ctermfg,
        bg = back.bg,
        ctermbg = back.ctermbg,
        italic = true,
        cterm = { italic = true },
        default = true,
      })
    end
  end
  H.now_and_after_colorscheme(augroup, set)
end

--- Runs `set` now and again after every colorscheme change (which clears highlight groups).
---@param augroup string  a name unique to the caller, so reloading replaces its autocmd
---@param set fun()
function H.now_and_after_colorscheme(augroup, set)
  set()
  vim.api.nvim_create_autocmd("ColorScheme", {
    group = vim.api.nvim_create_augroup(augroup, { clear = true }),
    callback = set,
  })
end

return M
