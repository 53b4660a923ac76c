//! Organizations through the HTTP API: every rule with its negative cases.

use crate::helpers::*;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

struct User {
    id: String,
    token: String,
    refresh: String,
}

async fn user(app: &TestApp, email: &str) -> User {
    let body = app.sign_up(email).await;
    User {
        id: body["user"]["id"].as_str().unwrap().into(),
        token: body["tokens"]["access_token"].as_str().unwrap().into(),
        refresh: body["tokens"]["refresh_token"].as_str().unwrap().into(),
    }
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    who: &User,
    body: Option<Value>,
) -> Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&who.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn create_org(app: &TestApp, owner: &User, slug: &str) -> Value {
    let res = call(
        app,
        reqwest::Method::POST,
        "/api/v1/orgs",
        owner,
        Some(json!({"name": format!("Org {slug}"), "slug": slug})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn add(app: &TestApp, org: &str, by: &User, who: &User, role: &str) -> Response {
    call(
        app,
        reqwest::Method::POST,
        &format!("/api/v1/orgs/{org}/members"),
        by,
        Some(json!({"user_id": who.id, "role": role})),
    )
    .await
}

use reqwest::Method as M;

#[tokio::test]
async fn create_get_and_slug_rules() {
    let app = spawn_app().await;
    let owner = user(&app, "own@example.com").await;
    let org = create_org(&app, &owner, "acme").await;
    assert_eq!(org["slug"], "acme");
    assert_eq!(org["name"], "Org acme");
    assert!(org["id"].is_string() && org["created_at"].is_string());

    let list: Value = call(&app, M::GET, "/api/v1/orgs", &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([{"org": org, "role": "owner"}]));
    for key in [org["id"].as_str().unwrap(), "acme"] {
        let res = call(&app, M::GET, &format!("/api/v1/orgs/{key}"), &owner, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap()["id"], org["id"]);
    }

    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs",
        &owner,
        Some(json!({"name": "Again", "slug": "acme"})),
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "org_exists").await;
    for bad in ["Acme", "-acme", "has space", "admin", "new", ""] {
        let res = call(
            &app,
            M::POST,
            "/api/v1/orgs",
            &owner,
            Some(json!({"name": "X", "slug": bad})),
        )
        .await;
        let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(body["error"]["fields"]["slug"].is_string(), "{bad}");
    }
    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs",
        &owner,
        Some(json!({"name": "  ", "slug": "blank"})),
    )
    .await;
    assert!(expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await["error"]["fields"]["name"].is_string());

    let stranger = user(&app, "stranger@example.com").await;
    let res = call(&app, M::GET, "/api/v1/orgs/acme", &stranger, None).await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = call(&app, M::GET, "/api/v1/orgs/no-such-org", &stranger, None).await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .client
        .get(app.url("/api/v1/orgs"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn members_roles_and_who_may_do_what() {
    let app = spawn_app().await;
    let owner = user(&app, "o@example.com").await;
    let admin = user(&app, "a@example.com").await;
    let member = user(&app, "m@example.com").await;
    let outsider = user(&app, "x@example.com").await;
    create_org(&app, &owner, "team").await;

    assert_eq!(
        add(&app, "team", &owner, &admin, "admin").await.status(),
        StatusCode::CREATED
    );
    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs/team/members",
        &admin,
        Some(json!({"email": "M@example.com"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let added: Value = res.json().await.unwrap();
    assert_eq!(
        (
            added["user_id"].as_str().unwrap(),
            added["role"].as_str().unwrap()
        ),
        (member.id.as_str(), "member")
    );
    assert_eq!(added["email"], "m@example.com");
    assert!(added["joined_at"].is_string());

    expect_error(
        add(&app, "team", &owner, &member, "member").await,
        StatusCode::CONFLICT,
        "member_exists",
    )
    .await;
    expect_error(
        add(&app, "team", &member, &outsider, "member").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(
        add(&app, "team", &admin, &outsider, "owner").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(
        add(&app, "team", &outsider, &outsider, "member").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs/team/members",
        &owner,
        Some(json!({"email": "nobody@example.com"})),
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs/team/members",
        &owner,
        Some(json!({"user_id": outsider.id, "role": "king"})),
    )
    .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    let list: Value = call(&app, M::GET, "/api/v1/orgs/team/members", &member, None)
        .await
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["o@example.com", "a@example.com", "m@example.com"]);

    // Admins manage members but not owners.
    let path = format!("/api/v1/orgs/team/members/{}", owner.id);
    let res = call(
        &app,
        M::PATCH,
        &path,
        &admin,
        Some(json!({"role": "member"})),
    )
    .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = call(&app, M::DELETE, &path, &admin, None).await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = call(
        &app,
        M::PATCH,
        &format!("/api/v1/orgs/team/members/{}", member.id),
        &admin,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "admin");
    let res = call(
        &app,
        M::PATCH,
        &format!("/api/v1/orgs/team/members/{}", member.id),
        &admin,
        Some(json!({"role": "owner"})),
    )
    .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    // The last owner cannot be demoted or leave; not_found is told apart.
    let res = call(
        &app,
        M::PATCH,
        &path,
        &owner,
        Some(json!({"role": "admin"})),
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "last_owner").await;
    let res = call(&app, M::DELETE, &path, &owner, None).await;
    expect_error(res, StatusCode::CONFLICT, "last_owner").await;
    let res = call(
        &app,
        M::DELETE,
        &format!("/api/v1/orgs/team/members/{}", outsider.id),
        &owner,
        None,
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;

    // A member leaves on their own; a plain member cannot remove others.
    let plain = user(&app, "p@example.com").await;
    add(&app, "team", &owner, &plain, "member").await;
    let res = call(
        &app,
        M::DELETE,
        &format!("/api/v1/orgs/team/members/{}", admin.id),
        &plain,
        None,
    )
    .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = call(
        &app,
        M::DELETE,
        &format!("/api/v1/orgs/team/members/{}", plain.id),
        &plain,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        call(&app, M::GET, "/api/v1/orgs/team", &plain, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn rename_and_delete() {
    let app = spawn_app().await;
    let owner = user(&app, "o2@example.com").await;
    let admin = user(&app, "a2@example.com").await;
    create_org(&app, &owner, "first").await;
    create_org(&app, &owner, "second").await;
    add(&app, "first", &owner, &admin, "admin").await;

    let res = call(
        &app,
        M::PATCH,
        "/api/v1/orgs/first",
        &admin,
        Some(json!({"slug": "second"})),
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "org_exists").await;
    let res = call(
        &app,
        M::PATCH,
        "/api/v1/orgs/first",
        &admin,
        Some(json!({"name": "Renamed", "slug": "renamed"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["slug"], "renamed");

    expect_error(
        call(&app, M::DELETE, "/api/v1/orgs/renamed", &admin, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        call(&app, M::DELETE, "/api/v1/orgs/renamed", &owner, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        call(&app, M::GET, "/api/v1/orgs/renamed", &owner, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list: Value = call(&app, M::GET, "/api/v1/orgs", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]), "memberships went with the org");
}

#[tokio::test]
async fn two_owners_removing_each_other_at_once_leave_one_owner() {
    let app = spawn_app().await;
    let a = user(&app, "race-a@example.com").await;
    let b = user(&app, "race-b@example.com").await;
    for round in 0..15 {
        let slug = format!("race-{round}");
        create_org(&app, &a, &slug).await;
        assert_eq!(
            add(&app, &slug, &a, &b, "owner").await.status(),
            StatusCode::CREATED
        );
        let (path_b, path_a) = (
            format!("/api/v1/orgs/{slug}/members/{}", b.id),
            format!("/api/v1/orgs/{slug}/members/{}", a.id),
        );
        let (ra, rb) = tokio::join!(
            call(&app, M::DELETE, &path_b, &a, None),
            call(&app, M::DELETE, &path_a, &b, None)
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort();
        // One removal wins; the other finds itself no longer a member (404).
        assert_eq!(statuses, [204, 404], "round {round}");
        let survivor = if ra.status() == StatusCode::NO_CONTENT {
            &a
        } else {
            &b
        };
        let members: Value = call(
            &app,
            M::GET,
            &format!("/api/v1/orgs/{slug}/members"),
            survivor,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        let owners = members
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "owner")
            .count();
        assert_eq!(owners, 1, "round {round}");
    }
}

#[tokio::test]
async fn demoting_each_other_at_once_keeps_an_owner() {
    let app = spawn_app().await;
    let a = user(&app, "dem-a@example.com").await;
    let b = user(&app, "dem-b@example.com").await;
    for round in 0..10 {
        let slug = format!("demote-{round}");
        create_org(&app, &a, &slug).await;
        add(&app, &slug, &a, &b, "owner").await;
        let (path_b, path_a) = (
            format!("/api/v1/orgs/{slug}/members/{}", b.id),
            format!("/api/v1/orgs/{slug}/members/{}", a.id),
        );
        let demote = || Some(json!({"role": "member"}));
        let (ra, rb) = tokio::join!(
            call(&app, M::PATCH, &path_b, &a, demote()),
            call(&app, M::PATCH, &path_a, &b, demote())
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort();
        assert!(
            statuses == [200, 403] || statuses == [200, 409],
            "round {round}: {statuses:?}"
        );
        let members: Value = call(
            &app,
            M::GET,
            &format!("/api/v1/orgs/{slug}/members"),
            &a,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(
            members
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "owner")
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn invitations_go_to_the_invited_address_only() {
    let app = spawn_app().await;
    let owner = user(&app, "boss@example.com").await;
    let member = user(&app, "staff@example.com").await;
    create_org(&app, &owner, "invites").await;
    add(&app, "invites", &owner, &member, "member").await;

    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs/invites/invitations",
        &member,
        Some(json!({"email": "new@example.com"})),
    )
    .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs/invites/invitations",
        &owner,
        Some(json!({"email": "staff@example.com"})),
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "member_exists").await;
    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs/invites/invitations",
        &owner,
        Some(json!({"email": "New@Example.com", "role": "admin"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let inv: Value = res.json().await.unwrap();
    assert_eq!(
        (
            inv["email"].as_str().unwrap(),
            inv["role"].as_str().unwrap()
        ),
        ("new@example.com", "admin")
    );
    assert!(
        !inv.to_string().contains("token"),
        "the token only travels by mail"
    );

    let mail = app.mails_to("new@example.com", 1).await.remove(0);
    assert_eq!(mail.kind, "invitation");
    assert!(
        mail.text.contains("Org invites")
            && mail.text.contains("admin")
            && mail.text.contains("7 days")
    );
    let start = mail.text.find("/invitations/").unwrap() + "/invitations/".len();
    let token: String = mail.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();

    let pending: Value = call(
        &app,
        M::GET,
        "/api/v1/orgs/invites/invitations",
        &owner,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 1);

    // The wrong user is refused, and the invitation stays usable.
    let res = call(
        &app,
        M::POST,
        "/api/v1/invitations/accept",
        &member,
        Some(json!({"token": token})),
    )
    .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let invited = user(&app, "new@example.com").await;
    let res = call(
        &app,
        M::POST,
        "/api/v1/invitations/accept",
        &invited,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let joined: Value = res.json().await.unwrap();
    assert_eq!(
        (
            joined["user_id"].as_str().unwrap(),
            joined["role"].as_str().unwrap()
        ),
        (invited.id.as_str(), "admin")
    );
    let res = call(
        &app,
        M::POST,
        "/api/v1/invitations/accept",
        &invited,
        Some(json!({"token": token})),
    )
    .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let pending: Value = call(
        &app,
        M::GET,
        "/api/v1/orgs/invites/invitations",
        &owner,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pending, json!([]));
}

#[tokio::test]
async fn expired_and_revoked_invitations_are_refused() {
    let app = spawn_app().await;
    let owner = user(&app, "boss2@example.com").await;
    create_org(&app, &owner, "closed").await;
    let invitee = user(&app, "late@example.com").await;
    let token_of = |m: &derp::mail::Mail| {
        let start = m.text.find("/invitations/").unwrap() + "/invitations/".len();
        m.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect::<String>()
    };

    let inv: Value = call(
        &app,
        M::POST,
        "/api/v1/orgs/closed/invitations",
        &owner,
        Some(json!({"email": "late@example.com"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = token_of(&app.mails_to("late@example.com", 1).await[0]);
    let res = call(
        &app,
        M::DELETE,
        &format!(
            "/api/v1/orgs/closed/invitations/{}",
            inv["id"].as_str().unwrap()
        ),
        &owner,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = call(
        &app,
        M::POST,
        "/api/v1/invitations/accept",
        &invitee,
        Some(json!({"token": token})),
    )
    .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;

    call(
        &app,
        M::POST,
        "/api/v1/orgs/closed/invitations",
        &owner,
        Some(json!({"email": "late@example.com"})),
    )
    .await;
    let token = token_of(&app.mails_to("late@example.com", 2).await[1]);
    app.advance(7 * 86_400 + 1);
    // Fresh tokens for the users: their access tokens expired with the clock.
    let invitee = User {
        token: app
            .sign_in("late@example.com", PASSWORD)
            .await
            .json::<Value>()
            .await
            .unwrap()["tokens"]["access_token"]
            .as_str()
            .unwrap()
            .into(),
        ..invitee
    };
    let res = call(
        &app,
        M::POST,
        "/api/v1/invitations/accept",
        &invitee,
        Some(json!({"token": token})),
    )
    .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn active_org_rides_in_tokens_across_refreshes_until_membership_ends() {
    let app = spawn_app().await;
    let owner = user(&app, "ao-owner@example.com").await;
    let m = user(&app, "ao-member@example.com").await;
    let org = create_org(&app, &owner, "active").await;
    let org_id = org["id"].as_str().unwrap();
    add(&app, "active", &owner, &m, "member").await;

    let outsider = user(&app, "ao-out@example.com").await;
    let res = call(
        &app,
        M::POST,
        "/api/v1/auth/active-org",
        &outsider,
        Some(json!({"org_id": org_id})),
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;

    let res = call(
        &app,
        M::POST,
        "/api/v1/auth/active-org",
        &m,
        Some(json!({"org_id": org_id})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["tokens"]["access_token"].as_str().unwrap();
    let refresh = tokens["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(claims(access)["org_id"], org_id);
    assert_eq!(claims(access)["org_role"], "member");
    let info: Value = app.session(access).await.json().await.unwrap();
    assert_eq!(
        (
            info["org_id"].as_str().unwrap(),
            info["org_role"].as_str().unwrap()
        ),
        (org_id, "member")
    );

    // The old refresh token was rotated away.
    app.advance(11);
    expect_error(
        app.refresh(&m.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let m = User {
        token: access.to_string(),
        refresh,
        ..m
    };
    let m_token = app
        .sign_in("ao-member@example.com", PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let m = User {
        token: m_token["tokens"]["access_token"].as_str().unwrap().into(),
        refresh: m_token["tokens"]["refresh_token"].as_str().unwrap().into(),
        ..m
    };
    let set: Value = call(
        &app,
        M::POST,
        "/api/v1/auth/active-org",
        &m,
        Some(json!({"org_id": "active"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let refresh = set["tokens"]["refresh_token"].as_str().unwrap().to_string();

    // A refresh keeps the org and picks up a new role.
    let owner_token = app
        .sign_in("ao-owner@example.com", PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap()["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let owner = User {
        token: owner_token,
        ..owner
    };
    call(
        &app,
        M::PATCH,
        &format!("/api/v1/orgs/active/members/{}", m.id),
        &owner,
        Some(json!({"role": "admin"})),
    )
    .await;
    let res = app.refresh(&refresh).await;
    let t: Value = res.json().await.unwrap();
    let access = t["tokens"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&access)["org_id"], org_id);
    assert_eq!(claims(&access)["org_role"], "admin");
    let refresh = t["tokens"]["refresh_token"].as_str().unwrap().to_string();

    // Removed: /session stops reporting it at once, and the next refresh drops it.
    let res = call(
        &app,
        M::DELETE,
        &format!("/api/v1/orgs/active/members/{}", m.id),
        &owner,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let info: Value = app.session(&access).await.json().await.unwrap();
    assert!(info["org_id"].is_null() && info["org_role"].is_null());
    let t: Value = app.refresh(&refresh).await.json().await.unwrap();
    let access = t["tokens"]["access_token"].as_str().unwrap();
    assert!(claims(access).get("org_id").is_none());
}

#[tokio::test]
async fn clearing_the_active_org_and_deleting_it() {
    let app = spawn_app().await;
    let owner = user(&app, "del-owner@example.com").await;
    let org = create_org(&app, &owner, "doomed").await;
    let set: Value = call(
        &app,
        M::POST,
        "/api/v1/auth/active-org",
        &owner,
        Some(json!({"org_id": org["id"]})),
    )
    .await
    .json()
    .await
    .unwrap();
    let with_org = User {
        token: set["tokens"]["access_token"].as_str().unwrap().into(),
        refresh: set["tokens"]["refresh_token"].as_str().unwrap().into(),
        id: owner.id.clone(),
    };
    let cleared: Value = call(
        &app,
        M::POST,
        "/api/v1/auth/active-org",
        &with_org,
        Some(json!({"org_id": null})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        claims(cleared["tokens"]["access_token"].as_str().unwrap())
            .get("org_id")
            .is_none()
    );

    let set: Value = call(
        &app,
        M::POST,
        "/api/v1/auth/active-org",
        &owner,
        Some(json!({"org_id": "doomed"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let access = set["tokens"]["access_token"].as_str().unwrap().to_string();
    let refresh = set["tokens"]["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&app, M::DELETE, "/api/v1/orgs/doomed", &owner, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let info: Value = app.session(&access).await.json().await.unwrap();
    assert!(
        info["org_id"].is_null(),
        "a deleted org is no longer reported"
    );
    let t: Value = app.refresh(&refresh).await.json().await.unwrap();
    assert!(
        claims(t["tokens"]["access_token"].as_str().unwrap())
            .get("org_id")
            .is_none()
    );
}

#[tokio::test]
async fn lists_are_paginated_by_cursor() {
    let app = spawn_app().await;
    let owner = user(&app, "pages@example.com").await;
    for slug in ["p-one", "p-two", "p-three"] {
        create_org(&app, &owner, slug).await;
    }
    let res = call(&app, M::GET, "/api/v1/orgs?limit=2", &owner, None).await;
    let cursor = res.headers()["x-next-cursor"].to_str().unwrap().to_string();
    assert!(
        res.headers()["link"]
            .to_str()
            .unwrap()
            .contains("rel=\"next\"")
    );
    let first: Value = res.json().await.unwrap();
    assert_eq!(first.as_array().unwrap().len(), 2);
    let res = call(
        &app,
        M::GET,
        &format!("/api/v1/orgs?limit=2&cursor={cursor}"),
        &owner,
        None,
    )
    .await;
    assert!(!res.headers().contains_key("x-next-cursor"));
    let second: Value = res.json().await.unwrap();
    let slugs: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .chain(second.as_array().unwrap())
        .map(|o| o["org"]["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["p-one", "p-two", "p-three"]);
    let res = call(&app, M::GET, "/api/v1/orgs?cursor=bogus", &owner, None).await;
    assert!(expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await["error"]["fields"]["cursor"].is_string());
    let res = call(&app, M::GET, "/api/v1/orgs?limit=0", &owner, None).await;
    assert!(expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await["error"]["fields"]["limit"].is_string());
}

fn roles_app(roles: &[&str]) -> impl FnOnce(&mut derp::config::Config) {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    move |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.orgs.roles = roles;
    }
}

async fn activate(app: &TestApp, who: &User, org_id: &str) -> Value {
    let res = call(
        app,
        M::POST,
        "/api/v1/auth/active-org",
        who,
        Some(json!({"org_id": org_id})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    claims(body["tokens"]["access_token"].as_str().unwrap())
}

#[tokio::test]
async fn custom_roles_are_named_in_the_api_and_tokens_with_a_members_rights() {
    let app = spawn_with(roles_app(&["billing", "support"])).await;
    let owner = user(&app, "cr-owner@example.com").await;
    let biller = user(&app, "cr-billing@example.com").await;
    let other = user(&app, "cr-other@example.com").await;
    let org = create_org(&app, &owner, "custom").await;
    let org_id = org["id"].as_str().unwrap();

    let res = add(&app, "custom", &owner, &biller, "billing").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "billing");
    // A role that is not configured is refused, naming the ones that are.
    let res = add(&app, "custom", &owner, &other, "sales").await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let says = body["error"]["fields"]["role"].as_str().unwrap();
    assert!(says.contains("billing") && says.contains("owner"), "{says}");

    let members: Value = call(&app, M::GET, "/api/v1/orgs/custom/members", &owner, None)
        .await
        .json()
        .await
        .unwrap();
    let roles: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["owner", "billing"]);
    let mine: Value = call(&app, M::GET, "/api/v1/orgs", &biller, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine[0]["role"], "billing", "{mine}");

    // The token carries the name, across a refresh too.
    let claims_now = activate(&app, &biller, org_id).await;
    assert_eq!(claims_now["org_role"], "billing");
    // A custom role has a member's rights: no adding members, no invitations.
    let res = add(&app, "custom", &biller, &other, "member").await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs/custom/invitations",
        &biller,
        Some(json!({"email": "x@example.com"})),
    )
    .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    // Changing to another custom role and back to a built-in one.
    let res = call(
        &app,
        M::PATCH,
        &format!("/api/v1/orgs/custom/members/{}", biller.id),
        &owner,
        Some(json!({"role": "support"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "support");

    // Invitations carry custom roles; accepting one joins with it.
    app.sign_up("cr-invited@example.com").await;
    let res = call(
        &app,
        M::POST,
        "/api/v1/orgs/custom/invitations",
        &owner,
        Some(json!({"email": "cr-invited@example.com", "role": "billing"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "billing");

    // The org page offers the custom roles.
    app.sign_in_through_pages("cr-owner@example.com").await;
    let page = app
        .client
        .get(app.url("/orgs/custom"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<option value=\"billing\">billing</option>"),
        "{page}"
    );
    assert!(page.contains("<option value=\"support\" selected>support</option>"));
}

#[tokio::test]
async fn a_stored_role_no_longer_configured_is_a_member() {
    let app = spawn_with(roles_app(&["billing"])).await;
    let owner = user(&app, "gone-owner@example.com").await;
    let m = user(&app, "gone-member@example.com").await;
    let org = create_org(&app, &owner, "gone").await;
    let org_id = org["id"].as_str().unwrap().to_string();
    add(&app, "gone", &owner, &m, "billing").await;
    // A role written while it was configured, now gone from [orgs] roles
    // (as after an edit of derp.toml and a restart).
    let (oid, uid) = (org_id.clone(), m.id.clone());
    app.state
        .db
        .write(move |conn| {
            derp::storage::orgs::set_role(
                conn,
                &oid,
                &uid,
                derp::domain::OrgRole::Custom("sales".into()),
                0,
            )
        })
        .await
        .map_err(|e: derp::storage::StorageError| e)
        .unwrap();
    let members: Value = call(&app, M::GET, "/api/v1/orgs/gone/members", &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members[1]["role"], "member", "{members}");
    assert_eq!(activate(&app, &m, &org_id).await["org_role"], "member");
    let mine: Value = call(&app, M::GET, "/api/v1/orgs", &m, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine[0]["role"], "member");
    // Still only a member's rights.
    let res = add(&app, "gone", &m, &owner, "member").await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
}
