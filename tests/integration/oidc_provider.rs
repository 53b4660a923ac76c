//! derp as an OpenID Connect provider, through the real surface: the
//! authorization endpoint with the hosted sign-in in the middle, the consent
//! page, the token endpoint, userinfo, revocation, introspection, logout and
//! discovery, with the negative cases of the RFCs.

use crate::helpers::*;
use base64::Engine;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sha2::Digest;

const SECRET: &str = "app-secret-0123456789abcdef";
const CB: &str = "http://127.0.0.1:9/cb";

fn provider_toml() -> &'static str {
    r#"
[clients.app]
name = "Team app"
secret = "app-secret-0123456789abcdef"
redirect_uris = ["http://127.0.0.1:9/cb"]
post_logout_redirect_uris = ["http://127.0.0.1:9/bye"]
scopes = ["openid", "email", "profile", "offline_access", "orgs"]
first_party = true

[clients.third]
name = "Third Party Wiki"
secret = "third-secret-0123456789abcdef"
redirect_uris = ["http://127.0.0.1:9/cb"]
scopes = ["openid", "email", "profile", "offline_access"]

[clients.spa]
name = "Single page app"
redirect_uris = ["http://127.0.0.1:9/cb"]
scopes = ["openid", "email", "profile", "offline_access"]
first_party = true
"#
}

async fn provider_app() -> TestApp {
    spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.oidc_provider = Some(toml::from_str(provider_toml()).expect("provider config"));
    })
    .await
}

fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Undoes the HTML escaping of an attribute value (named and decimal
/// entities).
fn unescape(s: &str) -> String {
    let s = s.replace("&amp;", "&").replace("&quot;", "\"");
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("&#") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let end = tail.find(';').expect("an entity");
        let n: u32 = tail[..end].parse().expect("a decimal entity");
        out.push(char::from_u32(n).unwrap());
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

fn pkce() -> (String, String) {
    let verifier = "oidc-verifier-0123456789-abcdefghijklmnopqrstuvwxyz".to_string();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(app: &TestApp, client: &str, extra: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("client_id", client)
        .append_pair("redirect_uri", CB)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile offline_access")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1");
    for (k, v) in extra {
        s.append_pair(k, v);
    }
    app.url(&format!("/oauth2/authorize?{}", s.finish()))
}

async fn get(app: &TestApp, url: &str) -> Response {
    app.client.get(url).send().await.unwrap()
}

/// Signs in on the hosted `/login` page the authorization endpoint sent the
/// browser to; returns where the sign-in sends it next.
async fn sign_in_at(app: &TestApp, login_location: &str, email: &str) -> String {
    let page = get(app, &app.url(login_location))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token");
    let redirect_to = unescape(&hidden(&page, "redirect_to"));
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", email),
            ("password", PASSWORD),
            ("redirect_to", redirect_to.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let to = location(&res);
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{redirect_to} {}",
        res.text().await.unwrap()
    );
    to
}

/// The whole browser side for a first-party client: authorize, sign in,
/// back with a code at the client's redirect URI.
async fn code_for(app: &TestApp, client: &str, email: &str, extra: &[(&str, &str)]) -> String {
    let res = get(app, &authorize_url(app, client, extra)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mut next = location(&res);
    if next.starts_with("/login") {
        next = sign_in_at(app, &next, email).await;
        let res = get(app, &next).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        next = location(&res);
    }
    assert!(next.starts_with(CB), "{next}");
    assert!(param(&next, "error").is_none(), "{next}");
    assert_eq!(param(&next, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&next, "iss").as_deref(), Some(app.base.as_str()));
    param(&next, "code").expect("a code")
}

async fn token(app: &TestApp, auth: Option<(&str, &str)>, form: &[(&str, &str)]) -> Response {
    let mut req = app.client.post(app.url("/oauth2/token")).form(form);
    if let Some((id, secret)) = auth {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn exchange(app: &TestApp, code: &str) -> Response {
    token(
        app,
        Some(("app", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
        ],
    )
    .await
}

async fn oauth_error(res: Response, status: StatusCode, error: &str) {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
}

/// Verifies an id_token's signature against the published JWKS.
async fn verify_id_token(app: &TestApp, id_token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = get(app, &app.url("/.well-known/jwks.json"))
        .await
        .json()
        .await
        .unwrap();
    let h = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(h.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = jwks.find(h.kid.as_deref().unwrap()).expect("published key");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["app"]);
    v.set_issuer(&[&app.base]);
    jsonwebtoken::decode::<Value>(id_token, &key, &v)
        .unwrap()
        .claims
}

#[tokio::test]
async fn discovery_lists_only_what_is_implemented() {
    let plain = spawn_app().await;
    let doc: Value = get(&plain, &plain.url("/.well-known/openid-configuration"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc.as_object().unwrap().len(), 2, "{doc}");
    let app = provider_app().await;
    let doc: Value = get(&app, &app.url("/.well-known/openid-configuration"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["authorization_endpoint"], app.url("/oauth2/authorize"));
    assert_eq!(doc["token_endpoint"], app.url("/oauth2/token"));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    // Each advertised endpoint answers (not 404).
    for key in [
        "authorization_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
    ] {
        let res = get(&app, doc[key].as_str().unwrap()).await;
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{key}");
    }
    for key in [
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let res = app
            .client
            .post(doc[key].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{key}");
    }
    // The hosted forms may end in a redirect to a client: form-action
    // admits the clients' origins.
    let login = get(&app, &app.url("/login")).await;
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    // The RSA key is in the same published set as the access-token key.
    let jwks: Value = get(&app, &app.url("/.well-known/jwks.json"))
        .await
        .json()
        .await
        .unwrap();
    let ktys: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert!(ktys.contains(&"RSA") && ktys.contains(&"OKP"), "{jwks}");
}

#[tokio::test]
async fn code_flow_through_the_hosted_sign_in_gives_verified_tokens() {
    let app = provider_app().await;
    let user = app.sign_up("rp@example.com").await;
    let user_id = user["user"]["id"].as_str().unwrap().to_string();
    let res = get(
        &app,
        &authorize_url(&app, "app", &[("login_hint", "rp@example.com")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to_login = location(&res);
    assert!(to_login.starts_with("/login?"), "{to_login}");
    let page = get(&app, &app.url(&to_login)).await.text().await.unwrap();
    assert!(
        page.contains("value=\"rp@example.com\""),
        "login_hint prefills the address"
    );
    assert!(
        page.contains("<h1>Sign in to Team app</h1>"),
        "the page names the app signed in to"
    );
    let code = code_for(&app, "app", "rp@example.com", &[]).await;
    let res = exchange(&app, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    let c = verify_id_token(&app, id_token).await;
    assert_eq!(c["sub"], user_id.as_str());
    assert_eq!(c["nonce"], "n-1");
    assert_eq!(c["email"], "rp@example.com");
    // Confirmation is off in this app: the address was never proven.
    assert_eq!(c["email_verified"], false);
    assert!(c["auth_time"].is_i64() && c["sid"].is_string());
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    let digest = sha2::Sha256::digest(access.as_bytes());
    assert_eq!(
        c["at_hash"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    );
    // RFC 9068 access token.
    assert_eq!(header(access)["typ"], "at+jwt");
    let ac = claims(access);
    assert_eq!(ac["client_id"], "app");
    assert_eq!(ac["aud"], "app");
    assert_eq!(ac["scope"], "openid email profile offline_access");
    // Userinfo answers by scope; derp's own API refuses the client's token.
    let info: Value = app
        .get_bearer("/oauth2/userinfo", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "rp@example.com");
    assert!(info.get("orgs").is_none(), "no orgs scope");
    let api = app.get_bearer("/api/v1/auth/user", access).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    // Refresh rotates; the old refresh token is then refused.
    let refresh = body["refresh_token"].as_str().unwrap();
    let res = token(
        &app,
        Some(("app", SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let renewed: Value = res.json().await.unwrap();
    assert_ne!(renewed["refresh_token"], body["refresh_token"]);
    assert_eq!(
        claims(renewed["access_token"].as_str().unwrap())["client_id"],
        "app"
    );
    // Another client cannot use it; derp's own refresh refuses it too.
    let other = token(
        &app,
        Some(("third", "third-secret-0123456789abcdef")),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", renewed["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    oauth_error(other, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let own = app
        .refresh(renewed["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(own.status(), StatusCode::UNAUTHORIZED);
    // Introspection, then revocation ends the grant.
    let new_access = renewed["access_token"].as_str().unwrap();
    let intro: Value = app
        .client
        .post(app.url("/oauth2/introspect"))
        .basic_auth("app", Some(SECRET))
        .form(&[("token", new_access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], "app");
    let res = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth("app", Some(SECRET))
        .form(&[("token", renewed["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let after = app.get_bearer("/oauth2/userinfo", new_access).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let intro: Value = app
        .client
        .post(app.url("/oauth2/introspect"))
        .form(&[
            ("token", new_access),
            ("client_id", "app"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], false, "client_secret_post works too");
    // The grant is audited.
    let events = audit_actions(&app, &user_id).await;
    assert!(
        events.iter().any(|a| a == "oauth.token.issued"),
        "{events:?}"
    );
}

async fn audit_actions(app: &TestApp, user_id: &str) -> Vec<String> {
    let id = user_id.to_string();
    app.state
        .db
        .write_sync(move |conn| derp::storage::audit::actions_for_user(conn, &id))
        .map(|v: Vec<(String, String)>| v.into_iter().map(|(a, _)| a).collect())
        .unwrap()
}

#[tokio::test]
async fn an_unregistered_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let app = provider_app().await;
    let evil = "https://evil.example.com/cb";
    for url in [
        app.url(&format!("/oauth2/authorize?client_id=app&redirect_uri={evil}&response_type=code&scope=openid")),
        app.url("/oauth2/authorize?client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid"),
        app.url("/oauth2/authorize?client_id=app&response_type=code&scope=openid"),
        // A prefix of a registered URI is not it.
        app.url("/oauth2/authorize?client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%2Fmore&response_type=code"),
    ] {
        let res = get(&app, &url).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(res.headers().get("location").is_none(), "{url}");
    }
    // Once client and redirect are known, errors go back to the client.
    let res = get(
        &app,
        &authorize_url(&app, "app", &[("response_type", "token")]),
    )
    .await;
    // (response_type given twice is a malformed request: a page.)
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = get(&app, &app.url("/oauth2/authorize?client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=token&state=s")).await;
    let to = location(&res);
    assert!(to.starts_with(CB), "{to}");
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(param(&to, "state").as_deref(), Some("s"));
    let res = get(
        &app,
        &authorize_url(&app, "third", &[]).replace("offline_access", "orgs"),
    )
    .await;
    assert_eq!(
        param(&location(&res), "error").as_deref(),
        Some("invalid_scope")
    );
    // A public client without PKCE.
    let res = get(
        &app,
        &authorize_url(&app, "spa", &[]).replace("+offline_access", ""),
    )
    .await;
    let to = location(&res);
    assert_eq!(
        param(&to, "error").as_deref(),
        Some("invalid_request"),
        "{to}"
    );
    // prompt=none while signed out.
    let res = get(&app, &authorize_url(&app, "app", &[("prompt", "none")])).await;
    assert_eq!(
        param(&location(&res), "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_what_the_rfcs_refuse() {
    let app = provider_app().await;
    app.sign_up("neg@example.com").await;
    // Wrong client secret.
    let code = code_for(&app, "app", "neg@example.com", &[]).await;
    let res = token(
        &app,
        Some(("app", "wrong-secret-0123456789")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert!(res.headers().contains_key("www-authenticate"));
    oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // Wrong redirect_uri: the code is spent all the same.
    let res = token(
        &app,
        Some(("app", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
        ],
    )
    .await;
    oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    oauth_error(
        exchange(&app, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    // Code reuse revokes what the first use issued.
    let code = code_for(&app, "app", "neg@example.com", &[]).await;
    let first: Value = exchange(&app, &code).await.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_bearer("/oauth2/userinfo", access).await.status(),
        StatusCode::OK
    );
    oauth_error(
        exchange(&app, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.get_bearer("/oauth2/userinfo", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let metrics = get(&app, &app.url("/metrics")).await.text().await.unwrap();
    // The code spent on a wrong redirect_uri and presented again, and this one.
    assert!(
        metrics
            .lines()
            .any(|l| l == "derp_oauth_code_reused_total 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "derp_oauth_tokens_issued_total{grant_type=\"authorization_code\"} 1")
    );
    let res = token(
        &app,
        Some(("app", SECRET)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Expired code (60 s).
    let code = code_for(&app, "app", "neg@example.com", &[]).await;
    app.advance(61);
    oauth_error(
        exchange(&app, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    // Another client's code.
    let code = code_for(&app, "app", "neg@example.com", &[]).await;
    let res = token(
        &app,
        Some(("third", "third-secret-0123456789abcdef")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Unknown grant type, missing client, repeated parameter.
    let res = token(&app, Some(("app", SECRET)), &[("grant_type", "password")]).await;
    oauth_error(res, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    let res = token(
        &app,
        None,
        &[("grant_type", "authorization_code"), ("code", "x")],
    )
    .await;
    oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let res = token(
        &app,
        Some(("app", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    // A public client naming a secret is not authenticated.
    let res = token(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", "spa"),
            ("client_secret", "guess"),
        ],
    )
    .await;
    oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn a_public_client_needs_the_matching_pkce_verifier() {
    let app = provider_app().await;
    app.sign_up("spa@example.com").await;
    let (verifier, challenge) = pkce();
    let with = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let code = code_for(&app, "spa", "spa@example.com", &with).await;
    let res = token(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", "spa"),
            (
                "code_verifier",
                "another-verifier-0123456789-abcdefghijklmnopqrstu",
            ),
        ],
    )
    .await;
    oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let code = code_for(&app, "spa", "spa@example.com", &with).await;
    let res = token(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", "spa"),
        ],
    )
    .await;
    oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let code = code_for(&app, "spa", "spa@example.com", &with).await;
    let res = token(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", "spa"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["id_token"].is_string());
    assert!(body["refresh_token"].is_string(), "offline_access");
    // Without offline_access, no refresh token.
    let code = code_for(&app, "spa", "spa@example.com", &with).await;
    let _ = code;
    let url = authorize_url(&app, "spa", &with).replace("+offline_access", "");
    let to = location(&get(&app, &url).await);
    let code = param(&to, "code").unwrap();
    let res = token(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", "spa"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    let body: Value = res.json().await.unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access: {body}"
    );
}

#[tokio::test]
async fn a_third_party_client_asks_for_consent_once_and_it_can_be_withdrawn() {
    let app = provider_app().await;
    let user = app.sign_up("tp@example.com").await;
    let user_id = user["user"]["id"].as_str().unwrap().to_string();
    // Signed in through the first-party client first.
    let _ = code_for(&app, "app", "tp@example.com", &[]).await;
    // prompt=none without consent.
    let res = get(&app, &authorize_url(&app, "third", &[("prompt", "none")])).await;
    assert_eq!(
        param(&location(&res), "error").as_deref(),
        Some("consent_required")
    );
    // The consent page; deny.
    let res = get(&app, &authorize_url(&app, "third", &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("Third Party Wiki"), "{page}");
    let csrf = hidden(&page, "csrf_token");
    let request = unescape(&hidden(&page, "request"));
    let post = |decision: &'static str| {
        app.client
            .post(app.url("/oauth2/consent"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("request", request.as_str()),
                ("decision", decision),
            ])
            .send()
    };
    let denied = post("deny").await.unwrap();
    let to = location(&denied);
    assert!(to.starts_with(CB));
    assert_eq!(param(&to, "error").as_deref(), Some("access_denied"));
    // Allow: back to the authorization endpoint, then a code.
    let allowed = post("allow").await.unwrap();
    let res = get(&app, &app.url(&location(&allowed))).await;
    let to = location(&res);
    assert!(param(&to, "code").is_some(), "{to}");
    // Remembered: no page the next time.
    let res = get(&app, &authorize_url(&app, "third", &[])).await;
    assert!(param(&location(&res), "code").is_some());
    let code = param(&location(&res), "code").unwrap();
    let tokens: Value = token(
        &app,
        Some(("third", "third-secret-0123456789abcdef")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.get_bearer("/oauth2/userinfo", access).await.status(),
        StatusCode::OK
    );
    // Withdrawn from /account: the consent and the app's sessions end.
    let account = get(&app, &app.url("/account")).await.text().await.unwrap();
    assert!(
        account.contains("Third Party Wiki"),
        "connected apps listed"
    );
    let csrf = hidden(&account, "csrf_token");
    let res = app
        .client
        .post(app.url("/account/apps/revoke"))
        .form(&[("csrf_token", csrf.as_str()), ("client_id", "third")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_bearer("/oauth2/userinfo", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = get(&app, &authorize_url(&app, "third", &[])).await;
    assert_eq!(res.status(), StatusCode::OK, "asks again");
    let events = audit_actions(&app, &user_id).await;
    assert!(events.iter().any(|a| a == "consent.granted"));
    assert!(events.iter().any(|a| a == "consent.revoked"));
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in() {
    let app = provider_app().await;
    app.sign_up("fresh@example.com").await;
    let _ = code_for(&app, "app", "fresh@example.com", &[]).await;
    // Signed in: a code at once.
    let res = get(&app, &authorize_url(&app, "app", &[])).await;
    assert!(param(&location(&res), "code").is_some());
    app.advance(120);
    let res = get(&app, &authorize_url(&app, "app", &[("max_age", "60")])).await;
    assert!(location(&res).starts_with("/login"), "max_age passed");
    let code = code_for(&app, "app", "fresh@example.com", &[("max_age", "60")]).await;
    let body: Value = exchange(&app, &code).await.json().await.unwrap();
    let c = claims(body["id_token"].as_str().unwrap());
    assert!(c["auth_time"].as_i64().unwrap() >= app.state.clock.unix() - 1);
    let res = get(&app, &authorize_url(&app, "app", &[("prompt", "login")])).await;
    assert!(location(&res).starts_with("/login"), "prompt=login");
    let code = code_for(&app, "app", "fresh@example.com", &[("prompt", "login")]).await;
    assert!(!code.is_empty());
}

#[tokio::test]
async fn the_orgs_scope_lists_orgs_and_roles() {
    let app = provider_app().await;
    let user = app.sign_up("org@example.com").await;
    let access = user["tokens"]["access_token"].as_str().unwrap();
    let org: Value = app
        .post_bearer(
            "/api/v1/orgs",
            access,
            serde_json::json!({"name": "Acme", "slug": "acme"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let url = authorize_url(&app, "app", &[]).replace("offline_access", "orgs");
    let res = get(&app, &url).await;
    let login = location(&res);
    let next = sign_in_at(&app, &login, "org@example.com").await;
    let to = location(&get(&app, &next).await);
    let code = param(&to, "code").unwrap();
    let body: Value = exchange(&app, &code).await.json().await.unwrap();
    let c = claims(body["id_token"].as_str().unwrap());
    assert_eq!(c["orgs"][0]["slug"], "acme");
    assert_eq!(c["orgs"][0]["role"], "owner");
    assert_eq!(c["orgs"][0]["id"], org["id"]);
    let info: Value = app
        .get_bearer("/oauth2/userinfo", body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["orgs"][0]["slug"], "acme");
}

#[tokio::test]
async fn rp_initiated_logout_goes_back_only_to_a_registered_uri() {
    let app = provider_app().await;
    app.sign_up("out@example.com").await;
    let code = code_for(&app, "app", "out@example.com", &[]).await;
    let body: Value = exchange(&app, &code).await.json().await.unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    let bad = get(&app, &app.url(&format!("/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example.com%2F"))).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.headers().get("location").is_none());
    let forged = get(&app, &app.url("/oauth2/logout?id_token_hint=eyJhbGciOiJub25lIn0.eyJhdWQiOiJhcHAifQ.&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye")).await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let res = get(&app, &app.url(&format!("/oauth2/logout?id_token_hint={id_token}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye&state=xyz"))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "http://127.0.0.1:9/bye?state=xyz");
    // Signed out here: the next authorization asks for a sign-in.
    let res = get(&app, &authorize_url(&app, "app", &[])).await;
    assert!(location(&res).starts_with("/login"));
}

fn derp_cli(file: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_derp"))
        .env_remove("DERP_CONFIG")
        .arg("--config")
        .arg(file)
        .arg("clients")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn line_value(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {out}"))
        .to_string()
}

#[tokio::test]
async fn clients_from_the_cli_have_a_secret_shown_once_rotatable_and_deletable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("derp.toml");
    let storage = storage_toml(&dir.path().join("data")).await;
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\n[auth.native]\nenable_confirmation = false\n[oidc_provider]\n{storage}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = derp_cli(
        &file,
        &[
            "create",
            "--name",
            "Wiki",
            "--redirect-uri",
            CB,
            "--first-party",
            "--scopes",
            "openid,email,profile,offline_access",
        ],
    );
    let id = line_value(&out, "client_id");
    let secret = line_value(&out, "client_secret");
    let listed = derp_cli(&file, &["list"]);
    assert!(listed.contains(&id) && listed.contains("Wiki"), "{listed}");
    assert!(!listed.contains(&secret), "the secret is shown once");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_derp"))
        .args(["--config"])
        .arg(&file)
        .args([
            "clients",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            "http://app.example.com/cb",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("redirect_uri"));

    let mut config = derp::config::Config::load(Some(&file)).unwrap();
    config.server.bind = "127.0.0.1:0".into();
    config.rate_limit.sign_in_per_ip = 10_000;
    let app = spawn_config(config, dir).await;
    app.sign_up("cli@example.com").await;
    let code = code_for(&app, &id, "cli@example.com", &[]).await;
    let res = token(
        &app,
        Some((&id, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    // Rotation: the old secret stops working at once.
    let rotated = derp_cli(&file_of(&app), &["rotate-secret", &id]);
    let new_secret = line_value(&rotated, "client_secret");
    let code = code_for(&app, &id, "cli@example.com", &[]).await;
    let res = token(
        &app,
        Some((&id, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let code = code_for(&app, &id, "cli@example.com", &[]).await;
    let res = token(
        &app,
        Some((&id, &new_secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Deleted: its sessions end and it is unknown.
    derp_cli(&file_of(&app), &["delete", &id]);
    assert_eq!(
        app.get_bearer("/oauth2/userinfo", &access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = get(&app, &authorize_url(&app, &id, &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// The configuration file next to the app's data directory.
fn file_of(app: &TestApp) -> std::path::PathBuf {
    app._dir.path().join("derp.toml")
}

/// A TLS front on `listener` forwarding to `127.0.0.1:upstream`, with a
/// certificate made for this test; returns the certificate (PEM) for the
/// client to trust.
fn tls_front(listener: std::net::TcpListener, upstream: u16) -> String {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pem = made.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![made.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    pem
}

/// openid-client 6.8.9, the certified relying-party library, with every
/// check on and no option relaxed, against derp behind TLS (the library
/// speaks https only): discovery, the code flow with PKCE,
/// state and nonce through the hosted pages, id_token validation (issuer,
/// audience, nonce, signature through the JWKS), userinfo, refresh,
/// introspection, revocation and RP-initiated logout.
#[tokio::test]
async fn openid_client_signs_in_with_every_check_on() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc-client");
    if !std::path::Path::new(dir)
        .join("node_modules/openid-client")
        .exists()
    {
        panic!(
            "openid-client is not installed: run ./test.sh (it runs `npm ci` in tests/oidc-client)"
        );
    }
    // derp's public URL is the TLS front's.
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let public = format!("https://127.0.0.1:{}", front.local_addr().unwrap().port());
    let public_url = public.clone();
    let app = spawn_with(move |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.server.public_url = Some(public_url);
        c.oidc_provider = Some(toml::from_str(provider_toml()).expect("provider config"));
    })
    .await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let ca = app._dir.path().join("front.pem");
    std::fs::write(&ca, tls_front(front, port)).unwrap();
    let user = app.sign_up("certified@example.com").await;
    let base = public.clone();
    // The server runs on this test's thread: node waits on another.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(format!("{dir}/rp.mjs"))
            .env("NODE_EXTRA_CA_CERTS", &ca)
            .env("DERP_URL", &base)
            .env("CLIENT_ID", "app")
            .env("CLIENT_SECRET", SECRET)
            .env("REDIRECT_URI", CB)
            .env("POST_LOGOUT_URI", "http://127.0.0.1:9/bye")
            .env("EMAIL", "certified@example.com")
            .env("PASSWORD", PASSWORD)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["issuer"], public.as_str());
    assert_eq!(seen["id_token_claims"]["sub"], user["user"]["id"]);
    assert_eq!(seen["id_token_claims"]["aud"], "app");
    assert_eq!(seen["userinfo"]["email"], "certified@example.com");
    assert_eq!(seen["userinfo"]["orgs"], serde_json::json!([]));
    assert_eq!(seen["refreshed"], true);
    assert_eq!(seen["introspected"]["active"], true);
    assert_eq!(seen["introspected"]["client_id"], "app");
    assert_eq!(seen["after_revocation"]["active"], false);
    assert_ne!(seen["userinfo_after_revocation"], "answered");
    assert_eq!(seen["logout_status"], 303);
    assert_eq!(seen["logout_location"], "http://127.0.0.1:9/bye?state=bye");
}

#[tokio::test]
async fn the_admin_api_registers_rotates_and_deletes_clients() {
    use crate::admin::{KEY, call};
    use reqwest::Method;
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.admin.service_keys = vec![derp::config::Secret::new(KEY)];
        c.oidc_provider = Some(toml::from_str(provider_toml()).unwrap());
    })
    .await;
    let user = app.sign_up("notadmin@example.com").await;
    let user_token = user["tokens"]["access_token"].as_str().unwrap();
    let body = serde_json::json!({
        "name": "Outline",
        "redirect_uris": [CB],
        "first_party": true,
        "scopes": ["openid", "email", "profile", "offline_access"],
    });
    let res = call(
        &app,
        Method::POST,
        "/api/v1/admin/clients",
        Some(user_token),
        Some(body.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "not an admin");
    let bad = serde_json::json!({"name": "X", "redirect_uris": ["http://app.example.com/cb"]});
    let res = call(
        &app,
        Method::POST,
        "/api/v1/admin/clients",
        Some(KEY),
        Some(bad),
    )
    .await;
    let err = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(err["error"]["fields"]["redirect_uri"].is_string(), "{err}");
    let res = call(
        &app,
        Method::POST,
        "/api/v1/admin/clients",
        Some(KEY),
        Some(body),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let list: Value = call(&app, Method::GET, "/api/v1/admin/clients", Some(KEY), None)
        .await
        .json()
        .await
        .unwrap();
    let list = list.as_array().unwrap();
    assert!(
        list.iter()
            .any(|c| c["client_id"] == "app" && c["source"] == "config")
    );
    let mine = list.iter().find(|c| c["client_id"] == id.as_str()).unwrap();
    assert_eq!(mine["source"], "stored");
    assert!(
        mine.get("client_secret").is_none(),
        "the secret is shown once"
    );
    // derp.toml's clients are read-only here.
    let res = call(
        &app,
        Method::DELETE,
        "/api/v1/admin/clients/app",
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Rotation: the old secret stops working.
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/clients/{id}/secret"),
        Some(KEY),
        None,
    )
    .await;
    let rotated: Value = res.json().await.unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap();
    app.sign_up("admin-client@example.com").await;
    let code = code_for(&app, &id, "admin-client@example.com", &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
    ];
    oauth_error(
        token(&app, Some((&id, &secret)), &form).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    let code = code_for(&app, &id, "admin-client@example.com", &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
    ];
    assert_eq!(
        token(&app, Some((&id, new_secret)), &form).await.status(),
        StatusCode::OK
    );
    let res = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/clients/{id}"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/clients/{id}"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_authorization_request_may_be_posted_as_a_form() {
    let app = provider_app().await;
    let res = app
        .client
        .post(app.url("/oauth2/authorize"))
        .form(&[
            ("client_id", "app"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("response_type", "token"),
            ("state", "s 1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert!(to.starts_with("/oauth2/authorize?client_id=app&"), "{to}");
    // The GET it leads to answers as a GET would: the error goes to the client.
    let res = get(&app, &app.url(&to)).await;
    let back = location(&res);
    assert!(back.starts_with(CB), "{back}");
    assert_eq!(
        param(&back, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(param(&back, "state").as_deref(), Some("s 1"));
}

#[tokio::test]
async fn the_console_registers_rotates_and_deletes_apps() {
    let app = provider_app().await;
    crate::admin::admin_token(&app, "boss@example.com").await;
    app.sign_in_through_pages("boss@example.com").await;
    let page = |path: &'static str| {
        let app = &app;
        async move {
            let res = app.client.get(app.url(path)).send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let (status, html) = page("/admin/clients").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("(derp.toml)"),
        "the file's clients are listed"
    );
    let csrf = hidden(&html, "csrf_token");
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&path))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let res = post(
        "/admin/clients".into(),
        vec![
            ("csrf_token", csrf.clone()),
            ("name", "Wiki".into()),
            ("redirect_uris", String::new()),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"redirect_uri-error\""),
        "the field is named"
    );
    assert!(html.contains("value=\"Wiki\""), "what was typed is kept");
    let res = post(
        "/admin/clients".into(),
        vec![
            ("csrf_token", csrf.clone()),
            ("name", "Wiki".into()),
            ("redirect_uris", "https://wiki.example.com/cb\n".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let html = res.text().await.unwrap();
    let listed = app
        .state
        .oidc
        .as_ref()
        .unwrap()
        .list_clients()
        .await
        .unwrap();
    let id = listed
        .iter()
        .find(|c| c.name == "Wiki")
        .expect("registered")
        .client_id
        .clone();
    assert!(html.contains(&id) && html.contains("shown this once"));
    let res = post(
        format!("/admin/clients/{id}/rotate"),
        vec![("csrf_token", csrf.clone())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.text().await.unwrap().contains("shown this once"));
    let res = post(
        format!("/admin/clients/{id}/delete"),
        vec![("csrf_token", csrf.clone()), ("confirmed", "yes".into())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, html) = page("/admin/clients").await;
    assert!(html.contains(&format!("{id} is deleted")));
    assert!(
        !html.contains(&format!("/admin/clients/{id}/delete")),
        "no longer listed"
    );
}
