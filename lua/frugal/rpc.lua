--- The channel to the backend: started lazily on the first command, restarted after a crash.
---
--- A call is either waited for (|M.request()|: the request `call(method, params)`) or not
--- (|M.call()|: the notification `call(seq, method, params)`, answered by a `reply` event with
--- the same `seq`); src/protocol.rs documents every call and event. Every wait is bounded: a
--- backend that does not answer in time (stopped, wedged) is killed with a message, and the
--- next command starts a fresh one. Events reach the handlers that modules register with
--- |M.on()|.
local M = {}
local H = {}

local notify = require("frugal.util").notify

--- How long a call may take before the backend is taken for wedged (ms).
M.timeout_ms = 10000

---@type integer|nil  the job/channel id of the running backend
H.chan = nil
---@type string|nil  the backend's current log file (from `hello`)
H.log_file = nil
---@type boolean  Neovim is exiting: the backend's exit is expected
H.leaving = false
---@type string[]
H.stderr = {}
---@type frugal.Hello|nil  what `hello` answered
H.info = nil
H.seq = 0
---@type table<integer, fun(reply: frugal.Reply)>  calls waiting for their reply, by seq
H.pending = {}
---@type table<string, table<string, fun(ev: table)>>  event handlers by `kind`, then owner
H.handlers = {}

---@class frugal.Reply
---@field seq integer
---@field ok boolean
---@field result any
---@field message string|nil

--- Registers the handler of an event kind for `owner` (one per kind and owner; default
--- "main"). Several owners may share a kind; every request's events (edit, review) go to
--- frugal.request, which routes them by id.
---@param kind string
---@param fn fun(ev: table)
---@param owner string|nil
function M.on(kind, fn, owner)
  H.handlers[kind] = H.handlers[kind] or {}
  H.handlers[kind][owner or "main"] = fn
end

--- The log file's directory and pattern, for messages before `hello` answered.
---@return string
function M.log_path()
  return H.log_file or (vim.fn.stdpath("log") .. "/frugal.log.*")
end

--- Writes a message's whole text to the backend's log, when the backend runs (it is never
--- started for this).
---@param level integer  a |vim.log.levels| number
---@param text string
function M.log(level, text)
  if H.chan then
    local name = level >= vim.log.levels.ERROR and "error" or level >= vim.log.levels.WARN and "warn" or "info"
    pcall(vim.rpcnotify, H.chan, "log", name, text)
  end
end

---@return frugal.Hello|nil info  what the running backend said in `hello`
function M.info()
  return H.chan and H.info or nil
end

---@return integer|nil
function M.running()
  return H.chan
end

--- The settings in effect (decided by the backend from setup()), once it runs.
---@return frugal.Settings|nil
function M.settings()
  return H.chan and H.info and H.info.settings or nil
end

