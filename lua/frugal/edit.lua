--- The edit flow on the Neovim side: gather the request, show progress, hand the backend's
--- events to the hunk preview, and fire `User FrugalEditDone`. An edit is one kind of request
--- (frugal.request owns its lifecycle: routing, cancel, failure, the busy check).
local M = {}
local H = {}

---@class frugal.Edit: frugal.Job
---@field root string  the checkout root its paths are relative to
---@field path string  its file, relative to `root`
---@field paths string[]  its context files (relative to `root`)
---@field instruction string
---@field opts frugal.EditOpts  what it was started with (a late "Send" starts it again)
---@field history { instruction: string, answer: string }[]  earlier turns sent (a follow-up)
---@field follows integer|nil  the edit whose pending hunks a follow-up's answer replaces
---@field tracking boolean
---@field tracked table<integer, frugal.Tracked>  buffers whose changes are recorded
---@field touched table<integer, { path: string, hunks: integer }>  buffers with its hunks
---@field order integer[]  those buffers, in the order they got their first hunk
---@field files integer|nil  files the model sees (from the backend's `prompt` event)
---@field bytes integer|nil  the prompt's size
---@field foresight frugal.Foresight|nil  the worst and likely cost, once the request is reserved
---@field last_progress frugal.Progress|nil  the progress last shown (shown again with the foresight)
---@field reserved_usd number|nil  the worst case reserved
---@field progress_row integer
---@field placed integer
---@field numbered integer|nil  the last hunk number k given (frugal.answer)
---@field lost { buf: integer|nil, index: integer, title: string }[]  hunks not placed
---@field applied { request: integer|nil }|nil  set by `:LlmApply`: the answer's own request

---@type table<integer, string>  each edit's instruction, by id (`:LlmReview` sends it)
H.instructions = {}

local util = require("frugal.util")
local notify = util.notify
local request = require("frugal.request")

--- The instruction an edit was sent with.
---@param id integer
---@return string|nil
function M.instruction(id)
  return H.instructions[id]
end

--- Registers an edit (`:LlmEdit`'s, or `:LlmApply`'s, whose hunks are an edit's) from what it
--- is about (`id`, `buf`, `root`, `path`, `paths`, `instruction`, `history`, `progress_row`…),
--- with an edit's starting state: tracking, no hunks yet (|frugal.request.start()|).
---@param about table
---@return frugal.Edit
function M.register(about)
  return request.start(vim.tbl_extend("error", about, {
    kind = "edit",
    tracking = true,
    tracked = {},
    touched = {},
    order = {},
    spin = 0,
    placed = 0,
    lost = {},
  }))
end

---@class frugal.EditOpts
---@field line1 integer|nil  1-based first line (default 1)
---@field line2 integer|nil  1-based last line (default: last line)
---@field range integer|nil  0 when no range was given
---@field instruction string|nil
---@field buf integer|nil
---@field bang boolean|nil  `:LlmEdit!`: drop the pending hunks and start afresh

--- `:LlmEdit`: validates, asks for the instruction when missing, and starts the request.
---@param opts frugal.EditOpts
function M.start(opts)
  local buf = util.buf(opts.buf)
  local err = H.check_buffer(buf, opts)
  if err then
    return notify(err, vim.log.levels.ERROR)
  end
  if opts.bang then
    for _, id in ipairs(require("frugal.hunks").edits_in(buf)) do
      require("frugal.hunks").drop_edit(id, "rejected")
    end
  end
  local instruction = vim.trim(opts.instruction or "")
  if instruction ~= "" then
    return H.send(buf, opts, instruction)
  end
  vim.ui.input({ prompt = "frugal edit: " }, function(input)
    input = vim.trim(input or "")
    if input == "" then
      return notify("empty instruction: nothing sent", vim.log.levels.WARN)
    end
    -- The buffer may have changed while the prompt was open.
    local err2 = H.check_buffer(buf, opts)
    if err2 then
      return notify(err2, vim.log.levels.ERROR)
    end
    H.send(buf, opts, input)
  end)
end

--- Why an edit of this buffer and range cannot start, or nil when it can.
---@param buf integer
---@param opts frugal.EditOpts
---@return string|nil err
function H.check_buffer(buf, opts)
  if not vim.api.nvim_buf_is_valid(buf) then
    return "the buffer is gone"
  end
  if vim.api.nvim_buf_get_name(buf) == "" then
    return "this buffer has no file name: save it first (:w name), so the edit knows its file and project"
  end
  if vim.bo[buf].buftype ~= "" then
    return ("cannot edit a %s buffer"):format(vim.bo[buf].buftype)
  end
  if not vim.bo[buf].modifiable then
    return "this buffer is not modifiable"
  end
  local n = vim.api.nvim_buf_line_count(buf)
  if n == 1 and vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] == "" then
    return "this buffer is empty: there is nothing to edit"
  end
  local l1, l2 = opts.line1 or 1, opts.line2 or n
  if opts.range == 0 then
    l1, l2 = 1, n
  end
  if l1 < 1 or l2 < l1 or l2 > n then
    return ("the range %d-%d is outside the buffer (1-%d)"):format(l1, l2, n)
  end
  -- One request per buffer: a review of its hunks keeps it busy too.
  local busy = request.busy(buf)
  if busy then
    -- A question keeps the buffer busy too, and is named (a review goes with the edit whose
    -- hunks it reviews).
    local what = busy.kind == "ask" and "a question" or "an edit"
    return ("%s is still streaming in this buffer: wait for it or :LlmCancel it"):format(what)
  end
  local pending = require("frugal.hunks").count(buf)
  if pending > 0 and not opts.bang and not require("frugal.conversation").of_buffer(buf) then
    -- What to do first: the message is cut to one line (|frugal-messages|).
    return ("%d hunk%s pending: accept or reject them, or :LlmEdit! afresh"):format(pending, pending == 1 and "" or "s")
  end
end

--- Sends the edit request and registers the edit, whose answer comes as events (|H.events|).
--- A follow-up hides the hunks it will replace while it runs (|frugal.hunks.hide()|).
---@param buf integer
---@param opts frugal.EditOpts
---@param instruction string
---@param confirmed_usd number|nil  a worst case the user agreed to (a late "Send")
function H.send(buf, opts, instruction, confirmed_usd)
  local settings = request.backend(buf)
  if not settings then
    return
  end
  local n = vim.api.nvim_buf_line_count(buf)
  local l1, l2 = opts.line1 or 1, opts.line2 or n
  if opts.range == 0 then
    l1, l2 = 1, n
  end
  local sel_start, sel_end = l1 - 1, l2
  local id = util.next_id()
  H.instructions[id] = instruction
  local project, root, rel = request.where(buf)
  if not project then
    return
  end
  local context = require("frugal.context")
  -- A follow-up continues the conversation of the pending hunks' edit, with its files.
  local prior = not opts.bang and require("frugal.conversation").of_buffer(buf) or nil
  local paths =
    context.beside(rel, { prior and prior.paths or {}, context.list(root), context.mentions(root, instruction) })
  ---@type frugal.Edit
  local edit = M.register({
    id = id,
    buf = buf,
    root = root,
    path = rel,
    paths = paths,
    instruction = instruction,
    opts = opts,
    history = prior and prior.turns or {},
    follows = prior and prior.id or nil,
    progress_row = sel_start,
  })
  -- Record edits the user makes while the answer streams, to re-anchor hunks computed on the
  -- snapshot; closing or reloading the buffer the edit started in cancels it (another
  -- touched buffer cancels nothing).
  local track = require("frugal.track")
  track.attach(edit, buf, function(why)
    request.abort(edit, why)
  end)
  local files = context.request_files(root, paths)
  for _, f in ipairs(files) do
    if f.buf ~= 0 then
      track.attach(edit, f.buf)
    end
  end
  local params = request.about(buf, project, rel, sel_start, sel_end, settings.context_lines)
  local running = request.send(
    edit,
    "edit",
    vim.tbl_extend("error", params, {
      id = id,
      buf = buf,
      instruction = instruction,
      context = files,
      history = edit.history,
      diagnostics = H.diagnostics(buf, sel_start, sel_end),
      confirmed_usd = confirmed_usd,
    })
  )
  if running then
    if edit.follows then
      require("frugal.hunks").hide(edit.follows)
    end
    H.show_progress(edit, "waiting", 0, 0, nil)
  end
end

--- A "Send" given after the confirmation's deadline: the same instruction, sent anew with the
--- worst case shown, unless the buffer cannot take it now (said in one line).
---@param edit frugal.Edit
---@param confirmed_usd number
function H.again(edit, confirmed_usd)
  local opts = vim.tbl_extend("force", edit.opts, { bang = false })
  local err = H.check_buffer(edit.buf, opts)
  if err then
    local why = request.busy(edit.buf) and "another request runs in this buffer" or err
    return notify("late Send not sent: " .. why, vim.log.levels.WARN)
  end
  H.send(edit.buf, opts, edit.instruction, confirmed_usd)
end

--- Error and warning diagnostics inside the selection, for the prompt.
---@param buf integer
---@param sel_start integer  0-based
---@param sel_end integer  exclusive
---@return { row: integer, severity: string, message: string, source: string|nil }[]
function H.diagnostics(buf, sel_start, sel_end)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf, { severity = { min = vim.diagnostic.severity.WARN } })) do
    if d.lnum >= sel_start and d.lnum < sel_end then
      table.insert(out, {
        row = d.lnum,
        severity = d.severity == vim.diagnostic.severity.ERROR and "error" or "warning",
        message = d.message,
        source = d.source,
      })
    end
  end
  table.sort(out, function(a, b)
    return a.row < b.row
  end)
  return out
