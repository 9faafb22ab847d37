//! The requests running now, of any kind (edits, reviews), by the shim's id, so that `cancel`
//! can abort them. Whether a buffer is busy is the shim's decision alone (lua/frugal/request.lua):
//! it also sees the buffers an edit's hunks go to, which this side does not.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::task::AbortHandle;

#[derive(Default)]
pub struct InFlight {
    running: Mutex<HashMap<u64, (i64, AbortHandle)>>,
}

impl InFlight {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (i64, AbortHandle)>> {
        self.running.lock().expect("in-flight lock poisoned")
    }

    pub fn start(&self, id: u64, buf: i64, handle: AbortHandle) {
        self.running().insert(id, (buf, handle));
    }

    /// The request ended; its buffer when it was still registered.
    pub fn finish(&self, id: u64) -> Option<i64> {
        self.running().remove(&id).map(|(buf, _)| buf)
    }

    /// Aborts the request; its buffer when it was still running.
    pub fn cancel(&self, id: u64) -> Option<i64> {
        let entry = self.running().remove(&id);
        entry.map(|(buf, h)| {
            h.abort();
            buf
        })
    }
}
