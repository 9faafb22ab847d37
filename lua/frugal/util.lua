--- Small helpers every module shares: the one way to tell the user something (titled "frugal",
--- like gitsigns' message.lua), buffer numbers, and the plugin's `User` events.
local M = {}
local H = {}

---@alias frugal.Level integer|"trace"|"debug"|"info"|"warn"|"error"

--- Tells the user something, titled "frugal". `level` is a |vim.log.levels| number or its name
--- in lower case ("info", "warn", "error", as the backend sends them); INFO when nil or unknown.
---@param msg string
---@param level frugal.Level|nil
function M.notify(msg, level)
  vim.notify(msg, H.level(level), { title = "frugal" })
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
