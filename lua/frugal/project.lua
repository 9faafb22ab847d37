--- The project of a buffer and its `.frugal.toml`: where it is, and whether Neovim trusts it.
--- Edits read the file through |vim.secure.read()| (the trust prompt of 'exrc'); status views
--- (`:LlmUsage`, the statusline, `:LlmModel`, `:checkhealth`) only look, never asking.
local M = {}
local H = {}

---@class frugal.Project
---@field root string  the ledger's project key: the git root of the buffer's file (a worktree's
---  main repository), else its directory (canonical)
---@field file string  `<checkout>/.frugal.toml`: the checkout's own file, even in a worktree
---@field state "absent"|"untrusted"|"trusted"
---@field content string|nil  the file's text when trusted
---@field denied boolean|nil  set by |M.project_quiet()|: the file was explicitly denied

--- The checkout a buffer's file is in: its git root (the nearest directory holding a `.git`
--- entry), else the file's directory (canonical). Its `.frugal.toml` is the project file.
---@param buf integer|nil  nil or 0: the current buffer
---@return string
function M.checkout_root(buf)
  buf = require("frugal.util").buf(buf)
  local name = vim.api.nvim_buf_get_name(buf)
  local root = vim.fs.root(buf, ".git") or vim.fs.dirname(name)
  return vim.uv.fs_realpath(root) or root
end

--- The project of a buffer, where its spend counts: its checkout, or for a git worktree the
--- main repository's root, so the worktrees of one repository share its caps. A submodule (a
--- `.git` file without `commondir`) is a project of its own. `frugal usage` finds the same
--- (src/settings/paths.rs `project_dirs`).
---@param buf integer|nil  nil or 0: the current buffer
---@return string
function M.project_root(buf)
  local checkout = M.checkout_root(buf)
  return H.main_repository(checkout) or checkout
end

--- The main repository's root of a worktree checkout (a `.git` file whose git directory has a
--- `commondir`), nil for anything else. A bare repository is its own directory.
---@param checkout string
---@return string|nil
function H.main_repository(checkout)
  local dotgit = checkout .. "/.git"
  local st = vim.uv.fs_stat(dotgit)
  if not st or st.type ~= "file" then
    return nil
  end
  local gitdir = (H.first_line(dotgit) or ""):match("^gitdir:%s*(.-)%s*$")
  if not gitdir or gitdir == "" then
    return nil
  end
  gitdir = H.join(checkout, gitdir)
  local common = H.first_line(gitdir .. "/commondir")
  if not common or vim.trim(common) == "" then
    return nil
  end
  common = vim.uv.fs_realpath(H.join(gitdir, vim.trim(common)))
  if not common then
    return nil
  end
  if vim.fs.basename(common) == ".git" then
    return vim.fs.dirname(common)
  end
  return common
end

--- `path` when absolute, else `path` under `dir`.
---@param dir string
---@param path string
---@return string
function H.join(dir, path)
  return path:sub(1, 1) == "/" and path or (dir .. "/" .. path)
end

--- The first line of a file, nil when it cannot be read.
---@param path string
---@return string|nil
function H.first_line(path)
  local f = io.open(path, "r")
  if not f then
    return nil
  end
  local line = f:read("*l")
  f:close()
  return line
end

--- The project of a buffer and its `.frugal.toml`, read through |vim.secure.read()| (the
--- trust prompt of 'exrc'): an untrusted file is reported once and ignored.
---@param buf integer|nil  nil or 0: the current buffer
---@return frugal.Project
function M.project(buf)
  local checkout = M.checkout_root(buf)
  local root = H.main_repository(checkout) or checkout
  local file = checkout .. "/.frugal.toml"
  if M.special(file) then
    -- Never through the trust prompt: trust is keyed by the real path, so a link would borrow
    -- the trust of the file it points to (and a FIFO would block the reader). The backend
    -- refuses the project with a message.
    return { root = root, file = file, state = "untrusted" }
  end
  if not vim.uv.fs_stat(file) then
    return { root = root, file = file, state = "absent" }
  end
  local ok, content = pcall(vim.secure.read, file)
  if ok and type(content) == "string" then
    return { root = root, file = file, state = "trusted", content = content }
  end
  if not H.told_untrusted[file] then
    H.told_untrusted[file] = true
    require("frugal.util").notify(
      ("%s is not trusted: it is ignored and your setup() defaults apply. To trust it: :edit it, then :trust"):format(
        file
      ),
      vim.log.levels.WARN
    )
  end
  return { root = root, file = file, state = "untrusted" }
end

--- The project of a buffer for status views (`:LlmUsage`, the statusline, `:LlmModel`,
--- `:checkhealth`): like |M.project()| but never asking for trust and never notifying. Nil for
--- a buffer without a file. A denied file counts as untrusted, with `denied` set.
---@param buf integer|nil  nil or 0: the current buffer
---@return frugal.Project|nil
function M.project_quiet(buf)
  buf = require("frugal.util").buf(buf)
  if not vim.api.nvim_buf_is_valid(buf) or vim.api.nvim_buf_get_name(buf) == "" or vim.bo[buf].buftype ~= "" then
    return nil
  end
  local checkout = M.checkout_root(buf)
  local root = H.main_repository(checkout) or checkout
  local file = checkout .. "/.frugal.toml"
  local state, content = M.trust_state(file)
  return {
    root = root,
    file = file,
    state = state == "denied" and "untrusted" or state,
    content = content,
    denied = state == "denied",
  }
end

--- The trust state of a project file without asking: "absent", "trusted", "denied" or
--- "untrusted" (never decided, changed since it was trusted, or not a plain file, which is
--- never read). Reads Neovim's trust database
--- the way |vim.secure.read()| does, so status views never pop up the trust prompt.
---@param file string
---@return "absent"|"trusted"|"denied"|"untrusted" state
---@return string|nil content  the file's text when trusted
function M.trust_state(file)
  if M.special(file) then
    -- Never read: the backend reports the project file as invalid.
    return "untrusted"
  end
  local full = vim.uv.fs_realpath(file)
  if not full then
    return "absent"
  end
  local hash = H.trusted_hash(full)
  if hash == "!" then
    return "denied"
  end
  local fh = io.open(full, "rb")
  if not fh then
    return "absent"
  end
  local content = fh:read("*a")
  fh:close()
  if hash and hash == vim.fn.sha256(content) then
    return "trusted", content
  end
  return "untrusted"
end

--- What the project file is when it is there but not a plain file: "link" (even dangling),
--- "directory", "fifo"…; nil when absent or a regular file. Such a file is never read: the
--- backend refuses the project until it is replaced with a file.
---@param file string
---@return string|nil
function M.special(file)
  local st = vim.uv.fs_lstat(file)
  if st and st.type ~= "file" then
    return st.type
  end
end

---@type table<string, boolean>  untrusted project files already reported this session
H.told_untrusted = {}

--- The entry of a file in Neovim's trust database: its SHA-256 when trusted, "!" when denied,
--- nil when never decided. The last entry for a path wins, as in |vim.secure|.
---@param full string  a canonical path
---@return string|nil
function H.trusted_hash(full)
  local f = io.open(vim.fn.stdpath("state") .. "/trust", "r")
  if not f then
    return nil
  end
  local hash
  for line in f:lines() do
    local h, p = line:match("^(%S+) (.+)$")
    if p == full then
      hash = h
    end
  end
  f:close()
  return hash
end

return M
