--- Proposed hunks: previewed with extmarks (removed lines highlighted in place, new lines as
--- virtual lines below them), accepted or rejected one by one or all at once. The buffer text
--- is untouched until a hunk is accepted.
local M = {}
local H = {}

---@class frugal.Hunk
---@field mark integer  range extmark over the old lines
---@field vmark integer|nil  extmark on the last old line holding the new lines as virt_lines
---@field edit integer  the edit that proposed it
---@field index integer  its index among the edit's hunks (the backend's)
---@field old string[]
---@field new string[]
---@field title string
---@field new_file boolean|nil  it fills a new (empty) buffer
---@field note integer|nil  extmark of a note on the hunk (the judge's verdict)
---@field check frugal.PathCheck|nil  its buffer was created or loaded for the edit

---@class frugal.PathCheck
---@field root string  the checkout root
---@field path string  the file, relative to `root`

local util = require("frugal.util")
local notify = util.notify

require("frugal.highlight").link("frugal_hl", {
  FrugalDelete = "DiffDelete",
  FrugalAdd = "DiffAdd",
  FrugalHunkHeader = "DiagnosticVirtualTextInfo",
  FrugalProgress = "Comment",
})

--- How many hunks are pending in a buffer.
---@param buf integer|nil  nil or 0: the current buffer
---@return integer
function M.count(buf)
  buf = util.buf(buf)
  return #(H.by_buf[buf] or {})
end

--- Where the hunk's old lines are now: the row its snapshot position maps to, provided those
--- lines are still exactly there. A hunk whose lines were edited while the answer streamed is
--- not placed (nil) rather than guessed elsewhere: a wrong place would be worse than none.
---@param buf integer
---@param old string[]
---@param start integer|nil  mapped first row
---@param last integer|nil  mapped last row
---@return integer|nil
function M.anchor(buf, old, start, last)
  if start and last and last - start + 1 == #old and H.lines_at(buf, start, old) then
    return start
  end
  return nil
end

--- What a hunk's header says besides its number: a budget file is named as such (writing it
--- changes caps; Neovim asks to trust it again), a new file whose directory does not exist
--- says how to write it.
---@param buf integer
---@param new_file boolean|nil
---@return string
function H.note(buf, new_file)
  local name = vim.api.nvim_buf_get_name(buf)
  if vim.fs.basename(name) == ".frugal.toml" then
    return " (the budget file .frugal.toml)"
  end
  if not new_file then
    return ""
  end
  if not vim.uv.fs_stat(vim.fs.dirname(name)) then
    return " (new file in a new directory: :w ++p)"
  end
  return " (new file)"
end

