--- Settling proposed hunks: `:LlmAccept[!]` writes them into their buffers (each buffer's as
--- one undo step), `:LlmReject[!]` withdraws them; the text stays until a hunk is accepted.
local M = {}
local H = {}

local util = require("frugal.util")
local notify = util.notify
local hunks = require("frugal.hunks")

--- `:LlmAccept[!]`: applies the hunk under the cursor (all: every hunk of the edit owning
--- this buffer's hunks, in every buffer it touched), each buffer's as one undo step apart from
--- the user's changes. Refused while the answer still streams.
---@param opts { all: boolean, buf: integer|nil }
function M.accept(opts)
  local targets = H.targets(opts)
  if not targets then
    return
  end
  local request = require("frugal.request")
  for buf in pairs(targets) do
    if request.busy(buf, "edit") then
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
  local accepted, changed = 0, {}
  for buf, list in pairs(targets) do
    local refused = H.refused(list)
    if refused then
      notify(refused, vim.log.levels.WARN)
    else
      H.undo_break(buf)
      for _, h in ipairs(list) do
        local ok, err = H.apply(buf, h)
        if not ok then
          notify(err, vim.log.levels.WARN)
        else
          accepted = accepted + 1
          changed[buf] = true
        end
      end
    end
  end
  if opts.all and accepted > 0 then
    notify(H.summary(accepted, vim.tbl_keys(changed)))
  end
end

--- What `:LlmAccept!` did: `accepted 5 hunks, 3 buffers unsaved — :wall`.
---@param accepted integer
---@param bufs integer[]  the buffers it changed
---@return string
function H.summary(accepted, bufs)
  local unsaved = #vim.tbl_filter(function(b)
    return vim.api.nvim_buf_is_valid(b) and vim.bo[b].modified
  end, bufs)
  local what = ("accepted %d hunk%s"):format(accepted, accepted == 1 and "" or "s")
  if unsaved == 0 then
    return ("frugal: %s in %d buffer%s"):format(what, #bufs, #bufs == 1 and "" or "s")
  end
  return ("frugal: %s, %d buffer%s unsaved — :wall"):format(what, unsaved, unsaved == 1 and "" or "s")
end

--- Why a buffer's hunks may not be applied now, or nil: for a buffer frugal created or
--- loaded for the edit, the backend checks its path again (it may have been turned into a
--- link into `.git` or out of the project since the proposal). The shim judges no path.
---@param list frugal.Hunk[]  hunks of one buffer
---@return string|nil
function H.refused(list)
  local check, new_file = nil, false
  for _, h in ipairs(list) do
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
  for buf, list in pairs(H.targets(opts) or {}) do
    for _, h in ipairs(list) do
      hunks.remove(buf, h, "rejected")
    end
  end
end

--- Applies one hunk where its old lines are now. Refuses, leaving the hunk, when those lines
--- were edited since the preview.
---@param buf integer
---@param hunk frugal.Hunk
---@return boolean ok
---@return string|nil err
function H.apply(buf, hunk)
  local s, e = hunks.span(buf, hunk)
  if not s then
    return false, ('hunk "%s" lost its place'):format(hunk.title)
  end
  if hunk.new_file then
    if vim.api.nvim_buf_line_count(buf) ~= 1 or vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] ~= "" then
      return false, ("%s is no longer empty: the new file was not filled; reject it and ask again"):format(H.name(buf))
    end
    vim.api.nvim_buf_set_lines(buf, 0, -1, true, hunk.new)
    hunks.remove(buf, hunk, "accepted")
    return true
  end
  if e - s ~= #hunk.old or not hunks.lines_at(buf, s, hunk.old) then
    return false, ('the lines of hunk "%s" were edited since the preview: reject it and ask again'):format(hunk.title)
  end
  vim.api.nvim_buf_set_lines(buf, s, e, true, hunk.new)
  hunks.remove(buf, hunk, "accepted")
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
  local list = hunks.all()[buf]
  -- All: the edit that started here counts too when its hunks are all in other buffers.
  local started = opts.all and require("frugal.conversation").started_in(buf)
  if (not list or #list == 0) and not started then
    return notify("no proposed hunk in this buffer", vim.log.levels.WARN)
  end
  if opts.all then
    local edits = hunks.edits_in(buf)
    if #edits == 0 then
      edits = { started.id }
    end
    local out = {}
    for b, pending in pairs(hunks.all()) do
      for _, h in ipairs(pending) do
        if vim.tbl_contains(edits, h.edit) then
          out[b] = out[b] or {}
          table.insert(out[b], h)
        end
      end
    end
    return out
  end
  local hunk = hunks.at(buf, vim.api.nvim_win_get_cursor(0)[1] - 1)
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

return M
