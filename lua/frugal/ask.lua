--- `:[range]LlmAsk[!] [question]`: a question about the range (default: the buffer), with the
--- project's context files and instructions, answered in Markdown into the tab page's ask
--- buffer (|frugal.askbuf|). `:LlmAsk` there continues the conversation (the earlier turns are
--- sent), `:LlmAsk!` starts afresh. An ask is a kind of request (frugal.request owns its
--- lifecycle); the backend prices, caps, confirms and records it (`kind = ask`) like an edit.
--- When it ends, `b:frugal_answer` of the ask buffer holds the last answer for `:LlmApply`,
--- and `User FrugalAskDone` fires.
local M = {}
local H = {}

---@class frugal.AskConversation
---@field about integer  the buffer asked about
---@field turns { instruction: string, answer: string }[]  every exchange so far, oldest first

---@class frugal.Ask: frugal.Job
---@field ask_buf integer  where the answer streams
---@field question string
---@field view { buf: integer, spin: integer, progress_mark: integer|nil }  its progress line
---@field row integer  the question's heading in the ask buffer
---@field streamed boolean  some answer text was written
---@field foresight frugal.Foresight|nil  the worst and likely cost, once reserved
---@field l1 integer  the range asked about (a late "Send" asks it again)
---@field l2 integer
---@field reserved_usd number|nil
---@field files integer|nil
---@field bytes integer|nil
---@field last_progress frugal.Progress|nil

---@class frugal.AskOpts
---@field line1 integer|nil
---@field line2 integer|nil
---@field range integer|nil  0 when no range was given
---@field question string|nil
---@field bang boolean|nil  start afresh
---@field buf integer|nil

---@type table<integer, frugal.AskConversation>  by ask buffer
H.conversations = {}

local util = require("frugal.util")
local notify, fire = util.notify, util.fire
local request = require("frugal.request")
local askbuf = require("frugal.askbuf")

--- `:LlmAsk`: validates, asks for the question when missing, and sends it.
---@param opts frugal.AskOpts
function M.start(opts)
  local cur = util.buf(opts.buf)
  local target, err = H.target(cur, opts)
  if not target then
    return notify(err --[[@as string]], vim.log.levels.ERROR)
  end
  local question = vim.trim(opts.question or "")
  if question ~= "" then
    return H.send(target, question)
  end
  vim.ui.input({ prompt = "frugal ask: " }, function(input)
    input = vim.trim(input or "")
    if input == "" then
      return notify("empty question: nothing sent", vim.log.levels.WARN)
    end
    local again, err2 = H.target(cur, opts)
    if not again then
      return notify(err2 --[[@as string]], vim.log.levels.ERROR)
    end
    H.send(again, input)
  end)
end

---@class frugal.AskTarget
---@field about integer
---@field ask_buf integer
---@field l1 integer
---@field l2 integer
---@field fresh boolean

--- What a question from `cur` is about, and where its answer goes; nil and why it cannot go.
---@param cur integer
---@param opts frugal.AskOpts
---@return frugal.AskTarget|nil, string|nil
function H.target(cur, opts)
  local here = askbuf.is(cur)
  local ask_buf = here and cur or askbuf.get()
  local conv = H.conversations[ask_buf]
  local about = cur
  if here then
    if not conv or not vim.api.nvim_buf_is_valid(conv.about) then
      return nil, "no conversation to continue here: ask from a file (:LlmAsk there)"
    end
    about = conv.about
  end
  if vim.api.nvim_buf_get_name(about) == "" then
    return nil, "this buffer has no file name: save it first (:w name), so the question knows its project"
  end
  if vim.bo[about].buftype ~= "" then
    return nil, ("cannot ask about a %s buffer"):format(vim.bo[about].buftype)
  end
  local n = vim.api.nvim_buf_line_count(about)
  local l1, l2 = opts.line1 or 1, opts.line2 or n
  if here or opts.range == 0 then
    l1, l2 = 1, n
  end
  if l1 < 1 or l2 < l1 or l2 > n then
    return nil, ("the range %d-%d is outside the buffer (1-%d)"):format(l1, l2, n)
  end
  if request.busy(about) or request.busy(ask_buf) then
    return nil, "a request is still streaming for this buffer: wait for it or :LlmCancel it"
  end
  -- From the file asked about, the conversation goes on; from another file, or with `!`,
  -- it starts afresh.
  local fresh = opts.bang == true or not conv or conv.about ~= about
  return { about = about, ask_buf = ask_buf, l1 = l1, l2 = l2, fresh = fresh }
end