end

--- The progress line above the selection's first line (where it is now).
---@param edit frugal.Edit
---@param phase "confirming"|"waiting"|"thinking"|"streaming"|"retrying"
---@param tokens integer
---@param elapsed_ms number
---@param cost string|userdata|nil  estimated cost so far, as the backend shows money (vim.NIL: unknown)
---@param note string|nil  why and when a retry comes ("rate limited, retrying in 4 s (2/3)")
function H.show_progress(edit, phase, tokens, elapsed_ms, cost, note)
  ---@type frugal.Progress
  local p = {
    phase = phase,
    tokens = tokens,
    elapsed_ms = elapsed_ms,
    cost = cost,
    note = note,
    files = edit.files,
    bytes = edit.bytes,
    foresight = edit.foresight,
  }
  edit.last_progress = p
  local row = require("frugal.track").map_row(edit, edit.buf, edit.progress_row) or 0
  local text = require("frugal.progress").show(edit, row, p)
  M.last_progress = text or M.last_progress
end

--- The backend's edit events (src/protocol.rs): progress, a located hunk, the end.
H.events = {}

--- Reserved: what the request will likely cost, and at most (src/protocol.rs `foresight`).
function H.events.foresight(edit, ev)
  edit.foresight = require("frugal.progress").foresight(ev)
  edit.reserved_usd = ev.worst_usd
  local p = edit.last_progress or { phase = "waiting", tokens = 0, elapsed_ms = 0 }
  H.show_progress(edit, p.phase, p.tokens, p.elapsed_ms, p.cost, p.note)
