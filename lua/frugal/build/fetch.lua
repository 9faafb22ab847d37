--- The release's executable for this platform: downloaded with curl, checked against the
--- release's `SHA256SUMS`, recognised as an executable that runs and reports this plugin's
--- version. A checksum that does not match (or is missing) stops everything: cargo is not
--- tried, since the release host or the way to it is not to be trusted.
local M = {}
local H = {}

local proc = require("frugal.build.proc")
local asset = require("frugal.build.asset")
local fail = proc.fail

--- curl aborts a transfer slower than 1 byte/s for this long (s), never a slow but moving one:
--- a process this module started must not outlive a cut build.
H.stall_s = 30

---@class frugal.Fetched  a download that passed every check, not yet installed
---@field tmp string  where it is (in bin/, for one rename)
---@field tag string  `v<version>`
---@field target string
---@field url string  where it came from
---@field sha256 string
---@field version string  what it reported with --version

--- Whether the root is a release: no git checkout, or one at exactly `tag`.
---@param root string
---@param tag string
---@return boolean, string|nil why_not
function M.at_release(root, tag)
  if not vim.uv.fs_stat(root .. "/.git") then
    return true
  end
  if vim.fn.executable("git") ~= 1 then
    return false, "no git to read the tag"
  end
  local r = proc.run({ "git", "-C", root, "tag", "--points-at", "HEAD" })
  for t in (r.stdout or ""):gmatch("[^\r\n]+") do
    if t == tag then
      return true
    end
  end
  return false, ("not at %s"):format(tag)
end

--- The SHA-256 of a file, in hex, by the system's own tool: `sha256sum` (GNU, Linux),
--- `shasum -a 256` (macOS, BSDs) or `certutil` (Windows). `vim.fn.sha256()` cannot: the
--- executable's bytes hold NULs, which make the Lua string a Blob it refuses (E976).
---@param path string
---@return string|nil sum, string|nil err
function H.sha256(path)
  local cmd
  if vim.fn.executable("sha256sum") == 1 then
    cmd = { "sha256sum", path }
  elseif vim.fn.executable("shasum") == 1 then
    cmd = { "shasum", "-a", "256", path }
  elseif vim.fn.executable("certutil") == 1 then
    cmd = { "certutil", "-hashfile", path, "SHA256" }
  else
    return nil, "no sha256sum, shasum or certutil to check the download"
  end
  local r = proc.run(cmd)
  local sum = r.code == 0 and (r.stdout or ""):lower():gsub("%s", ""):match("%x%x%x%x%x%x%x%x" .. ("%x"):rep(56))
  if not sum then
    return nil, ("%s failed: %s"):format(cmd[1], vim.trim(r.stderr or ""))
  end
  return sum
end

--- Downloads `url` to `out`. Fails on HTTP errors (curl --fail), gives up on a connection
--- that does not open in 10 s or a transfer stalled for |H.stall_s|.
---@param url string
---@param out string
---@return boolean ok, integer|nil http_status, string err
function H.curl(url, out)
  local r = proc.run({
    "curl",
    "--fail",
    "--silent",
    "--show-error",
    "--location",
    "--proto",
    "=https,http",
    "--connect-timeout",
    "10",
    "--speed-limit",
    "1",
    "--speed-time",
    tostring(H.stall_s),
    "--write-out",
    "%{http_code}",
    "--output",
    out,
    url,
  })
  local status = tonumber(vim.trim(r.stdout or ""))
  if r.code == 0 then
    return true, status, ""
  end
  os.remove(out)
  local err = vim.trim(r.stderr or "")
  return false, status, err ~= "" and err or ("curl exited %d"):format(r.code)
end

--- The sum `SHA256SUMS` gives for `name`, or nil.
---@param text string
---@param name string
---@return string|nil
function H.sum_of(text, name)
  for line in text:gmatch("[^\r\n]+") do
    local sum, file = line:match("^(%x+)%s+%*?(.-)%s*$")
    if sum and #sum == 64 and file == name then
      return sum:lower()
    end
  end
  return nil
end

