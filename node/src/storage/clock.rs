//! The clock that stamps point versions: a hybrid logical clock (milliseconds since the Unix
//! epoch in the high 48 bits, a counter in the low 16).
//!
//! Every write of a shard gets one version from the peer that coordinates it, and every replica
//! stores that same version with the points it changes, so versions compare across replicas: a
//! replica applies a write to a point only if it is newer than what it holds (see
//! `shard::versions`). The clock never goes backwards (a wall clock that jumps back
//! only slows it to counting) and moves forward past every version this peer sees, so a peer
//! stamps a write later than any write it has already applied or stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the counter below the milliseconds.
const COUNTER_BITS: u32 = 16;

#[derive(Debug, Default)]
pub struct VersionClock {
    last: AtomicU64,
}

impl VersionClock {
    /// A version later than every version handed out or observed so far.
    pub fn tick(&self) -> u64 {
        let now = wall_now();
        let mut current = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(current + 1);
            match self
                .last
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => current = actual,
            }
        }
    }

    /// Moves the clock past a version seen elsewhere (a replicated write, stored data).
    pub fn observe(&self, version: u64) {
        self.last.fetch_max(version, Ordering::AcqRel);
    }
}

/// The wall clock as a version with a zero counter.
fn wall_now() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ms << COUNTER_BITS
}

/// The wall-clock milliseconds a version was stamped at (for ageing tombstones).
pub fn millis_of(version: u64) -> u64 {
    version >> COUNTER_BITS
}

/// The current wall clock in milliseconds, comparable with [`millis_of`].
pub fn now_millis() -> u64 {
    millis_of(wall_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_increase_and_pass_observed_versions() {
        let clock = VersionClock::default();
        let a = clock.tick();
        let b = clock.tick();
        assert!(b > a);
        // A version from a peer whose clock is an hour ahead: later ticks follow it.
        let ahead = a + ((3_600_000u64) << COUNTER_BITS);
        clock.observe(ahead);
        assert!(clock.tick() > ahead);
        // Observing an older version changes nothing.
        clock.observe(a);
        assert!(clock.tick() > ahead);
    }

    #[test]
    fn versions_carry_wall_time() {
        let clock = VersionClock::default();
        let v = clock.tick();
        assert!(now_millis().abs_diff(millis_of(v)) < 60_000);
    }
}
