--- The buffers an edit touches, tracked while its answer streams: the changes the user makes
--- (to re-anchor hunks computed on the snapshot sent), and the buffers the edit's hunks go to,
--- loaded (and listed) when they are not.
local M = {}

--- What is said when the buffer an edit started in is closed while its answer streams.
M.closed = "the buffer was closed: edit cancelled, nothing applied"

---@class frugal.Tracked
---@field changes integer[][]  buffer changes since the snapshot: { first, last_old, last_new }
---@field live boolean  false once the buffer was closed or reloaded

--- Starts recording the user's changes to `buf` for `edit` (until `edit.tracking` is false).
--- `on_gone(why)` runs when the buffer is reloaded or closed.
---@param edit { tracking: boolean, tracked: table<integer, frugal.Tracked> }
---@param buf integer
---@param on_gone fun(why: string)|nil
function M.attach(edit, buf, on_gone)
  if edit.tracked[buf] then
    return
  end
  ---@type frugal.Tracked
  local t = { changes = {}, live = true }
  edit.tracked[buf] = t
  local function gone(why)
    t.live = false
    if on_gone then
      vim.schedule(function()
        on_gone(why)
      end)
    end
  end
  vim.api.nvim_buf_attach(buf, false, {
    on_lines = function(_, _, _, first, last_old, last_new)
      if not edit.tracking or not t.live then
        return true
      end
      table.insert(t.changes, { first, last_old, last_new })
    end,
    on_reload = function()
      if edit.tracking and t.live then
        gone("the buffer was reloaded: edit cancelled, nothing applied")
      end
    end,
    on_detach = function()
      if edit.tracking and t.live then
        gone(M.closed)
      end
    end,
  })
end

--- Maps a snapshot row of `buf` to the buffer now, or nil when a change touched it (or the
--- buffer was reloaded or closed since). A buffer loaded after the request is as sent.
---@param edit { tracked: table<integer, frugal.Tracked> }
---@param buf integer
---@param row integer
---@return integer|nil
function M.map_row(edit, buf, row)
  local t = edit.tracked[buf]
  if not t then
    return row
  end
  if not t.live then
    return nil
  end
  for _, c in ipairs(t.changes) do
    local first, last_old, last_new = c[1], c[2], c[3]
    if row >= last_old then
      row = row + (last_new - last_old)
    elseif row >= first then
      return nil
    end
  end
  return row
end

--- The buffer of `path` (relative to `root`), loaded and listed; created empty (and named)
--- when the file does not exist. Nil when it cannot be loaded (a swap file prompt declined…).
---@param root string
---@param path string
---@return integer|nil buf
---@return string|nil err
function M.buffer(root, path)
  local name = root .. "/" .. path
  local buf = vim.fn.bufadd(name)
  if not vim.api.nvim_buf_is_loaded(buf) then
    local ok, err = pcall(vim.fn.bufload, buf)
    if not ok then
      return nil, ("%s cannot be loaded: %s"):format(path, err)
    end
  end
  vim.bo[buf].buflisted = true
  return buf
end

return M
