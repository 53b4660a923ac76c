//! The Clerk backend against a stand-in for Clerk's Backend API, built from
//! Clerk's published contract (`/v1/jwks`, `/v1/users` with `query`,
//! `email_address`, `limit` and `offset`, `/v1/users/{id}` GET and DELETE,
//! `/v1/users/{id}/ban` and `/unban`, `/v1/sessions`,
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

/// The fake's users, as Clerk's Backend API shows them.
struct Users(Mutex<Vec<Value>>);

fn clerk_user(id: &str, email: &str, created_ms: i64, last_ms: Option<i64>) -> Value {
    json!({
        "id": id,
        "object": "user",
        "primary_email_address_id": format!("idn_{id}"),
        "email_addresses": [{"id": format!("idn_{id}"), "email_address": email, "verification": {"status": "verified"}}],
        "banned": false,
        "locked": false,
        "created_at": created_ms,
        "last_sign_in_at": last_ms,
        "public_metadata": {}
    })
}

fn seed_users() -> Vec<Value> {
    vec![
        clerk_user(
            "user_1",
            "Clara@Example.com",
            1_700_000_000_999,
            Some(1_700_000_100_000),
        ),
        clerk_user("user_2", "dan@example.com", 1_700_000_200_000, None),
        clerk_user(
            "user_3",
            "erin@other.org",
            1_700_000_300_500,
            Some(1_700_000_400_250),
        ),
    ]
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"errors": [{"message": "not found", "long_message": "not found", "code": "resource_not_found"}]}))
}

