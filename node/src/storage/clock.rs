//! The clock that stamps point versions: a hybrid logical clock. A version is
//! `milliseconds since the Unix epoch (42 bits) | counter (10 bits) | peer tag (12 bits)`.
//!
//! Every write of a shard gets one version from the peer that coordinates it, and every replica
//! stores that same version with the points it changes, so versions compare across replicas: a
//! replica applies a write to a point only if it is newer than what it holds (see
//! `shard::versions`). The clock never goes backwards (a wall clock that jumps back only slows
//! it to counting) and moves forward past every version this peer sees, so a peer stamps a
//! write later than any write it has already applied or stored. The low bits carry a tag of the
//! peer, so two peers never hand out the same version for different writes (an equal version
//! means the same write, applied again).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits below the milliseconds: the counter and the tag.
const LOW_BITS: u32 = 22;
/// Bits of the peer tag, the lowest.
const TAG_BITS: u32 = 12;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

#[derive(Debug, Default)]
pub struct VersionClock {
    last: AtomicU64,
    tag: AtomicU64,
}

impl VersionClock {
    /// Tags this peer's versions (from its peer id; 0 outside a cluster).
    pub fn set_peer(&self, peer_id: u64) {
        // Spread the id's bits so ids differing anywhere give different tags.
        let mixed = peer_id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.tag.store(mixed >> (64 - TAG_BITS), Ordering::Relaxed);
    }

    /// A version later than every version handed out or observed so far.
    pub fn tick(&self) -> u64 {
        let tag = self.tag.load(Ordering::Relaxed) & TAG_MASK;
        let now = wall_now() >> TAG_BITS;
        let mut current = self.last.load(Ordering::Relaxed);
        loop {
            let next = (now.max((current >> TAG_BITS) + 1) << TAG_BITS) | tag;
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

/// The wall clock as a version with a zero counter and tag.
fn wall_now() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ms << LOW_BITS
}

/// The wall-clock milliseconds a version was stamped at.
pub fn millis_of(version: u64) -> u64 {
    version >> LOW_BITS
}

/// The current wall clock in milliseconds, comparable with [`millis_of`].
pub fn now_millis() -> u64 {
    millis_of(wall_now())
}

/// A version stamped at `ms` (tests).
#[cfg(test)]
pub fn version_at(ms: u64) -> u64 {
    ms << LOW_BITS
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
        let ahead = a + version_at(3_600_000);
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

    #[test]
    fn two_peers_never_hand_out_the_same_version() {
        let (a, b) = (VersionClock::default(), VersionClock::default());
        a.set_peer(7_448_205_898_760_577);
        b.set_peer(1_672_616_224_374_696);
        let from_a: std::collections::HashSet<u64> = (0..20_000).map(|_| a.tick()).collect();
        assert!((0..20_000).map(|_| b.tick()).all(|v| !from_a.contains(&v)));
        // Past a version of the other peer, whatever the tags.
        let other = b.tick();
        a.observe(other);
        assert!(a.tick() > other);
    }
}
