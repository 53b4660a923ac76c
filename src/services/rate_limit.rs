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

pub struct RateLimits {
    sign_in_ip: Limiter,
    sign_in_account: Limiter,
    sign_up_ip: Limiter,
    email_address: Limiter,
    /// Mail sends per IP: the address limit times four, so one client cannot
    /// spray many addresses.
    email_ip: Limiter,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

impl RateLimits {
    pub fn new(c: &RateLimitConfig) -> Self {
        Self {
            sign_in_ip: limiter(c.sign_in_per_ip),
            sign_in_account: limiter(c.sign_in_per_account),
            sign_up_ip: limiter(c.sign_up_per_ip),
            email_address: limiter(c.email_per_address),
            email_ip: limiter(c.email_per_address.saturating_mul(4)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one attempt of `action` from `ip` for `account` (an email).
    pub fn check(
        &self,
        action: Action,
        ip: Option<&str>,
        account: Option<&str>,
    ) -> Result<(), AuthError> {
        let (by_ip, by_account) = match action {
            Action::SignIn => (&self.sign_in_ip, &self.sign_in_account),
            Action::SignUp => (&self.sign_up_ip, &None),
            Action::Email => (&self.email_ip, &self.email_address),
        };
        if let (Some(l), Some(ip)) = (by_ip, ip) {
            self.one(l, ip)?;
        }
        if let (Some(l), Some(account)) = (by_account, account) {
            self.one(l, account)?;
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
        for l in [
            &self.sign_in_ip,
            &self.sign_in_account,
            &self.sign_up_ip,
            &self.email_address,
            &self.email_ip,
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
