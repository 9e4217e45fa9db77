//! The RTO probe: from the moment of the fault, asks the DR region's health endpoint every 50 ms
//! and keeps the time of its first healthy (2xx) answer. The drill's RTO is that time minus the
//! fault's, which is what users would have lived through, not how long drctl's steps took.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use crate::clock::Clock;

/// How often the probe asks.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// A running probe.
pub struct Probe {
    task: JoinHandle<()>,
    healthy_at: Arc<Mutex<Option<SystemTime>>>,
}

impl Probe {
    /// Starts probing `url` now.
    pub fn start(http: reqwest::Client, url: String, clock: Arc<dyn Clock>) -> Probe {
        let healthy_at = Arc::new(Mutex::new(None));
        let found = healthy_at.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(INTERVAL);
            loop {
                ticker.tick().await;
                let answer = http.get(&url).timeout(Duration::from_secs(1)).send().await;
                if answer.is_ok_and(|r| r.status().is_success()) {
                    *found.lock().unwrap_or_else(|e| e.into_inner()) = Some(clock.now());
                    return;
                }
            }
        });
        Probe { task, healthy_at }
    }

    /// When the DR region first answered healthy, if it has.
    pub fn healthy_at(&self) -> Option<SystemTime> {
        *self.healthy_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops probing; returns the first healthy time, if any.
    pub fn stop(self) -> Option<SystemTime> {
        self.task.abort();
        self.healthy_at()
    }
}
