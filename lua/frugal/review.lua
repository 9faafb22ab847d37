--- `:LlmReview`, LLM-as-a-judge: sends the instruction and every pending hunk of the current
--- buffer's edit (with their numbers k) to `judge_model`, shows each verdict (`ok`, `risky`,
--- `wrong`, or "no verdict") as virtual lines under its hunk, wrapped in full
--- (frugal.hunks.draw), and fires `User FrugalReviewDone`. The backend prices, caps and
--- records the request like an edit (src/review/); a failure fires `User FrugalEditFailed`.
local M = {}
local H = {}

---@class frugal.Review: frugal.Job
---@field hunks frugal.PendingHunk[]  as sent: the verdicts come back in this order
---@field foresight frugal.Foresight|nil  the worst and likely cost, once reserved
---@field last_progress frugal.Progress|nil  the progress last shown (shown again with the foresight)

---@class frugal.ReviewVerdict
---@field hunk integer  the hunk's number k (its label's)
---@field path string
---@field line integer
---@field verdict "ok"|"risky"|"wrong"|"none"
---@field reason string

local util = require("frugal.util")
local notify, fire = util.notify, util.fire
local request = require("frugal.request")

local highlight = require("frugal.highlight")
highlight.tint("frugal_review_hl", highlight.review, "CursorLine")

--- Lines of unchanged context sent above and below each hunk.
H.context = 3

--- How each verdict is shown: sign, words, highlight group.
H.show = {
  ok = { "✓ ok", "FrugalReviewOk" },
  risky = { "⚠ risky", "FrugalReviewRisky" },
  wrong = { "✗ wrong", "FrugalReviewWrong" },
  none = { "?", "FrugalReviewNone" },
}

