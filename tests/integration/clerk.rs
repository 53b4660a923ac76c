//! The Clerk backend against a stand-in for Clerk's Backend API, built from
//! Clerk's published contract (`/v1/jwks`, `/v1/users/{id}`, `/v1/sessions`,
//! `/v1/sessions/{id}/revoke`, Bearer `sk_…`, millisecond timestamps,
//! `{"errors": [...]}` bodies). No Clerk emulator exists to install.

use crate::helpers::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use derp::config::{ClerkConfig, Config, Secret};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const SECRET_KEY: &str = "sk_test_derp_fake_clerk_0123456789";
const ORIGIN: &str = "https://app.example.com";

struct FakeClerk {
    base: String,
    key: EncodingKey,
    public_pem: String,
    jwks_hits: Arc<AtomicUsize>,
    revoked: Arc<Mutex<Vec<String>>>,
}

fn errors(code: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .json(json!({"errors": [{"message": code, "long_message": code, "code": code}]}))
}

fn authorized(req: &HttpRequest) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {SECRET_KEY}"))
}

async fn fake_clerk() -> FakeClerk {
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let der = private.to_pkcs1_der().unwrap();
    let key = EncodingKey::from_rsa_der(der.as_bytes());
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("ins_test".into());
    let jwks = web::Data::new(JwkSet { keys: vec![jwk] });
    let jwks_hits = Arc::new(AtomicUsize::new(0));
    let revoked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (hits, rev) = (
        web::Data::from(jwks_hits.clone()),
        web::Data::from(revoked.clone()),
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(jwks.clone())
            .app_data(hits.clone())
            .app_data(rev.clone())
            .route("/v1/jwks", web::get().to(|req: HttpRequest, set: web::Data<JwkSet>, hits: web::Data<AtomicUsize>| async move {
                if !authorized(&req) {
                    return errors("authentication_invalid");
                }
                hits.fetch_add(1, Ordering::SeqCst);
                HttpResponse::Ok().json(&**set)
            }))
            .route("/v1/users/{id}", web::get().to(|req: HttpRequest, path: web::Path<String>| async move {
                if !authorized(&req) {
                    return errors("authentication_invalid");
                }
                if path.as_str() != "user_1" {
                    return HttpResponse::NotFound().json(json!({"errors": [{"message": "not found", "long_message": "not found", "code": "resource_not_found"}]}));
                }
                HttpResponse::Ok().json(json!({
                    "id": "user_1",
                    "primary_email_address_id": "idn_1",
                    "email_addresses": [{"id": "idn_1", "email_address": "Clara@Example.com", "verification": {"status": "verified"}}],
                    "banned": false,
                    "locked": false,
                    "created_at": 1_700_000_000_999_i64,
                    "last_sign_in_at": 1_700_000_100_000_i64,
                    "public_metadata": {}
                }))
            }))
            .route("/v1/sessions", web::get().to(|req: HttpRequest, rev: web::Data<Mutex<Vec<String>>>| async move {
                if !authorized(&req) {
                    return errors("authentication_invalid");
                }
                let revoked = rev.lock().unwrap().clone();
                let all = ["sess_1", "sess_2"].into_iter().filter(|s| !revoked.contains(&s.to_string()));
                let list: Vec<Value> = all.map(|s| json!({"id": s, "user_id": "user_1", "status": "active", "created_at": 1_700_000_000_000_i64, "last_active_at": 1_700_000_050_000_i64})).collect();
                HttpResponse::Ok().json(list)
            }))
            .route("/v1/sessions/{id}/revoke", web::post().to(|req: HttpRequest, path: web::Path<String>, rev: web::Data<Mutex<Vec<String>>>| async move {
                if !authorized(&req) {
                    return errors("authentication_invalid");
                }
                rev.lock().unwrap().push(path.into_inner());
                HttpResponse::Ok().json(json!({"status": "revoked"}))
            }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let running = server.run();
    tokio::spawn(running);
    FakeClerk {
        base: format!("http://127.0.0.1:{port}"),
        key,
        public_pem,
        jwks_hits,
        revoked,
    }
}

impl FakeClerk {
    /// A Clerk session token as Clerk's front end makes them.
    fn token(&self, now: i64, extra: Value) -> String {
        let mut claims = json!({
            "iss": "https://clerk.example.com", "sub": "user_1", "sid": "sess_1",
            "iat": now, "nbf": now - 5, "exp": now + 60, "jti": "jti_1", "v": 2, "azp": ORIGIN
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("ins_test".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

async fn clerk_app(fake: &FakeClerk, change: impl FnOnce(&mut ClerkConfig)) -> TestApp {
    let mut clerk = ClerkConfig {
        secret_key: Some(Secret::new(SECRET_KEY)),
        authorized_parties: vec![ORIGIN.into()],
        api_url: Some(fake.base.clone()),
        sign_in_url: Some("https://accounts.example.com/sign-in".into()),
        ..Default::default()
    };
    change(&mut clerk);
    spawn_with(move |c: &mut Config| {
        c.auth.native = None;
        c.auth.clerk = Some(clerk);
        c.auth.org_context_secret = Some(Secret::new("an-org-context-secret-of-32-bytes-or-more"));
    })
    .await
}

fn now() -> i64 {
    derp::clock::Clock::unix(&derp::clock::SystemClock)
}

#[tokio::test]
async fn clerk_session_tokens_are_verified_locally() {
    let fake = fake_clerk().await;
    let app = clerk_app(&fake, |_| {}).await;
    let res = app.session(&fake.token(now(), json!({}))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let info: Value = res.json().await.unwrap();
    assert_eq!(
        (info["user_id"].as_str(), info["session_id"].as_str()),
        (Some("user_1"), Some("sess_1"))
    );

    // The `__session` cookie works as well as the header.
    let res = app
        .client
        .get(app.url("/api/v1/auth/session"))
        .header(
            "cookie",
            format!("__session={}", fake.token(now(), json!({}))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Clerk's org claim is mapped.
    let info: Value = app
        .session(&fake.token(
            now(),
            json!({"o": {"id": "org_9", "slg": "nine", "rol": "org:admin", "per": ""}}),
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["org_id"].as_str(), info["org_role"].as_str()),
        (Some("org_9"), Some("admin"))
    );

    for bad in [
        fake.token(now() - 600, json!({})),
        fake.token(now(), json!({"nbf": now() + 120})),
        fake.token(now(), json!({"azp": "https://evil.example.com"})),
    ] {
        expect_error(
            app.session(&bad).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    // Payload changed, signature kept.
    let good = fake.token(now(), json!({}));
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["sub"] = json!("user_2");
    let body = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims.to_string(),
    );
    let forged = format!("{}.{body}.{}", parts[0], parts[2]);
    expect_error(
        app.session(&forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Keys were fetched once, for all those requests.
    assert_eq!(fake.jwks_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        app.session(&fake.token(now(), json!({}))).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        fake.jwks_hits.load(Ordering::SeqCst),
        1,
        "no network call per request"
    );
}

#[tokio::test]
async fn the_pem_key_needs_no_backend_api_at_all() {
    let fake = fake_clerk().await;
    let pem = fake.public_pem.clone();
    let app = clerk_app(&fake, |c| {
        c.jwt_key = Some(pem);
        c.api_url = Some("http://127.0.0.1:9".into());
    })
    .await;
    assert_eq!(
        app.session(&fake.token(now(), json!({}))).await.status(),
        StatusCode::OK
    );
    assert_eq!(fake.jwks_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn users_and_sessions_come_from_the_backend_api_and_other_flows_are_501() {
    let fake = fake_clerk().await;
    let app = clerk_app(&fake, |_| {}).await;
    let token = fake.token(now(), json!({}));
    let user: Value = app
        .get_bearer("/api/v1/auth/user", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["email"], "clara@example.com");
    assert_eq!(
        user["created_at"], "2023-11-14T22:13:20Z",
        "milliseconds read as milliseconds"
    );
    let sessions: Value = app
        .get_bearer("/api/v1/auth/sessions", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "sess_1" && s["current"] == true)
    );
    let res = app
        .client
        .delete(app.url("/api/v1/auth/sessions/sess_2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(*fake.revoked.lock().unwrap(), vec!["sess_2".to_string()]);

    for (path, body) in [
        (
            "/api/v1/auth/sign-in",
            json!({"email": "a@example.com", "password": PASSWORD}),
        ),
        (
            "/api/v1/auth/sign-up",
            json!({"email": "a@example.com", "password": PASSWORD}),
        ),
        ("/api/v1/auth/refresh", json!({"refresh_token": "x"})),
    ] {
        expect_error(
            app.post(path, body).await,
            StatusCode::NOT_IMPLEMENTED,
            "not_supported_by_backend",
        )
        .await;
    }
    let res = app
        .client
        .get(app.url("/login?redirect_to=http://127.0.0.1/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "the allow-list still applies"
    );
    let res = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "https://accounts.example.com/sign-in",
        "hosted pages send browsers to Clerk"
    );
}

#[tokio::test]
async fn the_active_org_travels_in_a_signed_org_context() {
    let fake = fake_clerk().await;
    let app = clerk_app(&fake, |_| {}).await;
    let token = fake.token(now(), json!({}));
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &token,
            json!({"name": "Clerk Org", "slug": "clerk-org"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let org: Value = res.json().await.unwrap();
    let res = app
        .post_bearer(
            "/api/v1/auth/active-org",
            &token,
            json!({"org_id": org["id"]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let ctx = res.json::<Value>().await.unwrap()["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let with = |value: &str| {
        app.client
            .get(app.url("/api/v1/auth/session"))
            .bearer_auth(&token)
            .header("x-org-context", value)
            .send()
    };
    let info: Value = with(&ctx).await.unwrap().json().await.unwrap();
    assert_eq!(
        (info["org_id"].as_str(), info["org_role"].as_str()),
        (org["id"].as_str(), Some("owner"))
    );
    let tampered = format!("{}x", &ctx[..ctx.len() - 1]);
    let info: Value = with(&tampered).await.unwrap().json().await.unwrap();
    assert!(info["org_id"].is_null(), "a tampered context is ignored");
    let other_session = fake.token(now(), json!({"sid": "sess_2"}));
    let info: Value = app
        .client
        .get(app.url("/api/v1/auth/session"))
        .bearer_auth(&other_session)
        .header("x-org-context", &ctx)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        info["org_id"].is_null(),
        "bound to the session it was made for"
    );
}
