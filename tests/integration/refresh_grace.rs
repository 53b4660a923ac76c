//! Issue #19 item 4: the refresh token reuse grace is measured in
//! milliseconds, 0 turns it off, and a retry within it gets the same child
//! token back, so a session never has two live refresh tokens.

use crate::helpers::*;
use derp::storage::sessions;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashSet;

fn pair(body: &Value) -> (String, String) {
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

async fn grace_app(seconds: u64) -> TestApp {
    spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.refresh_reuse_grace_seconds = seconds;
    })
    .await
}

/// Unused refresh tokens of the session behind `access`.
async fn live_refresh_tokens(app: &TestApp, access: &str) -> i64 {
    let sid = claims(access)["sid"].as_str().unwrap().to_string();
    app.state
        .db
        .read(move |c| sessions::count_unused_refresh(c, &sid))
        .await
        .unwrap()
}

#[tokio::test]
async fn grace_zero_refuses_an_immediate_reuse_and_revokes_the_session() {
    let app = grace_app(0).await;
    let (_, r0) = pair(&app.sign_up("g0@example.com").await);
    let res = app.refresh(&r0).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (a1, r1) = pair(&res.json().await.unwrap());
    // Milliseconds later, no clock move at all: reuse.
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
}

#[tokio::test]
async fn a_retry_within_grace_returns_the_same_refresh_token() {
    let app = grace_app(10).await;
    let (_, r0) = pair(&app.sign_up("g10@example.com").await);
    let (a1, r1) = pair(&app.refresh(&r0).await.json().await.unwrap());
    app.advance(5);
    let retry = app.refresh(&r0).await;
    assert_eq!(retry.status(), StatusCode::OK);
    let (a1b, r1b) = pair(&retry.json().await.unwrap());
    assert_eq!(r1b, r1, "the same child, not a second branch");
    assert_ne!(a1b, a1, "a fresh access token");
    assert_eq!(app.session(&a1b).await.status(), StatusCode::OK);
    assert_eq!(live_refresh_tokens(&app, &a1b).await, 1);
    // The child rotates as usual...
    let (a2, r2) = pair(&app.refresh(&r1).await.json().await.unwrap());
    assert_ne!(r2, r1);
    assert_eq!(live_refresh_tokens(&app, &a2).await, 1);
    // ...and once it has, the parent has nothing live to hand back.
    expect_error(
        app.refresh(&r0).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_eq!(app.session(&a2).await.status(), StatusCode::OK, "not reuse");
    // Past the window, the parent is reuse: the session dies.
    app.advance(6);
    expect_error(
        app.refresh(&r0).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    expect_error(
        app.refresh(&r2).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn parallel_refreshes_of_one_token_leave_one_live_refresh_token() {
    let app = grace_app(10).await;
    let (_, r0) = pair(&app.sign_up("gpar@example.com").await);
    let answers = futures_util::future::join_all((0..20).map(|_| app.refresh(&r0))).await;
    let mut refresh = HashSet::new();
    let mut access = None;
    for res in answers {
        assert_eq!(res.status(), StatusCode::OK);
        let (a, r) = pair(&res.json().await.unwrap());
        refresh.insert(r);
        access = Some(a);
    }
    assert_eq!(
        refresh.len(),
        1,
        "every answer carries the same refresh token"
    );
    let access = access.unwrap();
    assert_eq!(live_refresh_tokens(&app, &access).await, 1);
    // The session stays usable.
    assert_eq!(app.session(&access).await.status(), StatusCode::OK);
    let r1 = refresh.into_iter().next().unwrap();
    let res = app.refresh(&r1).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (a2, _) = pair(&res.json().await.unwrap());
    assert_eq!(app.session(&a2).await.status(), StatusCode::OK);
    assert_eq!(live_refresh_tokens(&app, &a2).await, 1);
}

/// Refresh tokens carry the millisecond they were made and are stored under
/// a key that grows with it; a token stored the earlier way (under its
/// plain SHA-256 hex) still rotates once, and its reuse is still detected.
#[tokio::test]
async fn a_refresh_token_stored_before_the_time_prefix_still_rotates_once() {
    use derp::auth::secrets::{hash_token, random_token, refresh_key};
    let app = grace_app(0).await;
    let (a0, r0) = pair(&app.sign_up("prefix@example.com").await);
    let (ms, rest) = r0.split_once('.').expect("a time prefix");
    assert!(ms.len() == 12 && ms.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(rest.len(), 43);

    let old = random_token();
    let sid = claims(&a0)["sid"].as_str().unwrap().to_string();
    let now = derp::clock::Clock::unix(app.clock.as_ref());
    let key = hash_token(&old);
    app.state
        .db
        .write(move |c| sessions::insert_refresh(c, &sid, &key, None, now, now + 3600))
        .await
        .unwrap();
    let res = app.refresh(&old).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (a1, r1) = pair(&res.json().await.unwrap());
    assert!(r1.split_once('.').is_some_and(|(p, _)| p.len() == 12));
    assert!(refresh_key(&r1) > hash_token(&old));
    assert_eq!(app.session(&a1).await.status(), StatusCode::OK);
    // In this order: the old token again is reuse, which ends the whole
    // session, so its child is refused too; a prefixed token that was never
    // issued finds nothing.
    let forged = format!("{ms}.{}", random_token());
    for token in [&old, &r1, &forged] {
        expect_error(
            app.refresh(token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
}