--- Starts the backend if it is not running. Returns the channel, or nil and a message.
---@return integer|nil chan, string|nil err
function M.ensure()
  if H.chan then
    return H.chan
  end
  local config = require("frugal.config")
  local o = config.options
  local bin = config.binary()
  if not bin then
    return nil, ("no backend installed: run %s"):format(require("frugal.build").fix())
  end
  if vim.fn.executable(bin) ~= 1 then
    return nil,
      ("backend not found at %s: fix setup({ binary = ... }) or unset it, then %s"):format(
        bin,
        require("frugal.build").fix()
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
  require("frugal.handshake").started()
  local info, err = H.wait(chan, "hello", config.backend(), M.timeout_ms)
  if not info then
    if H.chan == chan then
      pcall(vim.fn.jobstop, chan)
      H.chan = nil
    end
    return nil,
      ("the backend did not answer (%s)%s. Log: %s"):format(
        tostring(err),
        #H.stderr > 0 and (": " .. table.concat(H.stderr, " ")) or "",
        M.log_path()
      )
  end
  H.hello(info)
  return chan
end

--- Sends `hello` again (new settings from setup()) if the backend runs.
function M.reconfigure()
  if H.chan then
    M.call("hello", require("frugal.config").backend(), function(info)
      if info then
        H.hello(info)
      end
    end)
  end
end

---@param info frugal.Hello
function H.hello(info)
  H.info = info
  H.log_file = info.log_file
  require("frugal.handshake").took(info)
end

--- Stops the backend (after `:LlmBuild` installed a new one): the next command starts the new
--- one. Calls in flight fail as when it exits.
function M.stop()
  local chan = H.chan
  if not chan then
    return
  end
  H.chan = nil
  H.info = nil
  pcall(vim.fn.jobstop, chan)
  H.fail_pending()
  H.requests_gone()
end

--- Calls `method` and waits for its result, at most `timeout_ms` (default |M.timeout_ms|),
--- starting the backend when needed. Neovim stays responsive to the backend's events meanwhile.
---@param method string
---@param params table|nil
---@param timeout_ms integer|nil
---@param label string|nil  the command a preliminary call serves, named when it times out
---@return any|nil result, string|nil err
function M.request(method, params, timeout_ms, label)
  local chan, err = M.ensure()
  if not chan then
    return nil, err
  end
  return H.wait(chan, method, params, timeout_ms or M.timeout_ms, label)
end

--- Calls `method` without waiting; `cb(result, err)` runs once, with the reply or after
--- `timeout_ms`. Does nothing (and calls nothing back) when the backend does not run.
---@param method string
---@param params table|nil
---@param cb fun(result: any|nil, err: string|nil)|nil
---@param timeout_ms integer|nil
function M.call(method, params, cb, timeout_ms)
  local chan = H.chan
  if not chan then
    return
  end
  local seq = H.send(chan, method, params, function(reply)
    if cb then
      cb(H.result(reply))
    end
  end)
  if not seq then
    return
  end
  vim.defer_fn(function()
    if H.pending[seq] then
      H.pending[seq] = nil
      if cb then
        cb(nil, H.timed_out(chan, method, timeout_ms or M.timeout_ms))
      end
    end
  end, timeout_ms or M.timeout_ms)
end

---@param chan integer
---@param method string
---@param params table|nil
---@param on_reply fun(reply: frugal.Reply)
---@return integer|nil seq
function H.send(chan, method, params, on_reply)
  H.seq = H.seq + 1
  local seq = H.seq
  H.pending[seq] = on_reply
  local ok = pcall(vim.rpcnotify, chan, "call", seq, method, params or vim.empty_dict())
  if not ok then
    H.pending[seq] = nil
    return nil
  end
  return seq
end

---@param reply frugal.Reply
---@return any|nil result, string|nil err
function H.result(reply)
  if reply.ok then
    return reply.result
  end
  return nil, reply.message or "the backend refused the request"
end

--- Calls `method` as a request and waits for the answer. `vim.rpcrequest` cannot time out,
--- so a watchdog timer (a libuv timer runs even while Neovim waits on the channel) kills a
--- backend that has not answered within `timeout_ms`, which ends the wait.
---@return any|nil result, string|nil err
function H.wait(chan, method, params, timeout_ms, label)
  local pid = vim.fn.jobpid(chan)
  local fired = false
  local timer = assert(vim.uv.new_timer())
  timer:start(timeout_ms, 0, function()
    fired = true
    -- SIGKILL: a stopped process does not act on SIGTERM.
    vim.uv.kill(pid, "sigkill")
  end)
  local ok, reply = pcall(vim.rpcrequest, chan, "call", method, params or vim.empty_dict())
  timer:stop()
  timer:close()
  if fired then
    return nil, H.timed_out(chan, label or method, timeout_ms)
  end
  if not ok then
    return nil, ("backend request %s failed: %s"):format(method, tostring(reply))
  end
  if type(reply) ~= "table" then
    return nil, ("backend request %s: unexpected answer %s"):format(method, vim.inspect(reply))
  end
  return H.result(reply)
end

--- A call went unanswered: the backend is stopped (the next command starts a fresh one).
---@return string message
function H.timed_out(chan, method, timeout_ms)
  local msg = ("the backend did not answer %s within %d s (stopped or stuck?): "):format(
    method,
    math.floor(timeout_ms / 1000 + 0.5)
  ) .. ("it was stopped; the next command starts it again. Log: %s"):format(M.log_path())
  if H.chan == chan then
    H.chan = nil
    H.info = nil
    -- SIGKILL: a stopped process does not act on SIGTERM.
    local ok, pid = pcall(vim.fn.jobpid, chan)
    if ok and pid > 0 then
      pcall(vim.uv.kill, pid, "sigkill")
    end
    pcall(vim.fn.jobstop, chan)
    H.fail_pending()
    H.requests_gone()
  end
  return msg
end

--- Calls still waiting when the backend went away fail now rather than at their deadline.
function H.fail_pending()
  local pending = H.pending
  H.pending = {}
  for seq, cb in pairs(pending) do
    cb({ seq = seq, ok = false, message = "the backend stopped before answering" })
  end
end

--- The backend went away: every request in flight (edit, review) fails. (None is in flight
--- before the request module was loaded.)
function H.requests_gone()
  local request = package.loaded["frugal.request"]
  return request and request.backend_gone()
end

--- Events from the backend (src/protocol.rs), in order.
---@param ev table
function M._dispatch(ev)
  if ev.kind == "reply" then
    local cb = H.pending[ev.seq]
    H.pending[ev.seq] = nil
    if cb then
      cb(ev)
    end
    return
  end
  for _, handler in pairs(H.handlers[ev.kind] or {}) do
    handler(ev)
  end
end

--- Several events at once, in order (what queued while the last one was delivered). An event
--- whose handler fails does not keep the others from theirs; the failures are raised after.
---@param evs table[]
function M._dispatch_all(evs)
  local errors = {}
  for _, ev in ipairs(evs) do
    local ok, err = pcall(M._dispatch, ev)
    if not ok then
      table.insert(errors, tostring(err))
    end
  end
  if #errors > 0 then
    error(table.concat(errors, "\n"), 0)
  end
end

M.on("notify", function(ev)
  notify(ev.message, ev.level)
end)

--- A question the backend waits on (frugal.confirm).
M.on("question", function(ev)
  require("frugal.confirm").ask(ev)
end)

function H.on_exit(job, code)
  if H.chan ~= job then
    return
  end
  H.chan = nil
  H.info = nil
  H.fail_pending()
  H.requests_gone()
  if H.leaving then
    return
  end
  notify(
    ("the backend stopped (exit code %d); the next command restarts it. Log: %s"):format(code, M.log_path()),
    vim.log.levels.WARN
  )
end

---@type fun()[]  what runs when Neovim quits, before the backend is stopped (|M.before_stop()|)
H.before_stop = {}

--- Runs `fn` when Neovim quits, while the backend still runs (to send what is queued).
---@param fn fun()
function M.before_stop(fn)
  table.insert(H.before_stop, fn)
end

vim.api.nvim_create_autocmd("VimLeavePre", {
  group = vim.api.nvim_create_augroup("frugal_rpc", { clear = true }),
  callback = function()
    if H.chan then
      for _, fn in ipairs(H.before_stop) do
        pcall(fn)
      end
    end
    H.leaving = true
    if H.chan then
      pcall(vim.fn.jobstop, H.chan)
    end
  end,
})

return M
