--- The fallback when no release was installed: `cargo build --release` in the plugin root, or
--- what to do without cargo.
local M = {}

local proc = require("frugal.build.proc")
local asset = require("frugal.build.asset")

--- Builds the backend with cargo, or says how to get one without it.
---@param ctx frugal.BuildCtx
---@param why string  why no release was installed, in a few words
---@param long string  the same in full
---@return frugal.BuildResult
function M.build(ctx, why, long)
  if vim.fn.executable("cargo") ~= 1 then
    return proc.fail(
      ("frugal: %s, no cargo to build: see :h frugal-build"):format(why),
      (
        "frugal: no backend installed: %s, and no cargo on PATH to build it. Install Rust "
        .. "(rustup.rs, 1.88 or newer) and a C compiler, then run :LlmBuild again; or set "
        .. "setup({ binary = ... })"
      ):format(long)
    )
  end
  ctx.say(("frugal: %s; building with cargo (minutes)…"):format(why))
  local last = { line = "" }
  local r = proc.run({ "cargo", "build", "--release" }, { cwd = ctx.root }, function(line)
    last.line = line
    local step = line:match("^%s*(Compiling %S+)")
    if step then
      last.step = step
    end
  end)
  if r.code ~= 0 then
    local err = (r.stderr or ""):match("(error[^\n]*)") or last.line
    return proc.fail(
      ("frugal: cargo build --release failed (exit %d): %s"):format(r.code, err),
      ("frugal: cargo build --release in %s failed (exit %d):\n%s"):format(ctx.root, r.code, r.stderr or "")
    )
  end
  local path = asset.built(ctx.root)
  return {
    ok = true,
    how = "built",
    path = path,
    message = proc.fit("frugal: built the backend with cargo"),
    detail = ("frugal: built %s with cargo build --release (%s)"):format(path, long),
  }
end

return M
