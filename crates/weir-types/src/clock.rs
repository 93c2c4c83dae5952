//! Time as a dependency: code that needs "now" takes a `Clock` so tests and a future
//! simulator can control it instead of reading the OS clock directly.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch: the unit of Kafka record timestamps.
    fn now_ms(&self) -> i64;
    /// Monotonic time for timeouts; never goes backwards, unlike `now_ms`.
    fn monotonic(&self) -> Instant;
}

/// The real clock of the machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        // A clock set before 1970 is a host misconfiguration; report 0 rather than panic.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        // 2020-01-01T00:00:00Z in ms: a wrong unit (seconds, micros) fails this.
        let now = SystemClock.now_ms();
        assert!(now > 1_577_836_800_000 && now < 4_102_444_800_000, "{now}");
    }
}
