//! The envelope of every call: the method and params decoded once into a [`Call`] (each call's
//! types live in its own module beside its handler), and the answer as a `reply` event.

use super::cancel::Cancel;
use super::choose::ChooseArgs;
use super::context::ContextArgs;
use super::context::ContextReply;
use super::health::{HealthArgs, HealthReply};
use super::hello::{Hello, HelloReply};
use super::history::{DeleteReply, EntryArgs, HistoryArgs, HistoryReply, OpenReply};
use super::key::{KeyAction, KeyArgs, KeyReply};
use super::models::ModelsArgs;
use super::outcome::OutcomeArgs;
use super::paths::CheckPathArgs;
use super::project::{ProjectArgs, ProjectReply};
use super::status::{StatusArgs, StatusReply};
use super::usage::UsageArgs;
use crate::ask::request::AskRequest;
use crate::edit::apply::ApplyRequest;
use crate::edit::request::EditRequest;
use crate::protocol::{decode, Event, ModelList, ProtocolError, UsageReport};
use crate::review::request::ReviewRequest;
use rmpv::Value;
use serde::Serialize;

/// A decoded call.
#[derive(Debug)]
pub enum Call {
    Hello(Hello),
    Edit(Box<EditRequest>),
    Review(Box<ReviewRequest>),
    Ask(Box<AskRequest>),
    Apply(Box<ApplyRequest>),
    Cancel(Cancel),
    /// Hunks' fates, for the ledger (`hunk_outcomes`).
    Outcome(OutcomeArgs),
    Models(ModelsArgs),
    Usage(UsageArgs),
    Status(StatusArgs),
    Health(HealthArgs),
    Choose(ChooseArgs),
    Context(ContextArgs),
    CheckPath(CheckPathArgs),
    Project(ProjectArgs),
    Version,
    /// `:LlmKey …`: which one, and its arguments.
    Key(KeyAction, KeyArgs),
    History(HistoryArgs),
    HistoryOpen(EntryArgs),
    /// `history_delete` (an `id`) and `history_clear` (none).
    HistoryDelete(EntryArgs),
}

impl Call {
    /// Decodes `params` for `method`. An absent params table (`nil`, or an empty Lua table
    /// that arrived as an array) counts as `{}`.
    pub fn decode(method: &str, params: Value) -> Result<Call, ProtocolError> {
        let params = match params {
            Value::Nil => Value::Map(Vec::new()),
            Value::Array(a) if a.is_empty() => Value::Map(Vec::new()),
            v => v,
        };
        Ok(match method {
            "hello" => Call::Hello(decode("hello", params)?),
            "edit" => Call::Edit(Box::new(EditRequest::decode(params)?)),
            "review" => Call::Review(Box::new(ReviewRequest::decode(params)?)),
            "ask" => Call::Ask(Box::new(AskRequest::decode(params)?)),
            "apply" => Call::Apply(Box::new(ApplyRequest::decode(params)?)),
            "cancel" => Call::Cancel(decode("cancel", params)?),
            "outcome" => Call::Outcome(decode("outcome", params)?),
            "models" => Call::Models(decode("models", params)?),
            "usage" => Call::Usage(decode("usage", params)?),
            "status" => Call::Status(decode("status", params)?),
            "health" => Call::Health(decode("health", params)?),
            "choose" => Call::Choose(decode("choose", params)?),
            "context" => Call::Context(ContextArgs::decode(params)?),
            "check_path" => Call::CheckPath(decode("check_path", params)?),
            "project" => Call::Project(decode("project", params)?),
            "version" => Call::Version,
            "key" => Call::Key(KeyAction::Show, decode("key", params)?),
            "key_create" => Call::Key(KeyAction::Create, decode("key_create", params)?),
            "key_limit" => Call::Key(KeyAction::Limit, decode("key_limit", params)?),
            "key_disable" => Call::Key(KeyAction::Disable, decode("key_disable", params)?),
            "history" => Call::History(decode("history", params)?),
            "history_open" => Call::HistoryOpen(decode("history_open", params)?),
            "history_delete" => Call::HistoryDelete(decode("history_delete", params)?),
            "history_clear" => {
                let a: EntryArgs = decode("history_clear", params)?;
                Call::HistoryDelete(EntryArgs { id: None, ..a })
            }
            other => return Err(ProtocolError::UnknownMethod(other.to_string())),
        })
    }
}

