//! Sign-in lockout: repeated failures lock an address (known or not, alike)
//! for the source they came from, and many failures from all sources lock it
//! for everyone; the lock is visible and clearable in the admin API and
//! pages, and ends by itself, on a correct sign-in before the threshold, or
//! on a password reset.

use crate::admin::{KEY, admin_token, call, events};
use crate::helpers::*;
use derp::config::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WRONG: &str = "not-the-password-at-all";

async fn lockout_app() -> TestApp {
    spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.admin.service_keys = vec![Secret::new(KEY)];
        c.rate_limit.lockout_after = 3;
        c.rate_limit.lockout_minutes = 15;
    })
    .await
}

async fn fail(app: &TestApp, email: &str, times: usize) {
    for _ in 0..times {
        expect_error(
            app.sign_in(email, WRONG).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
}

async fn locked(app: &TestApp, email: &str, password: &str) -> u64 {
    let res = app.sign_in(email, password).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    retry
}

async fn lockouts(app: &TestApp) -> Vec<Value> {
    let res = call(app, Method::GET, "/api/v1/admin/lockouts", Some(KEY), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["lockouts"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn repeated_failures_lock_known_and_unknown_addresses_alike_until_cleared() {
    let app = lockout_app().await;
    let user = app.sign_up("locked-out@example.com").await;
    let user_id = user["user"]["id"].as_str().unwrap().to_string();

    fail(&app, "locked-out@example.com", 3).await;
    // Now even the right password is refused, without a password check.
    let retry = locked(&app, "locked-out@example.com", PASSWORD).await;
    assert!((890..=900).contains(&retry), "Retry-After {retry}");
    // An address with no account locks the same way: no enumeration.
    fail(&app, "nobody-here@example.com", 3).await;
    let retry = locked(&app, "nobody-here@example.com", PASSWORD).await;
    assert!((890..=900).contains(&retry), "Retry-After {retry}");
    // Other addresses are untouched.
    app.sign_up("bystander@example.com").await;
    assert_eq!(
        app.sign_in("bystander@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // Visible to admins, and to nobody else.
    let list = lockouts(&app).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let mine = list
        .iter()
        .find(|l| l["email"] == "locked-out@example.com")
        .unwrap();
    assert_eq!(mine["user_id"], user_id.as_str());
    assert_eq!(mine["failures"], 3);
    assert!(mine["retry_after"].as_i64().unwrap() > 0);
    assert!(mine["locked_until"].is_string());
    let ghost = list
        .iter()
        .find(|l| l["email"] == "nobody-here@example.com")
        .unwrap();
    assert!(ghost["user_id"].is_null());
    let plain: Value = app
        .sign_in("bystander@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let plain = plain["tokens"]["access_token"].as_str().unwrap();
    for bearer in [
        None,
        Some(plain),
        Some("a-wrong-service-key-0123456789abcdefghijk"),
    ] {
        let res = call(&app, Method::GET, "/api/v1/admin/lockouts", bearer, None).await;
        expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
        let res = call(
            &app,
            Method::DELETE,
            "/api/v1/admin/lockouts/locked-out@example.com",
            bearer,
            None,
        )
        .await;
        expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }

    // The lock and the failures on the way there are in the audit log.
    let trail = events(&app, &format!("user_id={user_id}")).await;
    let actions: Vec<&str> = trail.iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"sign_in.locked"), "{actions:?}");
    let refused = trail
        .iter()
        .find(|e| e["action"] == "sign_in.failure" && e["detail"]["reason"] == "locked")
        .expect("the refused attempt is recorded");
    assert_eq!(refused["detail"]["email"], "locked-out@example.com");

    // An admin clears it: the right password works again at once.
    let res = call(
        &app,
        Method::DELETE,
        "/api/v1/admin/lockouts/Locked-Out@example.com",
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.sign_in("locked-out@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let res = call(
        &app,
        Method::DELETE,
        "/api/v1/admin/lockouts/locked-out@example.com",
        Some(KEY),
        None,
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = call(
        &app,
        Method::DELETE,
        "/api/v1/admin/lockouts/not-an-email",
        Some(KEY),
        None,
    )
    .await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(body["error"]["fields"]["email"].is_string(), "{body}");
    let cleared = events(&app, "action=admin.lockout.cleared").await;
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0]["detail"]["email"], "locked-out@example.com");
    assert_eq!(cleared[0]["target"], user_id.as_str());
    assert_eq!(lockouts(&app).await.len(), 1);
}

#[tokio::test]
async fn a_lock_ends_by_itself_on_success_before_it_and_on_a_password_reset() {
    let app = lockout_app().await;
    app.sign_up("forgetful@example.com").await;

    // Failures short of the threshold are forgotten on a correct password.
    fail(&app, "forgetful@example.com", 2).await;
    assert_eq!(
        app.sign_in("forgetful@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    fail(&app, "forgetful@example.com", 2).await;
    assert_eq!(
        app.sign_in("forgetful@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // Failures further apart than the lock's length do not add up.
    fail(&app, "forgetful@example.com", 2).await;
    app.advance(15 * 60 + 1);
    fail(&app, "forgetful@example.com", 2).await;
    assert_eq!(
        app.sign_in("forgetful@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // A lock ends by itself.
    fail(&app, "forgetful@example.com", 3).await;
    locked(&app, "forgetful@example.com", PASSWORD).await;
    app.advance(15 * 60 + 1);
    assert!(lockouts(&app).await.is_empty());
    assert_eq!(
        app.sign_in("forgetful@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // A password reset ends a lock: the mailbox owner chose a new password.
    fail(&app, "forgetful@example.com", 3).await;
    locked(&app, "forgetful@example.com", PASSWORD).await;
    let res = app
        .post(
            "/api/v1/auth/password/recover",
            json!({"email": "forgetful@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mail = app.mails_to("forgetful@example.com", 1).await;
    let token = token_from(mail.last().unwrap());
    let res = app
        .post(
            "/api/v1/auth/password/reset",
            json!({"token": token, "password": "a-brand-new-password-42"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.sign_in("forgetful@example.com", "a-brand-new-password-42")
            .await
            .status(),
        StatusCode::OK
    );
    assert!(lockouts(&app).await.is_empty());
}

#[tokio::test]
async fn lockout_zero_turns_it_off() {
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.rate_limit.lockout_after = 0;
    })
    .await;
    app.sign_up("relaxed@example.com").await;
    fail(&app, "relaxed@example.com", 12).await;
    assert_eq!(
        app.sign_in("relaxed@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn admins_see_and_clear_locks_in_the_pages() {
    let app = lockout_app().await;
    let user = app.sign_up("page-locked@example.com").await;
    let user_id = user["user"]["id"].as_str().unwrap().to_string();
    fail(&app, "page-locked@example.com", 3).await;
    admin_token(&app, "boss@example.com").await;

    let admin = spawn_client();
    let login = admin
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = admin
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", hidden(&login, "csrf_token").as_str()),
            ("email", "boss@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let overview = admin
        .get(app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        overview.contains("<a href=\"/admin/lockouts\">1</a></strong><span>locked addresses"),
        "{overview}"
    );
    let page = admin
        .get(app.url("/admin/lockouts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("page-locked@example.com"), "{page}");
    assert!(page.contains(&format!("/admin/users/{user_id}")));
    let user_page = admin
        .get(app.url(&format!("/admin/users/{user_id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(user_page.contains("Sign-in from 127.0.0.1 is locked after 3 failed attempts"));

    // Without the CSRF token nothing is cleared.
    let res = admin
        .post(app.url("/admin/lockouts/clear"))
        .form(&[("email", "page-locked@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(lockouts(&app).await.len(), 1);

    let res = admin
        .post(app.url("/admin/lockouts/clear"))
        .form(&[
            ("csrf_token", hidden(&user_page, "csrf_token").as_str()),
            ("email", "page-locked@example.com"),
            ("back", &format!("/admin/users/{user_id}")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        format!("/admin/users/{user_id}").as_str()
    );
    assert!(lockouts(&app).await.is_empty());
    let user_page = admin
        .get(app.url(&format!("/admin/users/{user_id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(user_page.contains("page-locked@example.com can sign in again."));
    assert!(!user_page.contains("Sign-in is locked"));
    assert_eq!(
        app.sign_in("page-locked@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let cleared = events(&app, "action=admin.lockout.cleared").await;
    assert_eq!(cleared.len(), 1);
    assert!(cleared[0]["actor_id"].is_string());
}

/// Lockout after 3 from one source, 7 from all; the client's address comes
/// from `X-Forwarded-For` (the test client is a trusted proxy).
async fn sourced_app(per_account: u32) -> TestApp {
    spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.admin.service_keys = vec![Secret::new(KEY)];
        c.server.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.rate_limit.sign_in_per_account = per_account;
        c.rate_limit.lockout_after = 3;
        c.rate_limit.lockout_address_after = 7;
        c.rate_limit.lockout_minutes = 15;
    })
    .await
}

async fn sign_in_from(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn fail_from(app: &TestApp, ip: &str, email: &str, times: usize) {
    for _ in 0..times {
        expect_error(
            sign_in_from(app, ip, email, WRONG).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
}

async fn refused_from(app: &TestApp, ip: &str, email: &str) -> u64 {
    let res = sign_in_from(app, ip, email, PASSWORD).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    retry
}

#[tokio::test]
async fn one_source_cannot_lock_the_owner_out_from_elsewhere() {
    let app = sourced_app(10_000).await;
    app.sign_up("victim@example.com").await;
    const ATTACKER: &str = "203.0.113.9";
    const OWNER: &str = "198.51.100.7";

    fail_from(&app, ATTACKER, "victim@example.com", 3).await;
    // The attacker's source is locked, even with the right password, and
    // hammering on does not count further.
    for _ in 0..20 {
        let retry = refused_from(&app, ATTACKER, "victim@example.com").await;
        assert!((890..=900).contains(&retry), "Retry-After {retry}");
    }
    // The owner, elsewhere, signs in as usual.
    assert_eq!(
        sign_in_from(&app, OWNER, "victim@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    // An IPv6 source is its /64: another host in it is locked too, another
    // /64 is not.
    fail_from(&app, "2001:db8:1:2::1", "victim@example.com", 3).await;
    refused_from(&app, "2001:db8:1:2:ffff::9", "victim@example.com").await;
    assert_eq!(
        sign_in_from(&app, "2001:db8:1:3::1", "victim@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // The admin sees each source's lock.
    let list = lockouts(&app).await;
    let mut sources: Vec<&str> = list.iter().filter_map(|l| l["source"].as_str()).collect();
    sources.sort();
    assert_eq!(sources, ["2001:db8:1:2::/64", ATTACKER], "{list:?}");
    let locks = events(&app, "action=sign_in.locked").await;
    assert!(
        locks
            .iter()
            .any(|e| e["detail"]["scope"] == "source" && e["detail"]["source"] == ATTACKER),
        "{locks:?}"
    );

    // Once the lock ends, the same source gets its next three, and alone it
    // never reaches the per-address brake (7), however long it keeps on.
    for _ in 0..3 {
        app.advance(15 * 60 + 1);
        fail_from(&app, ATTACKER, "victim@example.com", 3).await;
        refused_from(&app, ATTACKER, "victim@example.com").await;
        assert_eq!(
            sign_in_from(&app, OWNER, "victim@example.com", PASSWORD)
                .await
                .status(),
            StatusCode::OK
        );
    }
    // An admin's clear ends every source's lock.
    let res = call(
        &app,
        Method::DELETE,
        "/api/v1/admin/lockouts/victim@example.com",
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(lockouts(&app).await.is_empty());
    assert_eq!(
        sign_in_from(&app, ATTACKER, "victim@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_guess_spread_over_many_sources_locks_the_address_for_everyone() {
    let app = sourced_app(10_000).await;
    app.sign_up("target@example.com").await;
    // Seven failures from four sources, none of them locked on its own.
    for (ip, times) in [
        ("192.0.2.1", 2),
        ("192.0.2.2", 2),
        ("192.0.2.3", 2),
        ("192.0.2.4", 1),
    ] {
        fail_from(&app, ip, "target@example.com", times).await;
    }
    // The address is now locked everywhere, the owner's new source too.
    let retry = refused_from(&app, "198.51.100.50", "target@example.com").await;
    assert!((890..=900).contains(&retry), "Retry-After {retry}");
    refused_from(&app, "192.0.2.9", "target@example.com").await;
    let list = lockouts(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(list[0]["source"].is_null());
    assert_eq!(list[0]["failures"], 7);
    let locks = events(&app, "action=sign_in.locked").await;
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(locks[0]["detail"]["scope"], "address");
    // Unknown addresses get the same brake.
    for (ip, times) in [
        ("192.0.2.1", 2),
        ("192.0.2.2", 2),
        ("192.0.2.3", 2),
        ("192.0.2.4", 1),
    ] {
        fail_from(&app, ip, "no-account@example.com", times).await;
    }
    refused_from(&app, "198.51.100.50", "no-account@example.com").await;

    // Six failures spread over more than the window do not add up.
    fail_from(&app, "192.0.2.1", "other@example.com", 2).await;
    fail_from(&app, "192.0.2.2", "other@example.com", 2).await;
    app.advance(15 * 60 + 1);
    fail_from(&app, "192.0.2.3", "other@example.com", 2).await;
    fail_from(&app, "192.0.2.4", "other@example.com", 2).await;
    app.sign_up("other@example.com").await;
    assert_eq!(
        sign_in_from(&app, "198.51.100.50", "other@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // The address lock ends by itself.
    app.advance(15 * 60 + 1);
    assert_eq!(
        sign_in_from(&app, "198.51.100.50", "target@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_per_account_rate_limit_counts_per_source_too() {
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.server.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.rate_limit.sign_in_per_account = 5;
        c.rate_limit.lockout_after = 0;
    })
    .await;
    app.sign_up("busy@example.com").await;
    fail_from(&app, "203.0.113.9", "busy@example.com", 5).await;
    let res = sign_in_from(&app, "203.0.113.9", "busy@example.com", PASSWORD).await;
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        sign_in_from(&app, "198.51.100.7", "busy@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}
