//! `[rate_limit]`: per-minute limits and the failed sign-in lockout
//! (reloaded on SIGHUP).

use super::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    pub sign_in_per_ip: u32,
    pub sign_in_per_account: u32,
    pub sign_up_per_ip: u32,
    pub email_per_address: u32,
    /// Consecutive failed sign-ins for one email address from one source
    /// that lock it for that source (0 turns lockout off).
    pub lockout_after: u32,
    /// Failed sign-ins for one email address from all sources within
    /// `lockout_minutes` that lock it for everyone: the slower brake on
    /// distributed guessing (0 turns it off; otherwise above
    /// `lockout_after`, so that one source alone never reaches it).
    pub lockout_address_after: u32,
    /// How long a lock lasts; failures further apart than this start the
    /// count afresh.
    pub lockout_minutes: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            sign_in_per_ip: 20,
            sign_in_per_account: 10,
            sign_up_per_ip: 10,
            email_per_address: 5,
            lockout_after: 10,
            lockout_address_after: 100,
            lockout_minutes: 15,
        }
    }
}

impl RateLimitConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.lockout_address_after != 0 && self.lockout_address_after <= self.lockout_after {
            return Err(ConfigError::Invalid(format!(
                "rate_limit.lockout_address_after: must be 0 or above lockout_after ({}), got {}",
                self.lockout_after, self.lockout_address_after
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, EMBEDDED_DEFAULT};

    #[test]
    fn the_per_address_brake_must_be_off_or_above_the_per_source_lock() {
        let c = Config::from_toml(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(c.rate_limit.lockout_after, 10);
        assert_eq!(c.rate_limit.lockout_address_after, 100);
        for ok in ["lockout_address_after = 0", "lockout_address_after = 11"] {
            Config::from_toml(&format!("[rate_limit]\n{ok}\n")).unwrap();
        }
        for bad in ["lockout_address_after = 10", "lockout_address_after = 3"] {
            let err = Config::from_toml(&format!("[rate_limit]\n{bad}\n")).unwrap_err();
            assert!(
                err.to_string().contains("rate_limit.lockout_address_after"),
                "{bad}: {err}"
            );
        }
    }
}
