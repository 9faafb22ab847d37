//! Questions the backend asks the user and waits on (`ask` event → `answer` call): the shape a
//! confirmation before a dear request needs. An unanswered question gives up after its time
//! limit; a dismissed one answers `None`.

use crate::protocol::Event;
use crate::state::State;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

#[derive(Default)]
pub struct Asks {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Option<usize>>>>,
}

impl Asks {
    /// Asks and waits up to `limit` for the user's choice (0-based), `None` when dismissed,
    /// unanswered in time, or the shim is gone.
    pub async fn ask(
        &self,
        state: &State,
        prompt: String,
        choices: Vec<String>,
        limit: Duration,
    ) -> Option<usize> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .expect("asks lock poisoned")
            .insert(id, tx);
        state.send_ui(Event::Ask {
            ask: id,
            prompt,
            choices,
        });
        let answer = tokio::time::timeout(limit, rx).await;
        self.waiting.lock().expect("asks lock poisoned").remove(&id);
        match answer {
            Ok(Ok(choice)) => choice,
            _ => None,
        }
    }

    /// The shim's answer: `choice` 1-based, as Lua counts.
    pub fn answer(&self, id: u64, choice: Option<usize>) {
        let tx = self.waiting.lock().expect("asks lock poisoned").remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(choice.and_then(|c| c.checked_sub(1)));
        }
    }
}