end

function H.events.progress(edit, ev)
  H.show_progress(edit, ev.phase, ev.tokens, ev.elapsed_ms, ev.cost_text, ev.note)
end

function H.events.prompt(edit, ev)
  edit.files, edit.bytes = ev.files, ev.bytes
end

function H.events.hunk(edit, ev)
  require("frugal.answer").hunk(edit, ev)
end

function H.events.done(edit, ev)
  request.finish(edit)
  local ok, reason, message = require("frugal.answer").done(edit, ev)
  if not ok then
    request.fail(edit, reason --[[@as string]], message --[[@as string]])
  end
end

request.kind("edit", {
  events = H.events,
  cancelled = "cancelled; the buffer is unchanged",
  gone = "the backend stopped while the answer streamed; nothing was applied",
  -- Its hunks may go to other buffers: those are busy too until it ends.
  touches = function(edit, buf)
    return edit.touched[buf] ~= nil
  end,
  needs_buf = require("frugal.track").closed,
  clear = function(edit)
    edit.tracking = false
  end,
  -- Whatever it had previewed is withdrawn: nothing half-applied; the proposal a follow-up
  -- was refining comes back as it was.
  abandon = function(edit)
    require("frugal.hunks").drop_edit(edit.id, "abandoned")
    if edit.follows then
      require("frugal.hunks").unhide(edit.follows)
    end
  end,
  again = H.again,
})

return M
