//! The way to Neovim: events in order on one channel, and the questions waiting on the user.

use super::question::Questions;
use crate::protocol::{Event, Level};
use std::collections::HashSet;
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;

pub struct Ui {
    tx: UnboundedSender<Event>,
    /// Questions waiting on the user (`question` events).
    pub questions: Questions,
    /// The keys [`Ui::first_time`] was given in this session.
    said: Mutex<HashSet<String>>,
}

impl Ui {
    pub fn new(tx: UnboundedSender<Event>) -> Self {
        Ui {
            tx,
            questions: Questions::default(),
            said: Mutex::default(),
        }
    }

    pub fn send(&self, ev: Event) {
        // Fails only when the channel to Neovim is gone, i.e. we are shutting down.
        let _ = self.tx.send(ev);
    }

    pub fn notify(&self, level: Level, message: String) {
        self.send(Event::Notify { level, message });
    }

    /// Whether this is the first time in this session (this backend process) that `key` is
    /// given: what is said once per session asks this first.
    pub fn first_time(&self, key: String) -> bool {
        self.said.lock().expect("ui lock poisoned").insert(key)
    }
}
