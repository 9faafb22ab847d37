--- Every request running in the backend, of any kind (an edit, a review; an ask next): one
--- lifecycle for all. A kind registers its callbacks once (|M.kind()|); a request starts with
--- its id and buffer (|M.start()|, then |M.send()|); the backend's events reach it by id (the
--- kind's handler for each event it takes; `failed` ends any request here); it is cancelled by
--- buffer (|M.cancel()|), failed once when the backend goes (|M.backend_gone()|), and ended once
--- (|M.finish()| / |M.fail()|). The fate of each hunk it proposed comes back here (|M.settled()|).
---
--- The busy decision is taken here and nowhere else (|M.busy()|): one request per buffer,
--- counting the buffers an edit's hunks go to, which the backend cannot see. The backend keeps
--- its registry of requests in flight only to cancel them.
local M = {}
local H = {}

local util = require("frugal.util")
local notify, fire = util.notify, util.fire

---@class frugal.Job
---@field id integer  one counter for every kind (|util.next_id()|): events carry it
---@field buf integer  the buffer it started in (its progress line is there)
---@field kind string  the name its |frugal.Kind| was registered with
---@field spin integer  the progress spinner's frame
---@field progress_mark integer|nil

---@class frugal.Kind
---@field events table<string, fun(job: frugal.Job, ev: table)>  its event handlers, by `kind` (not `failed`)
---@field cancelled string  what `:LlmCancel` says
---@field gone string  what is said when the backend stops under it
---@field touches (fun(job: frugal.Job, buf: integer): boolean)|nil  other buffers it keeps busy
---@field needs_buf string|nil  set when it cannot outlive its buffer: what is said when it is
---cancelled because that buffer is gone
---@field clear fun(job: frugal.Job)|nil  what else ends with it (change tracking)
---@field abandon fun(job: frugal.Job)|nil  on failure, before it is said: withdraws what it proposed

---@alias frugal.Fate "accepted"|"rejected"|"replaced"|"abandoned"

---@type table<string, frugal.Kind>
H.kinds = {}
---@type table<integer, frugal.Job>  requests running, by id
H.live = {}
---@type table<integer, integer>  the ledger row of each done edit with hunks pending, by id
H.rows = {}
---@type table[]  hunk outcomes not yet sent to the backend
H.outcomes = {}

--- Registers a kind of request; the backend's events it names are routed to its requests.
---@param name string
---@param kind frugal.Kind
function M.kind(name, kind)
  H.kinds[name] = kind
  local rpc = require("frugal.rpc")
  for event in pairs(kind.events) do
    rpc.on(event, H.route, "request")
  end
  rpc.on("failed", H.route, "request")
end

--- The backend's settings, starting it when needed. Nil when it does not start: said, and
--- `User FrugalEditFailed` fires with reason `config`, as for a refusal.
---@param buf integer
---@return frugal.Settings|nil
function M.backend(buf)
  local rpc = require("frugal.rpc")
  local _, err = rpc.ensure()
  local settings = rpc.settings()
  if not settings then
    M.refuse(buf, err or "the backend did not start")
  end
  return settings
end

--- A request of `buf` that cannot start: said, and `User FrugalEditFailed` fires with reason
--- `config`, as for a refusal.
---@param buf integer
---@param message string
function M.refuse(buf, message)
  notify(message, vim.log.levels.ERROR)
  fire("FrugalEditFailed", { buf = buf, reason = "config", message = message })
end

--- Registers a request before it is sent: the backend may report a quick refusal as an event
--- before its answer to the call arrives, and that event must find the request.
---@generic J: frugal.Job
---@param job J
---@return J
function M.start(job)
  H.live[job.id] = job
  return job
end

--- Sends the call that starts `job` and waits for the backend to take it. False when it did
--- not (said, and the request ends) or when the request is over already (a quick refusal).
---@param job frugal.Job
---@param method string
---@param params table
---@return boolean running
function M.send(job, method, params)
  local res, err = require("frugal.rpc").request(method, params)
  if not res then
    if M.finish(job) then
      notify(err or "the backend did not answer", vim.log.levels.ERROR)
    end
    return false
  end
  return H.live[job.id] == job
end

--- The request keeping `buf` busy (started there, or reaching it), if any.
---@param buf integer
---@param kind string|nil  only a request of this kind
---@return frugal.Job|nil
function M.busy(buf, kind)
  for _, job in pairs(H.live) do
    local k = H.kinds[job.kind]
    if (not kind or job.kind == kind) and (job.buf == buf or (k.touches ~= nil and k.touches(job, buf))) then
      return job
    end
  end
end

--- Ends a request: removes its progress line, forgets it. False when it was over already.
---@param job frugal.Job
---@return boolean ended
function M.finish(job)
  if H.live[job.id] ~= job then
    return false
  end
  H.live[job.id] = nil
  local kind = H.kinds[job.kind]
  if kind.clear then
    kind.clear(job)
  end
  if vim.api.nvim_buf_is_valid(job.buf) then
    require("frugal.progress").clear(job.buf)
  end
  return true
