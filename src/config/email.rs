//! `[email]`: the SMTP relay derp sends its mail through (without it, the
//! dev mailer logs every message instead).

use super::{ConfigError, Secret};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, serde::Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Implicit,
    None,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct EmailConfig {
    pub site_name: String,
    pub site_url: Option<String>,
    pub from_email: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<Secret>,
    pub tls: Option<SmtpTls>,
    pub use_tls: Option<bool>,
    pub start_tls: Option<bool>,
    pub templates_dir: Option<PathBuf>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            site_name: "derp".into(),
            site_url: None,
            from_email: "derp <no-reply@localhost>".into(),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_user: None,
            smtp_password: None,
            tls: None,
            use_tls: None,
            start_tls: None,
            templates_dir: None,
        }
    }
}

impl EmailConfig {
    /// `tls` wins; then the original library's booleans; then the port's custom
    /// (465 implicit TLS, anything else STARTTLS).
    pub fn effective_tls(&self) -> SmtpTls {
        if let Some(tls) = self.tls {
            return tls;
        }
        match (self.use_tls, self.start_tls) {
            (Some(true), _) => SmtpTls::Implicit,
            (_, Some(true)) => SmtpTls::Starttls,
            (Some(false), Some(false)) => SmtpTls::None,
            _ if self.smtp_port == 465 => SmtpTls::Implicit,
            _ => SmtpTls::Starttls,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.smtp_host.is_empty() || self.from_email.is_empty() {
            return Err(ConfigError::Invalid(
                "email: smtp_host and from_email are required".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_tls_follows_port_and_original_booleans() {
        let mut e = EmailConfig::default();
        assert_eq!(e.effective_tls(), SmtpTls::Starttls);
        e.smtp_port = 465;
        assert_eq!(e.effective_tls(), SmtpTls::Implicit);
        e.use_tls = Some(false);
        e.start_tls = Some(false);
        assert_eq!(e.effective_tls(), SmtpTls::None);
        e.tls = Some(SmtpTls::Starttls);
        assert_eq!(e.effective_tls(), SmtpTls::Starttls);
    }
}
