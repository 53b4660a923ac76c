//! Mail: the mailer (SMTP or the dev mailer, replaceable by a reload), the
//! templates, and the queue that writes messages to the outbox.

use super::StartError;
use crate::config::{Config, EmailConfig};
use crate::mail::queue::MailQueue;
use crate::mail::smtp::SmtpMailer;
use crate::mail::templates::{Site, Templates};
use crate::mail::{DevMailer, Mailer, SwappableMailer};
use std::sync::Arc;
use tokio::sync::Notify;

pub(super) struct Mail {
    pub mailer: Arc<dyn Mailer>,
    /// The same mailer when derp made it (not a test's), for reloads.
    pub swappable: Option<Arc<SwappableMailer>>,
    pub queue: MailQueue,
    /// Wakes the sender when a message is queued.
    pub waker: Arc<Notify>,
}

impl Mail {
    /// `given` replaces the configured mailer (tests capture mail with it).
    pub(super) fn new(config: &Config, given: Option<Arc<dyn Mailer>>) -> Result<Self, StartError> {
        let (mailer, swappable): (Arc<dyn Mailer>, Option<Arc<SwappableMailer>>) = match given {
            Some(m) => (m, None),
            None => {
                let s = Arc::new(SwappableMailer::new(
                    mailer_for(config.email.as_ref()).map_err(StartError::Config)?,
                ));
                (s.clone(), Some(s))
            }
        };
        let templates = Arc::new(
            Templates::load(
                site(config),
                config
                    .email
                    .as_ref()
                    .and_then(|e| e.templates_dir.as_deref()),
            )
            .map_err(StartError::Config)?,
        );
        let waker = Arc::new(Notify::new());
        let queue = MailQueue {
            templates,
            domain: message_domain(config),
            waker: waker.clone(),
        };
        Ok(Self {
            mailer,
            swappable,
            queue,
            waker,
        })
    }
}

/// SMTP when `[email]` is set, else the dev mailer.
pub(super) fn mailer_for(email: Option<&EmailConfig>) -> Result<Arc<dyn Mailer>, String> {
    Ok(match email {
        Some(e) => Arc::new(SmtpMailer::new(e)?),
        None => Arc::new(DevMailer::new()),
    })
}

/// Site name and URL in mail: `[email]` when set, else the hosted branding.
fn site(config: &Config) -> Site {
    let public_url = config.public_url();
    match &config.email {
        Some(e) => Site {
            name: e.site_name.clone(),
            url: e.site_url.clone().unwrap_or(public_url),
            primary_color: config.hosted.primary_color.clone(),
            default_locale: config.hosted.default_locale.clone(),
        },
        None => Site {
            name: config.hosted.product_name.clone(),
            url: public_url,
            primary_color: config.hosted.primary_color.clone(),
            default_locale: config.hosted.default_locale.clone(),
        },
    }
}

/// The domain of Message-IDs: the sender's, else the public URL's host.
fn message_domain(config: &Config) -> String {
    let from = config.email.as_ref().and_then(|e| {
        e.from_email
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').trim().to_string())
    });
    from.filter(|d| !d.is_empty())
        .or_else(|| {
            url::Url::parse(&config.public_url())
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
        })
        .unwrap_or_else(|| "derp.local".into())
}