end

--- Ends a request as failed: what it proposed is withdrawn, the message said (INFO when
--- cancelled), `User FrugalEditFailed` fired.
---@param job frugal.Job
---@param reason string
---@param message string  the whole text (the event's data)
---@param line string|nil  the one-line notification, when the backend gave one
function M.fail(job, reason, message, line)
  M.finish(job)
  local kind = H.kinds[job.kind]
  if kind.abandon then
    kind.abandon(job)
  end
  notify(line or message, reason == "cancelled" and vim.log.levels.INFO or vim.log.levels.ERROR)
  fire("FrugalEditFailed", { buf = job.buf, reason = reason, message = message })
  require("frugal.status").refresh(job.buf)
end

--- Stops a request from this side: tells the backend to drop the connection, and fails it.
---@param job frugal.Job
---@param message string
function M.abort(job, message)
  if H.live[job.id] ~= job then
    return
  end
  require("frugal.rpc").call("cancel", { id = job.id })
  M.fail(job, "cancelled", message)
end

--- `:LlmCancel`: stops the request started in this buffer (an edit's buffer is left as it was;
--- a review's hunks stay pending).
---@param buf integer|nil  nil or 0: the current buffer
function M.cancel(buf)
  buf = util.buf(buf)
  for _, job in pairs(H.live) do
    if job.buf == buf then
      return M.abort(job, H.kinds[job.kind].cancelled)
    end
  end
  notify("no edit is streaming in this buffer", vim.log.levels.WARN)
end

--- The backend died: every request in flight fails, once.
function M.backend_gone()
  for _, job in ipairs(vim.tbl_values(H.live)) do
    M.fail(job, "stream", H.kinds[job.kind].gone)
  end
end

--- A hunk a request proposed has met its fate (the one place every fate passes): recorded in
--- the ledger once its edit is done (a hunk withdrawn while the answer streams never was
--- proposed). Once none of the request's hunks is pending, its conversation is forgotten.
---@param id integer  the request that proposed it
---@param fate frugal.Fate
---@param pending boolean  whether others of its hunks are still pending
---@param hunk frugal.Hunk|nil  the hunk
function M.settled(id, fate, pending, hunk)
  local row = H.rows[id]
  if row and hunk and hunk.number then
    H.record(row, hunk.number, fate)
  end
  if not pending then
    H.rows[id] = nil
    require("frugal.conversation").forget(id)
  end
end

--- An edit is done with hunks shown: they are numbered in answer order and recorded as
--- proposed against its ledger row.
---@param id integer
---@param row integer  its ledger row (`done`'s `request`)
function H.proposed(id, row)
  local mine = {}
  for buf, list in pairs(require("frugal.hunks").all()) do
    for _, h in ipairs(list) do
      if h.edit == id then
        table.insert(mine, { h = h, buf = buf })
      end
    end
  end
  table.sort(mine, function(a, b)
    if a.h.index ~= b.h.index then
      return a.h.index < b.h.index
    end
    return a.buf < b.buf
  end)
  if #mine > 0 then
    H.rows[id] = row
  end
  for k, m in ipairs(mine) do
    m.h.number = k
    H.record(row, k, "proposed")
  end
end

--- Queues one hunk's outcome; the queue goes to the backend as one notification per tick.
---@param row integer
---@param number integer
---@param fate string
function H.record(row, number, fate)
  table.insert(H.outcomes, { request = row, hunk = number, fate = fate })
  if #H.outcomes == 1 then
    vim.schedule(function()
      local batch = H.outcomes
      H.outcomes = {}
      require("frugal.rpc").call("outcome", { outcomes = batch })
    end)
  end
end

---@class frugal.Event
---@field kind string
---@field id integer
---@field reason string|nil
---@field message string|nil
---@field line string|nil
---@field request integer|nil  `done`: the edit's ledger row

--- Routes an event of the backend to the request it is about; events of a request that is
--- over are dropped.
---@param ev frugal.Event
function H.route(ev)
  local job = H.live[ev.id]
  if not job then
    return
  end
  local kind = H.kinds[job.kind]
  if kind.needs_buf and not vim.api.nvim_buf_is_valid(job.buf) then
    -- Its buffer went before the shim heard (the close is noticed in a scheduled callback):
    -- cancelled as that callback would, never ended quietly with the request still running.
    return M.abort(job, kind.needs_buf)
  end
  if ev.kind == "failed" then
    return M.fail(job, ev.reason --[[@as string]], ev.message --[[@as string]], ev.line)
  end
  local handler = kind.events[ev.kind]
  if handler then
    handler(job, ev)
  end
  if ev.kind == "done" and ev.request then
    H.proposed(job.id, ev.request)
  end
end

return M
