--- Installing the backend: `:LlmBuild` and lazy.nvim's `build.lua` (SPEC, "Installing without
--- a Rust toolchain").
---
--- At a release (the plugin root is a git checkout at exactly the tag `v<version>`, or no
--- checkout at all) the release's executable for this platform is downloaded with curl, checked
--- against the release's `SHA256SUMS` and moved into `<root>/bin/frugal` in one rename; else
--- (another commit, no asset for this platform, a failed download) `cargo build --release`
--- runs when cargo is there. A checksum that does not match (or is missing) stops everything:
--- cargo is not tried, since the release host or the way to it is not to be trusted.
---
--- The work runs in a coroutine that yields while a process runs: lazy.nvim resumes it (its
--- `build.lua`, progress through `coroutine.yield(msg)`), `:LlmBuild` drives it to the end with
--- `vim.wait` (it returns when done). Nothing here needs `setup()` or another frugal module:
--- lazy runs `build.lua` before the plugin is loaded.
---
--- The steps are the modules under lua/frugal/build/: `asset` (the target, the asset's name,
--- where a backend lives and which one runs), `fetch` (download and checks), `install` (the
--- rename and the lock), `cargo` (the fallback and what to do without it), `proc` (processes
--- and messages). They are found beside this file whether or not the plugin is on
--- 'runtimepath' yet (the root's build.lua loads this file by path).
local M = {}
local H = {}

-- The steps, loaded from beside this file (lazy's build.lua runs before 'runtimepath' has
-- the plugin): `require("frugal.build.<step>")` finds them through package.preload.
H.dir = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
for _, step in ipairs({ "proc", "asset", "fetch", "install", "cargo" }) do
  local name = "frugal.build." .. step
  if not package.loaded[name] then
    package.preload[name] = function()
      return dofile(H.dir .. "/build/" .. step .. ".lua")
    end
  end
end

local proc = require("frugal.build.proc")
local asset = require("frugal.build.asset")
local fetch = require("frugal.build.fetch")
local install = require("frugal.build.install")
local cargo = require("frugal.build.cargo")

M.default_url = "https://github.com/frugal-nvim/frugal.nvim/releases/download"

---@class frugal.BuildResult
---@field ok boolean
---@field message string  one line for the user (starts `frugal: `, fits 68 cells)
---@field detail string  the whole text (both sums, curl's or cargo's words)
---@field how "downloaded"|"built"|nil
---@field path string|nil  the installed executable

---@class frugal.BuildOpts
---@field root string|nil  the plugin root (default: where this file is)
---@field download_url string|nil  setup()'s `download_url` (FRUGAL_DOWNLOAD_URL wins)
---@field progress fun(msg: string)|nil  called with each step's one-line message

---@class frugal.BuildCtx  what every step of one build knows
---@field root string
---@field version frugal.Version
---@field url string  where the releases are
---@field say fun(msg: string)  progress, one line

--- The plugin root (this file is <root>/lua/frugal/build.lua).
---@return string
function M.root()
  return vim.fn.fnamemodify(H.dir, ":h:h")
end

M.version = asset.version
M.exe = asset.exe
M.target = asset.target
M.installed = asset.installed
M.pick = asset.pick
M.source = asset.source
M.fix = asset.fix
M.fit = proc.fit

--- The whole build. Runs inside a coroutine (yields while processes run).
---@param opts frugal.BuildOpts
---@return frugal.BuildResult
function H.work(opts)
  local root = opts.root or M.root()
  ---@type frugal.BuildCtx
  local ctx = {
    root = root,
    version = M.version(root),
    url = (vim.env.FRUGAL_DOWNLOAD_URL and vim.env.FRUGAL_DOWNLOAD_URL ~= "") and vim.env.FRUGAL_DOWNLOAD_URL
      or opts.download_url
      or M.default_url,
    say = function(msg)
      if opts.progress then
        opts.progress(M.fit(msg))
      end
    end,
  }
  local dir = root .. "/bin"
  vim.fn.mkdir(dir, "p")
  local lock, holder = install.lock(dir)
  if not lock then
    return proc.fail(
      holder and ("frugal: :LlmBuild is already running (pid %d): wait for it"):format(holder)
        or "frugal: cannot take bin/.build.lock: check bin/'s permissions"
    )
  end
  install.running = coroutine.running()
  local tag = "v" .. ctx.version.version
  local result, why, long
  local release, not_release = fetch.at_release(root, tag)
  if release then
    local got
    got, result, why, long = fetch.download(ctx)
    result = result or (got and install.place(root, got))
  else
    why, long = not_release, ("the plugin root %s is %s"):format(root, not_release)
  end
  result = result or cargo.build(ctx, why, long)
  install.running = nil
  os.remove(lock)
  if result.ok then
    -- The next command starts the new backend.
    local rpc = package.loaded["frugal.rpc"]
    if rpc and rpc.stop then
      rpc.stop()
    end
  end
  pcall(vim.api.nvim_exec_autocmds, "User", {
    pattern = result.ok and "FrugalBuildDone" or "FrugalBuildFailed",
    data = { message = result.detail, how = result.how, path = result.path },
    modeline = false,
  })
  return result
end

--- The build as a coroutine body: what lazy.nvim's `build.lua` calls (progress yielded as
--- lazy's messages); raises the one-line message when it fails, as lazy expects.
---@param opts frugal.BuildOpts|nil
---@return frugal.BuildResult
function M.lazy(opts)
  opts = opts or {}
  opts.progress = opts.progress or function(msg)
    coroutine.yield(msg)
  end
  local result = H.work(opts)
  if not result.ok then
    error(result.detail, 0)
  end
  coroutine.yield(result.message)
  return result
end

--- `:LlmBuild`: the build, driven to its end (returns when done), progress and the result
--- as notifications.
---@param opts frugal.BuildOpts|nil
---@return frugal.BuildResult
function M.run(opts)
  opts = opts or {}
  local say = opts.progress
    or function(msg)
      require("frugal.util").notify(msg, vim.log.levels.INFO)
      vim.cmd.redraw()
    end
  local pending = {}
  opts.progress = function(msg)
    table.insert(pending, msg)
  end
  local co = coroutine.create(H.work)
  local result
  local ok, res = coroutine.resume(co, opts)
  while true do
    for _, msg in ipairs(pending) do
      say(msg)
    end
    pending = {}
    if not ok then
      result = proc.fail("frugal: :LlmBuild failed: " .. tostring(res), debug.traceback(co, tostring(res)))
      break
    end
    if coroutine.status(co) == "dead" then
      result = res
      break
    end
    vim.wait(20)
    ok, res = coroutine.resume(co)
  end
  require("frugal.util").notify(result.message, result.ok and vim.log.levels.INFO or vim.log.levels.ERROR)
  return result
end

return M