--- Whether the file starts like an executable of some platform (ELF, Mach-O, PE), not an
--- archive or a page of HTML.
---@param path string
---@return boolean
function H.executable_format(path)
  local f = io.open(path, "rb")
  if not f then
    return false
  end
  local head = f:read(4) or ""
  f:close()
  return head == "\127ELF"
    or head:sub(1, 2) == "MZ"
    or head == "\207\250\237\254"
    or head == "\206\250\237\254"
    or head == "\202\254\186\190"
end

--- The download, when the root is a release: the checked file; or a final result (stopped by
--- a check); or neither, and why cargo should be tried instead.
---@param ctx frugal.BuildCtx
---@return frugal.Fetched|nil fetched, frugal.BuildResult|nil stopped, string|nil why, string|nil long
function M.download(ctx)
  local target = asset.target()
  if not target then
    local u = vim.uv.os_uname()
    return nil, nil, "no release for this system", ("no release is built for %s %s"):format(u.sysname, u.machine)
  end
  if vim.fn.executable("curl") ~= 1 then
    return nil, nil, "no curl", "no curl on PATH to download the release"
  end
  local tag = "v" .. ctx.version.version
  local name = asset.asset(target)
  local base = ctx.url:gsub("/+$", "") .. "/" .. tag .. "/"
  local tmp = ("%s/bin/.%s.%d.part"):format(ctx.root, name, vim.uv.os_getpid())
  local sums_tmp = tmp .. ".sums"
  ctx.say(("frugal: downloading %s for %s…"):format(tag, target))
  local ok, status, err = H.curl(base .. name, tmp)
  if not ok then
    if status == 404 then
      return nil, nil, "no release asset", ("release %s has no %s (%s)"):format(tag, name, base .. name)
    end
    return nil, nil, "download failed", ("download of %s failed: %s"):format(base .. name, err)
  end
  local sums_ok, _, sums_err = H.curl(base .. "SHA256SUMS", sums_tmp)
  if not sums_ok then
    os.remove(tmp)
    return nil, nil, "download failed", ("download of %s failed: %s"):format(base .. "SHA256SUMS", sums_err)
  end
  local sums = proc.read(sums_tmp) or ""
  os.remove(sums_tmp)
  local want = H.sum_of(sums, name)
  local stopped, got, reported = H.check(ctx, tmp, name, want, base, tag)
  if stopped then
    os.remove(tmp)
    return nil, stopped
  end
  return { tmp = tmp, tag = tag, target = target, url = base .. name, sha256 = got, version = reported }
end

--- The checks of a downloaded file: its sum against `want`, its format, its version.
---@return frugal.BuildResult|nil stopped, string got, string reported
function H.check(ctx, tmp, name, want, base, tag)
  if not want then
    return fail(
      "frugal: SHA256SUMS lacks this platform's file: nothing installed",
      ("frugal: %s's SHA256SUMS (%s) has no line for %s: nothing installed, cargo not tried"):format(
        tag,
        base .. "SHA256SUMS",
        name
      )
    )
  end
  ctx.say(("frugal: checking the SHA-256 of %s…"):format(name))
  local got, sum_err = H.sha256(tmp)
  if not got then
    return fail("frugal: cannot check the download: " .. sum_err)
  end
  if got ~= want then
    return fail(
      ("frugal: checksum mismatch, nothing installed: %s… ≠ %s…"):format(got:sub(1, 8), want:sub(1, 8)),
      ("frugal: checksum mismatch for %s: got %s, SHA256SUMS says %s; nothing installed, cargo not tried"):format(
        base .. name,
        got,
        want
      )
    )
  end
  if not H.executable_format(tmp) then
    return fail(
      "frugal: the download is not an executable: nothing installed",
      ("frugal: %s is not an executable (an archive? a page?): nothing installed"):format(base .. name)
    )
  end
  vim.uv.fs_chmod(tmp, 493) -- 0755
  local r = proc.run({ tmp, "--version" }, { timeout = 10000 })
  local reported = (r.stdout or ""):match("frugal%s+(%S+)")
  if r.code ~= 0 or not reported then
    return fail(
      "frugal: the downloaded backend does not run here: not installed",
      ("frugal: %s --version failed (exit %s): %s"):format(name, tostring(r.code), vim.trim(r.stderr or ""))
    )
  end
  if reported ~= ctx.version.version then
    return fail(("frugal: the download is %s, not %s: not installed"):format(reported, ctx.version.version))
  end
  return nil, got, reported
end

return M
