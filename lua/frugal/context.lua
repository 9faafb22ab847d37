--- Context files: the project's extra files that its next edits see and may change
--- (`:LlmContext`, for this session), and the `@path` mentions of one instruction. Paths are
--- relative to the checkout's root; one outside it is refused here for a quick message, and
--- again by the backend (the authority: it follows symlinks).
local M = {}
local H = {}

local util = require("frugal.util")
local notify = util.notify

---@type table<string, string[]>  the session's context files by checkout root, in order
H.sets = {}
---@type table<string, { at: number, files: string[] }>  project files for completion
H.listing = {}

---@class frugal.ContextFile
---@field path string  relative to the checkout's root
---@field buf integer  its buffer when loaded, else 0
---@field lines string[]|nil  the buffer's lines (unsaved changes included) when loaded

--- The checkout root of a buffer: paths of context files are relative to it.
---@param buf integer|nil
---@return string
function M.root(buf)
  return require("frugal.project").checkout_root(buf)
end

--- The paths typed for `:LlmContext` (relative to the root, to the current directory, or
--- absolute; `%`: the current buffer's file), each as a path relative to the checkout or why
--- it cannot be a context file: the backend judges them (src/edit/files.rs `context_path`).
--- Only `%` and a leading `~` are expanded here.
---@param typed string[]
---@return { rel: string|nil, message: string|nil }[]|nil verdicts, string|nil err
function M.resolve(typed)
  local sent = {}
  for _, path in ipairs(typed) do
    if path == "%" then
      path = vim.api.nvim_buf_get_name(0)
      if path == "" then
        path = "%"
      end
    end
    -- Never vim.fn.expand(): it runs `backtick` commands and globs, and a file of an untrusted
    -- repository may be named so (as `%`, or picked by completion). Only a leading `~` is home.
    if path == "~" or vim.startswith(path, "~/") then
      path = (vim.uv.os_homedir() or "~") .. path:sub(2)
    end
    table.insert(sent, path)
  end
  local res, err = require("frugal.rpc").request("project", {
    path = require("frugal.project").file(0),
    cwd = vim.fn.getcwd(),
    paths = sent,
  })
  if not res then
    return nil, err
  end
  for i, v in ipairs(res.paths) do
    if sent[i] == "%" then
      v.rel, v.message = nil, "% has no file name: save the buffer first"
    end
  end
  return res.paths
end

--- The session's context files of a project.
---@param root string
---@return string[]
function M.list(root)
  return vim.list_slice(H.sets[root] or {})
end

--- `:LlmContext [add|remove|clear] [path…]`.
---@param args string[]
function M.command(args)
  local sub = args[1] or "list"
  local root = M.root(0)
  local set = H.sets[root] or {}
  H.sets[root] = set
  if sub == "list" and #args <= 1 then
    return M.show(root)
  elseif sub == "add" or sub == "remove" then
    if #args < 2 then
      return notify((":LlmContext %s needs at least one path"):format(sub), vim.log.levels.ERROR)
    end
    local verdicts, verr = M.resolve(vim.list_slice(args, 2))
    if not verdicts then
      return notify(verr or "the backend did not answer", vim.log.levels.ERROR)
    end
    -- One message: what was refused first, then the set as it is now.
    local refused, level = {}, vim.log.levels.INFO
    for i = 2, #args do
      local rel, err = verdicts[i - 1].rel, verdicts[i - 1].message
      if not rel and sub == "remove" and vim.tbl_contains(set, args[i]) then
        rel, err = args[i], nil -- a file that vanished since it was added
      end
      if not rel then
        table.insert(refused, err or args[i])
        level = vim.log.levels.ERROR
      elseif sub == "add" and not vim.tbl_contains(set, rel) then
        table.insert(set, rel)
      elseif sub == "remove" then
        local before = #set
        H.sets[root] = vim.tbl_filter(function(p)
          return p ~= rel
        end, set)
        set = H.sets[root]
        if #set == before then
          table.insert(refused, ("%s is not a context file"):format(rel))
          level = math.max(level, vim.log.levels.WARN)
        end
      end
    end
    table.insert(refused, ("%d context file%s: %s"):format(#set, #set == 1 and "" or "s", table.concat(set, ", ")))
    notify(table.concat(refused, "; "), level)
  elseif sub == "clear" then
    H.sets[root] = {}
    notify("no context files")
  else
    notify(("unknown :LlmContext subcommand %q (add, remove, clear)"):format(sub), vim.log.levels.ERROR)
  end
end

--- `:LlmContext` without arguments: the project's instruction files and each context file,
--- with its size and its share of an edit's worst case (the backend reads the instruction
--- files and prices them all with the current model).
---@param root string
function M.show(root)
  local set = H.sets[root] or {}
  local files = M.request_files(root, set)
  local rpc = require("frugal.rpc")
  local res, err = rpc.request("context", {
    files = files,
    file = root .. "/.frugal.toml",
    model = require("frugal").current_model(),
    -- For a trusted file's `[context] instructions` (never asking for trust here).
    project = require("frugal.project").project_quiet(0, true) or nil,
  })
  if not res then
    return notify(err or "the backend did not answer", vim.log.levels.ERROR)
  end
  require("frugal.float").tell(table.concat(res.lines, "\n"), "frugal context", vim.log.levels.INFO)
end

--- The files sent for `paths`: the buffer's lines when loaded, else the backend reads the file.
---@param root string
---@param paths string[]
---@return frugal.ContextFile[]
function M.request_files(root, paths)
  local loaded = {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].buftype == "" then
      local name = vim.api.nvim_buf_get_name(b)
      if name ~= "" then
        loaded[vim.uv.fs_realpath(name) or name] = b
      end
    end
  end
  local out = {}
  for _, rel in ipairs(paths) do
    local b = loaded[root .. "/" .. rel]
    table.insert(out, {
      path = rel,
      buf = b or 0,
      lines = b and vim.api.nvim_buf_get_lines(b, 0, -1, false) or nil,
    })
  end
  return out
end

--- The `@path` words of an instruction that name files of the project (`@param`, `@Override`
--- stay text). A word is a mention only at the start or after a space.
---@param root string
---@param instruction string
---@return string[] paths  relative to the root
function M.mentions(root, instruction)
  local out = {}
  for word in (" " .. instruction):gmatch("%s@([^%s]+)") do
    word = word:gsub("[%.,;:!%?%)%]}'\"`]+$", "")
    local abs = word:sub(1, 1) == "/" and word or (root .. "/" .. word)
    local real = word ~= "" and vim.uv.fs_realpath(abs) or nil
    local st = real and vim.uv.fs_stat(real)
    if st and st.type == "file" then
      -- A file outside the project (`@../x`, a symlink leading out) is sent as written: the
      -- backend refuses the edit with a message naming it.
      local rel = vim.startswith(real, root .. "/") and real:sub(#root + 2) or word
      if not vim.tbl_contains(out, rel) then
        table.insert(out, rel)
      end
    end
  end
  return out
end

--- The files a request sends beside the current one: each path of `lists`, in order, once,
--- `rel` (the current file) left out.
---@param rel string
---@param lists string[][]
---@return string[]
function M.beside(rel, lists)
  local paths = {}
  for _, list in ipairs(lists) do
    for _, p in ipairs(list) do
      if p ~= rel and not vim.tbl_contains(paths, p) then
        table.insert(paths, p)
      end
    end
  end
  return paths
end

--- The project's files (relative to the root) for completion: `git ls-files` in a git
--- checkout, else a bounded walk. Cached for a few seconds.
---@param root string
---@return string[]
function M.project_files(root)
  local cached = H.listing[root]
  if cached and vim.uv.now() - cached.at < 5000 then
    return cached.files
  end
  local files = {}
  if vim.uv.fs_stat(root .. "/.git") then
    local ok, res = pcall(function()
      return vim
        .system({ "git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard" }, { text = true })
        :wait(2000)
    end)
    if ok and res.code == 0 then
      files = vim.split(res.stdout or "", "\n", { trimempty = true })
    end
  end
  if #files == 0 then
    for name, kind in
      vim.fs.dir(root, {
        depth = 8,
        skip = function(dir)
          return not vim.startswith(vim.fs.basename(dir), ".") and dir ~= "node_modules" and dir ~= "target"
        end,
      })
    do
      if kind == "file" then
        table.insert(files, name)
        if #files >= 10000 then
          break
        end
      end
    end
  end
  table.sort(files)
  H.listing[root] = { at = vim.uv.now(), files = files }
  return files
end

--- Project files whose path starts with `lead` (or whose name does).
---@param lead string
---@return string[]
function H.matching(lead)
  local out = {}
  for _, f in ipairs(M.project_files(M.root(0))) do
    if vim.startswith(f, lead) or vim.startswith(vim.fs.basename(f), lead) then
      table.insert(out, f)
      if #out >= 500 then
        break
      end
    end
  end
  return out
end

--- Completion of `:LlmContext`: subcommands, then project files (`add`) or context files
--- (`remove`).
---@param lead string
---@param line string
---@return string[]
function M.complete(lead, line)
  local words = vim.split(line, "%s+", { trimempty = true })
  local n = #words + (line:match("%s$") and 1 or 0)
  if n <= 2 then
    return vim.tbl_filter(function(s)
      return vim.startswith(s, lead)
    end, { "add", "remove", "clear" })
  end
  if words[2] == "add" then
    local out = H.matching(lead)
    if vim.startswith("%", lead) then
      table.insert(out, 1, "%")
    end
    return out
  elseif words[2] == "remove" then
    return vim.tbl_filter(function(s)
      return vim.startswith(s, lead)
    end, M.list(M.root(0)))
  end
  return {}
end

--- Completion of `:LlmEdit`: after `@`, the project's files.
---@param lead string
---@return string[]
function M.complete_mention(lead)
  if lead:sub(1, 1) ~= "@" then
    return {}
  end
  return vim.tbl_map(function(f)
    return "@" .. f
  end, H.matching(lead:sub(2)))
end

return M
