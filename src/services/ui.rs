//! The way to Neovim: events in order on one channel, and the questions waiting on the user.

use super::question::Questions;
use crate::protocol::{Event, Level};
use tokio::sync::mpsc::UnboundedSender;

pub struct Ui {
    tx: UnboundedSender<Event>,
    /// Questions waiting on the user (`question` events).
    pub questions: Questions,
}

impl Ui {
    pub fn new(tx: UnboundedSender<Event>) -> Self {
        Ui {
            tx,
            questions: Questions::default(),
        }
    }

    pub fn send(&self, ev: Event) {
        // Fails only when the channel to Neovim is gone, i.e. we are shutting down.
        let _ = self.tx.send(ev);
    }

    pub fn notify(&self, level: Level, message: String) {
        self.send(Event::Notify { level, message });
    }
}
