--- The progress line of a request in flight (an edit, a review): a virtual line of its own
--- above the range it is about (never text at the end of a code line, where it would cover a
--- hunk's label), the worst case first: `⠋ frugal: at most $0.031 · likely ~$0.004 · 70 tok ·
--- 4.2 s`. While the user is asked to confirm it says so; while a retry waits, why and when.
--- The buffer's text is untouched.
local M = {}
local H = {}

H.ns = vim.api.nvim_create_namespace("frugal_progress")
H.spinner = { "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏" }

---@class frugal.Foresight
---@field worst string  the worst case reserved, as the backend shows money ("$0.0310")
---@field likely string|nil  the likely cost ("$0.0040"; nil: the model has no price)

---@class frugal.Progress
---@field phase "confirming"|"waiting"|"thinking"|"streaming"|"retrying"
---@field tokens integer
---@field elapsed_ms number
---@field cost string|nil  estimated cost so far, as the backend shows money (nil: unknown)
---@field note string|nil  why and when a retry comes ("rate limited, retrying in 4 s (2/3)")
---@field files integer|nil  files the model sees
---@field bytes integer|nil  the prompt's size in bytes
---@field foresight frugal.Foresight|nil  once the request is reserved

--- The text of a progress line, after the spinner.
---@param p frugal.Progress
---@return string
function M.text(p)
  local parts = {}
  if p.foresight then
    table.insert(parts, "at most " .. p.foresight.worst)
    if p.foresight.likely then
      table.insert(parts, "likely ~" .. p.foresight.likely)
    end
  end
  local secs = ("%.1f s"):format(p.elapsed_ms / 1000)
  if p.phase == "confirming" then
    table.insert(parts, "waiting for your answer")
  elseif p.phase == "retrying" and type(p.note) == "string" then
    table.insert(parts, p.note)
  elseif p.phase == "waiting" then
    table.insert(parts, "waiting for the model… " .. secs)
  elseif p.phase == "thinking" then
    table.insert(parts, "thinking… " .. secs)
  else
    table.insert(parts, ("%d tok · %s"):format(p.tokens, secs))
  end
  if p.files and p.bytes and p.phase ~= "retrying" and p.phase ~= "confirming" then
    table.insert(parts, ("%d file%s, %s"):format(p.files, p.files == 1 and "" or "s", H.size(p.bytes)))
  end
  if p.cost and p.phase ~= "confirming" then
    table.insert(parts, "so far ~" .. p.cost)
  end
  return "frugal: " .. table.concat(parts, " · ")
end

--- Shows (or updates) the progress line of `job` above `row`; returns its text (nil when the
--- buffer is gone).
---@param job { buf: integer, spin: integer, progress_mark: integer|nil }
---@param row integer  0-based first row of the range
---@param p frugal.Progress
---@return string|nil
function M.show(job, row, p)
  if not vim.api.nvim_buf_is_valid(job.buf) then
    return nil
  end
  job.spin = job.spin % #H.spinner + 1
  local text = H.spinner[job.spin] .. " " .. M.text(p)
  row = math.max(0, math.min(row, vim.api.nvim_buf_line_count(job.buf) - 1))
  local first = job.progress_mark == nil
  job.progress_mark = vim.api.nvim_buf_set_extmark(job.buf, H.ns, row, 0, {
    id = job.progress_mark,
    virt_lines = { { { text, "FrugalProgress" } } },
    virt_lines_above = true,
  })
  if first and row == 0 then
    H.reveal(job.buf)
  end
  return text
end

--- A virtual line above the first line is drawn only in the window's filler rows ('topfill'):
--- a window showing the buffer from its first line scrolls it into view.
---@param buf integer
function H.reveal(buf)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.api.nvim_win_call(win, function()
      local view = vim.fn.winsaveview()
      if view.topline == 1 and view.topfill == 0 then
        vim.fn.winrestview({ topline = 1, topfill = 1 })
      end
    end)
  end
end

--- A prompt size: `812 B`, `12.3 kB`.
---@param bytes integer
---@return string
function H.size(bytes)
  if bytes < 1000 then
    return ("%d B"):format(bytes)
  end
  return ("%.1f kB"):format(bytes / 1000)
end

--- The foresight of a `foresight` event (src/protocol.rs), for |frugal.Progress|.
---@param ev { worst_text: string, likely_text: string|nil }
---@return frugal.Foresight
function M.foresight(ev)
  return { worst = ev.worst_text, likely = ev.likely_text }
end

--- Removes the progress line of the buffer.
---@param buf integer
function M.clear(buf)
  vim.api.nvim_buf_clear_namespace(buf, H.ns, 0, -1)
  H.unreveal(buf)
end

--- The filler rows |H.reveal()| opened above the first line, given back once the progress line
--- is gone (else the window shows an empty filler row there), keeping those other virtual
--- lines above the first line still need.
---@param buf integer
function H.unreveal(buf)
  local above = 0
  for _, m in ipairs(vim.api.nvim_buf_get_extmarks(buf, -1, { 0, 0 }, { 0, -1 }, { details = true })) do
    local d = m[4] or {}
    if d.virt_lines_above and d.virt_lines then
      above = above + #d.virt_lines
    end
  end
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.api.nvim_win_call(win, function()
      local view = vim.fn.winsaveview()
      if view.topline == 1 and view.topfill > above then
        vim.fn.winrestview({ topline = 1, topfill = above })
      end
    end)
  end
end

return M