--- `:LlmReview`: reviews the pending hunks of the current buffer's edit. Refused (with a
--- message, nothing sent) when none is pending, while an edit streams in the buffer, or while
--- a review of it runs.
---@param opts { buf: integer|nil, confirmed_usd: number|nil }|nil  `confirmed_usd`: a worst
---case the user agreed to (a "Send" given after the confirmation's deadline)
function M.start(opts)
  local buf = util.buf(opts and opts.buf)
  local hunks = require("frugal.hunks").pending_of_edit(buf)
  local err = H.check(buf, hunks)
  if err then
    return notify(err, vim.log.levels.WARN)
  end
  if not request.backend(buf) then
    return
  end
  local items = {}
  for _, h in ipairs(hunks) do
    table.insert(items, {
      path = h.path,
      line = h.line,
      number = h.number,
      old = h.old,
      new = h.new,
      before = vim.api.nvim_buf_get_lines(h.buf, math.max(0, h.line - 1 - H.context), h.line - 1, false),
      after = vim.api.nvim_buf_get_lines(h.buf, h.line - 1 + #h.old, h.line - 1 + #h.old + H.context, false),
    })
  end
  local project, perr = require("frugal.project").project(buf)
  if not project then
    return request.refuse(buf, perr or "the backend did not answer")
  end
  ---@type frugal.Review
  local review = request.start({ id = util.next_id(), buf = buf, kind = "review", hunks = hunks, spin = 0 })
  local running = request.send(review, "review", {
    id = review.id,
    buf = buf,
    instruction = require("frugal.edit").instruction(hunks[1].edit) or "(not known)",
    filetype = vim.bo[buf].filetype,
    project = project,
    hunks = items,
    confirmed_usd = opts and opts.confirmed_usd,
  })
  if not running then
    return
  end
  notify(
    ("asking %s for a verdict on %d hunk%s…"):format(
      (require("frugal.rpc").settings() or require("frugal.config").options).judge_model,
      #hunks,
      #hunks == 1 and "" or "s"
    )
  )
  H.progress(review, { phase = "waiting", tokens = 0, elapsed_ms = 0 })
end

-- Private ---------------------------------------------------------------------------------

--- Why the buffer's hunks cannot be reviewed now, or nil.
---@param buf integer
---@param hunks frugal.PendingHunk[]
---@return string|nil
function H.check(buf, hunks)
  local busy = request.busy(buf)
  if busy and busy.kind == "edit" then
    return "an edit is still streaming in this buffer: review it once it is complete (or :LlmCancel it)"
  end
  if busy and busy.kind == "ask" then
    return "a question is still streaming in this buffer: review once it is answered (or :LlmCancel it)"
  end
  if busy then
    return "a review of this buffer's hunks is already running (:LlmCancel stops it)"
  end
  if #hunks == 0 then
    return "nothing to review: no proposed hunk is pending in this buffer (:LlmEdit first)"
  end
end

--- The review's progress line, above its first hunk in this buffer, with the same figures
--- as an edit's (the worst case first, once reserved).
---@param review frugal.Review
---@param p frugal.Progress
function H.progress(review, p)
  p.foresight = review.foresight
  review.last_progress = p
  local row = 0
  for _, h in ipairs(review.hunks) do
    if h.buf == review.buf then
      row = h.line - 1
      break
    end
  end
  require("frugal.progress").show(review, row, p)
end

--- A verdict as its hunk shows it (wrapped under it by frugal.hunks.draw) and `:LlmHunks`
--- lists it: words and highlight group.
---@param v frugal.ReviewVerdict
---@return { text: string, hl: string }
function M.shown(v)
  local show = H.show[v.verdict] or H.show.none
  local text = show[1]
  if v.reason ~= "" then
    text = text .. (v.verdict == "none" and " " or ": ") .. v.reason
  elseif v.verdict == "none" then
    text = text .. " no verdict"
  end
  return { text = text, hl = show[2] }
end

H.events = {}

--- Reserved: the worst and likely cost (src/protocol.rs `foresight`), shown at once.
function H.events.foresight(review, ev)
  review.foresight = require("frugal.progress").foresight(ev)
  local p = review.last_progress or { phase = "waiting", tokens = 0, elapsed_ms = 0 }
  H.progress(review, p)
end

function H.events.progress(review, ev)
  H.progress(review, {
    phase = ev.phase,
    tokens = ev.tokens,
    elapsed_ms = ev.elapsed_ms,
    cost = ev.cost_text,
    note = ev.note,
  })
end

function H.events.review_done(review, ev)
  request.finish(review)
  local hunks = require("frugal.hunks")
  ---@type frugal.ReviewVerdict[]
  local verdicts = {}
  local counts = { ok = 0, risky = 0, wrong = 0, none = 0 }
  for _, v in ipairs(ev.verdicts or {}) do
    local h = review.hunks[v.item]
    if h then
      ---@type frugal.ReviewVerdict
      local verdict = { hunk = v.hunk, path = v.path, line = v.line, verdict = v.verdict, reason = v.reason }
      table.insert(verdicts, verdict)
      counts[v.verdict] = (counts[v.verdict] or 0) + 1
      if vim.api.nvim_buf_is_valid(h.buf) then
        hunks.annotate(h.buf, h.edit, h.index, M.shown(verdict))
      end
    end
  end
  local cost = ev.cost_usd
  local cost_text = ev.cost_text
  local parts = {}
  for _, word in ipairs({ "ok", "risky", "wrong" }) do
    if counts[word] > 0 then
      table.insert(parts, ("%d %s"):format(counts[word], word))
    end
  end
  if counts.none > 0 then
    table.insert(parts, ("%d without verdict"):format(counts.none))
  end
  -- The event first: nothing waits on a message.
  fire("FrugalReviewDone", { buf = review.buf, verdicts = verdicts, cost_usd = cost, model = ev.model })
  -- The verdicts first, then the cost, the model last: the line is cut at the echo area.
  local line = { "review: " .. table.concat(parts, ", ") }
  if cost_text then
    table.insert(line, cost_text)
  end
  table.insert(line, ev.model)
  notify(
    table.concat(line, " · "),
    (counts.wrong > 0 or counts.none > 0) and vim.log.levels.WARN or vim.log.levels.INFO,
    ("review by %s: %s%s"):format(ev.model, table.concat(parts, ", "), cost_text and (" (%s)"):format(cost_text) or "")
  )
  if ev.unread then
    notify("no verdict: " .. ev.unread, vim.log.levels.WARN)
  end
  require("frugal.status").refresh(review.buf)
end

request.kind("review", {
  events = H.events,
  cancelled = "review cancelled; the hunks are still pending",
  gone = "the backend stopped during the review",
  -- A late "Send": the buffer's pending hunks reviewed anew (refused in one line when busy).
  again = function(review, confirmed_usd)
    if request.busy(review.buf) then
      return notify("late Send not sent: another request runs in this buffer", vim.log.levels.WARN)
    end
    M.start({ buf = review.buf, confirmed_usd = confirmed_usd })
  end,
})

return M