--- Shows one hunk whose old lines start at `row` (a new file's: in its empty buffer).
---@param buf integer
---@param edit integer
---@param index integer  the hunk's index in its edit
---@param row integer
---@param old string[]
---@param new string[]
---@param title string
---@param new_file boolean|nil
---@param check frugal.PathCheck|nil  the backend checks the path again before it is applied
function M.add(buf, edit, index, row, old, new, title, new_file, check)
  local list = H.by_buf[buf] or {}
  H.by_buf[buf] = list
  local last = math.max(row, row + #old - 1)
  local mark = vim.api.nvim_buf_set_extmark(buf, H.ns, row, 0, {
    end_row = #old == 0 and row or last + 1,
    end_col = 0,
    hl_group = "FrugalDelete",
    hl_eol = true,
    end_right_gravity = false,
    virt_text = { { (" frugal #%d%s "):format(#list + 1, H.note(buf, new_file)), "FrugalHunkHeader" } },
    virt_text_pos = "right_align",
    priority = 200,
  })
  local vmark
  local virt = {}
  for _, l in ipairs(new) do
    table.insert(virt, { { l, "FrugalAdd" } })
  end
  if #new == 0 then
    virt = { { { "(lines deleted)", "FrugalHunkHeader" } } }
  end
  vmark = vim.api.nvim_buf_set_extmark(buf, H.ns, last, 0, { virt_lines = virt, priority = 200 })
  table.insert(list, {
    mark = mark,
    vmark = vmark,
    edit = edit,
    index = index,
    old = old,
    new = new,
    title = title,
    new_file = new_file or nil,
    check = check,
  })
  if #list == 1 then
    H.map_keys(buf)
  end
end

--- The edits with hunks pending in a buffer.
---@param buf integer|nil  nil or 0: the current buffer
---@return integer[]
function M.edits_in(buf)
  local ids = {}
  for _, h in ipairs(H.by_buf[util.buf(buf)] or {}) do
    if not vim.tbl_contains(ids, h.edit) then
      table.insert(ids, h.edit)
    end
  end
  return ids
end

--- `:LlmHunks`: every pending hunk of every buffer in the quickfix list (file, line, the
--- block's first line), opened.
function M.quickfix()
  local items = {}
  for buf, list in pairs(H.by_buf) do
    for _, h in ipairs(list) do
      local s = H.span(buf, h)
      if s then
        table.insert(items, { bufnr = buf, lnum = s + 1, col = 1, text = h.title })
      end
    end
  end
  if #items == 0 then
    return notify("no proposed hunk in any buffer", vim.log.levels.WARN)
  end
  table.sort(items, function(a, b)
    if a.bufnr ~= b.bufnr then
      return vim.api.nvim_buf_get_name(a.bufnr) < vim.api.nvim_buf_get_name(b.bufnr)
    end
    return a.lnum < b.lnum
  end)
  vim.fn.setqflist({}, " ", { title = "frugal: pending hunks", items = items })
  vim.cmd("botright copen")
end

---@class frugal.PendingHunk
---@field buf integer
---@field path string  relative to the project's checkout
---@field line integer  1-based first old line, where it is now
---@field old string[]
---@field new string[]
---@field edit integer
---@field index integer  the hunk's index in its edit

--- Every pending hunk of the edit that owns `buf`'s hunks, in every buffer it touched, in
--- path-then-line order: what `:LlmReview` sends. The one place that knows how hunks are kept,
--- so that edits spanning several buffers change only this function.
---@param buf integer|nil  nil or 0: the current buffer
---@return frugal.PendingHunk[]
function M.pending_of_edit(buf)
  buf = util.buf(buf)
  local mine = H.by_buf[buf]
  if not mine or #mine == 0 then
    return {}
  end
  local edit = mine[1].edit
  local out = {}
  for b, list in pairs(H.by_buf) do
    for _, h in ipairs(list) do
      local s = h.edit == edit and H.span(b, h) or nil
      if s then
        table.insert(out, {
          buf = b,
          path = h.path or H.path_of(b),
          line = s + 1,
          old = h.old,
          new = h.new,
          edit = h.edit,
          index = h.index,
        })
      end
    end
  end
  table.sort(out, function(x, y)
    if x.path ~= y.path then
      return x.path < y.path
    end
    return x.line < y.line
  end)
  return out
end

--- Shows `chunks` (virtual text) at the end of a pending hunk's first line, replacing what was
--- shown there before; nil removes it. Gone with the hunk when it is accepted or rejected.
---@param buf integer
---@param edit integer
---@param index integer
---@param chunks table[]|nil  `{ { text, hl_group }, … }`
---@return boolean shown  false when the hunk is no longer pending
function M.annotate(buf, edit, index, chunks)
  for _, h in ipairs(H.by_buf[buf] or {}) do
    if h.edit == edit and h.index == index then
      if h.note then
        pcall(vim.api.nvim_buf_del_extmark, buf, H.ns, h.note)
        h.note = nil
      end
      local s = H.span(buf, h)
      if chunks and s then
        h.note = vim.api.nvim_buf_set_extmark(buf, H.ns, s, 0, {
          virt_text = chunks,
          virt_text_pos = "eol",
          hl_mode = "combine",
          priority = 210,
        })
      end
      return s ~= nil
    end
  end
  return false
end

--- The hunk at a row (its old lines), if any.
---@param buf integer
---@param row integer  0-based
---@return frugal.Hunk|nil hunk
---@return integer|nil index
function M.at(buf, row)
  for i, h in ipairs(H.by_buf[buf] or {}) do
    local s, e = H.span(buf, h)
    if s and row >= s and row < math.max(e, s + 1) then
      return h, i
    end
  end
end

--- `:LlmAccept[!]`: applies the hunk under the cursor (all: every hunk of the edit owning
--- this buffer's hunks, in every buffer it touched), each buffer's as one undo step apart from
--- the user's changes. Refused while the answer still streams.
---@param opts { all: boolean, buf: integer|nil }
function M.accept(opts)
  local targets = H.targets(opts)
  if not targets then
    return
  end
  local edit = require("frugal.edit")
  for buf in pairs(targets) do
    if edit.streaming(buf) then
      -- The answer may still break off, withdrawing its hunks: nothing is applied half-way.
      return notify("the answer is still streaming: accept once it is complete (or :LlmCancel)", vim.log.levels.WARN)
    end
    if not vim.bo[buf].modifiable then
      return notify(
        ("%s is not modifiable ('modifiable' is off): nothing applied"):format(H.name(buf)),
        vim.log.levels.ERROR
      )
    end
  end
  for buf, hunks in pairs(targets) do
    local refused = H.refused(hunks)
    if refused then
      notify(refused, vim.log.levels.WARN)
    else
      H.undo_break(buf)
      for _, h in ipairs(hunks) do
        local ok, err = H.apply(buf, h)
        if not ok then
          notify(err, vim.log.levels.WARN)
        end
      end
    end
  end
end

--- Why a buffer's hunks may not be applied now, or nil: for a buffer frugal created or
--- loaded for the edit, the backend checks its path again (it may have been turned into a
--- link into `.git` or out of the project since the proposal). The shim judges no path.
---@param hunks frugal.Hunk[]  hunks of one buffer
---@return string|nil
function H.refused(hunks)
  local check, new_file = nil, false
  for _, h in ipairs(hunks) do
    check = check or h.check
    new_file = new_file or h.new_file == true
  end
  if not check then
    return nil
  end
  local ok, err = require("frugal.rpc").request("check_path", {
    file = check.root .. "/.frugal.toml",
    path = check.path,
    new_file = new_file,
  })
  if ok then
    return nil
  end
  return ("frugal: not applied: %s"):format(err or (check.path .. ": the backend did not answer"))
end

--- `:LlmReject[!]`: withdraws the hunk under the cursor (all: every hunk of the edit, in every
--- buffer it touched); the text stays.
---@param opts { all: boolean, buf: integer|nil }
function M.reject(opts)
  for buf, hunks in pairs(H.targets(opts) or {}) do
    for _, h in ipairs(hunks) do
      H.remove(buf, h)
    end
  end
end

--- Withdraws every hunk an edit proposed, in every buffer (it failed, was cancelled, or a
--- follow-up replaced it).
---@param edit integer
function M.drop_edit(edit)
  for _, buf in ipairs(vim.tbl_keys(H.by_buf)) do
    for _, h in ipairs(vim.list_slice(H.by_buf[buf])) do
      if h.edit == edit then
        H.remove(buf, h)
      end
    end
  end
end

--- Withdraws one hunk of an edit, by its index (a later hunk of the edit replaces it).
---@param buf integer
---@param edit integer
---@param index integer
---@return boolean withdrawn  false when no such hunk is shown
function M.withdraw(buf, edit, index)
  for _, h in ipairs(H.by_buf[buf] or {}) do
    if h.edit == edit and h.index == index then
      H.remove(buf, h)
      return true
    end
  end
  return false
end

--- Moves the cursor to the next (dir = 1) or previous (dir = -1) hunk, wrapping around.
---@param dir integer
function M.jump(dir)
  local buf = vim.api.nvim_get_current_buf()
  local rows = {}
  for _, h in ipairs(H.by_buf[buf] or {}) do
    local s = H.span(buf, h)
    if s then
      table.insert(rows, s)
    end
  end
  if #rows == 0 then
    return notify("no proposed hunk in this buffer", vim.log.levels.WARN)
  end
  table.sort(rows)
  local cur = vim.api.nvim_win_get_cursor(0)[1] - 1
  local target
  if dir > 0 then
    target = rows[1]
    for _, r in ipairs(rows) do
      if r > cur then
        target = r
        break
      end
    end
  else
    target = rows[#rows]
    for i = #rows, 1, -1 do
      if rows[i] < cur then
        target = rows[i]
        break
      end
    end
  end
  vim.api.nvim_win_set_cursor(0, { target + 1, 0 })
end

-- Private ---------------------------------------------------------------------------------

H.ns = vim.api.nvim_create_namespace("frugal_hunks")
---@type table<integer, frugal.Hunk[]>
H.by_buf = {}
---@type table<integer, table<string, table|false>>  keymaps we replaced, to restore
H.saved_maps = {}

--- A buffer's file relative to its project's checkout, as edits name it to the model.
---@param buf integer
---@return string
function H.path_of(buf)
  local file = vim.api.nvim_buf_get_name(buf)
  local path = vim.uv.fs_realpath(file) or file
  local ok, root = pcall(require("frugal.project").checkout_root, buf)
  if ok and root and vim.startswith(path, root .. "/") then
    return path:sub(#root + 2)
  end
  return vim.fn.fnamemodify(file, ":t")
end

--- Whether `lines` are exactly the buffer's lines from `row` on.
---@param buf integer
---@param row integer
---@param lines string[]
---@return boolean
function H.lines_at(buf, row, lines)
  if row < 0 or row + #lines > vim.api.nvim_buf_line_count(buf) then
    return false
  end
  local cur = vim.api.nvim_buf_get_lines(buf, row, row + #lines, false)
  for i, l in ipairs(lines) do
    if cur[i] ~= l then
      return false
    end
  end
  return true
end

--- The current span of a hunk: first row and one past its last row.
---@param buf integer
---@param hunk frugal.Hunk
---@return integer|nil start
---@return integer|nil stop
function H.span(buf, hunk)
  local m = vim.api.nvim_buf_get_extmark_by_id(buf, H.ns, hunk.mark, { details = true })
  if not m or not m[1] then
    return nil
  end
  return m[1], m[3].end_row
end

--- Takes a hunk off the buffer (its preview and its entry); the last one unmaps the keys.
---@param buf integer
---@param hunk frugal.Hunk
function H.remove(buf, hunk)
  pcall(vim.api.nvim_buf_del_extmark, buf, H.ns, hunk.mark)
  if hunk.vmark then
    pcall(vim.api.nvim_buf_del_extmark, buf, H.ns, hunk.vmark)
  end
  if hunk.note then
    pcall(vim.api.nvim_buf_del_extmark, buf, H.ns, hunk.note)
  end
  local list = H.by_buf[buf] or {}
  for i, h in ipairs(list) do
    if h == hunk then
      table.remove(list, i)
      break
    end
  end
  if #list == 0 then
    H.by_buf[buf] = nil
    H.unmap_keys(buf)
  end
  for _, l in pairs(H.by_buf) do
    for _, h in ipairs(l) do
      if h.edit == hunk.edit then
        return
      end
    end
  end
  require("frugal.conversation").forget(hunk.edit)
end

--- Applies one hunk where its old lines are now. Refuses, leaving the hunk, when those lines
--- were edited since the preview.
---@param buf integer
---@param hunk frugal.Hunk
---@return boolean ok
---@return string|nil err
function H.apply(buf, hunk)
  local s, e = H.span(buf, hunk)
  if not s then
    return false, ('hunk "%s" lost its place'):format(hunk.title)
  end
  if hunk.new_file then
    if vim.api.nvim_buf_line_count(buf) ~= 1 or vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] ~= "" then
      return false, ("%s is no longer empty: the new file was not filled; reject it and ask again"):format(H.name(buf))
    end
    vim.api.nvim_buf_set_lines(buf, 0, -1, true, hunk.new)
    H.remove(buf, hunk)
    return true
  end
  if e - s ~= #hunk.old or not H.lines_at(buf, s, hunk.old) then
    return false, ('the lines of hunk "%s" were edited since the preview: reject it and ask again'):format(hunk.title)
  end
  vim.api.nvim_buf_set_lines(buf, s, e, true, hunk.new)
  H.remove(buf, hunk)
  return true
end

--- Starts a new undo block, so an accept never merges with the user's previous change.
---@param buf integer
function H.undo_break(buf)
  vim.api.nvim_buf_call(buf, function()
    vim.cmd("let &l:undolevels = &l:undolevels")
  end)
end

--- The hunks an accept or reject acts on, by buffer: every hunk of the edits owning the
--- current buffer's hunks (all), or the one under the cursor. Nil (after telling why) when
--- there are none.
---@param opts { all: boolean, buf: integer|nil }
---@return table<integer, frugal.Hunk[]>|nil
function H.targets(opts)
  local buf = util.buf(opts.buf)
  local list = H.by_buf[buf]
  -- All: the edit that started here counts too when its hunks are all in other buffers.
  local started = opts.all and require("frugal.conversation").started_in(buf)
  if (not list or #list == 0) and not started then
    return notify("no proposed hunk in this buffer", vim.log.levels.WARN)
  end
  if opts.all then
    local edits = M.edits_in(buf)
    if #edits == 0 then
      edits = { started.id }
    end
    local out = {}
    for b, hunks in pairs(H.by_buf) do
      for _, h in ipairs(hunks) do
        if vim.tbl_contains(edits, h.edit) then
          out[b] = out[b] or {}
          table.insert(out[b], h)
        end
      end
    end
    return out
  end
  local hunk = M.at(buf, vim.api.nvim_win_get_cursor(0)[1] - 1)
  if not hunk then
    return notify("no hunk under the cursor (]h / [h jump to one)", vim.log.levels.WARN)
  end
  return { [buf] = { hunk } }
end

--- A buffer's name for messages: relative to the current directory.
---@param buf integer
---@return string
function H.name(buf)
  return vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ":~:.")
end

--- Buffer-local keymaps while hunks are pending; whatever they shadowed comes back after.
---@param buf integer
function H.map_keys(buf)
  local km = require("frugal.config").options.keymaps
  if not km then
    return
  end
  -- Key name in `keymaps` → { function of this module, its argument, description }.
  local actions = {
    accept = { "accept", { all = false }, "frugal: accept hunk" },
    reject = { "reject", { all = false }, "frugal: reject hunk" },
    accept_all = { "accept", { all = true }, "frugal: accept all hunks" },
    reject_all = { "reject", { all = true }, "frugal: reject all hunks" },
    next = { "jump", 1, "frugal: next hunk" },
    prev = { "jump", -1, "frugal: previous hunk" },
  }
  local saved = {}
  vim.api.nvim_buf_call(buf, function()
    for name, lhs in pairs(km) do
      if lhs and actions[name] then
        local old = vim.fn.maparg(lhs, "n", false, true)
        saved[lhs] = (old.buffer == 1) and old or false
        local fn, arg, desc = unpack(actions[name])
        vim.keymap.set("n", lhs, function()
          M[fn](arg)
        end, { buffer = buf, desc = desc, nowait = true })
      end
    end
  end)
  H.saved_maps[buf] = saved
end

--- Removes the keymaps of |H.map_keys()| and restores what they shadowed.
---@param buf integer
function H.unmap_keys(buf)
  local saved = H.saved_maps[buf]
  H.saved_maps[buf] = nil
  if not saved or not vim.api.nvim_buf_is_valid(buf) then
    return
  end
  vim.api.nvim_buf_call(buf, function()
    for lhs, old in pairs(saved) do
      pcall(vim.keymap.del, "n", lhs, { buffer = buf })
      if old then
        vim.fn.mapset("n", false, old)
      end
    end
  end)
end

return M
