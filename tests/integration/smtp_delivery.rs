//! Mail through a real SMTP conversation (lettre to the in-process server),
//! with the outbox's retries, permanent failures and restarts.

use crate::helpers::*;
use crate::smtp_server::{Inbox, SmtpServer, free_port};
use derp::config::{Config, EmailConfig, SmtpTls};
use derp::storage::outbox;
use reqwest::StatusCode;
use serde_json::json;

fn with_smtp(config: &mut Config, port: u16) {
    config.email = Some(EmailConfig {
        site_name: "Acme".into(),
        site_url: Some("https://acme.example.com".into()),
        from_email: "Acme <no-reply@acme.example.com>".into(),
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        tls: Some(SmtpTls::None),
        ..EmailConfig::default()
    });
}

async fn smtp_app(port: u16, dir: tempfile::TempDir) -> TestApp {
    let mut config = base_config(dir.path());
    with_smtp(&mut config, port);
    spawn_full(config, dir, false).await
}

async fn stats(app: &TestApp) -> outbox::OutboxStats {
    app.state.db.read(outbox::stats).await.unwrap()
}

/// The outbox once nothing is in flight: the SMTP server may hold the
/// message a moment before the sender records it as sent (bounded wait).
async fn settled_stats(app: &TestApp) -> outbox::OutboxStats {
    for _ in 0..200 {
        let s = stats(app).await;
        if s.sending == 0 && s.queued == 0 {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    stats(app).await
}

#[tokio::test]
async fn confirmation_arrives_over_smtp_and_its_link_works() {
    let smtp = SmtpServer::start().await;
    let app = smtp_app(smtp.port, tempfile::tempdir().unwrap()).await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "mia@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mails = smtp.inbox.wait_for("mia@example.com", 1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.header("Subject")
            .unwrap()
            .contains("Confirm your email address for Acme")
    );
    assert!(
        mail.header("From")
            .unwrap()
            .contains("no-reply@acme.example.com")
    );
    assert!(
        mail.header("Message-ID")
            .unwrap()
            .ends_with("@acme.example.com>")
    );
    assert!(
        mail.data.contains("multipart/alternative"),
        "text and HTML parts"
    );
    assert!(
        mail.data.contains("https://acme.example.com"),
        "site URL from [email]"
    );
    let res = app
        .post("/api/v1/auth/confirm", json!({"token": mail.token()}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let s = settled_stats(&app).await;
    assert_eq!((s.sent, s.queued, s.failed), (1, 0, 0));
}

#[tokio::test]
async fn smtp_down_at_sign_up_then_back_delivers_the_mail() {
    let port = free_port().await;
    let app = smtp_app(port, tempfile::tempdir().unwrap()).await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "noor@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "the API accepts while SMTP is down"
    );
    // The first attempt fails and the message waits for its retry.
    for _ in 0..100 {
        let rows = app.state.db.read(|c| outbox::recent(c, 10)).await.unwrap();
        if rows
            .first()
            .is_some_and(|r| r.attempts >= 1 && r.status == "queued")
        {
            assert!(rows[0].last_error.is_some());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let smtp = SmtpServer::start_on(port, Inbox::default()).await;
    app.advance(31);
    let mails = smtp.inbox.wait_for("noor@example.com", 1).await;
    assert_eq!(mails.len(), 1, "delivered once SMTP is back");
    let res = app
        .post("/api/v1/auth/confirm", json!({"token": mails[0].token()}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn mail_queued_before_a_restart_is_delivered_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let port = free_port().await;
    let mut config = base_config(&data_dir);
    with_smtp(&mut config, port);
    let before = spawn_full(config.clone(), tempfile::tempdir().unwrap(), false).await;
    let res = before
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "omar@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(stats(&before).await.sent, 0);
    before.handle.stop().await;

    let smtp = SmtpServer::start_on(port, Inbox::default()).await;
    let after = spawn_full(config, tempfile::tempdir().unwrap(), false).await;
    after.advance(3600);
    let mails = smtp.inbox.wait_for("omar@example.com", 1).await;
    assert_eq!(
        mails.len(),
        1,
        "the restarted server delivers what was queued"
    );
    let s = settled_stats(&after).await;
    assert_eq!((s.sent, s.queued), (1, 0));
}

#[tokio::test]
async fn a_permanent_refusal_marks_the_message_failed() {
    let smtp = SmtpServer::start().await;
    smtp.inbox.refuse("bounce@example.com");
    let app = smtp_app(smtp.port, tempfile::tempdir().unwrap()).await;
    app.post(
        "/api/v1/auth/sign-up",
        json!({"email": "bounce@example.com", "password": PASSWORD}),
    )
    .await;
    app.post(
        "/api/v1/auth/sign-up",
        json!({"email": "fine@example.com", "password": PASSWORD}),
    )
    .await;
    smtp.inbox.wait_for("fine@example.com", 1).await;
    let mut failed = None;
    for _ in 0..100 {
        let rows = app.state.db.read(|c| outbox::recent(c, 10)).await.unwrap();
        if let Some(r) = rows
            .iter()
            .find(|r| r.to_addr == "bounce@example.com" && r.status == "failed")
        {
            failed = Some(r.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let failed = failed.expect("the refused message is marked failed");
    assert_eq!(failed.attempts, 1, "a permanent error is not retried");
    assert!(failed.last_error.unwrap().contains("550"));
    assert_eq!(stats(&app).await.failed, 1);
}