--- Writes the question into the ask buffer and sends it.
---@param t frugal.AskTarget
---@param question string
---@param confirmed_usd number|nil  a worst case the user agreed to (a late "Send")
function H.send(t, question, confirmed_usd)
  local about, ask_buf = t.about, t.ask_buf
  local settings = request.backend(about)
  if not settings then
    return
  end
  local project, root, rel = request.where(about)
  if not project then
    return
  end
  local context = require("frugal.context")
  local paths = context.beside(rel, { context.list(root), context.mentions(root, question) })
  if t.fresh or not H.conversations[ask_buf] then
    H.conversations[ask_buf] = { about = about, turns = {} }
    askbuf.clear(ask_buf)
  end
  local conv = H.conversations[ask_buf]
  local n = vim.api.nvim_buf_line_count(about)
  local sel_start, sel_end = t.l1 - 1, t.l2
  local whole = sel_start == 0 and sel_end == n
  local row = askbuf.heading(ask_buf, question, whole and rel or ("%s, lines %d-%d"):format(rel, t.l1, t.l2))
  askbuf.show(ask_buf)
  vim.bo[ask_buf].modifiable = false
  ---@type frugal.Ask
  local job = request.start({
    id = util.next_id(),
    buf = about,
    kind = "ask",
    ask_buf = ask_buf,
    question = question,
    view = { buf = ask_buf, spin = 0 },
    row = row,
    streamed = false,
    spin = 0,
    l1 = t.l1,
    l2 = t.l2,
  })
  local params = request.about(about, project, rel, sel_start, sel_end, settings.context_lines)
  local running = request.send(
    job,
    "ask",
    vim.tbl_extend("error", params, {
      id = job.id,
      buf = about,
      ask_buf = ask_buf,
      instruction = question,
      context = context.request_files(root, paths),
      history = conv.turns,
      confirmed_usd = confirmed_usd,
    })
  )
  if running then
    H.progress(job, { phase = "waiting", tokens = 0, elapsed_ms = 0 })
  end
end

--- The progress line, on the question's heading in the ask buffer.
---@param job frugal.Ask
---@param p frugal.Progress
function H.progress(job, p)
  p.files, p.bytes, p.foresight = job.files, job.bytes, job.foresight
  job.last_progress = p
  require("frugal.progress").show(job.view, job.row, p)
end

H.events = {}

function H.events.foresight(job, ev)
  job.foresight = require("frugal.progress").foresight(ev)
  job.reserved_usd = ev.worst_usd
  H.progress(job, job.last_progress or { phase = "waiting", tokens = 0, elapsed_ms = 0 })
end

function H.events.progress(job, ev)
  H.progress(
    job,
    { phase = ev.phase, tokens = ev.tokens, elapsed_ms = ev.elapsed_ms, cost = ev.cost_text, note = ev.note }
  )
end

function H.events.prompt(job, ev)
  job.files, job.bytes = ev.files, ev.bytes
end

function H.events.ask_text(job, ev)
  job.streamed = true
  askbuf.append(job.ask_buf, ev.text)
end

function H.events.ask_done(job, ev)
  request.finish(job)
  local conv = H.conversations[job.ask_buf]
  if conv then
    table.insert(conv.turns, { instruction = job.question, answer = ev.answer })
  end
  if vim.api.nvim_buf_is_valid(job.ask_buf) then
    vim.b[job.ask_buf].frugal_answer =
      { text = ev.answer, request = ev.request, buf = job.buf, model = ev.model, question = job.question }
  end
  -- The event first: nothing waits on a message.
  fire("FrugalAskDone", {
    buf = job.buf,
    ask_buf = job.ask_buf,
    cost_usd = ev.cost_usd,
    reserved_usd = ev.reserved_usd or job.reserved_usd,
    model = ev.model,
  })
  -- What matters first (the cost, what to do next), the model last: the line is cut at the
  -- echo area's width, the whole text goes to the log.
  local has_blocks = ev.answer:find("<<<<<<< SEARCH", 1, true) ~= nil
  local parts = { "answered" }
  if ev.cost_text then
    table.insert(parts, ev.cost_text)
  end
  if has_blocks then
    table.insert(parts, ":LlmApply proposes its changes")
  end
  local whole = ("answered by %s%s%s"):format(
    ev.model,
    ev.cost_text and (" (%s)"):format(ev.cost_text) or "",
    has_blocks and ": :LlmApply proposes its changes" or ""
  )
  notify(table.concat(parts, " · ") .. " · " .. ev.model, vim.log.levels.INFO, whole)
  if ev.cut then
    notify("the answer was cut at max_tokens: raise max_tokens (setup)", vim.log.levels.WARN)
  end
  require("frugal.status").refresh(job.buf)
end

request.kind("ask", {
  events = H.events,
  -- A late "Send": the same question again with the worst case shown, unless the buffers are
  -- busy (said in one line).
  again = function(job, confirmed_usd)
    if request.busy(job.buf) or request.busy(job.ask_buf) then
      return notify("late Send not sent: another request runs in this buffer", vim.log.levels.WARN)
    end
    local t = { about = job.buf, ask_buf = job.ask_buf, l1 = job.l1, l2 = job.l2, fresh = false }
    H.send(t, job.question, confirmed_usd)
  end,
  cancelled = "question cancelled",
  gone = "the backend stopped while the answer streamed",
  -- The ask buffer is busy with it, and `:LlmCancel` there stops it.
  touches = function(job, buf)
    return buf == job.ask_buf
  end,
  cancel_from = function(job, buf)
    return buf == job.ask_buf
  end,
  clear = function(job)
    if vim.api.nvim_buf_is_valid(job.ask_buf) then
      require("frugal.progress").clear(job.ask_buf)
      vim.bo[job.ask_buf].modifiable = true
    end
  end,
  abandon = function(job)
    if job.streamed then
      askbuf.append(job.ask_buf, "\n\n*(the answer stopped here)*")
    end
  end,
})

return M