/// `GET /v1/users`: `query` (substring of an email or the id),
/// `email_address` (exact, repeatable), `limit` (default 10), `offset`;
/// newest first. A JSON array, as Clerk answers.
async fn list_users(
    req: HttpRequest,
    users: web::Data<Users>,
    q: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    if !authorized(&req) {
        return errors("authentication_invalid");
    }
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let exact: Vec<String> = q
        .iter()
        .filter(|(n, _)| n == "email_address" || n == "email_address[]")
        .map(|(_, v)| v.to_lowercase())
        .collect();
    let query = get("query").map(|s| s.to_lowercase());
    let limit: usize = get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let offset: usize = get("offset").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut all = users.0.lock().unwrap().clone();
    all.sort_by_key(|u| -u["created_at"].as_i64().unwrap());
    let emails = |u: &Value| -> Vec<String> {
        u["email_addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["email_address"].as_str().unwrap().to_lowercase())
            .collect()
    };
    let page: Vec<Value> = all
        .into_iter()
        .filter(|u| exact.is_empty() || emails(u).iter().any(|e| exact.contains(e)))
        .filter(|u| {
            query.as_ref().is_none_or(|q| {
                emails(u).iter().any(|e| e.contains(q.as_str()))
                    || u["id"].as_str().unwrap().contains(q.as_str())
            })
        })
        .skip(offset)
        .take(limit)
        .collect();
    HttpResponse::Ok().json(page)
}

async fn get_user(
    req: HttpRequest,
    users: web::Data<Users>,
    path: web::Path<String>,
) -> HttpResponse {
    if !authorized(&req) {
        return errors("authentication_invalid");
    }
    match users
        .0
        .lock()
        .unwrap()
        .iter()
        .find(|u| u["id"] == path.as_str())
    {
        Some(u) => HttpResponse::Ok().json(u),
        None => not_found(),
    }
}

/// Ban and unban answer the user; a ban also ends the user's sessions.
fn set_banned(
    req: &HttpRequest,
    users: &Users,
    rev: &Mutex<Vec<String>>,
    id: &str,
    banned: bool,
) -> HttpResponse {
    if !authorized(req) {
        return errors("authentication_invalid");
    }
    let mut all = users.0.lock().unwrap();
    let Some(u) = all.iter_mut().find(|u| u["id"] == id) else {
        return not_found();
    };
    u["banned"] = banned.into();
    if banned && id == "user_1" {
        rev.lock()
            .unwrap()
            .extend(["sess_1".to_string(), "sess_2".to_string()]);
    }
    HttpResponse::Ok().json(&*u)
}

async fn ban_user(
    req: HttpRequest,
    users: web::Data<Users>,
    rev: web::Data<Mutex<Vec<String>>>,
    path: web::Path<String>,
) -> HttpResponse {
    set_banned(&req, &users, &rev, &path, true)
}

async fn unban_user(
    req: HttpRequest,
    users: web::Data<Users>,
    rev: web::Data<Mutex<Vec<String>>>,
    path: web::Path<String>,
) -> HttpResponse {
    set_banned(&req, &users, &rev, &path, false)
}

async fn delete_user(
    req: HttpRequest,
    users: web::Data<Users>,
    path: web::Path<String>,
) -> HttpResponse {
    if !authorized(&req) {
        return errors("authentication_invalid");
    }
    let mut all = users.0.lock().unwrap();
    let before = all.len();
    all.retain(|u| u["id"] != path.as_str());
    if all.len() == before {
        return not_found();
    }
    HttpResponse::Ok().json(json!({"id": path.as_str(), "object": "user", "deleted": true}))
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
    fake_clerk_with(seed_users()).await
}

async fn fake_clerk_with(seed: Vec<Value>) -> FakeClerk {
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
    let users = web::Data::new(Users(Mutex::new(seed)));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(jwks.clone())
            .app_data(hits.clone())
            .app_data(rev.clone())
            .app_data(users.clone())
            .route("/v1/jwks", web::get().to(|req: HttpRequest, set: web::Data<JwkSet>, hits: web::Data<AtomicUsize>| async move {
                if !authorized(&req) {
                    return errors("authentication_invalid");
                }
                hits.fetch_add(1, Ordering::SeqCst);
                HttpResponse::Ok().json(&**set)
            }))
            .route("/v1/users", web::get().to(list_users))
            .route("/v1/users/count", web::get().to(|req: HttpRequest, users: web::Data<Users>| async move {
                if !authorized(&req) {
                    return errors("authentication_invalid");
                }
                HttpResponse::Ok().json(json!({"object": "total_count", "total_count": users.0.lock().unwrap().len()}))
            }))
            .route("/v1/users/{id}", web::get().to(get_user))
            .route("/v1/users/{id}", web::delete().to(delete_user))
            .route("/v1/users/{id}/ban", web::post().to(ban_user))
            .route("/v1/users/{id}/unban", web::post().to(unban_user))
            .route("/v1/sessions", web::get().to(|req: HttpRequest, rev: web::Data<Mutex<Vec<String>>>, q: web::Query<Vec<(String, String)>>| async move {
                if !authorized(&req) {
                    return errors("authentication_invalid");
                }
                if !q.iter().any(|(k, v)| k == "user_id" && v == "user_1") {
                    return HttpResponse::Ok().json(json!([]));
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
        ("/api/v1/auth/passkeys/sign-in/start", json!({})),
        (
            "/api/v1/auth/passkeys/sign-in/finish",
            json!({"flow_id": "x", "credential": {}}),
        ),
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

const SERVICE_KEY: &str = "a-service-key-for-the-clerk-admin-0123456789";

/// Admin users through the Backend API: list, search, page, get, ban,
/// unban, sign out, delete; millisecond times read as such; the sole-owner
/// rule on derp's own org tables; an audit event for every action.
#[tokio::test]
async fn admin_users_are_clerk_users() {
    use reqwest::Method;
    let fake = fake_clerk().await;
    let mut clerk = ClerkConfig {
        secret_key: Some(Secret::new(SECRET_KEY)),
        api_url: Some(fake.base.clone()),
        ..Default::default()
    };
    clerk.authorized_parties = vec![ORIGIN.into()];
    let app = spawn_with(move |c: &mut Config| {
        c.auth.native = None;
        c.auth.clerk = Some(clerk);
        c.auth.org_context_secret = Some(Secret::new("an-org-context-secret-of-32-bytes-or-more"));
        c.admin.service_keys = vec![Secret::new(SERVICE_KEY)];
    })
    .await;
    let key = Some(SERVICE_KEY);
    let get = |path: String| call_as(&app, Method::GET, format!("/api/v1/admin{path}"), key, None);
    assert_eq!(app.state.admin.overview().await.unwrap().users, 3);

    // The whole list, newest first, times converted from milliseconds.
    let page: Value = get("/users".into()).await.json().await.unwrap();
    let ids: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["user_3", "user_2", "user_1"]);
    let erin = &page["users"][0];
    assert_eq!(erin["email"], "erin@other.org");
    assert_eq!(erin["created_at"], "2023-11-14T22:18:20Z");
    assert_eq!(erin["last_sign_in_at"], "2023-11-14T22:20:00Z");
    assert_eq!(page["users"][1]["last_sign_in_at"], Value::Null);
    assert!(page["users"][0].get("password_hash").is_none());

    // Pages of two, through the opaque cursor.
    let first: Value = get("/users?limit=2".into()).await.json().await.unwrap();
    assert_eq!(first["users"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second: Value = get(format!("/users?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["users"][0]["id"], "user_1");
    assert_eq!(second["next_cursor"], Value::Null);
    expect_error(
        get("/users?cursor=!!".into()).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    // Search by a part of the email.
    let found: Value = get("/users?q=example.com".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["users"].as_array().unwrap().len(), 2);
    let found: Value = get("/users?q=ERIN".into()).await.json().await.unwrap();
    assert_eq!(found["users"][0]["id"], "user_3");

    // One user, with derp's own orgs keyed by the Clerk id.
    let res = call_as(
        &app,
        Method::POST,
        "/api/v1/admin/orgs",
        key,
        Some(json!({"name": "Clara Co", "slug": "clara-co", "owner_id": "user_1"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let clara: Value = get("/users/user_1".into()).await.json().await.unwrap();
    assert_eq!(clara["email"], "clara@example.com");
    assert_eq!(clara["created_at"], "2023-11-14T22:13:20Z");
    assert_eq!(clara["orgs"][0]["org"]["slug"], "clara-co");
    expect_error(
        get("/users/user_404".into()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        get("/users/..%2Fjwks".into()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Disable = ban (Clerk ends the sessions), enable = unban.
    let patch = |id: &'static str, body: Value| {
        call_as(
            &app,
            Method::PATCH,
            format!("/api/v1/admin/users/{id}"),
            key,
            Some(body),
        )
    };
    let res = patch("user_1", json!({"disabled": true})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);
    assert!(fake.revoked.lock().unwrap().contains(&"sess_1".to_string()));
    let listed: Value = get("/users?q=clara".into()).await.json().await.unwrap();
    assert_eq!(listed["users"][0]["disabled"], true);
    let res = patch("user_1", json!({"disabled": false})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], false);
    expect_error(
        patch("user_1", json!({"role": "admin"})).await,
        StatusCode::NOT_IMPLEMENTED,
        "not_supported_by_backend",
    )
    .await;
    expect_error(
        patch("user_404", json!({"disabled": true})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Creating users is Clerk's business here.
    expect_error(
        call_as(
            &app,
            Method::POST,
            "/api/v1/admin/users",
            key,
            Some(json!({"email": "new@example.com"})),
        )
        .await,
        StatusCode::NOT_IMPLEMENTED,
        "not_supported_by_backend",
    )
    .await;

    // Delete: refused while the user alone owns an org, then allowed with it.
    let delete = |path: &'static str| call_as(&app, Method::DELETE, path, key, None);
    expect_error(
        delete("/api/v1/admin/users/user_1").await,
        StatusCode::CONFLICT,
        "last_owner",
    )
    .await;
    assert_eq!(
        get("/users/user_1".into()).await.status(),
        StatusCode::OK,
        "a refused deletion leaves the upstream user"
    );
    assert_eq!(
        delete("/api/v1/admin/users/user_1?delete_owned_orgs=true")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        get("/users/user_1".into()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        get("/orgs/clara-co".into()).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete("/api/v1/admin/users/user_2").await.status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        call_as(
            &app,
            Method::POST,
            "/api/v1/admin/users/user_3/send-recovery",
            key,
            None,
        )
        .await,
        StatusCode::NOT_IMPLEMENTED,
        "not_supported_by_backend",
    )
    .await;
    let res = call_as(
        &app,
        Method::POST,
        "/api/v1/admin/users/user_3/sign-out",
        key,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Every action is in the audit log, by the service key.
    let actions = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    };
    let clara = actions(audit_events(&app, SERVICE_KEY, "user_id=user_1").await);
    for a in [
        "admin.user.disabled",
        "admin.user.enabled",
        "admin.user.deleted",
    ] {
        assert!(clara.contains(&a.to_string()), "{a} in {clara:?}");
    }
    let deleted = audit_events(&app, SERVICE_KEY, "action=admin.user.deleted").await;
    assert_eq!(deleted.len(), 2);
    assert!(
        deleted
            .iter()
            .all(|e| e["actor_id"].as_str().unwrap().starts_with("service_key:"))
    );
    assert!(
        deleted
            .iter()
            .any(|e| e["detail"]["orgs_deleted"] == json!(["clara-co"]))
    );
    let erin = actions(audit_events(&app, SERVICE_KEY, "user_id=user_3").await);
    assert!(erin.contains(&"admin.user.signed_out".to_string()));
    assert!(
        !erin.contains(&"admin.user.recovery_sent".to_string()),
        "no event for a mail never sent"
    );
    assert!(actions(audit_events(&app, SERVICE_KEY, "action=org.deleted").await).len() == 1);
}

/// The value of cookie `name` set by a response.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (k, value) = pair.split_once('=')?;
            (k.trim() == name).then(|| value.to_string())
        })
}

#[tokio::test]
async fn clerk_admins_reach_the_admin_pages_with_their_session_cookie() {
    let mut users = seed_users();
    let mut boss = clerk_user("user_9", "boss@example.com", 1_700_000_500_000, None);
    boss["public_metadata"] = json!({"role": "admin"});
    users.push(boss);
    let fake = fake_clerk_with(users).await;
    let app = clerk_app(&fake, |_| {}).await;
    // A browser whose cookies the test sets by hand.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |cookie: String, path: &str| {
        let mut req = browser.get(app.url(path));
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        req.send()
    };
    let sign_in = "https://accounts.example.com/sign-in?redirect_url=";
    let location = |res: &reqwest::Response| {
        res.headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };

    // Anonymous: to Clerk's sign-in, asked to come back to the admin page;
    // a signed-in user who is no admin is told so.
    let res = page(String::new(), "/admin/users").await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert!(to.starts_with(sign_in), "{to}");
    assert!(to.contains("%2Fadmin%2Fusers"), "{to}");
    let clara = fake.token(now(), json!({}));
    let res = page(format!("__session={clara}"), "/admin/users")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    expect_error(
        app.get_bearer("/api/v1/admin/users", &clara).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A token that Clerk did not sign is nobody.
    let mut parts: Vec<String> = fake
        .token(now(), json!({"sub": "user_9", "sid": "sess_9"}))
        .split('.')
        .map(str::to_string)
        .collect();
    parts[2] = parts[2].chars().rev().collect();
    let forged = parts.join(".");
    let res = page(format!("__session={forged}"), "/admin/users")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // The admin (`public_metadata.role = admin`) with Clerk's cookie.
    let boss = fake.token(now(), json!({"sub": "user_9", "sid": "sess_9"}));
    let res = page(format!("__session={boss}"), "/admin/users")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let derp_cookie = set_cookie(&res, "derp_session").expect("a page session cookie");
    let html = res.text().await.unwrap();
    assert!(html.contains("clara@example.com"), "{html}");
    assert!(html.contains("boss@example.com"));
    let cookies = format!("__session={boss}; derp_session={derp_cookie}");
    let res = browser
        .get(app.url("/admin/users/user_2"))
        .header("cookie", cookies.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csrf = hidden(&res.text().await.unwrap(), "csrf_token");

    // A form without the CSRF token is refused; with it, user_2 is banned.
    let post = |form: Vec<(&'static str, String)>| {
        browser
            .post(app.url("/admin/users/user_2/disable"))
            .header("cookie", cookies.clone())
            .form(&form)
            .send()
    };
    assert_eq!(
        post(vec![("csrf_token", "forged".into())])
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let res = post(vec![("csrf_token", csrf), ("confirmed", "yes".into())])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/admin/users/user_2");
    // The JSON API takes the admin's session token too.
    let res = app.get_bearer("/api/v1/admin/users/user_2", &boss).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);
}
