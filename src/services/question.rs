//! Questions the backend puts to the user and waits on (`question` event → `choose` call): the
//! shape a confirmation before a dear request needs. An unanswered question gives up after its time
//! limit; a dismissed one answers `None`. The shim never closes a question: one answered after
//! its time is known as expired ([`Choice::Expired`]), so the shim can act on a late answer
//! (a late "Send" starts the request again) instead of it being dropped.

use super::Ui;
use crate::protocol::Event;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// How many expired questions are remembered (a late answer to an older one is ignored).
const EXPIRED_KEPT: usize = 64;

#[derive(Default)]
pub struct Questions {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Option<usize>>>>,
    /// Questions whose time ran out, oldest first.
    expired: Mutex<Vec<u64>>,
}

/// What a question is about, for the shim: the request it holds up and the worst case it shows
/// (what a late "Send" was shown).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct About {
    pub id: u64,
    pub buf: i64,
    pub worst_usd: f64,
}

/// What became of a choice the shim sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The question was waiting: the asker has it.
    Taken,
    /// Its time ran out before: the asker went on without it.
    Expired,
    /// No such question (answered already, or forgotten).
    Unknown,
}

impl Questions {
    /// Puts the question and waits up to `limit` for the user's choice (0-based), `None` when dismissed,
    /// unanswered in time, or the shim is gone. The event says how long it waits and until
    /// when (the shim shows it in local time).
    pub async fn pose(
        &self,
        ui: &Ui,
        prompt: String,
        choices: Vec<String>,
        limit: Duration,
        about: Option<About>,
    ) -> Option<usize> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .expect("questions lock poisoned")
            .insert(id, tx);
        let deadline = SystemTime::now() + limit;
        ui.send(Event::Question {
            question: id,
            prompt,
            choices,
            wait_ms: limit.as_millis() as u64,
            deadline_ms: deadline
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            id: about.map(|a| a.id),
            buf: about.map(|a| a.buf),
            worst_usd: about.map(|a| a.worst_usd),
        });
        let answer = tokio::time::timeout(limit, rx).await;
        let still_waiting = self
            .waiting
            .lock()
            .expect("questions lock poisoned")
            .remove(&id)
            .is_some();
        if still_waiting && answer.is_err() {
            let mut expired = self.expired.lock().expect("questions lock poisoned");
            expired.push(id);
            if expired.len() > EXPIRED_KEPT {
                expired.remove(0);
            }
        }
        match answer {
            Ok(Ok(choice)) => choice,
            _ => None,
        }
    }

    /// The user's choice, from the shim: `choice` 1-based, as Lua counts.
    pub fn choose(&self, id: u64, choice: Option<usize>) -> Choice {
        let tx = self
            .waiting
            .lock()
            .expect("questions lock poisoned")
            .remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(choice.and_then(|c| c.checked_sub(1)));
            return Choice::Taken;
        }
        let mut expired = self.expired.lock().expect("questions lock poisoned");
        match expired.iter().position(|&e| e == id) {
            Some(at) => {
                expired.remove(at);
                Choice::Expired
            }
            None => Choice::Unknown,
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
            ..
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
                        None,
                    )
                    .await
            })
        };
        let (question, prompt, choices) = next_question(&mut rx).await;
        assert_eq!(prompt, "send?");
        assert_eq!(choices, ["yes", "no"]);
        assert_eq!(questions.choose(question, Some(2)), Choice::Taken);
        assert_eq!(
            asking.await.unwrap(),
            Some(1),
            "1-based from Lua, 0-based here"
        );
        // A choice for a question nobody waits on is ignored.
        assert_eq!(questions.choose(question, Some(1)), Choice::Unknown);
        let silent = questions.pose(
            &ui,
            "again?".into(),
            vec!["yes".into()],
            Duration::from_millis(50),
            None,
        );
        assert_eq!(silent.await, None);
        assert!(questions.waiting.lock().unwrap().is_empty());
        // Answered after its time: known as expired, once.
        let (late, ..) = next_question(&mut rx).await;
        assert_eq!(questions.choose(late, Some(1)), Choice::Expired);
        assert_eq!(questions.choose(late, Some(1)), Choice::Unknown);
    }
}
