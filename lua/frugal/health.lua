--- `:checkhealth frugal`
local M = {}
local H = {}

--- Reports Neovim, the backend, the API keys, the current project's file, the ledger and the
--- endpoint. Starts the backend if it is not running (the ledger and endpoint checks need it).
function M.check()
  local h = vim.health
  local config = require("frugal.config")
  local o = config.options

  h.start("frugal: Neovim")
  if vim.fn.has("nvim-0.10") == 1 then
    h.ok(("Neovim %s"):format(tostring(vim.version())))
  else
    h.error("Neovim 0.10 or newer is required")
  end

  h.start("frugal: backend")
  local bin, how = config.binary()
  local build = require("frugal.build")
  local mine = require("frugal.version")
  h.info(("plugin %s (protocol %d), root %s"):format(mine.version, mine.protocol, config.root()))
  if not bin or vim.fn.executable(bin) ~= 1 then
    h.error(("no backend %s"):format(bin and ("at " .. bin) or "installed"), {
      ("run %s (downloads the release v%s, else builds with cargo)"):format(build.fix(), mine.version),
      "or point setup({ binary = ... }) at one",
    })
  else
    local res = vim.system({ bin, "--version" }, { text = true }):wait(5000)
    local version = vim.trim(res.stdout or "")
    if res.code == 0 and version ~= "" then
      h.ok(("%s (%s)"):format(version, bin))
    else
      h.error(("%s --version failed (exit %s): %s"):format(bin, tostring(res.code), res.stderr or ""))
    end
    h.info(H.origin(bin, how, build))
    local info = require("frugal.rpc").info()
    if info then
      h.ok(("running: pid %s, log %s"):format(tostring(info.pid), require("frugal.rpc").log_path()))
    else
      h.info("not running yet: started now for the checks below")
    end
  end

  -- One call serves the key, ledger, endpoint and project checks (the backend owns the rules).
  local project_input, where, project = H.project()
  local res, err
  local runs = bin and vim.fn.executable(bin) == 1
  if runs then
    res, err = require("frugal.rpc").request("health", { project = project_input }, 15000)
    local info = require("frugal.rpc").info()
    if info then
      local same = info.version == mine.version and info.protocol == mine.protocol
      local line = ("backend %s (protocol %s), plugin %s (protocol %d)"):format(
        tostring(info.version),
        tostring(info.protocol or "none"),
        mine.version,
        mine.protocol
      )
      if same then
        vim.health.ok(line)
      else
        vim.health.warn(line, { ("run %s to install the backend of this plugin version"):format(build.fix()) })
      end
    end
  end

  h.start("frugal: setup()")
  H.show(res, "setup")

  h.start("frugal: API keys")
  H.show(res, "keys")

  h.start("frugal: project")
  if not project then
    h.info("the current buffer has no file: no project")
  else
    h.info(("project: %s"):format(where.root))
    local checkout = where.checkout
    if checkout ~= where.root then
      local msg = "git worktree %s of the repository %s: their spend counts as one project; "
        .. "this worktree's own .frugal.toml applies"
      h.info(msg:format(checkout, where.root))
    end
    H.show(res, "project")
    -- A symbolic link (or a directory, a FIFO) is never read: the error above says why.
    if not require("frugal.project").special(project.file) then
      H.trust(project)
    end
  end

  h.start("frugal: ledger and endpoint")
  if runs and not res then
    h.error(err or "the backend did not answer")
  end
  H.show(res, "ledger")

  h.start("frugal: judge (:LlmReview)")
  if res then
    H.show(res, "judge")
  else
    h.info(("judge_model: %s"):format(o.judge_model))
  end

  h.start("frugal: files")
  H.show(res, "files")

  h.start("frugal: settings")
  local settings = require("frugal.rpc").settings()
  if settings then
    h.info(("endpoint: %s"):format(settings.base_url))
    h.info(("data: %s"):format(settings.data_dir))
    h.info(
      ("network: an answer silent for %d s (stall_timeout_s) or longer than max_tokens allows is cut; "):format(
        settings.stall_timeout_s or 60
      )
        .. (res and res.retry_policy and (res.retry_policy .. "; ") or "")
        .. "OpenRouter routes only to providers that honour max_tokens (provider.require_parameters)"
    )
    if res and res.placement then
      h.info(("answers: %s"):format(res.placement))
    end
  end
  h.info(("model: %s"):format(require("frugal").current_model()))
  h.info(("log: %s"):format(require("frugal.rpc").log_path()))
end

--- The backend's checks of `section` (src/rpc/health.rs), in the order sent.
---@param res {checks: {section: string, level: string, message: string, advice: string|nil}[]}|nil
---@param section string
function H.show(res, section)
  local h = vim.health
  for _, c in ipairs(res and res.checks or {}) do
    if c.section == section then
      local advice = c.advice and { c.advice } or nil
      if c.level == "ok" then
        h.ok(c.message)
      elseif c.level == "info" then
        h.info(c.message)
      elseif c.level == "warn" then
        h.warn(c.message, advice)
      else
        h.error(c.message, advice)
      end
    end
  end
end

--- Where the backend came from: setup()'s `binary`, a release download (`bin/frugal.source`,
--- checked against the file's size) or a cargo build.
---@param bin string
---@param how string|nil
---@param build table
---@return string
function H.origin(bin, how, build)
  if how == "setup" then
    return "from setup({ binary = ... })"
  elseif how == "built" then
    return "built with cargo (target/release)"
  end
  local src = build.source(require("frugal.config").root())
  local st = vim.uv.fs_stat(bin)
  if src and st and src.size == st.size then
    return ("downloaded: %s (sha256 %s, checked)"):format(src.url, src.sha256)
  end
  return "in bin/, but not as :LlmBuild downloaded it (no matching bin/frugal.source)"
end

--- The trust state of the project file.
---@param project frugal.Project
function H.trust(project)
  local h = vim.health
  if project.state == "absent" then
    h.info("no .frugal.toml: your setup() budget applies")
  elseif project.state == "trusted" then
    h.ok(("%s is trusted"):format(project.file))
  elseif project.denied then
    h.warn(("%s is denied: ignored, your setup() budget applies"):format(project.file))
  else
    h.warn(("%s is not trusted: ignored, your setup() budget applies"):format(project.file), {
      "open it, read it, and run :trust to use it",
    })
  end
end

--- The project of the window :checkhealth was opened from, as the backend wants it (it parses
--- a trusted file, and refuses a symbolic link or other non-file whatever its state), and as
--- found.
---@return table|userdata input, frugal.Where|nil where, frugal.Project|nil project
function H.project()
  local buf = vim.api.nvim_get_current_buf()
  -- :checkhealth opens its own buffer: report the window we came from.
  local alt = vim.fn.bufnr("#")
  if vim.bo[buf].buftype ~= "" and alt > 0 then
    buf = alt
  end
  local project = require("frugal.project").project_quiet(buf, true)
  return project or vim.NIL, project and require("frugal.project").where(buf, { cached = true }), project
end

return M
