//! The one source of time. The engine, retries, timeouts and step types read and wait on a [`Clock`],
//! so tests drive time instead of sleeping, and RTO comes from wall-clock times that are journaled.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// Wall-clock time and sleeping.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// Completes after `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// The real clock: system time and tokio's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place drctl reads the wall clock (clippy.toml bans it elsewhere).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The real wall-clock time, for code that has no run's clock at hand: a command-line argument
/// relative to now, a console timestamp.
pub fn wall_now() -> SystemTime {
    SystemClock.now()
}

/// A clock that follows tokio's timer, anchored at a fixed wall-clock time. Under a paused tokio
/// runtime (`#[tokio::test(start_paused = true)]`) time advances only when every task is waiting,
/// so tests of retries and timeouts finish instantly and deterministically.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    anchor_wall: SystemTime,
    anchor: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `wall` now and advances with tokio's timer.
    pub fn starting_at(wall: SystemTime) -> Self {
        TokioClock { anchor_wall: wall, anchor: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        // Checked rather than panicking; tokio's timer never runs past SystemTime's range.
        self.anchor_wall.checked_add(self.anchor.elapsed()).unwrap_or(self.anchor_wall)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Formats a wall-clock time as RFC 3339 with milliseconds, in UTC. A time RFC 3339 cannot write
/// (before 1970, after 9999, from a clock gone wrong) is written as the nearest one it can, rather
/// than failing: humantime panics on those.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(representable(time)).to_string()
}

/// [`rfc3339`] to the second: `2026-11-22T07:12:04Z`.
pub fn rfc3339_seconds(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(representable(time)).to_string()
}

/// `time` moved into 1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z.
fn representable(time: SystemTime) -> SystemTime {
    const LAST: Duration = Duration::new(253_402_300_799, 999_999_999);
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Err(_) => SystemTime::UNIX_EPOCH,
        Ok(since) if since > LAST => SystemTime::UNIX_EPOCH + LAST,
        Ok(_) => time,
    }
}

/// Formats a duration for people: `1m 12s`, `340ms`.
pub fn human_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{:.1}s", duration.as_secs_f64()),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_advances_with_paused_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = TokioClock::starting_at(start);
        clock.sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start + Duration::from_secs(90));
    }

    #[test]
    fn times_rfc3339_cannot_write_are_clamped_not_a_panic() {
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(rfc3339(epoch + Duration::from_millis(1_500)), "1970-01-01T00:00:01.500Z");
        assert_eq!(rfc3339(epoch - Duration::from_secs(1000 * 365 * 86_400)), "1970-01-01T00:00:00.000Z");
        let far = epoch + Duration::from_secs(4_000_000_000_000_000 * 3600 / 1000);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339_seconds(far), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(Duration::from_millis(340)), "340ms");
        assert_eq!(human_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(human_duration(Duration::from_secs(72)), "1m 12s");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h 02m 03s");
    }
}
