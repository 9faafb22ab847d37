--- Small helpers every module shares: the one way to tell the user something (titled "frugal",
--- like gitsigns' message.lua), buffer numbers, and the plugin's `User` events.
local M = {}
local H = {}

---@alias frugal.Level integer|"trace"|"debug"|"info"|"warn"|"error"

--- Tells the user something. Under the built-in |vim.notify| it is ONE line that fits the echo
--- area (|v:echospace|), starts `frugal: ` and is cut with `…`, so it never raises a hit-enter
--- prompt; what several calls say in one go is joined into that one line (shown once Neovim is
--- back in its loop, so `User` events fired meanwhile come first). A replaced `vim.notify` (a
--- notification plugin) receives the whole text, titled "frugal", at once. The whole text also
--- goes to the backend's log when it runs. `level` is a |vim.log.levels| number or its name in
--- lower case ("info", "warn", "error", as the backend sends them); INFO when nil or unknown.
---@param msg string  the message (its first line, when `whole` is given)
---@param level frugal.Level|nil
---@param whole string|nil  the whole text, when longer than `msg`
function M.notify(msg, level, whole)
  local lvl = H.level(level)
  whole = whole or msg
  local ok, rpc = pcall(require, "frugal.rpc")
  if ok and rpc.log then
    rpc.log(lvl, whole)
  end
  if not M.builtin_notify() then
    return vim.notify(whole, lvl, { title = "frugal" })
  end
  table.insert(H.queue, { msg = msg, level = lvl })
  if #H.queue == 1 then
    vim.schedule(H.flush)
  end
end

--- Whether `vim.notify` is Neovim's own (it echoes; a notification plugin replaces it).
---@return boolean
function M.builtin_notify()
  local info = debug.getinfo(vim.notify, "S")
  return info ~= nil and info.source:find("vim/_editor.lua", 1, true) ~= nil
end

--- `text` as one line of at most `width` display cells (wide characters count two), starting
--- `frugal: `, cut with `…`.
---@param text string
---@param width integer
---@return string
function M.one_line(text, width)
  text = vim.trim((text:gsub("%c+", " "):gsub("  +", " ")))
  if not vim.startswith(text, "frugal: ") then
    text = "frugal: " .. text
  end
  if vim.fn.strdisplaywidth(text) <= width then
    return text
  end
  local n = vim.fn.strchars(text)
  local lo, hi = 0, n
  -- The longest prefix that, with "…", fits.
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if vim.fn.strdisplaywidth(vim.fn.strcharpart(text, 0, mid)) + 1 <= width then
      lo = mid
    else
      hi = mid - 1
    end
  end
  return (vim.fn.strcharpart(text, 0, lo):gsub("%s+$", "")) .. "…"
end

--- The widest message that never prompts nor runs under the ruler: |v:echospace| (68 cells at
--- 80 columns with the default statusline and 'showcmd').
---@return integer
function M.echo_width()
  local w = vim.v.echospace
  if type(w) ~= "number" or w <= 0 then
    w = vim.o.columns - 12
  end
  -- In a float (no status line of its own) the ruler is drawn in the command line, from 18
  -- cells before the edge, which v:echospace does not count.
  if vim.o.ruler and vim.api.nvim_win_get_config(0).relative ~= "" then
    w = math.min(w, vim.o.columns - 19)
  end
  return math.max(20, w)
end

--- A buffer number with 0 and nil meaning the current buffer.
---@param buf integer|nil
---@return integer
function M.buf(buf)
  if buf == nil or buf == 0 then
    return vim.api.nvim_get_current_buf()
  end
  return buf
end

--- Fires `User <pattern>` with `data` (e.g. `FrugalEditDone`), without running modelines.
---@param pattern string
---@param data table|nil
function M.fire(pattern, data)
  vim.api.nvim_exec_autocmds("User", { pattern = pattern, data = data, modeline = false })
end

H.last_id = 0

--- A new id for a request to the backend (an edit or a review): one counter for both, so
--- that their events (which share `progress` and `failed`) never mistake one for the other.
---@return integer
function M.next_id()
  H.last_id = H.last_id + 1
  return H.last_id
end

---@type { msg: string, level: integer }[]  said since the last flush (built-in vim.notify)
H.queue = {}

--- Shows what was said since the last flush as one line, at the highest level said.
function H.flush()
  local queue = H.queue
  H.queue = {}
  if #queue == 0 then
    return
  end
  local level, parts = vim.log.levels.INFO, {}
  for _, q in ipairs(queue) do
    level = math.max(level, q.level)
    local text = vim.trim(q.msg:gsub("^frugal: ", ""))
    if text ~= "" and not vim.tbl_contains(parts, text) then
      table.insert(parts, text)
    end
  end
  vim.notify(M.one_line(table.concat(parts, " · "), M.echo_width()), level)
end

---@param level frugal.Level|nil
---@return integer
function H.level(level)
  if type(level) == "number" then
    return level
  end
  if type(level) == "string" then
    return vim.log.levels[level:upper()] or vim.log.levels.INFO
  end
  return vim.log.levels.INFO
end

return M
