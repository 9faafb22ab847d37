--- Which backend: the release target of this machine and its asset's name, where a downloaded
--- and a built backend live, which of them runs, and how a user installs one.
local M = {}

local proc = require("frugal.build.proc")

---@return boolean
function M.windows()
  return vim.fn.has("win32") == 1
end

---@return string  ".exe" on Windows, else ""
function M.exe()
  return M.windows() and ".exe" or ""
end

---@param root string
---@return frugal.Version
function M.version(root)
  return dofile(root .. "/lua/frugal/version.lua")
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

--- The release's file for `target` (its line in `SHA256SUMS` names it so).
---@param target string
---@return string
function M.asset(target)
  return "frugal-" .. target .. M.exe()
end

--- Where `:LlmBuild` installs a downloaded backend.
---@param root string
---@return string
function M.installed(root)
  return root .. "/bin/frugal" .. M.exe()
end

--- Where `cargo build --release` leaves the backend.
---@param root string
---@return string
function M.built(root)
  return root .. "/target/release/frugal" .. M.exe()
end

--- The backend to run when `binary` is not set: the newer of `bin/frugal` (downloaded) and
--- `target/release/frugal` (built), or nil when there is neither.
---@param root string
---@return string|nil path, "downloaded"|"built"|nil how
function M.pick(root)
  local bin, built = M.installed(root), M.built(root)
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
  local text = proc.read(root .. "/bin/frugal.source")
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

return M
