--- `:LlmApply`: the SEARCH/REPLACE blocks of an answer already received proposed as pending
--- hunks in their files, with no request and no cost. Generic: it applies the answer held in
--- the current buffer's `b:frugal_answer`, a table
---   `{ text = <the answer>, request = <ledger id>|nil, buf = <the buffer it is about>|nil,`
---   `  file = <that file's absolute path>|nil, root = <its project's root>|nil,`
---   `  model = <who wrote it>|nil, question = <what was asked>|nil }`
--- (one of `buf`, `file`, `root`: with only `root`, blocks must name their files)
--- set by the ask buffer (|frugal.ask|) and by history's conversation buffers. The backend
--- parses and places the blocks as it does an edit's (`apply` call); the hunks come as an
--- edit's do (the `edit` kind of frugal.request): reviewed like any edit, `FrugalEditDone`
--- with `cost_usd = 0`. A block that no longer matches is reported by name.
local M = {}
local H = {}

local util = require("frugal.util")
local notify = util.notify
local request = require("frugal.request")
-- Its hunks are an edit's: the edit kind handles their events.
require("frugal.edit")

--- `:LlmApply` in `buf` (nil: the current buffer).
---@param buf integer|nil
function M.run(buf)
  buf = util.buf(buf)
  local answer = vim.b[buf].frugal_answer
  if type(answer) ~= "table" or type(answer.text) ~= "string" or vim.trim(answer.text) == "" then
    return notify("no answer to apply in this buffer: :LlmAsk first", vim.log.levels.WARN)
  end
  if not answer.text:find("<<<<<<<", 1, true) then
    return notify("the last answer holds no SEARCH/REPLACE block: nothing to apply", vim.log.levels.WARN)
  end
  local target, current = H.target(answer)
  if not target then
    return notify(current --[[@as string]], vim.log.levels.ERROR)
  end
  if request.busy(target) then
    return notify("a request is still streaming in that buffer: wait for it or :LlmCancel it", vim.log.levels.ERROR)
  end
  if not request.backend(target) then
    return
  end
  H.send(target, current == true, answer)
end

--- The file buffer the answer is about (blocks naming no file go there), loaded if needed;
--- else, for an answer that names only its project (`root`), a buffer of that project: it
--- gives the project, and blocks naming no file are not applied (`current` false).
---@param answer table
---@return integer|nil buf, boolean|string current_or_err
function H.target(answer)
  local b = answer.buf
  if type(b) == "number" and vim.api.nvim_buf_is_valid(b) and vim.api.nvim_buf_get_name(b) ~= "" then
    return b, true
  end
  if type(answer.file) == "string" and answer.file ~= "" then
    local fb = vim.fn.bufadd(answer.file)
    vim.fn.bufload(fb)
    vim.bo[fb].buflisted = true
    return fb, true
  end
  if type(answer.root) == "string" and answer.root ~= "" then
    local root = vim.uv.fs_realpath(answer.root) or answer.root
    local first = H.files_under(root, vim.fn.bufnr("#"))[1]
    if first then
      return first.buf, false
    end
    return nil, "open a file of this answer's project first: :LlmApply finds its files from there"
  end
  return nil, "the file this answer is about is gone: open it and ask again"
end

--- The project's files open in Neovim whose path the answer names (the others are read from
--- disk by the backend).
---@param root string
---@param text string
---@param skip string  the target's own path
---@return string[]
function H.named_open(root, text, skip)
  local out = {}
  for _, f in ipairs(H.files_under(root)) do
    if f.rel ~= skip and text:find(f.rel, 1, true) and not vim.tbl_contains(out, f.rel) then
      table.insert(out, f.rel)
    end
  end
  return out
end

--- The loaded file buffers whose real path is under `root`, with that path relative to it;
--- `first` (a buffer number, e.g. the alternate one) looked at before the others.
---@param root string  a real path
---@param first integer|nil
---@return { buf: integer, rel: string }[]
function H.files_under(root, first)
  local bufs = vim.api.nvim_list_bufs()
  if first and first > 0 then
    table.insert(bufs, 1, first)
  end
  local out = {}
  for _, b in ipairs(bufs) do
    local name = vim.api.nvim_buf_get_name(b)
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].buftype == "" and name ~= "" then
      local real = vim.uv.fs_realpath(name) or name
      if real:sub(1, #root + 1) == root .. "/" then
        table.insert(out, { buf = b, rel = real:sub(#root + 2) })
      end
    end
  end
  return out
end

--- Registers the hunks' edit and sends the answer to be placed.
---@param target integer
---@param current boolean  `target` is the file the answer is about (else only its project)
---@param answer table
function H.send(target, current, answer)
  local project, root, rel = request.where(target)
  if not project then
    return
  end
  rel = current and rel or ""
  local paths = H.named_open(root, answer.text, rel)
  local question = type(answer.question) == "string" and answer.question or "(an answer applied with :LlmApply)"
  ---@type frugal.Edit
  local edit = require("frugal.edit").register({
    id = util.next_id(),
    buf = target,
    root = root,
    path = rel,
    paths = paths,
    instruction = question,
    history = {},
    progress_row = 0,
    -- Its hunks count for the request that got the answer (outcomes), not as a new one.
    applied = { request = answer.request },
  })
  local track = require("frugal.track")
  track.attach(edit, target, function(why)
    request.abort(edit, why)
  end)
  local files = require("frugal.context").request_files(root, paths)
  for _, f in ipairs(files) do
    if f.buf ~= 0 then
      track.attach(edit, f.buf)
    end
  end
  request.send(edit, "apply", {
    id = edit.id,
    buf = target,
    file = current and rel or nil,
    lines = current and vim.api.nvim_buf_get_lines(target, 0, -1, false) or nil,
    project = project,
    text = answer.text,
    model = type(answer.model) == "string" and answer.model or nil,
    request = type(answer.request) == "number" and answer.request or nil,
    context = files,
  })
end

return M
