--- An edit's answer on the Neovim side: each located hunk shown in its file's buffer (loaded
--- and listed when it is not open; a new buffer for a proposed new file), and the end of the
--- answer: what was shown, what was not and why, `User FrugalEditDone`.
local M = {}
local H = {}

local util = require("frugal.util")
local notify, fire = util.notify, util.fire

--- The buffer a hunk goes to, or nil and why not.
---@param edit frugal.Edit
---@param ev table  the `hunk` event
---@return integer|nil buf
---@return string|nil err
function H.buffer(edit, ev)
  if ev.path == edit.path then
    return edit.buf
  end
  if not ev.new_file and ev.buf ~= 0 and vim.api.nvim_buf_is_loaded(ev.buf) then
    return ev.buf
  end
  local buf, err = require("frugal.track").buffer(edit.root, ev.path)
  if not buf then
    return nil, err
  end
  -- Whether the path may be written is the backend's to judge (it did, and does again at
  -- accept): here only the buffer's state counts.
  if ev.new_file then
    local empty = vim.api.nvim_buf_line_count(buf) == 1 and vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ""
    if not empty then
      return nil, ("%s already exists: the new file is not proposed"):format(ev.path)
    end
  end
  return buf
end

--- One located block: shown where its old lines are now, or recorded as lost.
---@param edit frugal.Edit
---@param ev table  the `hunk` event (src/protocol.rs)
function M.hunk(edit, ev)
  local hunks = require("frugal.hunks")
  local buf, err = H.buffer(edit, ev)
  if not buf then
    table.insert(edit.lost, { index = ev.index, title = ("%s: %s"):format(ev.path, err) })
    return
  end
  local entry = edit.touched[buf]
  if not entry then
    entry = { path = ev.path, hunks = 0, new_file = ev.new_file or nil }
    edit.touched[buf] = entry
    table.insert(edit.order, buf)
  end
  -- k: the hunk's number in the edit, in answer order; one that covers earlier hunks takes
  -- the first of their numbers.
  local number, block = H.number(edit, buf, ev.replaces, ev.block)
  -- A later block edited the text of these hunks: this one covers them (src/protocol.rs).
  for _, index in ipairs(ev.replaces or {}) do
    if hunks.withdraw(buf, edit.id, index) then
      edit.placed = edit.placed - 1
      entry.hunks = entry.hunks - 1
    end
    edit.lost = vim.tbl_filter(function(l)
      return l.index ~= index or l.buf ~= buf
    end, edit.lost)
  end
  local row
  if ev.new_file then
    row = 0
  else
    local track = require("frugal.track")
    local start = track.map_row(edit, buf, ev.start)
    local last = track.map_row(edit, buf, ev["end"] - 1)
    row = hunks.anchor(buf, ev.old, start, last)
  end
  local title = buf == edit.buf and ev.title or ("%s: %s"):format(ev.path, ev.title)
  if row then
    hunks.add(buf, row, {
      edit = edit.id,
      index = ev.index,
      old = ev.old,
      new = ev.new,
      changes = ev.changes,
      number = number,
      block = block,
      instruction = edit.instruction,
      title = ev.title,
      new_file = ev.new_file or nil,
      -- A buffer frugal created or loaded for the edit: its path is checked again at accept.
      check = buf ~= edit.buf and { root = edit.root, path = ev.path } or nil,
    })
    edit.placed = edit.placed + 1
    entry.hunks = entry.hunks + 1
  else
    table.insert(edit.lost, { buf = buf, index = ev.index, title = title })
  end
end

