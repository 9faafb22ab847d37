--- What every step of the build shares: running a process from the build's coroutine, reading
--- a file, and the result of a failed step as the user reads it.
local M = {}

--- One line that fits the echo area at 80 columns (68 cells), cut with `…`.
---@param msg string
---@return string
function M.fit(msg)
  msg = msg:gsub("[%c]+", " ")
  if vim.fn.strdisplaywidth(msg) <= 68 then
    return msg
  end
  local chars = vim.fn.strchars(msg)
  while chars > 0 and vim.fn.strdisplaywidth(vim.fn.strcharpart(msg, 0, chars)) > 67 do
    chars = chars - 1
  end
  return vim.fn.strcharpart(msg, 0, chars) .. "…"
end

---@param message string
---@param detail string|nil
---@return frugal.BuildResult
function M.fail(message, detail)
  return { ok = false, message = M.fit(message), detail = detail or message }
end

---@param path string
---@return string|nil
function M.read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("*a")
  f:close()
  return s
end

--- Runs `cmd` (an argument list: never a shell string) and yields until it exits.
---@param cmd string[]
---@param opts table|nil  vim.system options
---@param on_line fun(line: string)|nil  each line of stderr, in a fast context
---@return vim.SystemCompleted
function M.run(cmd, opts, on_line)
  local done
  opts = vim.tbl_extend("force", { text = true }, opts or {})
  if on_line then
    opts.stderr = function(_, data)
      for line in (data or ""):gmatch("[^\r\n]+") do
        on_line(line)
      end
    end
  end
  local ok, err = pcall(vim.system, cmd, opts, function(r)
    done = r
  end)
  if not ok then
    return { code = -1, signal = 0, stdout = "", stderr = tostring(err) }
  end
  while not done do
    coroutine.yield()
  end
  return done
end

return M
