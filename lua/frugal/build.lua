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
local M = {}
local H = {}

M.default_url = "https://github.com/frugal-nvim/frugal.nvim/releases/download"

--- Processes this module started that may not outlive a cut build are bounded: curl aborts a
--- transfer slower than 1 byte/s for this long (s), never a slow but moving one.
H.stall_s = 30

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

--- The plugin root (this file is <root>/lua/frugal/build.lua).
---@return string
function M.root()
  local src = debug.getinfo(1, "S").source:sub(2)
  return vim.fn.fnamemodify(src, ":p:h:h:h")
end

---@param root string
---@return frugal.Version
function M.version(root)
  return dofile(root .. "/lua/frugal/version.lua")
end

---@return boolean
function H.windows()
  return vim.fn.has("win32") == 1
end

---@return string  ".exe" on Windows, else ""
function M.exe()
  return H.windows() and ".exe" or ""
end

--- The release target of this machine, or nil when no release is built for it.
---@return string|nil
function M.target()
  local u = vim.uv.os_uname()
  local m = u.machine:lower()
  local arch = (m == "x86_64" or m == "amd64" or m == "x64") and "x86_64"
    or (m == "aarch64" or m == "arm64") and "aarch64"
    or nil
  if not arch then
    return nil
  end
  if u.sysname == "Linux" then
    return arch .. "-unknown-linux-musl"
  elseif u.sysname == "Darwin" then
    return arch .. "-apple-darwin"
  elseif u.sysname:match("^Windows") and arch == "x86_64" then
    return "x86_64-pc-windows-msvc"
  end
  return nil
end

--- Where `:LlmBuild` installs a downloaded backend.
---@param root string
---@return string
function M.installed(root)
  return root .. "/bin/frugal" .. M.exe()
end

--- The backend to run when `binary` is not set: the newer of `bin/frugal` (downloaded) and
--- `target/release/frugal` (built), or nil when there is neither.
---@param root string
---@return string|nil path, "downloaded"|"built"|nil how
function M.pick(root)
  local bin, built = M.installed(root), root .. "/target/release/frugal" .. M.exe()
  local sb, st = vim.uv.fs_stat(bin), vim.uv.fs_stat(built)
  if sb and st then
    local newer = st.mtime.sec > sb.mtime.sec or (st.mtime.sec == sb.mtime.sec and st.mtime.nsec > sb.mtime.nsec)
    if newer then
      return built, "built"
    end
    return bin, "downloaded"
  end
  if sb then
    return bin, "downloaded"
  elseif st then
    return built, "built"
  end
  return nil, nil
end

--- What `bin/frugal.source` says about the downloaded backend (written at its install).
---@param root string
---@return { version: string, target: string, url: string, sha256: string, size: integer }|nil
function M.source(root)
  local text = H.read(root .. "/bin/frugal.source")
  local ok, v = pcall(vim.json.decode, text or "")
  return ok and type(v) == "table" and v or nil
end

--- How a user fixes a missing or mismatched backend in their set-up.
---@return string
function M.fix()
  local lazy = package.loaded["lazy.core.config"]
  if lazy and type(lazy.plugins) == "table" and lazy.plugins["frugal.nvim"] then
    return ":Lazy build frugal.nvim"
  end
  return ":LlmBuild"
end

--- One line that fits the echo area at 80 columns (68 cells), cut with `…`.
---@param msg string
---@return string
function M.fit(msg)
  msg = msg:gsub("[%c]+", " ")
  if vim.fn.strdisplaywidth(msg) <= 68 then
    return msg
  end
  local chars = vim.fn.strchars(msg)
  while chars > 0 and vim.fn.strdisplaywidth(vim.fn.strcharpart(msg, 0, chars)) > 67 do
    chars = chars - 1
  end
  return vim.fn.strcharpart(msg, 0, chars) .. "…"
end

---@param path string
---@return string|nil
function H.read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end

--- Runs `cmd` (an argument list: never a shell string) and yields until it exits.
---@param cmd string[]
---@param opts table|nil  vim.system options
---@param on_line fun(line: string)|nil  each line of stderr, in a fast context
---@return vim.SystemCompleted
function H.run(cmd, opts, on_line)
  local done
  opts = vim.tbl_extend("force", { text = true }, opts or {})
  if on_line then
    opts.stderr = function(_, data)
      for line in (data or ""):gmatch("[^\r\n]+") do
        on_line(line)
      end
    end
  end
  local ok, err = pcall(vim.system, cmd, opts, function(r)
    done = r
  end)
  if not ok then
    return { code = -1, signal = 0, stdout = "", stderr = tostring(err) }
  end
  while not done do
    coroutine.yield()
  end
  return done
end

