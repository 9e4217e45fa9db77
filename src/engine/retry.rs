//! Exponential backoff with jitter between attempts of a step.

use std::time::Duration;

/// How long to wait before another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay before the second attempt, before jitter.
    pub base: Duration,
    /// No delay exceeds this.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (1-based): `base * 2^(attempt-1)`, capped at `max`,
    /// then jittered into its upper half with `unit` in `[0, 1)` ("equal jitter": never zero, so a
    /// throttled API gets real relief, and concurrent steps do not retry in lockstep).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max);
        // `clamp` keeps NaN, and `mul_f64` panics on it.
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        (capped / 2).saturating_add(capped.mul_f64(unit / 2.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_until_the_cap_and_jitters_within_the_upper_half() {
        let p = RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(10) };
        assert_eq!(p.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(p.delay(10, 1.0), Duration::from_secs(10));
        assert_eq!(p.delay(u32::MAX, 0.5), Duration::from_millis(7500));
    }

    #[test]
    fn no_policy_or_jitter_overflows_or_panics() {
        let p = RetryPolicy { base: Duration::MAX, max: Duration::MAX };
        assert_eq!(p.delay(u32::MAX, 1.0), Duration::MAX);
        assert_eq!(p.delay(1, f64::NAN), Duration::MAX / 2);
        assert_eq!(p.delay(1, f64::INFINITY), Duration::MAX / 2);
    }
}
