use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn sign_up_without_confirmation_signs_the_user_in() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "  Alice@Example.COM ", "password": PASSWORD, "data": {"plan": "pro"}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["confirmation_required"], false);
    let user = &body["user"];
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["role"], "default");
    assert_eq!(user["disabled"], false);
    assert_eq!(user["data"]["plan"], "pro");
    assert!(user["email_confirmed_at"].is_null());
    assert!(user.get("password_hash").is_none() && !body.to_string().contains("argon2"));
    let tokens = &body["tokens"];
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(
        tokens["expires_at"], c["exp"],
        "expires_at equals the JWT's exp"
    );
    assert_eq!(c["sub"], user["id"]);
    assert_eq!(c["sid"], c["session_id"]);
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["role"], "default");
    assert_eq!(c["iss"], app.base);
    assert!(c["jti"].is_string() && c.get("org_id").is_none());
    let h = header(access);
    assert_eq!(h["alg"], "EdDSA");
    assert_eq!(h["typ"], "at+jwt");
    assert!(h["kid"].is_string());
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_when_confirmation_is_off() {
    let app = spawn_app().await;
    app.sign_up("bob@example.com").await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "BOB@example.com", "password": PASSWORD}),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "email_exists").await;
}

#[tokio::test]
async fn weak_password_lists_every_reason() {
    let app = spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.password.min_length = 12;
        n.password.require_digit = true;
        n.password.require_uppercase = true;
    })
    .await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "w@example.com", "password": "short"}),
        )
        .await;
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    assert_eq!(
        body["error"]["reasons"],
        json!(["too_short", "missing_uppercase", "missing_digit"])
    );
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "w@example.com", "password": "Long enough 1"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_email_names_the_field() {
    let app = spawn_app().await;
    for bad in ["not-an-email", "", "a@b", "two@@example.com"] {
        let res = app
            .post(
                "/api/v1/auth/sign-up",
                json!({"email": bad, "password": PASSWORD}),
            )
            .await;
        let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            body["error"]["fields"]["email"].is_string(),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn signup_disabled_is_refused() {
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_signup = false
    })
    .await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "x@example.com", "password": PASSWORD}),
        )
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "signup_disabled").await;
}

#[tokio::test]
async fn with_confirmation_new_and_taken_emails_get_the_same_answer() {
    let app = spawn_with(|_| {}).await;
    let first = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "carol@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        first,
        json!({"user": {"email": "carol@example.com"}, "tokens": null, "confirmation_required": true})
    );
    let again = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "carol@example.com", "password": "another password"}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap(),
        first,
        "a taken email is not revealed"
    );

    let mails = app.mails_to("carol@example.com", 2).await;
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().any(|m| m.subject.contains("Confirm")));
    let already = mails
        .iter()
        .find(|m| m.subject.contains("already have an account"))
        .expect("already-registered mail");
    assert!(!already.text.contains("token="));

    // No sign-in before confirmation, and the second password never took.
    let res = app.sign_in("carol@example.com", PASSWORD).await;
    expect_error(res, StatusCode::FORBIDDEN, "email_not_confirmed").await;
    let res = app.sign_in("carol@example.com", "another password").await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let confirm_mail = mails
        .iter()
        .find(|m| m.subject.contains("Confirm"))
        .unwrap();
    assert!(
        confirm_mail
            .text
            .contains(&format!("{}/confirm?token=", app.base))
    );
    assert!(
        confirm_mail.text.contains("24 hours"),
        "lifetime from config"
    );
    let token = token_from(confirm_mail);
    let res = app
        .post("/api/v1/auth/confirm", json!({"token": token}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["user"]["email_confirmed_at"].is_string());
    assert!(body["tokens"]["access_token"].is_string());

    let reused = app
        .post("/api/v1/auth/confirm", json!({"token": token}))
        .await;
    expect_error(reused, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(
        app.sign_in("carol@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn confirmation_link_expires_and_unknown_tokens_fail() {
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .confirmation_token_expire_hours = 2
    })
    .await;
    app.post(
        "/api/v1/auth/sign-up",
        json!({"email": "dan@example.com", "password": PASSWORD}),
    )
    .await;
    let mails = app.mails_to("dan@example.com", 1).await;
    assert!(mails[0].text.contains("2 hours"));
    let token = token_from(&mails[0]);
    app.advance(2 * 3600 + 1);
    let res = app
        .post("/api/v1/auth/confirm", json!({"token": token}))
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let res = app
        .post("/api/v1/auth/confirm", json!({"token": "made-up"}))
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn resend_always_accepts_and_mails_only_unconfirmed_users() {
    let app = spawn_with(|_| {}).await;
    app.post(
        "/api/v1/auth/sign-up",
        json!({"email": "eve@example.com", "password": PASSWORD}),
    )
    .await;
    app.mails_to("eve@example.com", 1).await;
    for email in ["eve@example.com", "nobody@example.com"] {
        let res = app
            .post("/api/v1/auth/confirm/resend", json!({"email": email}))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{email}");
    }
    let mails = app.mails_to("eve@example.com", 2).await;
    assert_eq!(mails.len(), 2);
    assert!(app.mails_to("nobody@example.com", 0).await.is_empty());
    // Both links work until one is used; each is single use.
    let res = app
        .post(
            "/api/v1/auth/confirm",
            json!({"token": token_from(&mails[1])}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn confirmation_url_must_be_allow_listed() {
    let app = spawn_with(|c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()]
    })
    .await;
    let res = app
        .post("/api/v1/auth/sign-up", json!({"email": "f@example.com", "password": PASSWORD, "confirmation_url": "https://evil.example.net/steal"}))
        .await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(body["error"]["fields"]["confirmation_url"].is_string());
    let res = app
        .post("/api/v1/auth/sign-up", json!({"email": "f@example.com", "password": PASSWORD, "confirmation_url": "https://app.example.com/auth/confirm"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mails = app.mails_to("f@example.com", 1).await;
    assert_eq!(
        mails.len(),
        1,
        "the refused sign-up wrote nothing and sent nothing"
    );
    assert!(
        mails[0]
            .text
            .contains("https://app.example.com/auth/confirm?token=")
    );
}
