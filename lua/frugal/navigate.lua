--- Finding the pending hunks: `:LlmHunks` (the quickfix list), `]h` / `[h`, and the
--- buffer-local keys that exist while a buffer has hunks pending.
local M = {}
local H = {}

local notify = require("frugal.util").notify
local hunks = require("frugal.hunks")

---@type table<integer, table<string, table|false>>  keymaps we replaced, to restore
H.saved_maps = {}

--- `:LlmHunks`: every pending hunk of every buffer in the quickfix list (file, line, the
--- block's first line), opened.
function M.quickfix()
  local items = {}
  for buf, list in pairs(hunks.all()) do
    for _, h in ipairs(list) do
      local s = hunks.span(buf, h)
      if s then
        table.insert(items, { bufnr = buf, lnum = s + 1, col = 1, text = h.title })
      end
    end
  end
  if #items == 0 then
    return notify("no proposed hunk in any buffer", vim.log.levels.WARN)
  end
  table.sort(items, function(a, b)
    if a.bufnr ~= b.bufnr then
      return vim.api.nvim_buf_get_name(a.bufnr) < vim.api.nvim_buf_get_name(b.bufnr)
    end
    return a.lnum < b.lnum
  end)
  vim.fn.setqflist({}, " ", { title = "frugal: pending hunks", items = items })
  vim.cmd("botright copen")
end

--- Moves the cursor to the next (dir = 1) or previous (dir = -1) hunk, wrapping around.
---@param dir integer
function M.jump(dir)
  local buf = vim.api.nvim_get_current_buf()
  local rows = {}
  for _, h in ipairs(hunks.all()[buf] or {}) do
    local s = hunks.span(buf, h)
    if s then
      table.insert(rows, s)
    end
  end
  if #rows == 0 then
    return notify("no proposed hunk in this buffer", vim.log.levels.WARN)
  end
  table.sort(rows)
  local cur = vim.api.nvim_win_get_cursor(0)[1] - 1
  local target
  if dir > 0 then
    target = rows[1]
    for _, r in ipairs(rows) do
      if r > cur then
        target = r
        break
      end
    end
  else
    target = rows[#rows]
    for i = #rows, 1, -1 do
      if rows[i] < cur then
        target = rows[i]
        break
      end
    end
  end
  vim.api.nvim_win_set_cursor(0, { target + 1, 0 })
end

--- Buffer-local keymaps while hunks are pending; whatever they shadowed comes back after.
---@param buf integer
function M.map_keys(buf)
  local km = require("frugal.config").options.keymaps
  if not km then
    return
  end
  -- Key name in `keymaps` → { module, its function, the argument, description }.
  local actions = {
    accept = { "frugal.accept", "accept", { all = false }, "frugal: accept hunk" },
    reject = { "frugal.accept", "reject", { all = false }, "frugal: reject hunk" },
    accept_all = { "frugal.accept", "accept", { all = true }, "frugal: accept all hunks" },
    reject_all = { "frugal.accept", "reject", { all = true }, "frugal: reject all hunks" },
    next = { "frugal.navigate", "jump", 1, "frugal: next hunk" },
    prev = { "frugal.navigate", "jump", -1, "frugal: previous hunk" },
  }
  local saved = {}
  vim.api.nvim_buf_call(buf, function()
    for name, lhs in pairs(km) do
      if lhs and actions[name] then
        local old = vim.fn.maparg(lhs, "n", false, true)
        saved[lhs] = (old.buffer == 1) and old or false
        local mod, fn, arg, desc = unpack(actions[name])
        vim.keymap.set("n", lhs, function()
          require(mod)[fn](arg)
        end, { buffer = buf, desc = desc, nowait = true })
      end
    end
  end)
  H.saved_maps[buf] = saved
end

--- Removes the keymaps of |M.map_keys()| and restores what they shadowed.
---@param buf integer
function M.unmap_keys(buf)
  local saved = H.saved_maps[buf]
  H.saved_maps[buf] = nil
  if not saved or not vim.api.nvim_buf_is_valid(buf) then
    return
  end
  vim.api.nvim_buf_call(buf, function()
    for lhs, old in pairs(saved) do
      pcall(vim.keymap.del, "n", lhs, { buffer = buf })
      if old then
        vim.fn.mapset("n", false, old)
      end
    end
  end)
end

return M
