use crate::helpers::*;
use derp::storage::users;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = spawn_app().await;
    app.sign_up("gina@example.com").await;
    let wrong = expect_error(
        app.sign_in("gina@example.com", "not the password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let unknown = expect_error(
        app.sign_in("nobody@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
}

#[tokio::test]
async fn sign_in_returns_user_and_tokens_and_records_audit() {
    let app = spawn_app().await;
    let up = app.sign_up("hal@example.com").await;
    let res = app.sign_in("HAL@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], up["user"]["id"]);
    assert!(body["user"]["last_sign_in_at"].is_string());
    assert_ne!(
        claims(body["tokens"]["access_token"].as_str().unwrap())["sid"],
        claims(up["tokens"]["access_token"].as_str().unwrap())["sid"],
        "a new session per login"
    );
    app.sign_in("hal@example.com", "bad password").await;
    let id = up["user"]["id"].as_str().unwrap().to_string();
    let actions = app
        .state
        .db
        .read(move |c| derp::storage::audit::actions_for_user(c, &id))
        .await
        .unwrap();
    let names: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(names, ["sign_up", "sign_in", "sign_in", "sign_in.failure"]);
    assert!(actions[3].1.contains("wrong_password"));
    assert!(
        !actions.iter().any(|a| a.1.contains(PASSWORD)),
        "no password in the audit log"
    );
}

#[tokio::test]
async fn disabled_account_is_refused_only_with_the_right_password() {
    let app = spawn_app().await;
    let up = app.sign_up("ivy@example.com").await;
    let id = up["user"]["id"].as_str().unwrap().to_string();
    app.state
        .db
        .write(move |c| users::set_disabled(c, &id, true, 0))
        .await
        .unwrap();
    expect_error(
        app.sign_in("ivy@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "account_disabled",
    )
    .await;
    expect_error(
        app.sign_in("ivy@example.com", "wrong password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_account_with_retry_after() {
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.rate_limit.sign_in_per_account = 2;
    })
    .await;
    app.sign_up("jay@example.com").await;
    for _ in 0..2 {
        assert_eq!(
            app.sign_in("jay@example.com", "wrong password")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = app.sign_in("jay@example.com", PASSWORD).await;
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another account is not affected.
    app.sign_up("kim@example.com").await;
    assert_eq!(
        app.sign_in("kim@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_up_and_resend_are_rate_limited_per_ip_and_address() {
    let app = spawn_with(|c| {
        c.rate_limit.sign_up_per_ip = 1;
        c.rate_limit.email_per_address = 1;
    })
    .await;
    assert_eq!(
        app.post(
            "/api/v1/auth/sign-up",
            json!({"email": "l1@example.com", "password": PASSWORD})
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "l2@example.com", "password": PASSWORD}),
        )
        .await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        app.post(
            "/api/v1/auth/confirm/resend",
            json!({"email": "l1@example.com"})
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    let res = app
        .post(
            "/api/v1/auth/confirm/resend",
            json!({"email": "l1@example.com"}),
        )
        .await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}
