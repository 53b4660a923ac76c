//! SMTP delivery through lettre, over rustls.

use super::{Mail, MailError, Mailer};
use crate::config::{EmailConfig, SmtpTls};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    pub fn new(c: &EmailConfig) -> Result<Self, String> {
        let from: Mailbox = c
            .from_email
            .parse()
            .map_err(|e| format!("email.from_email: `{}` is not a mailbox: {e}", c.from_email))?;
        let builder = match c.effective_tls() {
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.smtp_host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.smtp_host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &c.smtp_host,
            )),
        }
        .map_err(|e| format!("email.smtp_host: {e}"))?;
        let mut builder = builder
            .port(c.smtp_port)
            .timeout(Some(Duration::from_secs(20)));
        if let Some(user) = &c.smtp_user {
            let password = c
                .smtp_password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("bad recipient: {e}")))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone());
        if let Some(id) = &mail.message_id {
            builder = builder.message_id(Some(id.clone()));
        }
        let message = match &mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                html.clone(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(mail.text.clone()),
        }
        .map_err(|e| MailError::Permanent(format!("cannot build message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Err(e) => Err(MailError::Temporary(e.to_string())),
        }
    }
}
