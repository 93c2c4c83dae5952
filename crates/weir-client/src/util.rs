//! Small helpers: exponential backoff with jitter, a cheap random source, wall-clock ms.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wait before retry number `attempt` (0-based): `initial * 2^attempt`, capped at
/// `max`, then ±20% jitter so clients that failed together do not retry together
/// (KIP-580).
pub(crate) fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let base = initial
        .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .min(max);
    // jitter factor in [0.8, 1.2)
    let factor = 0.8 + f64::from(random_u32() % 4000) / 10_000.0;
    base.mul_f64(factor).min(max.mul_f64(1.2))
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    // Mix in a stack address so threads seeded in the same nanosecond differ.
    let local = 0u8;
    let addr = std::ptr::addr_of!(local) as u64;
    (t ^ addr.rotate_left(32)) | 1
}

/// A non-cryptographic random number (xorshift64*), for jitter and partition choice.
pub(crate) fn random_u32() -> u32 {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    })
}

/// Milliseconds since the Unix epoch (record timestamps).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let (i, m) = (Duration::from_millis(100), Duration::from_millis(1000));
        for _ in 0..100 {
            let d0 = backoff(i, m, 0);
            assert!(d0 >= Duration::from_millis(80) && d0 < Duration::from_millis(120));
            let d3 = backoff(i, m, 3);
            assert!(d3 >= Duration::from_millis(640) && d3 <= Duration::from_millis(960));
            assert!(backoff(i, m, 40) <= Duration::from_millis(1200));
        }
    }
}
