//! `[hosted]`: the sign-in pages: branding, language and the redirect
//! allow-list (all reloaded on SIGHUP).

use super::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct HostedConfig {
    pub allowed_redirect_urls: Vec<String>,
    pub product_name: String,
    pub logo_url: Option<String>,
    pub primary_color: String,
    /// The language of pages and mail when the browser asks for none that
    /// is shipped (`en`, `de`, `fr`).
    pub default_locale: String,
    /// A stylesheet served after derp's own (read at start and on SIGHUP).
    pub custom_css: Option<PathBuf>,
    /// The text of `custom_css`, read with the configuration.
    #[serde(skip)]
    pub custom_css_text: Option<String>,
}

impl Default for HostedConfig {
    fn default() -> Self {
        Self {
            allowed_redirect_urls: Vec::new(),
            product_name: "derp".into(),
            logo_url: None,
            primary_color: "#4f46e5".into(),
            default_locale: "en".into(),
            custom_css: None,
            custom_css_text: None,
        }
    }
}

impl HostedConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let color = &self.primary_color;
        let hex_ok = color.len() == 4 || color.len() == 7;
        if !(hex_ok && color.starts_with('#') && color[1..].chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(ConfigError::Invalid(format!(
                "hosted.primary_color: `{color}` must be a colour like #4f46e5"
            )));
        }
        if crate::domain::i18n::shipped(&self.default_locale).is_none() {
            return Err(ConfigError::Invalid(format!(
                "hosted.default_locale: `{}` is not a shipped language (one of: {})",
                self.default_locale,
                crate::domain::i18n::locales().join(", ")
            )));
        }
        if let Some(path) = &self.custom_css
            && !path.is_file()
        {
            return Err(ConfigError::Invalid(format!(
                "hosted.custom_css: `{}` is not a readable file",
                path.display()
            )));
        }
        for url in &self.allowed_redirect_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "hosted.allowed_redirect_urls: `{url}` must be an absolute http(s) URL"
                )));
            }
        }
        Ok(())
    }

    /// Reads the `custom_css` file into `custom_css_text`.
    pub(super) fn read_custom_css(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.custom_css {
            let css = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "hosted.custom_css: cannot read `{}`: {e}",
                    path.display()
                ))
            })?;
            self.custom_css_text = Some(css);
        }
        Ok(())
    }
}
