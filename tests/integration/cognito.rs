//! The Cognito backend against moto 5.2.5 (a real Cognito emulator speaking
//! the same JSON API), each test with its own moto process on a free port.
//! `./test.sh` installs moto into `target/moto-venv` and exports `MOTO_BIN`;
//! without it these tests fail, never pass unrun (leave them out with
//! `cargo test --test integration -- --skip cognito`).

use crate::helpers::{self, TestApp, claims, expect_error, plain_client};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use derp::auth::cognito::api::secret_hash;
use derp::auth::{ConfirmOutcome, RequestMeta};
use derp::config::{CognitoConfig, Config, Secret};
use derp::domain::Email;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub(crate) const PASSWORD: &str = "Correct-horse-9";
pub(crate) const ORG_SECRET: &str = "an org context master secret of 32+ bytes";

/// A moto_server process (through tests/peers/moto.sh, which also stops it
/// if this test process dies); stopped on drop.
pub(crate) struct Moto {
    child: Child,
    base: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts moto, or `None` when peers are skipped on purpose.
pub(crate) async fn start_moto() -> Option<Moto> {
    // Where ./test.sh installs it, when the variable is not set (plain
    // `cargo test` after ./test.sh).
    let installed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/moto-venv/bin/moto_server"
    );
    let bin = std::env::var_os("MOTO_BIN").or_else(|| {
        std::path::Path::new(installed)
            .exists()
            .then(|| installed.into())
    });
    let Some(bin) = bin else {
        panic!(
            "MOTO_BIN is not set: run ./test.sh, which installs moto 5.2.5 into \
             target/moto-venv and exports MOTO_BIN=target/moto-venv/bin/moto_server \
             (or leave these tests out on purpose, and see them counted as left out: \
             `cargo test --test integration -- --skip cognito`)"
        );
    };
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/moto.sh");
    let child = Command::new("bash")
        .arg(script)
        .arg(port.to_string())
        .env("MOTO_BIN", &bin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tests/peers/moto.sh");
    let mut moto = Moto {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = plain_client();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(res) = client.get(format!("{}/moto-api/", moto.base)).send().await
            && res.status() == StatusCode::OK
        {
            return Some(moto);
        }
        if let Some(status) = moto.child.try_wait().unwrap() {
            panic!("moto_server ({bin:?}) exited with {status} before answering");
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer GET /moto-api/ within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls Cognito's JSON API on moto; panics unless it answers 2xx.
pub(crate) async fn idp(moto: &Moto, op: &str, body: Value) -> Value {
    let res = idp_raw(moto, op, body).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{op}: HTTP {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn idp_raw(moto: &Moto, op: &str, body: Value) -> reqwest::Response {
    plain_client()
        .post(format!("{}/", moto.base))
        .header(
            "X-Amz-Target",
            format!("AWSCognitoIdentityProviderService.{op}"),
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

pub(crate) struct Pool {
    pub id: String,
    pub client_id: String,
    pub client_secret: String,
}

async fn create_client(moto: &Moto, pool_id: &str, name: &str) -> (String, String) {
    let c = idp(
        moto,
        "CreateUserPoolClient",
        json!({
            "UserPoolId": pool_id,
            "ClientName": name,
            "GenerateSecret": true,
            "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        }),
    )
    .await;
    let c = &c["UserPoolClient"];
    (
        c["ClientId"].as_str().unwrap().to_string(),
        c["ClientSecret"].as_str().unwrap().to_string(),
    )
}

pub(crate) async fn create_pool(moto: &Moto) -> Pool {
    let pool = idp(moto, "CreateUserPool", json!({"PoolName": "derp-test"})).await;
    let id = pool["UserPool"]["Id"].as_str().unwrap().to_string();
    let (client_id, client_secret) = create_client(moto, &id, "derp").await;
    Pool {
        id,
        client_id,
        client_secret,
    }
}

pub(crate) fn cognito_config(moto: &Moto, pool: &Pool) -> CognitoConfig {
    CognitoConfig {
        user_pool_id: pool.id.clone(),
        client_id: pool.client_id.clone(),
        client_secret: Some(Secret::new(pool.client_secret.clone())),
        region: "us-east-1".into(),
        endpoint: Some(format!("{}/", moto.base)),
        jwks_url: Some(format!("{}/{}/.well-known/jwks.json", moto.base, pool.id)),
        ..Default::default()
    }
}

pub(crate) async fn spawn_cognito(
    cognito: CognitoConfig,
    change: impl FnOnce(&mut Config),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = helpers::base_config(dir.path());
    config.auth.native = None;
    config.auth.cognito = Some(cognito);
    config.auth.org_context_secret = Some(Secret::new(ORG_SECRET));
    change(&mut config);
    helpers::spawn_config(config, dir).await
}

fn meta() -> RequestMeta {
    RequestMeta::default()
}

/// Signs up through derp and confirms with a code (moto accepts any).
pub(crate) async fn signed_up_and_confirmed(app: &TestApp, email: &str) {
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let outcome = app
        .state
        .backend
        .emailed_codes()
        .expect("Cognito mails codes")
        .confirm_code(Email::parse(email).unwrap(), "123456", &meta())
        .await
        .unwrap();
    assert!(matches!(outcome, ConfirmOutcome::Confirmed { .. }));
}

/// Signs in through derp: `(access_token, refresh_token, body)`.
pub(crate) async fn signed_in(
    app: &TestApp,
    email: &str,
    password: &str,
) -> (String, String, Value) {
    let res = app.sign_in(email, password).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let t = &body["tokens"];
    (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
        body,
    )
}

#[tokio::test]
async fn sign_up_confirm_sign_in_session_refresh_and_sign_out() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let app = spawn_cognito(cognito_config(&moto, &pool), |_| {}).await;
    let email = "alice@example.com";

    // Sign-up: Cognito's code is needed; never auto-confirmed.
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(
        first,
        json!({"user": {"email": email}, "tokens": null, "confirmation_required": true})
    );
    let user = idp(
        &moto,
        "AdminGetUser",
        json!({"UserPoolId": pool.id, "Username": email}),
    )
    .await;
    assert_eq!(user["UserStatus"], "UNCONFIRMED");
    expect_error(
        app.sign_in(email, PASSWORD).await,
        StatusCode::FORBIDDEN,
        "email_not_confirmed",
    )
    .await;
    // A taken email gets the identical answer.
    let again = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": email, "password": "Other-password-1"}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.json::<Value>().await.unwrap(), first);

    let confirmed = app
        .state
        .backend
        .emailed_codes()
        .expect("Cognito mails codes")
        .confirm_code(Email::parse(email).unwrap(), "123456", &meta())
        .await
        .unwrap();
    assert!(matches!(confirmed, ConfirmOutcome::Confirmed { email: e } if e.as_str() == email));

    // Sign-in: Cognito's own access token, expires_at = its exp.
    let (access, refresh, body) = signed_in(&app, email, PASSWORD).await;
    let c = claims(&access);
    assert_eq!(c["token_use"], "access");
    assert_eq!(c["client_id"], pool.client_id.as_str());
    assert_eq!(body["tokens"]["expires_at"], c["exp"]);
    assert_eq!(body["tokens"]["token_type"], "bearer");
    let expires_in = body["tokens"]["expires_in"].as_i64().unwrap();
    assert!((3590..=3600).contains(&expires_in), "{expires_in}");
    assert_eq!(body["user"]["id"], c["sub"]);
    assert_eq!(body["user"]["email"], email);
    // The refresh token carries the username for REFRESH_TOKEN_AUTH.
    let wrapped: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&refresh).unwrap()).unwrap();
    assert_eq!(wrapped["u"], email);
    assert!(wrapped["t"].as_str().is_some_and(|t| !t.is_empty()));

    let res = app.session(&access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let session: Value = res.json().await.unwrap();
    assert_eq!(session["user_id"], c["sub"]);
    assert_eq!(session["email"], email);
    assert_eq!(session["role"], "default");
    assert_eq!(session["expires_at"], c["exp"]);
    assert_eq!(session["session_id"], c["origin_jti"]);
    assert_eq!(session["org_id"], Value::Null);

    let res = app.get_bearer("/api/v1/auth/user", &access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let user: Value = res.json().await.unwrap();
    assert_eq!(
        (user["id"].clone(), user["email"].clone()),
        (c["sub"].clone(), json!(email))
    );

    // Refresh: moto checks SECRET_HASH on REFRESH_TOKEN_AUTH, over the username.
    let res = app.refresh(&refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens = res.json::<Value>().await.unwrap()["tokens"].clone();
    let new_access = tokens["access_token"].as_str().unwrap().to_string();
    assert_ne!(new_access, access);
    assert_eq!(
        tokens["refresh_token"],
        refresh.as_str(),
        "moto does not rotate"
    );
    assert_eq!(tokens["expires_at"], claims(&new_access)["exp"]);
    assert_eq!(app.session(&new_access).await.status(), StatusCode::OK);
    // The same Cognito refresh token under another username: wrong SECRET_HASH.
    let forged = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({"u": "mallory@example.com", "t": wrapped["t"]})).unwrap(),
    );
    expect_error(
        app.refresh(&forged).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    expect_error(
        app.refresh("junk").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // Cognito has no session list, and no passkeys.
    expect_error(
        app.get_bearer("/api/v1/auth/sessions", &new_access).await,
        StatusCode::NOT_IMPLEMENTED,
        "not_supported_by_backend",
    )
    .await;
    expect_error(
        app.post("/api/v1/auth/passkeys/sign-in/start", json!({}))
            .await,
        StatusCode::NOT_IMPLEMENTED,
        "not_supported_by_backend",
    )
    .await;
    expect_error(
        app.post_bearer(
            "/api/v1/auth/passkeys/register/start",
            &new_access,
            json!({}),
        )
        .await,
        StatusCode::NOT_IMPLEMENTED,
        "not_supported_by_backend",
    )
    .await;
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, json!({"keys": []}));

    // Password change (ChangePassword) needs the current password.
    expect_error(
        app.client
            .patch(app.url("/api/v1/auth/user"))
            .bearer_auth(&new_access)
            .json(&json!({"password": "Brand-new-pass-2"}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let res = app
        .client
        .patch(app.url("/api/v1/auth/user"))
        .bearer_auth(&new_access)
        .json(&json!({"password": "Brand-new-pass-2", "current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, _, _) = signed_in(&app, email, "Brand-new-pass-2").await;

    // Recovery: ForgotPassword answers 202 for known and unknown emails;
    // the code (moto accepts any) resets and signs in.
    for who in [email, "nobody@example.com"] {
        let res = app
            .post("/api/v1/auth/password/recover", json!({"email": who}))
            .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{who}");
    }
    let outcome = app
        .state
        .backend
        .emailed_codes()
        .expect("Cognito mails codes")
        .reset_password_code(
            Email::parse(email).unwrap(),
            "654321",
            "Reset-pass-word-3".into(),
            &meta(),
        )
        .await
        .unwrap()
        .session()
        .unwrap();
    assert_eq!(outcome.user.email, email);
    let (access, refresh, _) = signed_in(&app, email, "Reset-pass-word-3").await;

    // Sign-out: GlobalSignOut; this derp refuses the tokens at once, and
    // Cognito refuses the refresh token.
    let res = app
        .post_bearer("/api/v1/auth/sign-out", &access, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.session(&access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        app.refresh(&refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // Signing in again works.
    let (access, _, _) = signed_in(&app, email, "Reset-pass-word-3").await;
    assert_eq!(app.session(&access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_sign_out_is_remembered_across_a_restart() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = helpers::base_config(dir.path());
    config.auth.native = None;
    config.auth.cognito = Some(cognito_config(&moto, &pool));
    config.auth.org_context_secret = Some(Secret::new(ORG_SECRET));
    let first = helpers::spawn_config(config.clone(), tempfile::tempdir().unwrap()).await;
    signed_up_and_confirmed(&first, "bob@example.com").await;
    signed_up_and_confirmed(&first, "carol@example.com").await;
    let (old, _, _) = signed_in(&first, "bob@example.com", PASSWORD).await;
    let (other, _, _) = signed_in(&first, "carol@example.com", PASSWORD).await;
    let res = first
        .post_bearer("/api/v1/auth/sign-out", &old, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_error(
        first.session(&old).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    first.handle.stop().await;

    // The same database after a restart: the signed-out token, still
    // within its life and still signed by the pool, stays refused.
    let second = helpers::spawn_config(config, tempfile::tempdir().unwrap()).await;
    expect_error(
        second.session(&old).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // Other users, and the user's own later sign-ins, are not refused.
    assert_eq!(second.session(&other).await.status(), StatusCode::OK);
    let (fresh, _, _) = signed_in(&second, "bob@example.com", PASSWORD).await;
    assert_eq!(second.session(&fresh).await.status(), StatusCode::OK);
    // Kept in SQLite: the user's sign-out and the session's.
    let kinds: Vec<String> = second
        .state
        .db
        .read(|conn| -> Result<_, derp::storage::StorageError> {
            let mut stmt = conn.prepare("SELECT kind FROM upstream_sign_outs ORDER BY kind")?;
            let rows = stmt.query_map((), |r| r.get(0))?;
            rows.collect::<Result<Vec<String>, _>>()
        })
        .await
        .unwrap();
    assert_eq!(kinds, ["session", "user"]);
}

#[tokio::test]
async fn sign_in_failures_are_uniform_and_challenges_are_clear() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let app = spawn_cognito(cognito_config(&moto, &pool), |_| {}).await;
    signed_up_and_confirmed(&app, "bob@example.com").await;

    let wrong = expect_error(
        app.sign_in("bob@example.com", "Wrong-password-1").await,
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

    // Signed up, never confirmed: only with the right password.
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "carol@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    expect_error(
        app.sign_in("carol@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "email_not_confirmed",
    )
    .await;

    // An admin-created user must choose a password: a challenge derp
    // cannot complete is a clear 403, not a crash.
    idp(
        &moto,
        "AdminCreateUser",
        json!({
            "UserPoolId": pool.id,
            "Username": "dave@example.com",
            "TemporaryPassword": "Temp-pass-word-1",
            "MessageAction": "SUPPRESS",
        }),
    )
    .await;
    let body = expect_error(
        app.sign_in("dave@example.com", "Temp-pass-word-1").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("NEW_PASSWORD_REQUIRED"), "{message}");
    assert!(message.contains("not support"), "{message}");
}

/// A JWKS server that counts its requests and can be taken down.
struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl JwksServer {
    fn start(body: String) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((mut sock, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                sock.set_nonblocking(false).unwrap();
                let mut seen = Vec::new();
                let mut buf = [0u8; 2048];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    sock,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url, hits, stop }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A JWT with `header` and `payload`, signed with garbage.
fn forged(header: Value, payload: &Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(b"not a signature")
    )
}

/// InitiateAuth straight at moto: the full AuthenticationResult.
async fn moto_tokens(moto: &Moto, client_id: &str, secret: &str, email: &str) -> Value {
    let answer = idp(
        moto,
        "InitiateAuth",
        json!({
            "AuthFlow": "USER_PASSWORD_AUTH",
            "ClientId": client_id,
            "AuthParameters": {
                "USERNAME": email,
                "PASSWORD": PASSWORD,
                "SECRET_HASH": secret_hash(secret, email, client_id),
            },
        }),
    )
    .await;
    answer["AuthenticationResult"].clone()
}

#[tokio::test]
async fn access_tokens_are_verified_locally_with_cached_keys() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let keys = reqwest::get(format!("{}/{}/.well-known/jwks.json", moto.base, pool.id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks = JwksServer::start(keys);
    let mut cognito = cognito_config(&moto, &pool);
    cognito.jwks_url = Some(jwks.url.clone());
    let app = spawn_cognito(cognito, |_| {}).await;
    let email = "erin@example.com";
    signed_up_and_confirmed(&app, email).await;
    let (access, _, _) = signed_in(&app, email, PASSWORD).await;
    assert_eq!(
        jwks.hits(),
        1,
        "the keys are fetched once, at the first token"
    );
    for _ in 0..5 {
        assert_eq!(app.session(&access).await.status(), StatusCode::OK);
    }
    assert_eq!(jwks.hits(), 1, "no fetch per request");

    // An ID token (token_use=id, aud instead of client_id) is refused.
    let direct = moto_tokens(&moto, &pool.client_id, &pool.client_secret, email).await;
    let id_token = direct["IdToken"].as_str().unwrap();
    assert_eq!(claims(id_token)["token_use"], "id");
    expect_error(
        app.session(id_token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // moto's own access token for our client verifies.
    let direct_access = direct["AccessToken"].as_str().unwrap();
    assert_eq!(app.session(direct_access).await.status(), StatusCode::OK);

    // Another app client of the same pool: client_id differs.
    let (other_id, other_secret) = create_client(&moto, &pool.id, "other").await;
    let other = moto_tokens(&moto, &other_id, &other_secret, email).await;
    let other_access = other["AccessToken"].as_str().unwrap();
    assert_eq!(claims(other_access)["client_id"], other_id.as_str());
    expect_error(
        app.session(other_access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Another pool on the same emulator (same signing key): iss and client differ.
    let pool2 = create_pool(&moto).await;
    let res = idp_raw(
        &moto,
        "SignUp",
        json!({
            "ClientId": pool2.client_id,
            "Username": email,
            "Password": PASSWORD,
            "SecretHash": secret_hash(&pool2.client_secret, email, &pool2.client_id),
        }),
    )
    .await;
    assert!(res.status().is_success());
    idp(
        &moto,
        "AdminConfirmSignUp",
        json!({"UserPoolId": pool2.id, "Username": email}),
    )
    .await;
    let foreign = moto_tokens(&moto, &pool2.client_id, &pool2.client_secret, email).await;
    let foreign_access = foreign["AccessToken"].as_str().unwrap();
    expect_error(
        app.session(foreign_access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // A derp expecting another issuer refuses the same valid token.
    let mut elsewhere = cognito_config(&moto, &pool);
    elsewhere.jwks_url = Some(jwks.url.clone());
    elsewhere.issuer = Some("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other".into());
    let other_app = spawn_cognito(elsewhere, |_| {}).await;
    expect_error(
        other_app.session(&access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    other_app.handle.stop().await;
    let fetched = jwks.hits();

    // Tampered: a changed payload under the original signature.
    let mut parts: Vec<String> = access.split('.').map(str::to_string).collect();
    let mut payload = claims(&access);
    payload["sub"] = json!("someone-else");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    expect_error(
        app.session(&parts.join(".")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let unsigned = forged(json!({"alg": "none", "kid": "dummy"}), &claims(&access));
    expect_error(
        app.session(&unsigned).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let hs = forged(json!({"alg": "HS256", "kid": "dummy"}), &claims(&access));
    expect_error(
        app.session(&hs).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(jwks.hits(), fetched, "none of these needed the JWKS again");

    // Unknown kids: at most one refetch a minute, whatever they say.
    let unknown = forged(json!({"alg": "RS256", "kid": "rotated?"}), &claims(&access));
    for round in 1..=2 {
        app.advance(61);
        for _ in 0..5 {
            expect_error(
                app.session(&unknown).await,
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
            )
            .await;
        }
        assert_eq!(
            jwks.hits(),
            fetched + round,
            "one refetch a minute, then none"
        );
    }
    assert_eq!(app.session(&access).await.status(), StatusCode::OK);

    // Expiry is checked against derp's clock.
    app.advance(3600);
    expect_error(
        app.session(&access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    app.advance(-3600);

    // No network call per request: moto and the JWKS are gone, the
    // cached keys still verify.
    drop(jwks);
    drop(moto);
    for _ in 0..3 {
        assert_eq!(app.session(&access).await.status(), StatusCode::OK);
    }
    // ... while calls that need Cognito fail cleanly, without its body.
    let body = expect_error(
        app.sign_in(email, PASSWORD).await,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
    )
    .await;
    assert_eq!(body["error"]["message"], "the upstream service failed");
}

/// `GET /session` with `X-Org-Context`, at the backend (the extractor
/// passes the header once it is wired).
async fn with_org(app: &TestApp, token: String, ctx: Option<String>) -> derp::auth::SessionInfo {
    app.state
        .backend
        .authenticate_with_org(&token, ctx.as_deref())
        .await
        .unwrap()
}

#[tokio::test]
async fn org_context_is_signed_bound_and_expires() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let app = spawn_cognito(cognito_config(&moto, &pool), |c| {
        c.auth.org_context_expire_minutes = Some(10);
    })
    .await;
    signed_up_and_confirmed(&app, "frank@example.com").await;
    signed_up_and_confirmed(&app, "grace@example.com").await;
    let (frank, frank_refresh, _) = signed_in(&app, "frank@example.com", PASSWORD).await;
    let (grace, _, _) = signed_in(&app, "grace@example.com", PASSWORD).await;

    // Orgs live in SQLite, keyed by the Cognito sub.
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &frank,
            json!({"name": "Acme", "slug": "acme"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let org: Value = res.json().await.unwrap();
    let org_id = org["id"].as_str().unwrap().to_string();

    let res = app
        .post_bearer("/api/v1/auth/active-org", &frank, json!({"org_id": "acme"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens = res.json::<Value>().await.unwrap()["tokens"].clone();
    let ctx = tokens["access_token"].as_str().unwrap().to_string();
    assert!(ctx.starts_with("oc1."), "{ctx}");
    assert_eq!(tokens["expires_in"], 600);
    assert!(!ctx.contains(&pool.client_secret));

    let with = |token: String, ctx: Option<String>| with_org(&app, token, ctx);
    let info = with(frank.clone(), Some(ctx.clone())).await;
    assert_eq!(info.org_id.as_deref(), Some(org_id.as_str()));
    assert_eq!(info.org_role.as_deref(), Some("owner"));
    let plain = app.state.backend.authenticate(&frank).await.unwrap();
    assert_eq!(plain.org_id, None, "authenticate alone ignores the context");

    // Bound to the login (origin_jti), so it survives a refresh ...
    let res = app.refresh(&frank_refresh).await;
    let refreshed = res.json::<Value>().await.unwrap()["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let info = with(refreshed.clone(), Some(ctx.clone())).await;
    assert_eq!(info.org_id.as_deref(), Some(org_id.as_str()));
    // ... but not to another sign-in of the same user, nor to another user.
    let (frank_again, _, _) = signed_in(&app, "frank@example.com", PASSWORD).await;
    assert_eq!(with(frank_again, Some(ctx.clone())).await.org_id, None);
    assert_eq!(with(grace.clone(), Some(ctx.clone())).await.org_id, None);

    // Tampered values are ignored (the session itself stays valid).
    let (signed, tag) = ctx.rsplit_once('.').unwrap();
    let (version, payload) = signed.split_once('.').unwrap();
    let mut p: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    p["org_role"] = json!("admin");
    let tampered = format!("{version}.{}.{tag}", URL_SAFE_NO_PAD.encode(p.to_string()));
    let info = with(frank.clone(), Some(tampered)).await;
    assert_eq!((info.org_id, info.org_role), (None, None));
    assert_eq!(
        with(frank.clone(), Some("oc1.e30.AAAA".into()))
            .await
            .org_id,
        None
    );

    // A non-member cannot get a context for the org.
    expect_error(
        app.post_bearer("/api/v1/auth/active-org", &grace, json!({"org_id": "acme"}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // `null` clears: an empty value.
    let res = app
        .post_bearer("/api/v1/auth/active-org", &frank, json!({"org_id": null}))
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["tokens"]["access_token"],
        ""
    );

    // Expired (10 minutes here) while the access token still lives.
    app.advance(601);
    let info = with(frank.clone(), Some(ctx)).await;
    assert_eq!(info.org_id, None);
    assert_eq!(info.user_id, claims(&frank)["sub"].as_str().unwrap());
}

#[tokio::test]
async fn without_an_org_context_secret_derp_generates_one_and_keeps_it() {
    // `derp validate-config` takes the original's Cognito block as written ...
    let toml = "[auth.cognito]\nuser_pool_id = \"us-east-1_abc\"\nclient_id = \"c\"\n";
    let config = Config::from_toml(toml).unwrap();
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.contains("org_context_secret")),
        "{:?}",
        config.warnings()
    );
    // ... a configured secret is still checked ...
    let short = format!("{toml}[auth]\norg_context_secret = \"short\"\n");
    let err = Config::from_toml(&short).unwrap_err().to_string();
    assert!(err.contains("32 bytes"), "{err}");
    let ok = format!("{toml}[auth]\norg_context_secret = \"{ORG_SECRET}\"\n");
    assert!(Config::from_toml(&ok).unwrap().warnings().is_empty());
    let bad_url =
        format!("{toml}endpoint = \"ftp://x\"\n[auth]\norg_context_secret = \"{ORG_SECRET}\"\n");
    let err = Config::from_toml(&bad_url).unwrap_err().to_string();
    assert!(err.contains("auth.cognito.endpoint"), "{err}");

    // ... and the server starts, with a secret it made and keeps in data_dir.
    let dir = tempfile::tempdir().unwrap();
    let mut config = helpers::base_config(dir.path());
    config.auth.native = None;
    config.auth.cognito = Some(CognitoConfig {
        user_pool_id: "us-east-1_abc".into(),
        client_id: "c".into(),
        region: "us-east-1".into(),
        // Nothing listens on port 1: starting needs no user pool.
        endpoint: Some("http://127.0.0.1:1/".into()),
        jwks_url: Some("http://127.0.0.1:1/jwks.json".into()),
        ..Default::default()
    });
    let app = derp::startup::Application::build(config.clone(), Default::default())
        .await
        .expect("starts without org_context_secret");
    drop(app);
    let path = config.server.data_dir.join("org_context_secret");
    let kept = std::fs::read_to_string(&path).unwrap();
    assert_eq!(kept.len(), 64, "32 random bytes, hex");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let app = derp::startup::Application::build(config, Default::default())
        .await
        .expect("starts again");
    drop(app);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        kept,
        "the next start keeps it"
    );
}

#[tokio::test]
async fn an_unreachable_user_pool_is_a_502_without_details() {
    let mut cognito = CognitoConfig {
        user_pool_id: "us-east-1_abc".into(),
        client_id: "client".into(),
        client_secret: Some(Secret::new("s3cr3t-client-secret")),
        region: "us-east-1".into(),
        ..Default::default()
    };
    // Nothing listens on port 1.
    cognito.endpoint = Some("http://127.0.0.1:1/".into());
    cognito.jwks_url = Some("http://127.0.0.1:1/jwks.json".into());
    let app = spawn_cognito(cognito, |_| {}).await;
    let body = expect_error(
        app.sign_in("ivan@example.com", PASSWORD).await,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
    )
    .await;
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    let token = forged(json!({"alg": "RS256", "kid": "k"}), &json!({"sub": "x"}));
    expect_error(
        app.session(&token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        app.post(
            "/api/v1/auth/magic-link/verify",
            json!({"token": "whatever"}),
        )
        .await,
        StatusCode::NOT_IMPLEMENTED,
        "not_supported_by_backend",
    )
    .await;
}
