//! Puts rendered mail into the outbox inside the caller's transaction, and
//! wakes the sender once the transaction has committed.

use super::templates::{MailKind, Templates};
use crate::error::AuthResult;
use crate::storage::{Conn, outbox};
use std::sync::Arc;
use tokio::sync::Notify;

/// Renders a message and writes it to the outbox inside the caller's
/// transaction; the sender is woken after the commit.
#[derive(Clone)]
pub struct MailQueue {
    pub templates: Arc<Templates>,
    /// The domain part of Message-IDs.
    pub domain: String,
    pub waker: Arc<Notify>,
}

impl MailQueue {
    /// Renders `kind` in `locale` (see `Templates::render`) into the outbox.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &self,
        conn: &Conn,
        kind: MailKind,
        locale: &str,
        to: &str,
        link: &str,
        lifetime_seconds: i64,
        now: i64,
    ) -> AuthResult<()> {
        self.push_with(conn, kind, locale, to, link, lifetime_seconds, None, now)
    }

    /// As `push`, for messages about an org: `(org name, role)`.
    #[allow(clippy::too_many_arguments)]
    pub fn push_with(
        &self,
        conn: &Conn,
        kind: MailKind,
        locale: &str,
        to: &str,
        link: &str,
        lifetime_seconds: i64,
        org: Option<(&str, &str)>,
        now: i64,
    ) -> AuthResult<()> {
        let mail = self
            .templates
            .render(kind, locale, to, link, lifetime_seconds, org);
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), self.domain);
        outbox::enqueue(
            conn,
            &outbox::NewMessage {
                message_id: &message_id,
                kind: kind.name(),
                to,
                subject: &mail.subject,
                text: &mail.text,
                html: mail.html.as_deref(),
            },
            now,
        )?;
        Ok(())
    }

    pub fn wake(&self) {
        self.waker.notify_one();
    }
}
