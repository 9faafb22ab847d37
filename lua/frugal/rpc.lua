--- The backend process: started lazily on the first command, restarted after a crash.
local M = {}
local H = {}

---@type integer|nil  the job/channel id of the running backend
H.chan = nil
---@type string|nil  the backend's current log file (from `hello`)
H.log_file = nil
---@type boolean  Neovim is exiting: the backend's exit is expected
H.leaving = false
---@type string[]
H.stderr = {}
---@type table|nil  what `hello` answered
H.info = nil

local function notify(msg, level)
  vim.notify(msg, level, { title = "frugal" })
end

--- The log file's directory and pattern, for messages before `hello` answered.
---@return string
function M.log_path()
  return H.log_file or (vim.fn.stdpath("log") .. "/frugal.log.*")
end

---@return table|nil info  `{ version, pid, log_file }` of the running backend
function M.info()
  return H.chan and H.info or nil
end

---@return integer|nil
function M.running()
  return H.chan
end

--- Starts the backend if it is not running. Returns the channel, or nil and a message.
---@return integer|nil chan, string|nil err
function M.ensure()
  if H.chan then
    return H.chan
  end
  local config = require("frugal.config")
  local o = config.options
  local bin = o.binary
  if vim.fn.executable(bin) ~= 1 then
    return nil,
      ("backend not found at %s. Build it: cd %s && cargo build --release (lazy.nvim: build = \"cargo build --release\"), or set setup({ binary = ... })"):format(
        bin,
        vim.fn.shellescape(config.root())
      )
  end
  local log = vim.fn.stdpath("log") .. "/frugal.log"
  H.stderr = {}
  local ok, chan = pcall(vim.fn.jobstart, { bin, "--log-file", log, "--log-level", o.log_level }, {
    rpc = true,
    on_stderr = function(_, data)
      for _, l in ipairs(data or {}) do
        if l ~= "" and #H.stderr < 50 then
          table.insert(H.stderr, l)
        end
      end
    end,
    on_exit = function(job, code)
      vim.schedule(function()
        H.on_exit(job, code)
      end)
    end,
  })
  if not ok or type(chan) ~= "number" or chan <= 0 then
    return nil, ("cannot start the backend %s: %s"):format(bin, tostring(chan))
  end
  H.chan = chan
  local ok2, info = pcall(vim.rpcrequest, chan, "hello", config.backend())
  if not ok2 or type(info) ~= "table" then
    pcall(vim.fn.jobstop, chan)
    H.chan = nil
    return nil,
      ("the backend did not answer (%s)%s. Log: %s"):format(
        tostring(info),
        #H.stderr > 0 and (": " .. table.concat(H.stderr, " ")) or "",
        M.log_path()
      )
  end
  H.info = info
  H.log_file = info.log_file
  local status = package.loaded["frugal.status"]
  if status then
    vim.schedule(status.backend_ready)
  end
  return chan
end

--- Sends a request, starting the backend when needed.
---@param method string
---@param ... any
---@return any|nil result, string|nil err
function M.request(method, ...)
  local chan, err = M.ensure()
  if not chan then
    return nil, err
  end
  local ok, res = pcall(vim.rpcrequest, chan, method, ...)
  if not ok then
    return nil, ("backend request %s failed: %s"):format(method, tostring(res))
  end
  return res
end

--- Sends a notification if the backend runs (nothing to tell a process that is not there).
---@param method string
function M.notify(method, ...)
  if H.chan then
    pcall(vim.rpcnotify, H.chan, method, ...)
  end
end

function H.on_exit(job, code)
  if H.chan ~= job then
    return
  end
  H.chan = nil
  H.info = nil
  require("frugal.edit").backend_gone()
  if H.leaving then
    return
  end
  notify(
    ("the backend stopped (exit code %d); the next command restarts it. Log: %s"):format(code, M.log_path()),
    vim.log.levels.WARN
  )
end

vim.api.nvim_create_autocmd("VimLeavePre", {
  group = vim.api.nvim_create_augroup("frugal_rpc", { clear = true }),
  callback = function()
    H.leaving = true
    if H.chan then
      pcall(vim.fn.jobstop, H.chan)
    end
  end,
})

return M
