//! Sign-in lockout policy (`[rate_limit] lockout_after`, `lockout_minutes`):
//! after that many failed password sign-ins in a row for one email address,
//! the address is refused (429 `rate_limited` with `Retry-After`) without a
//! password check until the lock ends or an admin clears it. Unknown
//! addresses lock exactly like known ones, so a lock says nothing about
//! whether an account exists. The policy is shared with the SIGHUP reload.

use crate::config::RateLimitConfig;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub struct LockoutPolicy {
    after: AtomicU32,
    minutes: AtomicU32,
}

impl LockoutPolicy {
    pub fn new(c: &RateLimitConfig) -> Self {
        Self {
            after: AtomicU32::new(c.lockout_after),
            minutes: AtomicU32::new(c.lockout_minutes),
        }
    }

    pub fn reconfigure(&self, c: &RateLimitConfig) {
        self.after.store(c.lockout_after, Ordering::Relaxed);
        self.minutes.store(c.lockout_minutes, Ordering::Relaxed);
    }

    /// Failures that lock an address; 0 when lockout is off.
    pub fn threshold(&self) -> i64 {
        if self.minutes.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        i64::from(self.after.load(Ordering::Relaxed))
    }

    /// How long a lock lasts, and how far apart failures may be to count
    /// together, in seconds.
    pub fn lock_secs(&self) -> i64 {
        i64::from(self.minutes.load(Ordering::Relaxed)) * 60
    }
}
