--- The project of a buffer and its `.frugal.toml`: where it is, and whether Neovim trusts it.
--- Edits read the file through |vim.secure.read()| (the trust prompt of 'exrc'); status views
--- (`:LlmUsage`, the statusline, `:LlmModel`, `:checkhealth`) only look, never asking.
local M = {}
local H = {}

---@class frugal.Project  the project part of a request: the buffer's file and what was read
---  of its project file (the backend finds the project, and its ledger key, from `path`)
---@field path string  the buffer's file
---@field file string  `<checkout>/.frugal.toml`: the checkout's own file, even in a worktree
---@field state "absent"|"untrusted"|"trusted"
---@field content string|nil  the file's text when trusted
---@field denied boolean|nil  set by |M.project_quiet()|: the file was explicitly denied

---@class frugal.Where  the project of a buffer, as the backend decides it (the `project` call)
---@field root string  the ledger's project key: the git root of the buffer's file (a worktree's
---  main repository), else its directory (canonical)
---@field checkout string  the checkout: its git root, else the file's directory
---@field file string  `<checkout>/.frugal.toml`
---@field rel string|nil  the buffer's file relative to the checkout, when inside

--- Where a buffer's project is, as the backend finds it (src/settings/paths.rs): the shim
--- decides nothing here, it only caches the answer per buffer and name (the statusline asks
--- on every redraw). `opts.fresh`: ask again (an edit, a review); `opts.start`: start the
--- backend when it does not run (else nil until it does); `opts.cached`: only what is cached.
---@param buf integer|nil  nil or 0: the current buffer
---@param opts { fresh: boolean|nil, start: boolean|nil, cached: boolean|nil, label: string|nil }|nil
---@return frugal.Where|nil where, string|nil err
function M.where(buf, opts)
  opts = opts or {}
  buf = require("frugal.util").buf(buf)
  local name = M.file(buf)
  local hit = H.where[buf]
  if hit and hit.name == name and not opts.fresh then
    return hit.where
  elseif opts.cached then
    return nil, "not asked yet"
  end
  local rpc = require("frugal.rpc")
  if not (opts.start or rpc.running()) then
    return nil, "the backend does not run"
  end
  local res, err = rpc.request("project", { path = name }, nil, opts.label)
  if not res then
    return nil, err
  end
  H.where[buf] = { name = name, where = res }
  return res
end

---@type table<integer, { name: string, where: frugal.Where }>  the backend's answers by buffer
H.where = {}

--- A buffer's file as sent to the backend: absolute; for a buffer without a name, a file of
--- the working directory (whose project it then is).
---@param buf integer|nil  nil or 0: the current buffer
---@return string
function M.file(buf)
  local name = vim.api.nvim_buf_get_name(require("frugal.util").buf(buf))
  return name ~= "" and vim.fn.fnamemodify(name, ":p") or (vim.fn.getcwd() .. "/[No Name]")
end

--- The checkout a buffer's file is in: its git root, else the file's directory (canonical).
--- Its `.frugal.toml` is the project file. Starts the backend when needed (it decides).
---@param buf integer|nil  nil or 0: the current buffer
---@return string
function M.checkout_root(buf)
  local where, err = M.where(buf, { start = true })
  return assert(where, err).checkout
end

--- The project of a buffer, where its spend counts: its checkout, or for a git worktree the
--- main repository's root, so the worktrees of one repository share its caps. A submodule is
--- a project of its own. The backend decides (src/settings/paths.rs `project_of_file`), as
--- `frugal usage` does.
---@param buf integer|nil  nil or 0: the current buffer
---@return string
function M.project_root(buf)
  local where, err = M.where(buf, { start = true })
  return assert(where, err).root
end

--- The project of a buffer and its `.frugal.toml`, read through |vim.secure.read()| (the
--- trust prompt of 'exrc'): an untrusted file is reported once and ignored.
--- Nil and why when the backend cannot say where the project is.
---@param buf integer|nil  nil or 0: the current buffer
---@return frugal.Project|nil project, string|nil err
function M.project(buf)
  buf = require("frugal.util").buf(buf)
  local where, err = M.where(buf, { fresh = true, start = true })
  if not where then
    return nil, err
  end
  local path, file = M.file(buf), where.file
  if M.special(file) then
    -- Never through the trust prompt: trust is keyed by the real path, so a link would borrow
    -- the trust of the file it points to (and a FIFO would block the reader). The backend
    -- refuses the project with a message.
    return { path = path, file = file, state = "untrusted" }
  end
  if not vim.uv.fs_stat(file) then
    return { path = path, file = file, state = "absent" }
  end
  local ok, content = pcall(vim.secure.read, file)
  if ok and type(content) == "string" then
    return { path = path, file = file, state = "trusted", content = content }
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
  return { path = path, file = file, state = "untrusted" }
end

--- The project of a buffer for status views (`:LlmUsage`, the statusline, `:LlmModel`,
--- `:checkhealth`): like |M.project()| but never asking for trust and never notifying. Nil for
--- a buffer without a file, and while the backend does not run unless `start`. A denied file
--- counts as untrusted, with `denied` set.
---@param buf integer|nil  nil or 0: the current buffer
---@param start boolean|"cached"|nil  start the backend when it does not run; "cached": only
---  a project already asked
---@param label string|nil  the command it serves, named if the backend does not answer
---@return frugal.Project|nil project, string|nil err  err: the backend did not say
function M.project_quiet(buf, start, label)
  buf = require("frugal.util").buf(buf)
  if not vim.api.nvim_buf_is_valid(buf) or vim.api.nvim_buf_get_name(buf) == "" or vim.bo[buf].buftype ~= "" then
    return nil
  end
  local where, err = M.where(buf, { start = start == true, cached = start == "cached", label = label })
  if not where then
    return nil, start == true and err or nil
  end
  local file = where.file
  local state, content = M.trust_state(file)
  return {
    path = M.file(buf),
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
