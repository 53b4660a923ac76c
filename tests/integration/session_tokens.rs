use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use derp::storage::users;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn tokens(body: &Value) -> (String, String) {
    let t = if body.get("tokens").is_some() {
        &body["tokens"]
    } else {
        body
    };
    (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn session_reports_the_seeds_session_info() {
    let app = spawn_app().await;
    let up = app.sign_up("s1@example.com").await;
    let (access, _) = tokens(&up);
    let res = app.session(&access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let info: Value = res.json().await.unwrap();
    let c = claims(&access);
    assert_eq!(info["user_id"], up["user"]["id"]);
    assert_eq!(info["session_id"], c["sid"]);
    assert_eq!(info["role"], "default");
    assert_eq!(info["expires_at"], c["exp"]);
    assert_eq!(info["email"], "s1@example.com");
    assert!(info["org_id"].is_null() && info["org_role"].is_null());
}

#[tokio::test]
async fn session_refuses_missing_tampered_forged_and_expired_tokens() {
    let app = spawn_app().await;
    let (access, _) = tokens(&app.sign_up("s2@example.com").await);
    let res = app
        .client
        .get(app.url("/api/v1/auth/session"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("www-authenticate"));
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // Payload changed (role escalated), signature kept.
    let parts: Vec<&str> = access.split('.').collect();
    let mut c = claims(&access);
    c["role"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(c.to_string()),
        parts[2]
    );
    expect_error(
        app.session(&tampered).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // alg: none, no signature.
    let none_header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "none", "typ": "at+jwt", "kid": header(&access)["kid"]}).to_string());
    let unsigned = format!("{none_header}.{}.", parts[1]);
    expect_error(
        app.session(&unsigned).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Algorithm switch: HS256 "signed" with the public key as the secret.
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = header(&access)["kid"].as_str().map(str::to_string);
    let switched = jsonwebtoken::encode(
        &h,
        &claims(&access),
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
    )
    .unwrap();
    expect_error(
        app.session(&switched).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Garbage.
    expect_error(
        app.session("not.a.jwt").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Expired: move the clock past the 15-minute life.
    assert_eq!(app.session(&access).await.status(), StatusCode::OK);
    app.advance(15 * 60 + 1);
    expect_error(
        app.session(&access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_session() {
    let app = spawn_app().await;
    let (_, r0) = tokens(&app.sign_up("r1@example.com").await);
    let res = app.refresh(&r0).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (a1, r1) = tokens(&res.json::<Value>().await.unwrap());
    assert_ne!(r0, r1);
    assert_eq!(app.session(&a1).await.status(), StatusCode::OK);

    // Past the grace window, the old token is reuse: the session dies.
    app.advance(11);
    expect_error(
        app.refresh(&r0).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    expect_error(
        app.refresh(&r1).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    expect_error(
        app.session(&a1).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // Other sessions of the user live on.
    assert_eq!(
        app.sign_in("r1@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_retry_within_the_grace_window_does_not_kill_the_session() {
    let app = spawn_app().await;
    let (_, r0) = tokens(&app.sign_up("r2@example.com").await);
    let first = app.refresh(&r0).await;
    assert_eq!(first.status(), StatusCode::OK);
    app.advance(5);
    let retry = app.refresh(&r0).await;
    assert_eq!(
        retry.status(),
        StatusCode::OK,
        "within 10 s the retry succeeds"
    );
    let (_, r_a) = tokens(&first.json::<Value>().await.unwrap());
    let (a_b, r_b) = tokens(&retry.json::<Value>().await.unwrap());
    assert_eq!(r_a, r_b, "the retry gets the same refresh token");
    assert_eq!(app.session(&a_b).await.status(), StatusCode::OK);
    assert_eq!(app.refresh(&r_a).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_all_succeed_within_grace() {
    let app = spawn_app().await;
    let (_, r0) = tokens(&app.sign_up("r3@example.com").await);
    let results = futures_util::future::join_all((0..5).map(|_| app.refresh(&r0))).await;
    for res in results {
        assert_eq!(res.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn refresh_tokens_expire_when_idle_and_sessions_at_their_absolute_end() {
    let app = spawn_app().await;
    let (_, r0) = tokens(&app.sign_up("r4@example.com").await);
    app.advance(7 * 86_400 + 1);
    expect_error(
        app.refresh(&r0).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    let (_, mut r) = tokens(
        &app.sign_in("r4@example.com", PASSWORD)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    // Refreshing every 6 days keeps the idle life alive, until day 30.
    for _ in 0..4 {
        app.advance(6 * 86_400);
        let res = app.refresh(&r).await;
        assert_eq!(res.status(), StatusCode::OK);
        r = tokens(&res.json::<Value>().await.unwrap()).1;
    }
    app.advance(6 * 86_400 + 1);
    expect_error(
        app.refresh(&r).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn disabled_or_deleted_users_cannot_refresh() {
    let app = spawn_app().await;
    let up = app.sign_up("r5@example.com").await;
    let (_, r0) = tokens(&up);
    let id = up["user"]["id"].as_str().unwrap().to_string();
    app.state
        .db
        .write(move |c| users::set_disabled(c, &id, true, 0))
        .await
        .unwrap();
    expect_error(
        app.refresh(&r0).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    expect_error(
        app.refresh("unknown-token").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn sign_out_ends_this_session_or_every_session() {
    let app = spawn_app().await;
    let (a1, r1) = tokens(&app.sign_up("o1@example.com").await);
    let (a2, r2) = tokens(
        &app.sign_in("o1@example.com", PASSWORD)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let (a3, r3) = tokens(
        &app.sign_in("o1@example.com", PASSWORD)
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );

    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-out"))
        .bearer_auth(&a1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.session(&a1).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        app.refresh(&r1).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_eq!(app.session(&a2).await.status(), StatusCode::OK);

    let res = app
        .post_bearer("/api/v1/auth/sign-out", &a2, json!({"scope": "all"}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for (a, r) in [(&a2, &r2), (&a3, &r3)] {
        expect_error(
            app.session(a).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        expect_error(
            app.refresh(r).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-out"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn sign_out_scope_is_validated() {
    let app = spawn_app().await;
    let (a, _) = tokens(&app.sign_up("o2@example.com").await);
    let res = app
        .post_bearer("/api/v1/auth/sign-out", &a, json!({"scope": "galaxy"}))
        .await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(body["error"]["fields"]["scope"].is_string());
    assert_eq!(
        app.session(&a).await.status(),
        StatusCode::OK,
        "nothing happened"
    );
}

/// `GET /session` remembers tokens it verified (no signature check, no
/// database read the second time); every kind of revocation still bites on
/// the very next request.
#[tokio::test]
async fn a_session_seen_before_is_refused_right_after_any_revocation() {
    use crate::admin::{KEY, admin_app, call};
    use reqwest::Method;
    let app = admin_app().await;
    let warm = |token: String| {
        let app = &app;
        async move {
            for _ in 0..3 {
                assert_eq!(app.session(&token).await.status(), StatusCode::OK);
            }
            token
        }
    };
    let refused = |token: String| {
        let app = &app;
        async move {
            expect_error(
                app.session(&token).await,
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
            )
            .await;
        }
    };

    // An admin disables the user.
    let body = app.sign_up("cached-1@example.com").await;
    let id = body["user"]["id"].as_str().unwrap().to_string();
    let a = warm(tokens(&body).0).await;
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{id}"),
        Some(KEY),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    refused(a).await;

    // A password change signs out the other sessions.
    let body = app.sign_up("cached-2@example.com").await;
    let keep = tokens(&body).0;
    let other: Value = app
        .sign_in("cached-2@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let other = warm(tokens(&other).0).await;
    let res = app
        .client
        .patch(app.url("/api/v1/auth/user"))
        .bearer_auth(&keep)
        .json(&json!({"password": "another-Password-77!", "current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    refused(other).await;
    assert_eq!(app.session(&keep).await.status(), StatusCode::OK);

    // A deleted org stops being reported at once.
    let body = app.sign_up("cached-3@example.com").await;
    let a = tokens(&body).0;
    let org: Value = app
        .post_bearer(
            "/api/v1/orgs",
            &a,
            json!({"name": "Cache Co", "slug": "cache-co"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let org_id = org["id"].as_str().unwrap().to_string();
    let switched: Value = app
        .post_bearer("/api/v1/auth/active-org", &a, json!({"org_id": org_id}))
        .await
        .json()
        .await
        .unwrap();
    let with_org = warm(tokens(&switched).0).await;
    let seen: Value = app.session(&with_org).await.json().await.unwrap();
    assert_eq!(seen["org_id"], org_id.as_str());
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/orgs/{org_id}")))
        .bearer_auth(&with_org)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let seen: Value = app.session(&with_org).await.json().await.unwrap();
    assert!(seen["org_id"].is_null(), "{seen}");

    // An admin deletes the user.
    let id = body["user"]["id"].as_str().unwrap().to_string();
    let res = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/users/{id}"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    refused(with_org).await;
}
