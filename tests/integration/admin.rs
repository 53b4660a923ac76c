//! The admin API and pages: every guard, every action, the audit trail.

use crate::helpers::*;
use derp::config::Secret;
use derp::domain::Email;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub(crate) const KEY: &str = "a-service-key-that-is-long-enough-0123456789";

pub(crate) async fn admin_app() -> TestApp {
    spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.admin.service_keys = vec![Secret::new(KEY)];
    })
    .await
}

/// An admin made the way `derp admin create` makes one; returns a token.
pub(crate) async fn admin_token(app: &TestApp, email: &str) -> String {
    app.state
        .admin
        .create_admin(
            Email::parse(email).unwrap(),
            Some(PASSWORD.into()),
            &app.base,
        )
        .await
        .unwrap();
    let body: Value = app.sign_in(email, PASSWORD).await.json().await.unwrap();
    body["tokens"]["access_token"].as_str().unwrap().to_string()
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub(crate) async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let res = call(
        app,
        Method::GET,
        &format!("/api/v1/admin/audit?{query}"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn only_admins_and_service_keys_get_in() {
    let app = admin_app().await;
    let admin = admin_token(&app, "root@example.com").await;
    let user = app.sign_up("plain@example.com").await;
    let plain = user["tokens"]["access_token"].as_str().unwrap();
    for (who, bearer) in [
        ("anonymous", None),
        ("plain user", Some(plain)),
        (
            "wrong key",
            Some("not-the-service-key-but-long-enough-000000"),
        ),
        ("garbage", Some("x")),
    ] {
        for path in [
            "/api/v1/admin/users",
            "/api/v1/admin/audit",
            "/api/v1/admin/outbox",
            "/api/v1/admin/orgs",
        ] {
            let res = call(&app, Method::GET, path, bearer, None).await;
            expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
            let _ = who;
        }
    }
    for bearer in [admin.as_str(), KEY] {
        let res = call(&app, Method::GET, "/api/v1/admin/users", Some(bearer), None).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The role is read from the user, not from the token: a demotion bites at once.
    let me: Value = call(&app, Method::GET, "/api/v1/auth/user", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{}", me["id"].as_str().unwrap()),
        Some(KEY),
        Some(json!({"role": "default"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    expect_error(
        call(&app, Method::GET, "/api/v1/admin/users", Some(&admin), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn users_are_searched_paginated_created_and_shown() {
    let app = admin_app().await;
    for i in 0..5 {
        app.sign_up(&format!("member{i}@example.com")).await;
    }
    app.sign_up("other@example.org").await;
    let res = call(
        &app,
        Method::GET,
        "/api/v1/admin/users?q=member&limit=3",
        Some(KEY),
        None,
    )
    .await;
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/admin/users?q=member&limit=3&cursor={cursor}"),
        Some(KEY),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(rest["users"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    assert!(
        !page.to_string().contains("argon2"),
        "never a password hash"
    );

    let res = call(&app, Method::POST, "/api/v1/admin/users", Some(KEY), Some(json!({"email": "Made@Example.com", "password": PASSWORD, "role": "admin", "email_confirmed": true}))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let made: Value = res.json().await.unwrap();
    assert_eq!(
        (
            made["email"].as_str().unwrap(),
            made["role"].as_str().unwrap()
        ),
        ("made@example.com", "admin")
    );
    assert!(made["email_confirmed_at"].is_string());
    expect_error(
        call(
            &app,
            Method::POST,
            "/api/v1/admin/users",
            Some(KEY),
            Some(json!({"email": "made@example.com"})),
        )
        .await,
        StatusCode::CONFLICT,
        "email_exists",
    )
    .await;
    expect_error(
        call(
            &app,
            Method::POST,
            "/api/v1/admin/users",
            Some(KEY),
            Some(json!({"email": "weak@example.com", "password": "x"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "weak_password",
    )
    .await;
    expect_error(
        call(
            &app,
            Method::POST,
            "/api/v1/admin/users",
            Some(KEY),
            Some(json!({"email": "bad"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    let id = made["id"].as_str().unwrap();
    app.sign_in("made@example.com", PASSWORD).await;
    let detail: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/admin/users/{id}"),
        Some(KEY),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(detail["email"], "made@example.com");
    assert_eq!(detail["sessions"].as_array().unwrap().len(), 1);
    assert!(detail["orgs"].is_array() && detail["identities"].is_array());
    let actions: Vec<&str> = detail["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"admin.user.created") && actions.contains(&"sign_in"),
        "{actions:?}"
    );
    expect_error(
        call(
            &app,
            Method::GET,
            "/api/v1/admin/users/nope",
            Some(KEY),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn disabling_revokes_every_session_and_is_audited() {
    let app = admin_app().await;
    let up = app.sign_up("victim@example.com").await;
    let id = up["user"]["id"].as_str().unwrap();
    let access = up["tokens"]["access_token"].as_str().unwrap();
    let refresh = up["tokens"]["refresh_token"].as_str().unwrap();
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{id}"),
        Some(KEY),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);
    assert_eq!(app.session(access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh(refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    expect_error(
        app.sign_in("victim@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "account_disabled",
    )
    .await;
    let ev = events(&app, &format!("user_id={id}&action=admin.user.disabled")).await;
    assert_eq!(ev.len(), 1);
    assert!(
        ev[0]["actor_id"]
            .as_str()
            .unwrap()
            .starts_with("service_key:")
    );
    assert_eq!(ev[0]["detail"]["sessions_revoked"], 1);

    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{id}"),
        Some(KEY),
        Some(json!({"disabled": false, "email_confirmed": true, "data": {"tier": "gold"}})),
    )
    .await;
    let user: Value = res.json().await.unwrap();
    assert_eq!(
        (user["disabled"].as_bool(), user["data"]["tier"].as_str()),
        (Some(false), Some("gold"))
    );
    assert!(user["email_confirmed_at"].is_string());
    assert_eq!(
        app.sign_in("victim@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{id}"),
        Some(KEY),
        Some(json!({"password_hash": "x"})),
    )
    .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{id}"),
        Some(KEY),
        Some(json!({"role": "root"})),
    )
    .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn sign_out_and_mails_on_behalf_of_a_user() {
    let app = admin_app().await;
    let up = app.sign_up("helpme@example.com").await;
    let id = up["user"]["id"].as_str().unwrap();
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{id}/sign-out"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.session(up["tokens"]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{id}/send-recovery"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert!(
        app.mails_to("helpme@example.com", 1)
            .await
            .iter()
            .any(|m| m.kind == "reset")
    );
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/users/{id}/send-confirmation"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert!(
        app.mails_to("helpme@example.com", 2)
            .await
            .iter()
            .any(|m| m.kind == "confirm")
    );
    let actions: Vec<String> = events(&app, &format!("user_id={id}"))
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    for a in [
        "admin.user.signed_out",
        "admin.user.recovery_sent",
        "admin.user.confirmation_sent",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    // The mailer may hold a mail a moment before the sender records it sent.
    let mut outbox = Value::Null;
    for _ in 0..200 {
        outbox = call(&app, Method::GET, "/api/v1/admin/outbox", Some(KEY), None)
            .await
            .json()
            .await
            .unwrap();
        if outbox["queue"]["sent"].as_i64().unwrap() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(outbox["queue"]["sent"].as_i64().unwrap() >= 2);
    assert!(
        outbox["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["to"] == "helpme@example.com")
    );
    assert!(
        outbox["recent_mail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"].as_str().unwrap().contains("token=")),
        "the dev mailer's mails, links included"
    );
}

#[tokio::test]
async fn deleting_a_sole_owner_names_the_orgs_instead_of_orphaning_them() {
    let app = admin_app().await;
    let up = app.sign_up("owner@example.com").await;
    let id = up["user"]["id"].as_str().unwrap();
    let token = up["tokens"]["access_token"].as_str().unwrap();
    call(
        &app,
        Method::POST,
        "/api/v1/orgs",
        Some(token),
        Some(json!({"name": "Solo", "slug": "solo"})),
    )
    .await;
    let res = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/users/{id}"),
        Some(KEY),
        None,
    )
    .await;
    let body = expect_error(res, StatusCode::CONFLICT, "last_owner").await;
    assert_eq!(body["error"]["orgs"], json!(["solo"]));
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/v1/admin/users/{id}"),
            Some(KEY),
            None
        )
        .await
        .status(),
        StatusCode::OK,
        "nothing was deleted"
    );
    let res = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/users/{id}?delete_owned_orgs=true"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/v1/admin/users/{id}"),
            Some(KEY),
            None
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/admin/orgs/solo",
            Some(KEY),
            None
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    let ev = events(&app, "action=admin.user.deleted").await;
    assert_eq!(ev[0]["detail"]["orgs_deleted"], json!(["solo"]));
}

#[tokio::test]
async fn admins_manage_orgs_with_the_same_invariants() {
    let app = admin_app().await;
    let owner = app.sign_up("o@example.com").await;
    let other = app.sign_up("m@example.com").await;
    let (oid, mid) = (
        owner["user"]["id"].as_str().unwrap(),
        other["user"]["id"].as_str().unwrap(),
    );
    let res = call(
        &app,
        Method::POST,
        "/api/v1/admin/orgs",
        Some(KEY),
        Some(json!({"name": "Managed", "slug": "managed", "owner_id": oid})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = call(
        &app,
        Method::POST,
        "/api/v1/admin/orgs",
        Some(KEY),
        Some(json!({"name": "X", "slug": "x-org", "owner_id": "nobody"})),
    )
    .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let list: Value = call(
        &app,
        Method::GET,
        "/api/v1/admin/orgs?q=manag",
        Some(KEY),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["orgs"][0]["slug"], "managed");

    let res = call(
        &app,
        Method::POST,
        "/api/v1/admin/orgs/managed/members",
        Some(KEY),
        Some(json!({"user_id": mid, "role": "admin"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/orgs/managed/members/{oid}"),
        Some(KEY),
        Some(json!({"role": "member"})),
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "last_owner").await;
    let res = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/orgs/managed/members/{oid}"),
        Some(KEY),
        None,
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "last_owner").await;
    let res = call(
        &app,
        Method::PATCH,
        "/api/v1/admin/orgs/managed",
        Some(KEY),
        Some(json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "Renamed");
    let members: Value = call(
        &app,
        Method::GET,
        "/api/v1/admin/orgs/managed/members",
        Some(KEY),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(members.as_array().unwrap().len(), 2);
    let res = call(
        &app,
        Method::POST,
        "/api/v1/admin/orgs/managed/invitations",
        Some(KEY),
        Some(json!({"email": "inv@example.com"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let org_id = call(
        &app,
        Method::GET,
        "/api/v1/admin/orgs/managed",
        Some(KEY),
        None,
    )
    .await
    .json::<Value>()
    .await
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let org_events = events(&app, &format!("org_id={org_id}")).await;
    let actions: Vec<&str> = org_events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "org.created",
        "member.added",
        "org.updated",
        "invitation.sent",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            "/api/v1/admin/orgs/managed",
            Some(KEY),
            None
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn admin_pages_need_an_admin_and_act_with_csrf() {
    let app = admin_app().await;
    let res = app.client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/login?redirect_to="), "{to}");

    // A plain user signed in through the pages is told they are no admin.
    app.sign_up("nobody-special@example.com").await;
    let login = app
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&login, "csrf_token");
    app.client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "nobody-special@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let res = app
        .client
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let admin = spawn_client();
    admin_token(&app, "boss@example.com").await;
    let login = admin
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    admin
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", hidden(&login, "csrf_token").as_str()),
            ("email", "boss@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    for path in [
        "/admin",
        "/admin/users",
        "/admin/orgs",
        "/admin/audit",
        "/admin/outbox",
    ] {
        let res = admin.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let config = admin
        .get(app.url("/admin/config"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        config.contains("service_keys") && !config.contains(KEY),
        "secrets are left out of the configuration summary"
    );
    let target: Value = app.sign_up("target@example.com").await;
    let tid = target["user"]["id"].as_str().unwrap();
    let page = admin
        .get(app.url(&format!("/admin/users/{tid}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = hidden(&page, "csrf_token");
    let res = admin
        .post(app.url(&format!("/admin/users/{tid}/disable")))
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = admin
        .post(app.url(&format!("/admin/users/{tid}/disable")))
        .form(&[("csrf_token", token.as_str()), ("confirmed", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.session(target["tokens"]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let page = admin
        .get(app.url(&format!("/admin/users/{tid}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("admin.user.disabled"),
        "the audit entry shows on the user's page"
    );
    // Deleting asks for the email to be typed.
    let res = admin
        .post(app.url(&format!("/admin/users/{tid}/delete")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("confirmed", "yes"),
            ("confirm", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = admin
        .post(app.url(&format!("/admin/users/{tid}/delete")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("confirmed", "yes"),
            ("confirm", "target@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_first_admin_comes_from_a_one_time_setup_link() {
    let app = admin_app().await;
    let link = app
        .state
        .admin
        .setup_link(&app.base)
        .await
        .unwrap()
        .expect("no admin yet");
    let path = link.trim_start_matches(&app.base).to_string();
    let browser = spawn_client();
    let page = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let form = [
        ("csrf_token", hidden(&html, "csrf_token")),
        ("token", hidden(&html, "token")),
        ("email", "first@example.com".into()),
        ("password", PASSWORD.into()),
    ];
    let res = browser
        .post(app.url("/admin/setup"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        browser
            .get(app.url("/admin"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.client
            .get(app.url(&path))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST,
        "used once"
    );
    assert!(
        app.state
            .admin
            .setup_link(&app.base)
            .await
            .unwrap()
            .is_none(),
        "no more links once an admin exists"
    );
}
