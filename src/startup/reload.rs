//! SIGHUP: applying a changed `derp.toml` to a running server.

use super::mail::mailer_for;
use crate::config::Config;
use crate::state::AppState;

/// What a configuration reload did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    pub applied: Vec<&'static str>,
    pub needs_restart: Vec<&'static str>,
}

/// SIGHUP: re-reads the file and applies what can change safely (rate
/// limits, the redirect allow-list and branding in `[hosted]`, SMTP in
/// `[email]`); changes elsewhere are reported as needing a restart. An
/// invalid file changes nothing. Recorded in the audit log.
pub async fn reload(state: &AppState, path: &std::path::Path) -> Result<ReloadReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let new = Config::from_toml(&text).map_err(|e| e.to_string())?;
    let old = &state.config;
    let mut report = ReloadReport {
        applied: vec![],
        needs_restart: vec![],
    };
    if old.rate_limit != new.rate_limit {
        state.limits.reconfigure(&new.rate_limit);
        state.lockout.reconfigure(&new.rate_limit);
        report.applied.push("rate_limit");
    }
    let current_hosted = state
        .hosted
        .read()
        .map(|h| h.clone())
        .map_err(|_| "lock poisoned".to_string())?;
    if current_hosted != new.hosted {
        state
            .allowed
            .replace(&old.public_url(), &new.hosted.allowed_redirect_urls);
        if let Ok(mut h) = state.hosted.write() {
            *h = new.hosted.clone();
        }
        report.applied.push("hosted");
    }
    // While `[email]` is set, every reload rebuilds the mailer: a reload
    // always starts afresh with the relay, changed or not.
    if new.email.is_some() || old.email != new.email {
        match &state.swappable_mailer {
            Some(m) => {
                m.replace(mailer_for(new.email.as_ref())?);
                report.applied.push("email");
            }
            None => report.needs_restart.push("email"),
        }
    }
    if old.server != new.server {
        report.needs_restart.push("server");
    }
    if old.auth != new.auth {
        report.needs_restart.push("auth");
    }
    if old.admin != new.admin {
        report.needs_restart.push("admin");
    }
    // Synced whenever endpoints are declared, changed or not: the database
    // may have drifted from the file since (an admin-made endpoint of a
    // declared name becomes the file's again).
    if !new.webhooks.is_empty() || old.webhooks != new.webhooks {
        state
            .webhooks
            .sync_config(&new.webhooks)
            .await
            .map_err(|e| format!("webhook endpoints: {e}"))?;
        report.applied.push("webhooks");
    }
    if old.oidc_provider != new.oidc_provider {
        report.needs_restart.push("oidc_provider");
    }
    let actor = crate::services::orgs::Actor {
        user_id: "system".into(),
        ip: None,
        user_agent: Some("SIGHUP".into()),
        admin: true,
    };
    let detail = serde_json::to_value(&report).unwrap_or_default();
    state
        .admin
        .note(actor, "config.reloaded", None, None, detail)
        .await
        .map_err(|e| e.to_string())?;
    Ok(report)
}
