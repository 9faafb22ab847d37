-- luacheck (https://github.com/lunarmodules/luacheck): `luacheck lua plugin` runs in .ci/run.
std = "luajit"
-- Neovim's API table is read-only; its option and variable tables are written to
-- (`vim.bo[buf].modifiable = false`, `vim.g.loaded_frugal = true`). Nothing else is global:
-- a test checks it too.
read_globals = { "vim" }
globals = { "vim.g", "vim.b", "vim.w", "vim.o", "vim.bo", "vim.wo", "vim.go", "vim.env" }
-- As stylua's column_width (stylua.toml): stylua wraps code there, strings are split by hand.
max_line_length = 120
