-- The plugin's own lazy.nvim spec, merged with the user's: frugal loads on its first command
-- (the backend starts then too), never at start-up. build.lua at this root installs the backend.
return {
  "frugal-nvim/frugal.nvim",
  cmd = {
    "LlmEdit",
    "LlmAccept",
    "LlmReject",
    "LlmCancel",
    "LlmReview",
    "LlmAsk",
    "LlmApply",
    "LlmHistory",
    "LlmModel",
    "LlmUsage",
    "LlmContext",
    "LlmHunks",
    "LlmKey",
    "LlmBuild",
  },
}
