//! The engine's notion of now, in ms since the Unix epoch. Expiry is decided
//! against it, so tests replace it with a clock they move by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    pub fn system() -> Clock {
        Clock(Arc::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        }))
    }

    /// A clock that reads `time`, for tests.
    pub fn manual(time: Arc<AtomicU64>) -> Clock {
        Clock(Arc::new(move || time.load(Ordering::SeqCst)))
    }

    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}
