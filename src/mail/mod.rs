//! Outgoing mail: the `Mailer` trait and the dev mailer.
//!
//! With no `[email]` table, mail goes to the dev mailer, which writes each
//! message to the log and keeps the latest ones in memory (for the admin UI's
//! outbox and for tests). This is deliberate: a newcomer running derp without
//! SMTP must still be able to click their confirmation link.

pub mod queue;
pub mod smtp;
pub mod templates;

use async_trait::async_trait;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// `confirm`, `magic_link`, `reset`, … (see `templates::MailKind`).
    pub kind: String,
    /// The Message-ID header, given by the outbox and kept across retries.
    pub message_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth retrying later (connection refused, 4xx, timeout).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Never going to work for this message (5xx, bad address).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
    /// The latest messages kept in memory (dev mailer only).
    fn recent(&self) -> Vec<Mail> {
        Vec::new()
    }
}

/// Logs each message and keeps the last `capacity` of them.
#[derive(Debug)]
pub struct DevMailer {
    log: bool,
    capacity: usize,
    kept: Mutex<VecDeque<Mail>>,
}

impl DevMailer {
    pub fn new() -> Self {
        Self {
            log: true,
            capacity: 50,
            kept: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps every message without logging it (tests).
    pub fn capturing() -> Self {
        Self {
            log: false,
            capacity: 10_000,
            kept: Mutex::new(VecDeque::new()),
        }
    }
}

impl Default for DevMailer {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Mailer for DevMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        if self.log {
            tracing::info!(
                to = %mail.to,
                subject = %mail.subject,
                "dev mailer (no [email] configured); message follows\n{}",
                mail.text
            );
        }
        let mut kept = self
            .kept
            .lock()
            .map_err(|_| MailError::Temporary("lock poisoned".into()))?;
        if kept.len() == self.capacity {
            kept.pop_front();
        }
        kept.push_back(mail.clone());
        Ok(())
    }

    fn recent(&self) -> Vec<Mail> {
        self.kept
            .lock()
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// A mailer that a configuration reload can replace (SMTP settings).
pub struct SwappableMailer {
    inner: std::sync::RwLock<std::sync::Arc<dyn Mailer>>,
}

impl SwappableMailer {
    pub fn new(inner: std::sync::Arc<dyn Mailer>) -> Self {
        Self {
            inner: std::sync::RwLock::new(inner),
        }
    }

    pub fn replace(&self, mailer: std::sync::Arc<dyn Mailer>) {
        if let Ok(mut m) = self.inner.write() {
            *m = mailer;
        }
    }

    fn current(&self) -> std::sync::Arc<dyn Mailer> {
        match self.inner.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[async_trait]
impl Mailer for SwappableMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        self.current().send(mail).await
    }

    fn recent(&self) -> Vec<Mail> {
        self.current().recent()
    }
}
