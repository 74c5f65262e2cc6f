//! Brute-force limiting per (username, client address).
//!
//! Keyed on both, so that an attacker hammering one user from one address is
//! stopped while the same user from another address (the real user, or
//! colleagues behind one NAT trying other accounts) is not: nobody can lock a
//! legitimate user out. Memory is bounded: keys are fixed-size hashes and the
//! table holds at most `capacity` entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

type Key = [u8; 16];

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: i64,
}

/// Counts failed attempts in fixed windows.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: i64,
    capacity: usize,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl FailureLimiter {
    /// After `max_failures` failures within `window` seconds, attempts are
    /// refused until the window has passed. At most `capacity` keys are kept.
    pub fn new(max_failures: u32, window: u64, capacity: usize) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            window: i64::try_from(window).unwrap_or(i64::MAX),
            capacity,
            entries: Mutex::default(),
        }
    }

    fn key(username: &str, client: Option<IpAddr>) -> Key {
        let mut h = Sha256::new();
        h.update((username.len() as u64).to_be_bytes());
        h.update(username.as_bytes());
        match client {
            Some(IpAddr::V4(ip)) => h.update(ip.octets()),
            Some(IpAddr::V6(ip)) => h.update(ip.octets()),
            None => h.update(b"unknown"),
        }
        h.finalize()[..16].try_into().expect("16 bytes")
    }

    /// `Err(seconds)` until the attempt may be made, when locked out.
    pub fn check(&self, username: &str, client: Option<IpAddr>, now: i64) -> Result<(), u64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // The common case, nobody failing: skip hashing the key.
        if entries.is_empty() {
            return Ok(());
        }
        match entries.get(&Self::key(username, client)) {
            Some(e) if e.failures >= self.max_failures => {
                let until = e.window_start.saturating_add(self.window);
                if now < until {
                    Err((until - now) as u64)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub fn fail(&self, username: &str, client: Option<IpAddr>, now: i64) {
        let key = Self::key(username, client);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            self.make_room(&mut entries, now);
        }
        let e = entries.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now,
        });
        if now >= e.window_start.saturating_add(self.window) {
            *e = Entry {
                failures: 0,
                window_start: now,
            };
        }
        e.failures = e.failures.saturating_add(1);
    }

    /// A success clears the key's failures.
    pub fn succeed(&self, username: &str, client: Option<IpAddr>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if !entries.is_empty() {
            entries.remove(&Self::key(username, client));
        }
    }

    /// How many keys are tracked.
    pub fn tracked(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Drops expired windows; if still full, the oldest tenth, so the cost of
    /// making room is paid once per many insertions.
    fn make_room(&self, entries: &mut HashMap<Key, Entry>, now: i64) {
        entries.retain(|_, e| now < e.window_start.saturating_add(self.window));
        if entries.len() >= self.capacity {
            let mut oldest: Vec<(i64, Key)> =
                entries.iter().map(|(k, e)| (e.window_start, *k)).collect();
            let cut = (self.capacity / 10).clamp(1, oldest.len());
            oldest.select_nth_unstable_by_key(cut - 1, |&(start, _)| start);
            for (_, key) in &oldest[..cut] {
                entries.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn locks_the_pair_only_until_the_window_passes() {
        let l = FailureLimiter::new(3, 60, 100);
        for _ in 0..3 {
            assert_eq!(l.check("alice", A, 100), Ok(()));
            l.fail("alice", A, 100);
        }
        assert_eq!(l.check("alice", A, 110), Err(50));
        assert_eq!(l.check("alice", B, 110), Ok(()), "other address unaffected");
        assert_eq!(l.check("bob", A, 110), Ok(()), "other user unaffected");
        assert_eq!(l.check("alice", A, 160), Ok(()), "window passed");
    }

    #[test]
    fn success_resets() {
        let l = FailureLimiter::new(2, 60, 100);
        l.fail("alice", A, 0);
        l.succeed("alice", A);
        l.fail("alice", A, 0);
        assert_eq!(l.check("alice", A, 0), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let l = FailureLimiter::new(2, 60, 1000);
        for i in 0..10_000 {
            l.fail(&format!("user{i}"), A, i);
        }
        assert!(l.tracked() <= 1000, "{}", l.tracked());
        // The newest attacker is still tracked.
        l.fail("user9999", A, 10_000);
        assert!(l.check("user9999", A, 10_000).is_err());
        // Entries from one second are evicted a tenth at a time, not all at once.
        let l = FailureLimiter::new(2, 60, 100);
        for i in 0..101 {
            l.fail(&format!("user{i}"), A, 0);
        }
        assert_eq!(l.tracked(), 91);
    }
}
