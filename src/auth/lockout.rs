//! Sign-in lockout policy (`[rate_limit] lockout_after`,
//! `lockout_address_after`, `lockout_minutes`): after `lockout_after` failed
//! sign-ins in a row for one email address from one source (an IPv4 address
//! or an IPv6 /64), that source is refused for the address (429
//! `rate_limited` with `Retry-After`) without a password check until the lock
//! ends or an admin clears it; the owner signs in from elsewhere as usual.
//! After `lockout_address_after` failures from all sources within
//! `lockout_minutes`, the address is refused from everywhere: the slower
//! brake on a guess spread over many sources. Unknown addresses lock exactly
//! like known ones, so a lock says nothing about whether an account exists.
//! The policy is shared with the SIGHUP reload.

use crate::config::RateLimitConfig;
use crate::storage::lockouts::Limits;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub struct LockoutPolicy {
    after: AtomicU32,
    address_after: AtomicU32,
    minutes: AtomicU32,
}

/// The source that failures are counted under: the client's IPv4 address,
/// or the /64 of an IPv6 one (a single host often holds a whole /64), or
/// `unknown` when the address is not known.
pub fn source_of(ip: Option<&str>) -> String {
    match ip.and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
        None => "unknown".into(),
    }
}

impl LockoutPolicy {
    pub fn new(c: &RateLimitConfig) -> Self {
        Self {
            after: AtomicU32::new(c.lockout_after),
            address_after: AtomicU32::new(c.lockout_address_after),
            minutes: AtomicU32::new(c.lockout_minutes),
        }
    }

    pub fn reconfigure(&self, c: &RateLimitConfig) {
        self.after.store(c.lockout_after, Ordering::Relaxed);
        self.address_after
            .store(c.lockout_address_after, Ordering::Relaxed);
        self.minutes.store(c.lockout_minutes, Ordering::Relaxed);
    }

    /// Failures from one source that lock an address for it; 0 when
    /// lockout is off.
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

impl LockoutPolicy {
    /// The counts for [`crate::storage::lockouts::record_failure`]; `None`
    /// when lockout is off.
    pub fn limits(&self) -> Option<Limits> {
        let per_source = self.threshold();
        (per_source > 0).then(|| Limits {
            per_source,
            per_address: i64::from(self.address_after.load(Ordering::Relaxed)),
            lock_secs: self.lock_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::source_of;

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_64s() {
        assert_eq!(source_of(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(source_of(Some("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(
            source_of(Some("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            source_of(Some("2001:db8:1:2::1")),
            source_of(Some("2001:db8:1:2:ffff::9"))
        );
        assert_eq!(source_of(None), "unknown");
        assert_eq!(source_of(Some("not an address")), "unknown");
    }
}