--- Whether the root is a release: no git checkout, or one at exactly `tag`.
---@param root string
---@param tag string
---@return boolean, string|nil why_not
function H.at_release(root, tag)
  if not vim.uv.fs_stat(root .. "/.git") then
    return true
  end
  if vim.fn.executable("git") ~= 1 then
    return false, "no git to read the tag"
  end
  local r = H.run({ "git", "-C", root, "tag", "--points-at", "HEAD" })
  for t in (r.stdout or ""):gmatch("[^\r\n]+") do
    if t == tag then
      return true
    end
  end
  return false, ("not at %s"):format(tag)
end

--- The lock that keeps two builds of one plugin root apart (two Neovims, or `:LlmBuild` while
--- lazy's build runs): `bin/.build.lock` holds the builder's pid. A lock whose process is gone
--- (or whose build in this Neovim ended without releasing it) is taken over.
---@param dir string
---@return string|nil path, integer|nil holder
function H.lock(dir)
  local path = dir .. "/.build.lock"
  local me = vim.uv.os_getpid()
  for _ = 1, 3 do
    local fd = vim.uv.fs_open(path, "wx", 420)
    if fd then
      vim.uv.fs_write(fd, tostring(me))
      vim.uv.fs_close(fd)
      return path
    end
    local pid = tonumber((H.read(path) or ""):match("%d+"))
    if pid == me then
      if H.running and coroutine.status(H.running) ~= "dead" then
        return nil, pid
      end
    elseif pid and H.alive(pid) then
      return nil, pid
    end
    os.remove(path)
  end
  return nil, nil
end

---@param pid integer
---@return boolean
function H.alive(pid)
  local ok, _, name = vim.uv.kill(pid, 0)
  return ok == 0 or name ~= "ESRCH"
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
  local r = H.run(cmd)
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
  local r = H.run({
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

---@param message string
---@param detail string|nil
---@return frugal.BuildResult
function H.fail(message, detail)
  return { ok = false, message = M.fit(message), detail = detail or message }
end

--- Moves the checked download into place in one rename (a running backend keeps its old file
--- on Unix; Windows refuses to replace a running executable, so the old one is moved aside).
---@param tmp string
---@param dest string
---@return boolean ok, string|nil err
function H.install(tmp, dest)
  local aside
  if H.windows() and vim.uv.fs_stat(dest) then
    aside = dest .. ".old"
    os.remove(aside)
    local ok, err = vim.uv.fs_rename(dest, aside)
    if not ok then
      return false, err
    end
  end
  local ok, err = vim.uv.fs_rename(tmp, dest)
  if not ok and aside then
    vim.uv.fs_rename(aside, dest)
  end
  return ok ~= nil and ok ~= false, err
end

--- The download, when the root is a release. Returns a result when it is final (installed, or
--- stopped by a check), or nil and why cargo should be tried instead.
---@param ctx table
---@return frugal.BuildResult|nil, string|nil why, string|nil long
function H.download(ctx)
  local target = M.target()
  if not target then
    local u = vim.uv.os_uname()
    return nil, "no release for this system", ("no release is built for %s %s"):format(u.sysname, u.machine)
  end
  if vim.fn.executable("curl") ~= 1 then
    return nil, "no curl", "no curl on PATH to download the release"
  end
  local tag = "v" .. ctx.version.version
  local name = "frugal-" .. target .. M.exe()
  local base = ctx.url:gsub("/+$", "") .. "/" .. tag .. "/"
  local dir = ctx.root .. "/bin"
  local tmp = ("%s/.%s.%d.part"):format(dir, name, vim.uv.os_getpid())
  local sums_tmp = tmp .. ".sums"
  ctx.say(("frugal: downloading %s for %s…"):format(tag, target))
  local ok, status, err = H.curl(base .. name, tmp)
  if not ok then
    if status == 404 then
      return nil, "no release asset", ("release %s has no %s (%s)"):format(tag, name, base .. name)
    end
    return nil, "download failed", ("download of %s failed: %s"):format(base .. name, err)
  end
  local sums_ok, _, sums_err = H.curl(base .. "SHA256SUMS", sums_tmp)
  if not sums_ok then
    os.remove(tmp)
    return nil, "download failed", ("download of %s failed: %s"):format(base .. "SHA256SUMS", sums_err)
  end
  local sums = H.read(sums_tmp) or ""
  os.remove(sums_tmp)
  local want = H.sum_of(sums, name)
  if not want then
    os.remove(tmp)
    return H.fail(
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
    os.remove(tmp)
    return H.fail("frugal: cannot check the download: " .. sum_err)
  end
  if got ~= want then
    os.remove(tmp)
    return H.fail(
      ("frugal: checksum mismatch, nothing installed: %s… ≠ %s…"):format(got:sub(1, 8), want:sub(1, 8)),
      ("frugal: checksum mismatch for %s: got %s, SHA256SUMS says %s; nothing installed, cargo not tried"):format(
        base .. name,
        got,
        want
      )
    )
  end
  if not H.executable_format(tmp) then
    os.remove(tmp)
    return H.fail(
      "frugal: the download is not an executable: nothing installed",
      ("frugal: %s is not an executable (an archive? a page?): nothing installed"):format(base .. name)
    )
  end
  vim.uv.fs_chmod(tmp, 493) -- 0755
  local r = H.run({ tmp, "--version" }, { timeout = 10000 })
  local reported = (r.stdout or ""):match("frugal%s+(%S+)")
  if r.code ~= 0 or not reported then
    os.remove(tmp)
    return H.fail(
      "frugal: the downloaded backend does not run here: not installed",
      ("frugal: %s --version failed (exit %s): %s"):format(name, tostring(r.code), vim.trim(r.stderr or ""))
    )
  end
  if reported ~= ctx.version.version then
    os.remove(tmp)
    return H.fail(("frugal: the download is %s, not %s: not installed"):format(reported, ctx.version.version))
  end
  local dest = M.installed(ctx.root)
  local moved, move_err = H.install(tmp, dest)
  if not moved then
    os.remove(tmp)
    if H.windows() then
      return H.fail(
        "frugal: bin/frugal.exe is in use: quit the Neovims running it, retry",
        ("frugal: cannot replace %s (%s): Windows locks a running program"):format(dest, tostring(move_err))
      )
    end
    return H.fail("frugal: cannot install bin/frugal: " .. tostring(move_err))
  end
  local stat = vim.uv.fs_stat(dest)
  local record = vim.json.encode({
    version = reported,
    target = target,
    url = base .. name,
    sha256 = got,
    size = stat and stat.size or 0,
  })
  local f = io.open(dir .. "/frugal.source.tmp", "wb")
  if f then
    f:write(record, "\n")
    f:close()
    vim.uv.fs_rename(dir .. "/frugal.source.tmp", dir .. "/frugal.source")
  end
  return {
    ok = true,
    how = "downloaded",
    path = dest,
    message = M.fit(("frugal: installed backend %s (downloaded, sha256 checked)"):format(tag)),
    detail = ("frugal: installed %s from %s (sha256 %s)"):format(dest, base .. name, got),
  }
end

--- `cargo build --release` in the plugin root, or what to do without cargo.
---@param ctx table
---@param why string  why no release was installed, in a few words
---@param long string  the same in full
---@return frugal.BuildResult
function H.cargo(ctx, why, long)
  if vim.fn.executable("cargo") ~= 1 then
    return H.fail(
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
  local r = H.run({ "cargo", "build", "--release" }, { cwd = ctx.root }, function(line)
    last.line = line
    local step = line:match("^%s*(Compiling %S+)")
    if step then
      last.step = step
    end
  end)
  if r.code ~= 0 then
    local err = (r.stderr or ""):match("(error[^\n]*)") or last.line
    return H.fail(
      ("frugal: cargo build --release failed (exit %d): %s"):format(r.code, err),
      ("frugal: cargo build --release in %s failed (exit %d):\n%s"):format(ctx.root, r.code, r.stderr or "")
    )
  end
  local path = ctx.root .. "/target/release/frugal" .. M.exe()
  return {
    ok = true,
    how = "built",
    path = path,
    message = M.fit("frugal: built the backend with cargo"),
    detail = ("frugal: built %s with cargo build --release (%s)"):format(path, long),
  }
end

--- The whole build. Runs inside a coroutine (yields while processes run).
---@param opts frugal.BuildOpts
---@return frugal.BuildResult
function H.work(opts)
  local root = opts.root or M.root()
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
  local lock, holder = H.lock(dir)
  if not lock then
    return H.fail(
      holder and ("frugal: :LlmBuild is already running (pid %d): wait for it"):format(holder)
        or "frugal: cannot take bin/.build.lock: check bin/'s permissions"
    )
  end
  H.running = coroutine.running()
  local tag = "v" .. ctx.version.version
  local result, why, long
  local release, not_release = H.at_release(root, tag)
  if release then
    result, why, long = H.download(ctx)
  else
    why, long = not_release, ("the plugin root %s is %s"):format(root, not_release)
  end
  result = result or H.cargo(ctx, why, long)
  H.running = nil
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
      vim.notify(msg, vim.log.levels.INFO, { title = "frugal" })
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
      result = H.fail("frugal: :LlmBuild failed: " .. tostring(res), debug.traceback(co, tostring(res)))
      break
    end
    if coroutine.status(co) == "dead" then
      result = res
      break
    end
    vim.wait(20)
    ok, res = coroutine.resume(co)
  end
  vim.notify(result.message, result.ok and vim.log.levels.INFO or vim.log.levels.ERROR, { title = "frugal" })
  return result
end

return M
