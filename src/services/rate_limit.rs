//! Per-IP and per-account rate limits from `[rate_limit]` (per minute; 0 turns
//! one off), on governor's keyed GCRA limiters. A refusal carries the number
//! of seconds to wait, for `Retry-After`.

use crate::config::RateLimitConfig;
use crate::error::AuthError;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

type Limiter = Option<DefaultKeyedRateLimiter<String>>;

fn limiter(per_minute: u32) -> Limiter {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignIn,
    SignUp,
    /// Mail to an address: magic link, reset, confirmation resend.
    Email,
}

/// The limiters; replaced whole when the configuration is reloaded.
pub struct RateLimits {
    set: std::sync::RwLock<std::sync::Arc<LimiterSet>>,
    clock: DefaultClock,
}

struct LimiterSet {
    sign_in_ip: Limiter,
    sign_in_account: Limiter,
    sign_up_ip: Limiter,
    email_address: Limiter,
    /// Mail sends per IP: the address limit times four, so one client cannot
    /// spray many addresses.
    email_ip: Limiter,
}

impl LimiterSet {
    fn new(c: &RateLimitConfig) -> Self {
        Self {
            sign_in_ip: limiter(c.sign_in_per_ip),
            sign_in_account: limiter(c.sign_in_per_account),
            sign_up_ip: limiter(c.sign_up_per_ip),
            email_address: limiter(c.email_per_address),
            email_ip: limiter(c.email_per_address.saturating_mul(4)),
        }
    }
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl RateLimits {
    pub fn new(c: &RateLimitConfig) -> Self {
        Self {
            set: std::sync::RwLock::new(std::sync::Arc::new(LimiterSet::new(c))),
            clock: DefaultClock::default(),
        }
    }

    /// New limits from a reloaded configuration (counts start afresh).
    pub fn reconfigure(&self, c: &RateLimitConfig) {
        if let Ok(mut set) = self.set.write() {
            *set = std::sync::Arc::new(LimiterSet::new(c));
        }
    }

    fn current(&self) -> std::sync::Arc<LimiterSet> {
        match self.set.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Counts one attempt of `action` from `ip` for `account` (an email).
    /// Sign-ins count per account and source (as the lockout does), so
    /// that one client spending an address's attempts does not block its
    /// owner elsewhere; mail counts per address, whoever asks.
    pub fn check(
        &self,
        action: Action,
        ip: Option<&str>,
        account: Option<&str>,
    ) -> Result<(), AuthError> {
        let set = self.current();
        let (by_ip, by_account) = match action {
            Action::SignIn => (&set.sign_in_ip, &set.sign_in_account),
            Action::SignUp => (&set.sign_up_ip, &None),
            Action::Email => (&set.email_ip, &set.email_address),
        };
        if let (Some(l), Some(ip)) = (by_ip, ip) {
            self.one(l, ip)?;
        }
        if let (Some(l), Some(account)) = (by_account, account) {
            if action == Action::SignIn {
                let source = crate::auth::lockout::source_of(ip);
                self.one(l, &format!("{account} {source}"))?;
            } else {
                self.one(l, account)?;
            }
        }
        Ok(())
    }

    fn one(&self, limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Result<(), AuthError> {
        limiter.check_key(&key.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            AuthError::RateLimited {
                retry_after: wait.as_secs().max(1),
            }
        })
    }

    /// Drops idle keys; called periodically so memory stays bounded.
    pub fn prune(&self) {
        let set = self.current();
        for l in [
            &set.sign_in_ip,
            &set.sign_in_account,
            &set.sign_up_ip,
            &set.email_address,
            &set.email_ip,
        ]
        .into_iter()
        .flatten()
        {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_per_account_limits_apply_and_zero_disables() {
        let limits = RateLimits::new(&RateLimitConfig {
            sign_in_per_ip: 4,
            sign_in_per_account: 2,
            sign_up_per_ip: 0,
            email_per_address: 1,
            ..Default::default()
        });
        assert!(
            limits
                .check(Action::SignIn, Some("1.1.1.1"), Some("a@x.io"))
                .is_ok()
        );
        assert!(
            limits
                .check(Action::SignIn, Some("1.1.1.1"), Some("a@x.io"))
                .is_ok()
        );
        let err = limits
            .check(Action::SignIn, Some("1.1.1.1"), Some("a@x.io"))
            .unwrap_err();
        assert!(matches!(err, AuthError::RateLimited { retry_after } if retry_after >= 1));
        // Another account from the same IP: the refused attempt still counted, one left.
        assert!(
            limits
                .check(Action::SignIn, Some("1.1.1.1"), Some("b@x.io"))
                .is_ok()
        );
        assert!(
            limits
                .check(Action::SignIn, Some("1.1.1.1"), Some("c@x.io"))
                .is_err()
        );
        // The same account from another source has its own allowance.
        assert!(
            limits
                .check(Action::SignIn, Some("9.9.9.9"), Some("a@x.io"))
                .is_ok()
        );
        for _ in 0..50 {
            assert!(limits.check(Action::SignUp, Some("1.1.1.1"), None).is_ok());
        }
        assert!(
            limits
                .check(Action::Email, Some("2.2.2.2"), Some("a@x.io"))
                .is_ok()
        );
        assert!(
            limits
                .check(Action::Email, Some("3.3.3.3"), Some("a@x.io"))
                .is_err()
        );
    }
}
