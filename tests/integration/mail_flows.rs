//! Magic links and password recovery, end to end through the outbox.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn magic_app(signup: bool) -> TestApp {
    spawn_with(move |c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_magic_link = true;
        n.enable_signup = signup;
        n.enable_confirmation = false;
    })
    .await
}

#[tokio::test]
async fn magic_link_is_404_when_disabled() {
    let app = spawn_app().await;
    let res = app
        .post("/api/v1/auth/magic-link", json!({"email": "a@example.com"}))
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "feature_disabled").await;
    let res = app
        .post("/api/v1/auth/magic-link/verify", json!({"token": "x"}))
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "feature_disabled").await;
}

#[tokio::test]
async fn magic_link_creates_a_new_user_only_when_the_link_is_used() {
    let app = magic_app(true).await;
    let res = app
        .post(
            "/api/v1/auth/magic-link",
            json!({"email": "New@Example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mails = app.mails_to("new@example.com", 1).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .text
            .contains(&format!("{}/magic-link?token=", app.base))
    );
    assert!(
        mails[0].text.contains("1 hour"),
        "lifetime from config: {}",
        mails[0].text
    );
    // Not created yet: a password sign-in finds nobody, and nobody is in the table.
    let exists = app
        .state
        .db
        .read(|c| derp::storage::users::by_email(c, "new@example.com"))
        .await
        .unwrap();
    assert!(exists.is_none());

    let res = app
        .post(
            "/api/v1/auth/magic-link/verify",
            json!({"token": token_from(&mails[0])}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "new@example.com");
    assert!(body["user"]["email_confirmed_at"].is_string());
    assert_eq!(
        app.session(body["tokens"]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    let again = app
        .post(
            "/api/v1/auth/magic-link/verify",
            json!({"token": token_from(&mails[0])}),
        )
        .await;
    expect_error(again, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn magic_link_for_an_unknown_email_sends_nothing_when_signup_is_off() {
    let app = magic_app(false).await;
    let known = {
        // Made directly in storage: sign-up is off.
        let data = json!({});
        app.state
            .db
            .write(move |c| {
                derp::storage::users::insert(
                    c,
                    &derp::storage::users::NewUser {
                        id: "known-user",
                        email: "known@example.com",
                        password_hash: None,
                        email_confirmed_at: Some(1),
                        role: derp::domain::Role::Default,
                        data: &data,
                        now: 1,
                    },
                )
            })
            .await
            .unwrap();
        app.post(
            "/api/v1/auth/magic-link",
            json!({"email": "known@example.com"}),
        )
        .await
    };
    let unknown = app
        .post(
            "/api/v1/auth/magic-link",
            json!({"email": "stranger@example.com"}),
        )
        .await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(
        known.text().await.unwrap(),
        unknown.text().await.unwrap(),
        "same body for known and unknown"
    );
    assert_eq!(app.mails_to("known@example.com", 1).await.len(), 1);
    assert!(app.mails_to("stranger@example.com", 0).await.is_empty());
}

#[tokio::test]
async fn magic_link_verified_twice_at_once_signs_in_exactly_once() {
    let app = magic_app(true).await;
    app.sign_up("twice@example.com").await;
    app.post(
        "/api/v1/auth/magic-link",
        json!({"email": "twice@example.com"}),
    )
    .await;
    let token = token_from(&app.mails_to("twice@example.com", 1).await[0]);
    let attempts =
        (0..6).map(|_| app.post("/api/v1/auth/magic-link/verify", json!({"token": token})));
    let results = futures_util::future::join_all(attempts).await;
    let ok = results
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    let refused = results
        .iter()
        .filter(|r| r.status() == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((ok, refused), (1, 5));
}

#[tokio::test]
async fn magic_links_expire() {
    let app = magic_app(true).await;
    app.post(
        "/api/v1/auth/magic-link",
        json!({"email": "late@example.com"}),
    )
    .await;
    let token = token_from(&app.mails_to("late@example.com", 1).await[0]);
    app.advance(60 * 60 + 1);
    let res = app
        .post("/api/v1/auth/magic-link/verify", json!({"token": token}))
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn magic_link_on_an_unconfirmed_account_drops_the_unproven_password() {
    // Pre-hijack: someone signs up with the victim's address and a password of theirs.
    let app = spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_magic_link = true;
    })
    .await;
    app.post(
        "/api/v1/auth/sign-up",
        json!({"email": "victim@example.com", "password": "attacker password"}),
    )
    .await;
    app.post(
        "/api/v1/auth/magic-link",
        json!({"email": "victim@example.com"}),
    )
    .await;
    let mails = app.mails_to("victim@example.com", 2).await;
    let link = mails.iter().find(|m| m.kind == "magic_link").unwrap();
    let res = app
        .post(
            "/api/v1/auth/magic-link/verify",
            json!({"token": token_from(link)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.sign_in("victim@example.com", "attacker password").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn recovery_answers_the_same_and_resets_once() {
    let app = spawn_app().await;
    let first = app.sign_up("rose@example.com").await;
    let other: Value = app
        .sign_in("rose@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();

    let known = app
        .post(
            "/api/v1/auth/password/recover",
            json!({"email": "rose@example.com"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/password/recover",
            json!({"email": "ghost@example.com"}),
        )
        .await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    assert!(app.mails_to("ghost@example.com", 0).await.is_empty());

    let mail = app.mails_to("rose@example.com", 1).await.remove(0);
    assert_eq!(mail.kind, "reset");
    assert!(
        mail.text
            .contains(&format!("{}/reset-password?token=", app.base))
    );
    assert!(mail.text.contains("1 hour"));
    let token = token_from(&mail);

    // A weak password is refused without spending the link.
    let res = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "password": "short"}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;

    let res = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "password": "a whole new password"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        app.session(body["tokens"]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // Every other session is gone, the old password too.
    for old in [&first, &other] {
        assert_eq!(
            app.session(old["tokens"]["access_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.sign_in("rose@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.sign_in("rose@example.com", "a whole new password")
            .await
            .status(),
        StatusCode::OK
    );
    let changed = app.mails_to("rose@example.com", 2).await;
    assert!(changed.iter().any(|m| m.kind == "password_changed"));

    let res = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "password": "yet another password"}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn reset_links_expire_and_are_bound_to_their_purpose() {
    let app = spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.recovery_token_expire_minutes = 30;
        n.enable_confirmation = true;
    })
    .await;
    app.post(
        "/api/v1/auth/sign-up",
        json!({"email": "pat@example.com", "password": PASSWORD}),
    )
    .await;
    let confirm = app.mails_to("pat@example.com", 1).await.remove(0);
    // A confirmation token is not a reset token.
    let res = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token_from(&confirm), "password": "new password here"}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    app.post(
        "/api/v1/auth/password/recover",
        json!({"email": "pat@example.com"}),
    )
    .await;
    let mails = app.mails_to("pat@example.com", 2).await;
    let reset = mails.iter().find(|m| m.kind == "reset").unwrap();
    assert!(reset.text.contains("30 minutes"));
    app.advance(30 * 60 + 1);
    let res = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token_from(reset), "password": "new password here"}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn mail_sends_are_limited_per_address() {
    let app = spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_magic_link = true;
        n.enable_confirmation = false;
        c.rate_limit.email_per_address = 2;
    })
    .await;
    for _ in 0..2 {
        let res = app
            .post(
                "/api/v1/auth/password/recover",
                json!({"email": "flood@example.com"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    for path in [
        "/api/v1/auth/password/recover",
        "/api/v1/auth/magic-link",
        "/api/v1/auth/confirm/resend",
    ] {
        let res = app.post(path, json!({"email": "flood@example.com"})).await;
        expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    // Another address is still served.
    let res = app
        .post(
            "/api/v1/auth/password/recover",
            json!({"email": "calm@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}
