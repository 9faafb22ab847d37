--- The progress line of an edit in flight: a spinner, tokens, time, the running cost, or why
--- and when a retry comes, as virtual text at the end of a line (the buffer's text untouched).
local M = {}
local H = {}

H.ns = vim.api.nvim_create_namespace("frugal_progress")
H.spinner = { "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏" }

---@class frugal.Progress
---@field phase "waiting"|"thinking"|"streaming"|"retrying"
---@field tokens integer
---@field elapsed_ms number
---@field cost string|nil  estimated cost so far, as the backend shows money (nil: unknown)
---@field note string|nil  why and when a retry comes ("rate limited, retrying in 4 s (2/3)")
---@field files integer|nil  files the model sees
---@field bytes integer|nil  the prompt's size in bytes
---@field foresight string|nil  "likely ~$0.004 · at most $0.031" once the request is reserved

--- Shows (or updates) the progress line of `edit` at `row`; returns its text (nil when the
--- buffer is gone).
---@param edit { buf: integer, spin: integer, progress_mark: integer|nil }
---@param row integer  0-based
---@param p frugal.Progress
---@return string|nil
function M.show(edit, row, p)
  if not vim.api.nvim_buf_is_valid(edit.buf) then
    return nil
  end
  edit.spin = edit.spin % #H.spinner + 1
  local spin = H.spinner[edit.spin]
  local text
  if p.phase == "retrying" and type(p.note) == "string" then
    text = ("%s frugal: %s"):format(spin, p.note)
  elseif p.phase == "waiting" then
    text = ("%s frugal: waiting for the model… %.1fs"):format(spin, p.elapsed_ms / 1000)
  elseif p.phase == "thinking" then
    text = ("%s frugal: thinking… %.1fs"):format(spin, p.elapsed_ms / 1000)
  else
    text = ("%s frugal: %d tokens · %.1fs"):format(spin, p.tokens, p.elapsed_ms / 1000)
  end
  if p.files and p.bytes and p.phase ~= "retrying" then
    text = text .. (" · %d file%s, %s"):format(p.files, p.files == 1 and "" or "s", H.size(p.bytes))
  end
  if p.cost then
    text = text .. " · ~" .. p.cost
  end
  if p.foresight then
    text = text .. " · " .. p.foresight
  end
  row = math.min(row, vim.api.nvim_buf_line_count(edit.buf) - 1)
  edit.progress_mark = vim.api.nvim_buf_set_extmark(edit.buf, H.ns, row, 0, {
    id = edit.progress_mark,
    virt_text = { { text, "FrugalProgress" } },
    virt_text_pos = "eol",
    hl_mode = "combine",
  })
  return text
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

--- Removes the progress line of the buffer.
---@param buf integer
function M.clear(buf)
  vim.api.nvim_buf_clear_namespace(buf, H.ns, 0, -1)
end

return M
