--- Every request running in the backend, of any kind (an edit, a review, an ask): one
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
---@field cancel_from (fun(job: frugal.Job, buf: integer): boolean)|nil  other buffers where
---`:LlmCancel` stops it (an ask's answer buffer)
---@field needs_buf string|nil  set when it cannot outlive its buffer: what is said when it is
---cancelled because that buffer is gone
---@field clear fun(job: frugal.Job)|nil  what else ends with it (change tracking)
---@field abandon fun(job: frugal.Job)|nil  on failure, before it is said: withdraws what it proposed
---@field again (fun(job: frugal.Job, confirmed_usd: number))|nil  starts the request anew (a "Send"
---given after its confirmation's deadline), with the worst case the user was shown

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

--- A request of `buf` that cannot start: `User FrugalEditFailed` fires with reason `config`,
--- as for a refusal, then it is said.
---@param buf integer
---@param message string
function M.refuse(buf, message)
  fire("FrugalEditFailed", { buf = buf, reason = "config", message = message })
  notify(message, vim.log.levels.ERROR)
end

--- A request's project, its checkout's root (a worktree's own) and the buffer's path in it,
--- the one the model sees. Nil when it has none: refused (|M.refuse()|).
---@param buf integer
---@return table|nil project
---@return string root
---@return string rel
function M.where(buf)
  local project, perr = require("frugal.project").project(buf)
  if not project then
    M.refuse(buf, perr or "the backend did not answer")
    return nil, "", ""
  end
  local where = assert(require("frugal.project").where(buf))
  local file = vim.api.nvim_buf_get_name(buf)
  return project, where.checkout, where.rel or vim.uv.fs_realpath(file) or file
end

--- What an edit's or a question's call says of its code: path, filetype, the selection
--- (0-based, end exclusive) in a window of `context_lines` around it, project, session model.
---@param buf integer
---@param project table
---@param rel string
---@param sel_start integer
---@param sel_end integer
---@param context_lines integer
---@return table
function M.about(buf, project, rel, sel_start, sel_end, context_lines)
  local n = vim.api.nvim_buf_line_count(buf)
  local win_start, win_end = math.max(0, sel_start - context_lines), math.min(n, sel_end + context_lines)
  return {
    file = rel,
    filetype = vim.bo[buf].filetype,
    sel_start = sel_start,
    sel_end = sel_end,
    win_start = win_start,
    total_lines = n,
    project = project,
    model = require("frugal").session_model(),
    lines = vim.api.nvim_buf_get_lines(buf, win_start, win_end, false),
  }
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

--- A request running, by id.
---@param id integer
---@return frugal.Job|nil
function M.get(id)
  return H.live[id]
end

--- How to start `job` anew with a worst case the user agreed to, if its kind can.
---@param job frugal.Job
---@return (fun(confirmed_usd: number))|nil
function M.again(job)
  local again = H.kinds[job.kind].again
  return again and function(confirmed_usd)
    again(job, confirmed_usd)
  end or nil
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

--- Ends a request as failed: what it proposed is withdrawn, `User FrugalEditFailed` fired,
--- then the message said (INFO when cancelled), so nothing waits on a message. An answer that
--- was paid for and held no block (`paid.answer`) opens in a float, the message a warning with
--- its cost.
---@param job frugal.Job
---@param reason string
---@param message string  the whole text (the event's data)
---@param line string|nil  the one-line notification, when the backend gave one
---@param paid { cost_usd: number|nil, cost_text: string|nil, answer: string|nil }|nil
function M.fail(job, reason, message, line, paid)
  M.finish(job)
  local kind = H.kinds[job.kind]
  if kind.abandon then
    kind.abandon(job)
  end
  paid = paid or {}
  local level = reason == "cancelled" and vim.log.levels.INFO or vim.log.levels.ERROR
  if paid.cost_text then
    message = ("%s (the answer cost %s)"):format(message, paid.cost_text)
    line = line and ("%s (%s)"):format(line, paid.cost_text)
  end
  fire("FrugalEditFailed", { buf = job.buf, reason = reason, message = message, cost_usd = paid.cost_usd })
  if type(paid.answer) == "string" then
    level = vim.log.levels.WARN
    line = H.no_block(paid)
  end
  notify(line or message, level, message)
  require("frugal.status").refresh(job.buf)
end

--- Opens an answer that held no block in a float; the one-line message that says so.
---@param paid { cost_text: string|nil, answer: string }
---@return string
function H.no_block(paid)
  local cost = paid.cost_text and (" · %s"):format(paid.cost_text) or ""
  local ok = require("frugal.float").open(vim.split(paid.answer, "\n"), {
    title = "frugal: the answer (no SEARCH/REPLACE block)",
    filetype = "markdown",
    wrap = true,
    enter = false,
  })
  if not ok then
    return ("frugal: no edit in the answer%s"):format(cost)
  end
  return ("frugal: no edit in the answer%s · shown in a float"):format(cost)
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
    local k = H.kinds[job.kind]
    if job.buf == buf or (k.cancel_from ~= nil and k.cancel_from(job, buf)) then
      return M.abort(job, k.cancelled)
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
  if row and hunk then
    H.record(row, hunk.block, fate)
  end
  if not pending then
    H.rows[id] = nil
    require("frugal.conversation").forget(id)
  end
end

--- An edit is done with hunks shown: each is recorded as proposed against its ledger row,
--- under its block's ordinal in the answer (the same block proposed again by `:LlmApply`, from
--- the same answer, is the same row: it counts once).
---@param id integer
---@param row integer  its ledger row (`done`'s `request`)
function H.proposed(id, row)
  local any = false
  for _, list in pairs(require("frugal.hunks").all()) do
    for _, h in ipairs(list) do
      if h.edit == id then
        any = true
        H.record(row, h.block, "proposed")
      end
    end
  end
  if any then
    H.rows[id] = row
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
      if #batch > 0 then
        require("frugal.rpc").call("outcome", { outcomes = batch })
      end
    end)
  end
end

--- Sends the queued outcomes now and waits for the backend to take them: Neovim quits, and a
--- fate given in its last tick must not be lost (the backend abandons what is left pending).
function H.flush()
  local batch = H.outcomes
  H.outcomes = {}
  if #batch > 0 then
    require("frugal.rpc").request("outcome", { outcomes = batch }, 2000)
  end
end
require("frugal.rpc").before_stop(H.flush)

---@class frugal.BackendEvent  an event of a request (src/protocol.rs)
---@field kind string
---@field id integer
---@field reason string|nil  `failed`: why
---@field message string|nil  `failed`: the whole text
---@field line string|nil  `failed`: the one-line notification
---@field cost_usd number|nil  `failed`: what an answer that gave no hunk cost
---@field cost_text string|nil
---@field answer string|nil  `failed`: an answer that held no block
---@field request integer|nil  `done`: the edit's ledger row

--- Routes an event of the backend to the request it is about; events of a request that is
--- over are dropped.
---@param ev frugal.BackendEvent
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
    return M.fail(job, ev.reason --[[@as string]], ev.message --[[@as string]], ev.line, ev)
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
