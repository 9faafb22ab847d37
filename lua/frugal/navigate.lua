--- Finding the pending hunks: `:LlmHunks` (the quickfix list), `]h` / `[h`, and the
--- buffer-local keys that exist while a buffer has hunks pending.
local M = {}
local H = {}

local notify = require("frugal.util").notify
local hunks = require("frugal.hunks")
local note = require("frugal.hunks.note")

---@type table<integer, table<string, table|false>>  keymaps we replaced, to restore
H.saved_maps = {}

--- `:LlmHunks`: every pending hunk of every buffer in the quickfix list, opened. Each entry
--- reads `[k/N] <first old line> → <first new line>` (or `new file …`) at the hunk's first
--- changed line and column, with the judge's verdict when there is one; the title is the
--- instruction when one edit is pending, else `frugal: N hunks of M edits` (and each entry
--- starts with its instruction's start).
function M.quickfix()
  local items, edits, instr, count = {}, {}, {}, 0
  for buf, list in pairs(hunks.all()) do
    for _, h in ipairs(list) do
      local s = hunks.span(buf, h)
      if s then
        local item = H.entry(buf, s, h)
        item.edit, item.number = h.edit, h.number or 0
        table.insert(items, item)
        count = count + 1
        if not instr[h.edit] then
          instr[h.edit] = h.instruction or ""
          table.insert(edits, h.edit)
        end
      end
    end
  end
  if #items == 0 then
    return notify("no proposed hunk in any buffer", vim.log.levels.WARN)
  end
  table.sort(items, function(a, b)
    if a.edit ~= b.edit then
      return a.edit < b.edit
    end
    return a.number < b.number
  end)
  local title = note.one_line(instr[edits[1]])
  if #edits > 1 then
    title = ("frugal: %d hunks of %d edits"):format(count, #edits)
    for _, item in ipairs(items) do
      item.text = note.start_of(instr[item.edit], 24) .. ": " .. item.text
    end
  end
  for _, item in ipairs(items) do
    item.edit, item.number = nil, nil
  end
  vim.fn.setqflist({}, " ", { title = title, items = items })
  vim.cmd("botright copen")
end

--- A hunk's quickfix entry: at its first changed line (the first changed word's column, else
--- the line's first non-blank), `[k/N] old → new`, and the verdict.
---@param buf integer
---@param s integer  its first row now
---@param h frugal.Hunk
---@return table
function H.entry(buf, s, h)
  local c = (h.changes or {})[1] or { old = { 0, #h.old }, new = { 0, #h.new } }
  local first_old, first_new = h.old[c.old[1] + 1], h.new[c.new[1] + 1]
  local lnum = c.old[2] > c.old[1] and s + c.old[1] + 1 or s + math.max(c.old[1], 1)
  local col
  for _, w in ipairs(c.old_words or {}) do
    if w[1] == c.old[1] then
      col = w[2] + 1
      break
    end
  end
  local at = c.old[2] > c.old[1] and first_old or first_new
  col = col or ((at or ""):find("%S") or 1)
  local k = ("[%s/%s] "):format(h.number or "?", h.total or "…")
  local text
  if h.new_file then
    text = k .. "new file " .. vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ":.")
  else
    local old_text = c.old[2] > c.old[1] and vim.trim(first_old) or "(added)"
    local new_text = c.new[2] > c.new[1] and vim.trim(first_new) or "(deleted)"
    text = k .. note.one_line(old_text) .. " → " .. note.one_line(new_text)
  end
  if h.note then
    text = text .. "  " .. h.note.text
  end
  -- `module` is what the list shows for the file: its path in the project, not an absolute one.
  return { bufnr = buf, module = hunks.path_of(buf), lnum = math.max(lnum, 1), col = col, text = text }
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