--- The answer ended. Returns true when hunks are shown (`FrugalEditDone` fired), else false
--- with the failure's reason and message.
---@param edit frugal.Edit
---@param ev table  the `done` event
---@return boolean ok
---@return string|nil reason
---@return string|nil message
function M.done(edit, ev)
  local lost = vim.tbl_map(function(l)
    return l.title
  end, edit.lost)
  -- Every block not shown, for the event's data.
  local unmatched = vim.list_extend(vim.deepcopy(ev.unmatched or {}), lost)
  for _, p in ipairs(ev.problems or {}) do
    table.insert(unmatched, p.title)
  end
  -- Why, as the backend words it; the shim's own reason stands after "matched nowhere".
  local words = ev.words or {}
  local reasons = vim.deepcopy(words.not_shown or {})
  if #lost > 0 then
    local at = #(ev.unmatched or {}) > 0 and 2 or 1
    table.insert(reasons, at, H.quote(lost) .. ": the lines changed while the answer streamed")
  end
  if edit.placed == 0 then
    return false, "no_match", words.none_placed .. ": " .. table.concat(reasons, "; ")
  end
  require("frugal.hunks").total(edit.id, edit.placed)
  local conversation = require("frugal.conversation")
  if edit.follows then
    -- The follow-up's answer replaces the proposal it refines (hidden meanwhile), in every buffer.
    require("frugal.hunks").drop_hidden(edit.follows, "replaced")
    require("frugal.hunks").drop_edit(edit.follows, "replaced")
    conversation.forget(edit.follows)
  end
  local files, paths = {}, vim.deepcopy(edit.paths)
  for _, buf in ipairs(edit.order) do
    local t = edit.touched[buf]
    if t.hunks > 0 then
      table.insert(files, { buf = buf, path = t.path, hunks = t.hunks })
    end
    if t.path ~= edit.path and not vim.tbl_contains(paths, t.path) and vim.uv.fs_stat(edit.root .. "/" .. t.path) then
      table.insert(paths, t.path)
    end
  end
  table.insert(paths, 1, edit.path)
  local turns = vim.deepcopy(edit.history)
  table.insert(turns, { instruction = edit.instruction, answer = ev.answer or "" })
  conversation.finished({ id = edit.id, buf = edit.buf, root = edit.root, paths = paths, turns = turns })
  local line, whole = H.done_text(edit, files, ev)
  local here = edit.touched[edit.buf]
  -- The event first: nothing waits on a message.
  fire("FrugalEditDone", {
    buf = edit.buf,
    hunks = here and here.hunks or 0,
    cost_usd = ev.cost_usd,
    reserved_usd = ev.reserved_usd or edit.reserved_usd,
    model = ev.model,
    unmatched = unmatched,
    files = files,
    message = whole,
  })
  notify(line, vim.log.levels.INFO, whole)
  for _, reason in ipairs(reasons) do
    notify("not shown: " .. reason, vim.log.levels.WARN)
  end
  require("frugal.status").refresh(edit.buf)
  return true
end

--- The done message: one line naming the files (`frugal: 5 hunks · app.py lib.py +1 new ·
--- $0.0184`), and the whole text (every path, the model, the keys).
---@param edit frugal.Edit
---@param files { buf: integer, path: string, hunks: integer }[]
---@param ev table  the `done` event
---@return string line
---@return string whole
function H.done_text(edit, files, ev)
  local names, new, paths = {}, 0, {}
  for _, f in ipairs(files) do
    table.insert(paths, f.path)
    if edit.touched[f.buf].new_file then
      new = new + 1
    else
      table.insert(names, vim.fs.basename(f.path))
    end
  end
  local shown = vim.list_slice(names, 1, H.max_names)
  if #names > #shown then
    table.insert(shown, ("+%d"):format(#names - #shown))
  end
  if new > 0 then
    table.insert(shown, ("+%d new"):format(new))
  end
  local hunks = ("%d hunk%s"):format(edit.placed, edit.placed == 1 and "" or "s")
  -- Money as the backend shows it: enough digits that a tiny cost never reads $0.0000.
  local cost = ev.cost_text
  local parts = { "frugal: " .. hunks, table.concat(shown, " ") }
  -- A follow-up says it refined the earlier proposal, and which turn it is.
  if edit.follows then
    table.insert(parts, 2, ("refined, turn %d"):format(#edit.history + 1))
  end
  if cost then
    table.insert(parts, cost)
  end
  local whole = ("%s in %s proposed by %s%s%s"):format(
    hunks,
    table.concat(paths, ", "),
    ev.model,
    cost and (" (%s)"):format(cost) or "",
    edit.follows and (", refined, turn %d"):format(#edit.history + 1) or ""
  )
  local km = require("frugal.config").options.keymaps
  if km and km.accept then
    whole = whole .. (": %s accept, %s reject, :LlmAccept! all"):format(km.accept, km.reject or ":LlmReject")
  end
  return table.concat(parts, " · "), whole
end

--- File names a done message shows before `+N`.
H.max_names = 3

--- The number k of an edit's next hunk: the next in answer order, or the first number of the
--- pending hunks it replaces; and the block its outcome is kept under (the first block of
--- those it covers).
---@param edit frugal.Edit
---@param buf integer
---@param replaces integer[]|nil  indices of the edit's hunks it replaces
---@param block integer  its block's ordinal in the answer (the backend's)
---@return integer number, integer block
function H.number(edit, buf, replaces, block)
  local first
  for _, h in ipairs(require("frugal.hunks").all()[buf] or {}) do
    if h.edit == edit.id and vim.tbl_contains(replaces or {}, h.index) and h.number then
      first = math.min(first or h.number, h.number)
      block = math.min(block, h.block)
    end
  end
  if first then
    return first, block
  end
  edit.numbered = (edit.numbered or 0) + 1
  return edit.numbered, block
end

---@param titles string[]
---@return string
function H.quote(titles)
  local out = {}
  for _, t in ipairs(titles) do
    table.insert(out, '"' .. t .. '"')
  end
  return table.concat(out, ", ")
end

return M
