//! Questions the backend puts to the user and waits on (`question` event → `choose` call): the
//! shape a confirmation before a dear request needs. An unanswered question gives up after its time
//! limit; a dismissed one answers `None`.

use super::Ui;
use crate::protocol::Event;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

#[derive(Default)]
pub struct Questions {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Option<usize>>>>,
}

impl Questions {
    /// Puts the question and waits up to `limit` for the user's choice (0-based), `None` when dismissed,
    /// unanswered in time, or the shim is gone.
    pub async fn pose(
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
            .expect("questions lock poisoned")
            .insert(id, tx);
        ui.send(Event::Question {
            question: id,
            prompt,
            choices,
        });
        let answer = tokio::time::timeout(limit, rx).await;
        self.waiting
            .lock()
            .expect("questions lock poisoned")
            .remove(&id);
        match answer {
            Ok(Ok(choice)) => choice,
            _ => None,
        }
    }

    /// The user's choice, from the shim: `choice` 1-based, as Lua counts.
    pub fn choose(&self, id: u64, choice: Option<usize>) {
        let tx = self
            .waiting
            .lock()
            .expect("questions lock poisoned")
            .remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(choice.and_then(|c| c.checked_sub(1)));
        }
    }
}

/// The next event a test's UI channel carries, which must be a question: its id, prompt and
/// choices.
#[cfg(test)]
pub(crate) async fn next_question(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> (u64, String, Vec<String>) {
    match rx.recv().await {
        Some(Event::Question {
            question,
            prompt,
            choices,
        }) => (question, prompt, choices),
        other => panic!("no question event: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_choice_reaches_the_asker_and_a_silence_times_out() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let ui = Arc::new(Ui::new(tx));
        let questions = Arc::new(Questions::default());
        let asking = {
            let (ui, questions) = (ui.clone(), questions.clone());
            tokio::spawn(async move {
                questions
                    .pose(
                        &ui,
                        "send?".into(),
                        vec!["yes".into(), "no".into()],
                        Duration::from_secs(20),
                    )
                    .await
            })
        };
        let (question, prompt, choices) = next_question(&mut rx).await;
        assert_eq!(prompt, "send?");
        assert_eq!(choices, ["yes", "no"]);
        questions.choose(question, Some(2));
        assert_eq!(
            asking.await.unwrap(),
            Some(1),
            "1-based from Lua, 0-based here"
        );
        // A choice for a question nobody waits on is ignored.
        questions.choose(question, Some(1));
        let silent = questions.pose(
            &ui,
            "again?".into(),
            vec!["yes".into()],
            Duration::from_millis(50),
        );
        assert_eq!(silent.await, None);
        assert!(questions.waiting.lock().unwrap().is_empty());
    }
}