/// An empty result: the call was accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {}

/// Everything a reply can carry.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Accepted(Accepted),
    Hello(HelloReply),
    Models(ModelList),
    Usage(Box<UsageReport>),
    Status(StatusReply),
    Health(Box<HealthReply>),
    Context(ContextReply),
    Project(Box<ProjectReply>),
    Version(&'static str),
    Key(KeyReply),
    Choice(super::choose::ChooseReply),
    History(Box<HistoryReply>),
    HistoryOpen(OpenReply),
    Deleted(DeleteReply),
}

/// The `reply` to the call `seq`.
pub(super) fn reply_event(seq: u64, method: &str, outcome: Result<Answer, ProtocolError>) -> Event {
    let outcome = outcome.and_then(|result| {
        encode(&result)
            .map_err(|e| ProtocolError::Refused(format!("frugal: cannot encode the reply: {e}")))
    });
    match outcome {
        Ok(result) => Event::Reply {
            seq,
            ok: true,
            result: Some(result),
            message: None,
        },
        Err(e) => {
            tracing::info!(%method, "refused: {e}");
            Event::Reply {
                seq,
                ok: false,
                result: None,
                message: Some(e.to_string()),
            }
        }
    }
}

/// A reply as msgpack, structs as maps (as [`Event::encode`]).
fn encode(answer: &Answer) -> Result<Value, String> {
    let bytes = rmp_serde::to_vec_named(answer).map_err(|e| e.to_string())?;
    rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::request::ContextFile;
    use crate::protocol::{Judgement, Level, Verdict};

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
        v.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    #[test]
    fn unknown_methods_and_malformed_params_are_refused_with_a_message() {
        let e = Call::decode("nosuch", Value::Nil).unwrap_err();
        assert_eq!(e.to_string(), "frugal: unknown request \"nosuch\"");
        let e = Call::decode("cancel", map(&[])).unwrap_err();
        assert!(
            e.to_string().starts_with("cancel: malformed request"),
            "{e}"
        );
        assert!(e.to_string().contains("id"), "{e}");
        let e = Call::decode("cancel", map(&[("id", Value::from("x"))])).unwrap_err();
        assert!(e.to_string().contains("cancel"), "{e}");
        let e = Call::decode("models", Value::from(3)).unwrap_err();
        assert!(e.to_string().contains("named arguments"), "{e}");
        let e = Call::decode("usage", map(&[("all", Value::from("yes"))])).unwrap_err();
        assert!(e.to_string().starts_with("usage: malformed request"), "{e}");
        let e = Call::decode("status", map(&[("prject", Value::Nil)])).unwrap_err();
        assert!(e.to_string().contains("prject"), "{e}");
        let bad_state = map(&[(
            "project",
            map(&[
                ("path", Value::from("/p/a.lua")),
                ("file", Value::from("/p/.frugal.toml")),
                ("state", Value::from("maybe")),
            ]),
        )]);
        let e = Call::decode("status", bad_state).unwrap_err();
        assert!(e.to_string().contains("maybe"), "{e}");
    }

    #[test]
    fn key_calls_name_their_action() {
        let project = map(&[
            ("path", Value::from("/p/a.lua")),
            ("file", Value::from("/p/.frugal.toml")),
            ("state", Value::from("absent")),
        ]);
        let args = map(&[
            ("project", project.clone()),
            (
                "args",
                Value::Array(vec![Value::from("5"), Value::from("monthly")]),
            ),
        ]);
        assert!(matches!(
            Call::decode("key_create", args),
            Ok(Call::Key(KeyAction::Create, KeyArgs { args, .. })) if args == ["5", "monthly"]
        ));
        assert!(matches!(
            Call::decode("key", map(&[("project", project.clone())])),
            Ok(Call::Key(KeyAction::Show, KeyArgs { args, .. })) if args.is_empty()
        ));
        let e = Call::decode("key_limit", map(&[])).unwrap_err();
        assert!(
            e.to_string().starts_with("key_limit: malformed request"),
            "{e}"
        );
        assert!(e.to_string().contains("project"), "{e}");
    }

    #[test]
    fn empty_params_are_an_empty_table() {
        assert!(matches!(
            Call::decode("version", Value::Nil),
            Ok(Call::Version)
        ));
        assert!(matches!(
            Call::decode("models", Value::Array(vec![])),
            Ok(Call::Models(ModelsArgs { token: 0, .. }))
        ));
    }

    #[test]
    fn edit_requests_check_their_lines_and_selection() {
        let project = map(&[
            ("path", Value::from("/p/a.lua")),
            ("file", Value::from("/p/.frugal.toml")),
            ("state", Value::from("absent")),
        ]);
        let base = |lines: Value, sel: (u64, u64)| {
            map(&[
                ("id", Value::from(1)),
                ("buf", Value::from(1)),
                ("file", Value::from("a.py")),
                ("instruction", Value::from("x")),
                ("sel_start", Value::from(sel.0)),
                ("sel_end", Value::from(sel.1)),
                ("win_start", Value::from(0)),
                ("total_lines", Value::from(2)),
                ("project", project.clone()),
                ("lines", lines),
            ])
        };
        let ok = Call::decode(
            "edit",
            base(
                Value::Array(vec![Value::from("a"), Value::from("b")]),
                (0, 2),
            ),
        );
        assert!(matches!(ok, Ok(Call::Edit(r)) if r.lines == ["a", "b"]));
        let e = Call::decode(
            "edit",
            base(Value::Array(vec![Value::Binary(vec![0xff])]), (0, 1)),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("line 1 is not valid UTF-8"),
            "{e}"
        );
        let e =
            Call::decode("edit", base(Value::Array(vec![Value::from("a")]), (0, 3))).unwrap_err();
        assert!(e.to_string().contains("outside the lines sent"), "{e}");
    }

    #[test]
    fn edit_context_texts_are_checked_to_be_utf8() {
        let project = map(&[
            ("path", Value::from("/p/a.lua")),
            ("file", Value::from("/p/.frugal.toml")),
            ("state", Value::from("absent")),
        ]);
        let req = |context: Value, history: Value| {
            map(&[
                ("id", Value::from(1)),
                ("buf", Value::from(1)),
                ("file", Value::from("a.py")),
                ("instruction", Value::from("x")),
                ("sel_start", Value::from(0)),
                ("sel_end", Value::from(1)),
                ("win_start", Value::from(0)),
                ("total_lines", Value::from(1)),
                ("project", project.clone()),
                ("lines", Value::Array(vec![Value::from("a")])),
                ("context", context),
                ("history", history),
            ])
        };
        let ctx = |lines: Vec<Value>| {
            Value::Array(vec![map(&[
                ("path", Value::from("b.py")),
                ("buf", Value::from(3)),
                ("lines", Value::Array(lines)),
            ])])
        };
        let ok = Call::decode(
            "edit",
            req(ctx(vec![Value::from("b")]), Value::Array(vec![])),
        );
        let Ok(Call::Edit(r)) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(
            r.context,
            [ContextFile {
                path: "b.py".into(),
                buf: 3,
                lines: Some(vec!["b".into()])
            }]
        );
        let e = Call::decode(
            "edit",
            req(ctx(vec![Value::Binary(vec![0xe9])]), Value::Array(vec![])),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the context file b.py: line 1 is not valid UTF-8"),
            "{e}"
        );
        // A msgpack str of one byte that is not UTF-8.
        let bad = rmpv::decode::read_value(&mut [0xa1u8, 0xff].as_slice()).unwrap();
        let history = Value::Array(vec![map(&[
            ("instruction", Value::from("x")),
            ("answer", bad),
        ])]);
        let e = Call::decode("edit", req(Value::Array(vec![]), history)).unwrap_err();
        assert!(
            e.to_string()
                .contains("history[1].answer is not valid UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn review_requests_need_hunks_and_verdicts_encode_their_word() {
        let project = map(&[
            ("path", Value::from("/p/a.lua")),
            ("file", Value::from("/p/.frugal.toml")),
            ("state", Value::from("absent")),
        ]);
        let hunk = |line: u64| {
            map(&[
                ("path", Value::from("a.lua")),
                ("line", Value::from(line)),
                ("old", Value::Array(vec![Value::from("x")])),
                ("new", Value::Array(vec![])),
            ])
        };
        let req = |hunks: Vec<Value>| {
            map(&[
                ("id", Value::from(4)),
                ("buf", Value::from(1)),
                ("instruction", Value::from("do it")),
                ("project", project.clone()),
                ("hunks", Value::Array(hunks)),
            ])
        };
        let ok = Call::decode("review", req(vec![hunk(3)]));
        assert!(
            matches!(&ok, Ok(Call::Review(r)) if r.hunks[0].line == 3 && r.hunks[0].new.is_empty() && r.hunks[0].before.is_empty()),
            "{ok:?}"
        );
        let e = Call::decode("review", req(vec![])).unwrap_err();
        assert!(
            e.to_string().starts_with("no pending hunk to review"),
            "{e}"
        );
        let e = Call::decode("review", req(vec![hunk(0)])).unwrap_err();
        assert!(
            e.to_string().starts_with("review: malformed request"),
            "{e}"
        );
        let ev = Event::ReviewDone {
            id: 4,
            buf: 1,
            verdicts: vec![Verdict {
                item: 1,
                hunk: 1,
                path: "a.lua".into(),
                line: 3,
                verdict: Judgement::None,
                reason: "no verdict: x".into(),
            }],
            cost_usd: None,
            cost_text: None,
            model: "m".into(),
            unread: None,
            tokens: 0,
            elapsed_ms: 0,
        };
        let v = ev.encode().unwrap();
        assert_eq!(get(&v, "kind").and_then(Value::as_str), Some("review_done"));
        assert_eq!(get(&v, "unread"), None);
        let first = &get(&v, "verdicts").unwrap().as_array().unwrap()[0];
        assert_eq!(get(first, "verdict").and_then(Value::as_str), Some("none"));
    }

    #[test]
    fn events_encode_as_maps_with_their_kind() {
        let ev = Event::Notify {
            level: Level::Warn,
            message: "m".into(),
        };
        let v = ev.encode().unwrap();
        assert_eq!(get(&v, "kind").and_then(Value::as_str), Some("notify"));
        assert_eq!(get(&v, "level").and_then(Value::as_str), Some("warn"));
        let reply = reply_event(
            7,
            "status",
            Ok(Answer::Status(StatusReply {
                root: "/p".into(),
                text: "$0.00 today".into(),
            })),
        );
        let v = reply.encode().unwrap();
        assert_eq!(get(&v, "seq").and_then(Value::as_u64), Some(7));
        assert!(get(&v, "message").is_none());
        let result = get(&v, "result").unwrap();
        assert_eq!(
            get(result, "text").and_then(Value::as_str),
            Some("$0.00 today")
        );
        let accepted = reply_event(1, "cancel", Ok(Answer::Accepted(Accepted {})));
        let v = accepted.encode().unwrap();
        assert_eq!(get(&v, "result"), Some(&Value::Map(vec![])));
        let v = Event::waiting(1, 2, 0).encode().unwrap();
        assert_eq!(get(&v, "cost_usd"), None);
        assert_eq!(get(&v, "note"), None);
    }
}
