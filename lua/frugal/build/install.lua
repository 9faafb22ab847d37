--- Putting a checked download in place, and the lock that keeps two builds of one plugin root
--- apart (two Neovims, or `:LlmBuild` while lazy's build runs).
local M = {}
local H = {}

local proc = require("frugal.build.proc")
local asset = require("frugal.build.asset")

---@type thread|nil  the build of this Neovim that holds the lock, while it runs
M.running = nil

--- Takes `bin/.build.lock`, which holds the builder's pid. A lock whose process is gone (or
--- whose build in this Neovim ended without releasing it) is taken over.
---@param dir string
---@return string|nil path, integer|nil holder
function M.lock(dir)
  local path = dir .. "/.build.lock"
  local me = vim.uv.os_getpid()
  for _ = 1, 3 do
    local fd = vim.uv.fs_open(path, "wx", 420)
    if fd then
      vim.uv.fs_write(fd, tostring(me))
      vim.uv.fs_close(fd)
      return path
    end
    local pid = tonumber((proc.read(path) or ""):match("%d+"))
    if pid == me then
      if M.running and coroutine.status(M.running) ~= "dead" then
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

--- Moves the checked download into place in one rename (a running backend keeps its old file
--- on Unix; Windows refuses to replace a running executable, so the old one is moved aside).
---@param tmp string
---@param dest string
---@return boolean ok, string|nil err
function H.rename(tmp, dest)
  local aside
  if asset.windows() and vim.uv.fs_stat(dest) then
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

--- Installs a checked download as `bin/frugal` and records where it came from in
--- `bin/frugal.source`.
---@param root string
---@param got frugal.Fetched
---@return frugal.BuildResult
function M.place(root, got)
  local dest = asset.installed(root)
  local moved, move_err = H.rename(got.tmp, dest)
  if not moved then
    os.remove(got.tmp)
    if asset.windows() then
      return proc.fail(
        "frugal: bin/frugal.exe is in use: quit the Neovims running it, retry",
        ("frugal: cannot replace %s (%s): Windows locks a running program"):format(dest, tostring(move_err))
      )
    end
    return proc.fail("frugal: cannot install bin/frugal: " .. tostring(move_err))
  end
  local stat = vim.uv.fs_stat(dest)
  local record = vim.json.encode({
    version = got.version,
    target = got.target,
    url = got.url,
    sha256 = got.sha256,
    size = stat and stat.size or 0,
  })
  local dir = root .. "/bin"
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
    message = proc.fit(("frugal: installed backend %s (downloaded, sha256 checked)"):format(got.tag)),
    detail = ("frugal: installed %s from %s (sha256 %s)"):format(dest, got.url, got.sha256),
  }
end

return M
