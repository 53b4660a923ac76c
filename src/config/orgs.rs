//! `[orgs]`: organizations.

use super::ConfigError;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OrgsConfig {
    /// Custom member roles by name (for example `billing`), next to the
    /// built-in `owner`, `admin` and `member`: each has a member's rights in
    /// derp and is carried by name in `org_role` for apps to check.
    pub roles: Vec<String>,
}

impl OrgsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (i, role) in self.roles.iter().enumerate() {
            crate::domain::org::valid_role_name(role)
                .map_err(|e| ConfigError::Invalid(format!("orgs.roles: `{role}` {e}")))?;
            if self.roles[..i].contains(role) {
                return Err(ConfigError::Invalid(format!(
                    "orgs.roles: `{role}` is listed twice"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn custom_org_roles_are_checked() {
        let c = Config::from_toml("[orgs]\nroles = [\"billing\", \"org:support\"]\n").unwrap();
        assert_eq!(c.orgs.roles, ["billing", "org:support"]);
        for (bad, says) in [
            ("[\"owner\"]", "built-in"),
            ("[\"Billing\"]", "a-z"),
            ("[\"billing\", \"billing\"]", "twice"),
            ("[\"\"]", "a-z"),
        ] {
            let err = Config::from_toml(&format!("[orgs]\nroles = {bad}\n")).unwrap_err();
            assert!(err.to_string().contains(says), "{bad}: {err}");
            assert!(err.to_string().contains("orgs.roles"), "{err}");
        }
        let err = Config::from_toml("[orgs]\nrole = [\"x\"]\n").unwrap_err();
        assert!(err.to_string().contains("role"), "{err}");
    }
}
