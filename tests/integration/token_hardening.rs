//! Issue #19: bearer tokens and codes that must be refused (audience,
//! algorithm pinning on every bearer endpoint, future `nbf`/`iat`, PKCE
//! downgrade).

use crate::helpers::*;
use derp::config::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes-0123";
const APP: &str = "https://app.example.com/auth/callback";

async fn hs256_app(audience: Option<&str>) -> TestApp {
    spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.jwt.secret = Some(Secret::new(SECRET));
        n.jwt.audience = audience.map(str::to_string);
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
    })
    .await
}

/// A token made with the configured HS256 secret (or any `alg`'s use of it).
fn forge(alg: Algorithm, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn access(body: &Value) -> String {
    body["tokens"]["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_configured_audience_is_required_in_bearer_tokens() {
    let app = hs256_app(Some("my-app")).await;
    let token = access(&app.sign_up("aud@example.com").await);
    let genuine = claims(&token);
    assert_eq!(genuine["aud"], "my-app");
    // The same claims, re-signed with the secret: accepted (the forge works).
    assert_eq!(
        app.session(&forge(Algorithm::HS256, &genuine))
            .await
            .status(),
        StatusCode::OK
    );
    let mut no_aud = genuine.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    expect_error(
        app.session(&forge(Algorithm::HS256, &no_aud)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let mut other = genuine.clone();
    other["aud"] = json!("other-app");
    expect_error(
        app.session(&forge(Algorithm::HS256, &other)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn bearer_tokens_with_nbf_or_iat_in_the_future_are_refused() {
    let app = hs256_app(None).await;
    let token = access(&app.sign_up("nbf@example.com").await);
    let genuine = claims(&token);
    let now = genuine["iat"].as_i64().unwrap();
    let with = |changes: Value| {
        let mut c = genuine.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        forge(Algorithm::HS256, &c)
    };
    // Within the documented 60 s leeway: accepted.
    for ok in [
        json!({"nbf": now}),
        json!({"nbf": now + 30, "iat": now + 30}),
    ] {
        assert_eq!(
            app.session(&with(ok.clone())).await.status(),
            StatusCode::OK,
            "{ok}"
        );
    }
    for bad in [
        json!({"nbf": now + 3600}),
        json!({"iat": now + 3600}),
        json!({"nbf": now + 120}),
        json!({"iat": now + 120, "exp": now + 3600}),
    ] {
        expect_error(
            app.session(&with(bad.clone())).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    // The app's own clock decides: an hour later the same token is good.
    let later = with(json!({"nbf": now + 3600, "exp": now + 7200}));
    assert_eq!(app.session(&later).await.status(), StatusCode::UNAUTHORIZED);
    app.advance(3600);
    assert_eq!(app.session(&later).await.status(), StatusCode::OK);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A code from the hosted pages for a request that sent no code_challenge.
async fn code_without_pkce(app: &TestApp, email: &str) -> String {
    let path = format!("/login?redirect_to={}&state=s1", urlencode(APP));
    let res = app.client.get(app.url(&path)).send().await.unwrap();
    if res.status() == StatusCode::SEE_OTHER {
        // Already signed in at the pages: straight back with a code.
        return code_in(&res);
    }
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let form = [
        ("csrf_token", hidden(&html, "csrf_token")),
        ("email", email.to_string()),
        ("password", PASSWORD.to_string()),
        ("redirect_to", APP.to_string()),
        ("state", "s1".to_string()),
    ];
    let res = app
        .client
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    code_in(&res)
}

fn code_in(res: &reqwest::Response) -> String {
    let back = res.headers()["location"].to_str().unwrap();
    assert!(back.starts_with(APP), "{back}");
    url::Url::parse(back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test]
async fn a_code_issued_without_pkce_refuses_any_code_verifier() {
    let app = hs256_app(None).await;
    app.sign_up("nopkce@example.com").await;
    let exchange = |code: String, verifier: Option<&'static str>| {
        app.post(
            "/api/v1/auth/token",
            json!({"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": APP}),
        )
    };
    let code = code_without_pkce(&app, "nopkce@example.com").await;
    expect_error(
        exchange(
            code.clone(),
            Some("any-verifier-at-all-0123456789-abcdefghijklmnop"),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // Spent by the failed attempt, like any other failed exchange.
    expect_error(
        exchange(code, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // Without a verifier, a code issued without a challenge still works.
    let code = code_without_pkce(&app, "nopkce@example.com").await;
    assert_eq!(exchange(code, None).await.status(), StatusCode::OK);
}

/// Every route that reads a bearer token (src/http/server.rs: the
/// `CurrentSession`, `OrgMember` and `AdminCaller` extractors), with a body
/// that would pass, so that only the token decides. `{org}` is a real org of
/// the caller's; other ids are unknown (404 for a genuine caller).
fn bearer_routes(org: &str) -> Vec<(reqwest::Method, String, Option<Value>, bool)> {
    use reqwest::Method as M;
    let user = |m: M, p: &str, b: Option<Value>| (m, p.to_string(), b, false);
    let admin = |m: M, p: &str, b: Option<Value>| (m, format!("/api/v1/admin{p}"), b, true);
    let o = format!("/api/v1/orgs/{org}");
    let ao = format!("/orgs/{org}");
    vec![
        user(M::GET, "/api/v1/auth/session", None),
        user(M::GET, "/api/v1/auth/user", None),
        user(
            M::PATCH,
            "/api/v1/auth/user",
            Some(json!({"data": {"k": 1}})),
        ),
        user(M::GET, "/api/v1/auth/sessions", None),
        user(M::DELETE, "/api/v1/auth/sessions/no-such-session", None),
        user(
            M::POST,
            "/api/v1/auth/active-org",
            Some(json!({"org_id": null})),
        ),
        user(M::GET, "/api/v1/orgs", None),
        user(
            M::POST,
            "/api/v1/orgs",
            Some(json!({"name": "Other", "slug": "other-org"})),
        ),
        user(M::GET, &o, None),
        user(M::PATCH, &o, Some(json!({"name": "Renamed"}))),
        user(M::GET, &format!("{o}/members"), None),
        user(
            M::POST,
            &format!("{o}/members"),
            Some(json!({"email": "nobody@example.com", "role": "member"})),
        ),
        user(
            M::PATCH,
            &format!("{o}/members/no-such-user"),
            Some(json!({"role": "member"})),
        ),
        user(M::DELETE, &format!("{o}/members/no-such-user"), None),
        user(M::GET, &format!("{o}/invitations"), None),
        user(
            M::POST,
            &format!("{o}/invitations"),
            Some(json!({"email": "invitee@example.com"})),
        ),
        user(
            M::DELETE,
            &format!("{o}/invitations/no-such-invitation"),
            None,
        ),
        user(
            M::POST,
            "/api/v1/invitations/accept",
            Some(json!({"token": "no-such-token"})),
        ),
        admin(M::GET, "/overview", None),
        admin(M::GET, "/users", None),
        admin(
            M::POST,
            "/users",
            Some(json!({"email": "made@example.com", "password": PASSWORD})),
        ),
        admin(M::GET, "/users/no-such-user", None),
        admin(
            M::PATCH,
            "/users/no-such-user",
            Some(json!({"disabled": false})),
        ),
        admin(M::DELETE, "/users/no-such-user", None),
        admin(M::POST, "/users/no-such-user/sign-out", None),
        admin(M::POST, "/users/no-such-user/send-confirmation", None),
        admin(M::POST, "/users/no-such-user/send-recovery", None),
        admin(M::GET, "/orgs", None),
        admin(
            M::POST,
            "/orgs",
            Some(json!({"name": "A", "slug": "admin-made", "owner_id": "no-such-user"})),
        ),
        admin(M::GET, &ao, None),
        admin(M::PATCH, &ao, Some(json!({"name": "Admin renamed"}))),
        admin(M::GET, &format!("{ao}/members"), None),
        admin(
            M::POST,
            &format!("{ao}/members"),
            Some(json!({"email": "nobody@example.com"})),
        ),
        admin(
            M::PATCH,
            &format!("{ao}/members/no-such-user"),
            Some(json!({"role": "member"})),
        ),
        admin(M::DELETE, &format!("{ao}/members/no-such-user"), None),
        admin(M::GET, &format!("{ao}/invitations"), None),
        admin(
            M::POST,
            &format!("{ao}/invitations"),
            Some(json!({"email": "inv2@example.com"})),
        ),
        admin(
            M::DELETE,
            &format!("{ao}/invitations/no-such-invitation"),
            None,
        ),
        admin(M::GET, "/audit", None),
        admin(M::GET, "/outbox", None),
        admin(M::GET, "/lockouts", None),
        admin(M::DELETE, "/lockouts/nobody@example.com", None),
        admin(M::DELETE, "/orgs/no-such-org", None),
        // Last: these end the genuine caller's sessions or org.
        user(M::DELETE, "/api/v1/orgs/no-such-org", None),
        user(
            M::POST,
            "/api/v1/auth/sign-out",
            Some(json!({"scope": "session"})),
        ),
    ]
}

#[tokio::test]
async fn forged_algorithms_are_refused_on_every_bearer_endpoint() {
    let app = hs256_app(None).await;
    let token = crate::admin::admin_token(&app, "pin@example.com").await;
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &token,
            json!({"name": "Pinned", "slug": "pinned"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let genuine = claims(&token);
    let none = {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "at+jwt"})),
            b64(genuine.clone())
        )
    };
    let forged = [
        (
            "HS384 with the HS256 secret",
            forge(Algorithm::HS384, &genuine),
        ),
        (
            "HS512 with the HS256 secret",
            forge(Algorithm::HS512, &genuine),
        ),
        ("alg none", none),
    ];
    let send = |m: reqwest::Method, path: &str, bearer: &str, body: Option<Value>| {
        let mut req = app.client.request(m, app.url(path)).bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let routes = bearer_routes("pinned");
    for (m, path, body, admin) in &routes {
        for (what, bad) in &forged {
            let res = send(m.clone(), path, bad, body.clone()).await.unwrap();
            let (status, code) = if *admin {
                (StatusCode::FORBIDDEN, "forbidden")
            } else {
                (StatusCode::UNAUTHORIZED, "unauthenticated")
            };
            assert_eq!(res.status(), status, "{what} on {m} {path}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], code, "{what} on {m} {path}");
        }
    }
    // The same claims with the right algorithm pass the authentication of
    // every one of them, so the refusals above are the algorithm's doing.
    for (m, path, body, _) in &routes {
        let res = send(m.clone(), path, &token, body.clone()).await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let code = serde_json::from_str::<Value>(&text)
            .ok()
            .map(|v| v["error"]["code"].clone());
        assert!(
            status != StatusCode::FORBIDDEN
                && code != Some(json!("unauthenticated"))
                && code != Some(json!("forbidden")),
            "genuine token on {m} {path}: {status} {text}"
        );
    }
}

#[tokio::test]
async fn an_encoded_traversal_redirect_gets_no_code() {
    let app = hs256_app(None).await;
    app.sign_up("redir@example.com").await;
    // Signed in at the pages: an allowed redirect_to goes straight back with a code.
    code_without_pkce(&app, "redir@example.com").await;
    for bad in [
        "https://app.example.com/auth/callback/..%2F..%2Fevil",
        "https://app.example.com/auth/callback/%2e%2e/%2e%2e/evil",
        "https://app.example.com/auth/callback/..;/..;/evil",
        "https://app.example.com/auth/callback\\..\\..\\evil",
        "https://app.example.com/auth//evil.example.com",
        "https://app.example.com@evil.example.com/auth/callback",
    ] {
        let res = app
            .client
            .get(app.url(&format!("/login?redirect_to={}", urlencode(bad))))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(res.headers().get("location").is_none(), "{bad}");
    }
}
