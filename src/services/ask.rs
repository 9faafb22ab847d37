//! Questions the backend asks the user and waits on (`ask` event → `answer` call): the shape a
//! confirmation before a dear request needs. An unanswered question gives up after its time
//! limit; a dismissed one answers `None`.

use super::Ui;
use crate::protocol::Event;
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
        ui: &Ui,
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
        ui.send(Event::Ask {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn an_answer_reaches_the_asker_and_a_silence_times_out() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let ui = Arc::new(Ui::new(tx));
        let asks = Arc::new(Asks::default());
        let asking = {
            let (ui, asks) = (ui.clone(), asks.clone());
            tokio::spawn(async move {
                asks.ask(
                    &ui,
                    "send?".into(),
                    vec!["yes".into(), "no".into()],
                    Duration::from_secs(20),
                )
                .await
            })
        };
        let Some(Event::Ask {
            ask,
            prompt,
            choices,
        }) = rx.recv().await
        else {
            panic!("no ask event");
        };
        assert_eq!(prompt, "send?");
        assert_eq!(choices, ["yes", "no"]);
        asks.answer(ask, Some(2));
        assert_eq!(
            asking.await.unwrap(),
            Some(1),
            "1-based from Lua, 0-based here"
        );
        // An answer to a question nobody waits on is ignored.
        asks.answer(ask, Some(1));
        let silent = asks.ask(
            &ui,
            "again?".into(),
            vec!["yes".into()],
            Duration::from_millis(50),
        );
        assert_eq!(silent.await, None);
        assert!(asks.waiting.lock().unwrap().is_empty());
    }
}
