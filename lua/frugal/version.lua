--- The plugin's version and the backend protocol it speaks. `version` equals Cargo.toml's
--- (a test keeps them equal); `protocol` equals `PROTOCOL` in src/protocol.rs. `:LlmBuild`
--- downloads the release `v<version>`; the shim compares both with the backend's `hello`.
---@class frugal.Version
---@field version string
---@field protocol integer
return {
  version = "0.1.0",
  protocol = 2,
}
