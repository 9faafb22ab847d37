//! What the shim sends for `:LlmAsk` (the `ask` call's parameters, decoded by `rpc/wire.rs`):
//! an edit's request (the range asked about with its window, context files, earlier turns,
//! diagnostics; `instruction` is the question) and the ask buffer the answer streams into.

use crate::edit::request::EditRequest;
use crate::protocol::ProtocolError;
use rmpv::Value;

/// `:LlmAsk`'s request.
#[derive(Debug, Clone)]
pub struct AskRequest {
    /// The buffer the answer streams into (`frugal://ask/<tab>`).
    pub ask_buf: i64,
    /// The buffer asked about, its range and files, the question as `instruction`, and the
    /// earlier turns of the conversation as `history`.
    pub about: EditRequest,
}

impl AskRequest {
    /// Decodes the shim's map: `ask_buf` and the fields of an `edit` call.
    pub fn decode(v: Value) -> Result<AskRequest, ProtocolError> {
        let Value::Map(entries) = v else {
            return Err(ProtocolError::Malformed {
                method: "ask",
                message: "expected a table of named arguments".into(),
            });
        };
        let mut ask_buf = None;
        let mut rest = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match k.as_str() {
                Some("ask_buf") => ask_buf = v.as_i64(),
                _ => rest.push((k, v)),
            }
        }
        let ask_buf = ask_buf.ok_or(ProtocolError::Malformed {
            method: "ask",
            message: "missing ask_buf".into(),
        })?;
        let about = EditRequest::decode(Value::Map(rest)).map_err(|e| match e {
            ProtocolError::Refused(m) if m.starts_with("the instruction is empty") => {
                ProtocolError::Refused("the question is empty: say what to ask".into())
            }
            e => e,
        })?;
        Ok(AskRequest { ask_buf, about })
    }
}
