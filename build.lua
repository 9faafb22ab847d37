-- lazy.nvim runs this file after installing or updating the plugin, inside a coroutine and with
-- no process timeout (a `build` command is killed after lazy's 120 s git.timeout). It does what
-- :LlmBuild does, yielding to lazy between steps (the yielded lines are its progress), and
-- raises the error lazy shows when no backend could be installed. setup() has not run yet: a
-- mirror of the releases reaches this through FRUGAL_DOWNLOAD_URL.
local root = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
-- One module for :LlmBuild and this file, so that its lock knows a build of this Neovim.
local build = package.loaded["frugal.build"] or dofile(root .. "/lua/frugal/build.lua")
package.loaded["frugal.build"] = build
build.lazy({ root = root })
