//! `[admin]`: the service keys that call the admin API.

use super::{ConfigError, Secret};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AdminConfig {
    pub service_keys: Vec<Secret>,
}

impl AdminConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for key in &self.service_keys {
            if key.expose().len() < 32 {
                return Err(ConfigError::Invalid(
                    "admin.service_keys: every key needs at least 32 bytes".into(),
                ));
            }
        }
        Ok(())
    }
}
