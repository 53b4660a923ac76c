//! Cognito's hosted UI against cognito-local 5.3.0, which emulates the
//! authorization code flow (`/oauth2/authorize` login form, `/oauth2/token`
//! with PKCE S256 required). Each test runs its own cognito-local on a free
//! port with its state in a temporary directory. `./test.sh` installs it
//! (`npm ci` in tests/cognito-local) and exports `COGNITO_LOCAL_BIN`; without
//! it these tests fail, never pass unrun (`-- --skip cognito` leaves them out).
//!
//! The browser is a reqwest client with a cookie store that follows no
//! redirect by itself, so every hop is checked.

use crate::cognito::free_port;
use crate::helpers::{self, TestApp, claims, expect_error, hidden, plain_client};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use derp::config::{CognitoConfig, Secret};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EMAIL: &str = "hana@example.com";
const PASSWORD: &str = "Correct-horse-9";
const ORG_SECRET: &str = "an org context master secret of 32+ bytes";
const APP: &str = "https://app.example.com/auth/callback";
const VERIFIER: &str = "the-apps-own-pkce-verifier-of-enough-length-0123456789";

/// A cognito-local process (through tests/peers/cognito-local.sh, which
/// also stops it if this test process dies); stopped on drop.
pub(crate) struct CognitoLocal {
    child: Child,
    pub(crate) base: String,
    _dir: tempfile::TempDir,
}

impl Drop for CognitoLocal {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts cognito-local, or `None` when peers are skipped on purpose.
pub(crate) async fn start_cognito_local() -> Option<CognitoLocal> {
    // Where ./test.sh installs it, when the variable is not set (plain
    // `cargo test` after ./test.sh).
    let installed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/cognito-local/node_modules/.bin/cognito-local"
    );
    let bin = std::env::var_os("COGNITO_LOCAL_BIN").or_else(|| {
        std::path::Path::new(installed)
            .exists()
            .then(|| installed.into())
    });
    let Some(bin) = bin else {
        panic!(
            "COGNITO_LOCAL_BIN is not set: run ./test.sh, which runs `npm ci` in \
             tests/cognito-local (cognito-local 5.3.0) and exports \
             COGNITO_LOCAL_BIN=tests/cognito-local/node_modules/.bin/cognito-local \
             (or leave these tests out on purpose, and see them counted as left out: \
             `cargo test --test integration -- --skip cognito`)"
        );
    };
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/cognito-local.sh");
    let child = Command::new("bash")
        .arg(script)
        .arg(port.to_string())
        .arg(dir.path())
        .env("COGNITO_LOCAL_BIN", &bin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tests/peers/cognito-local.sh");
    let mut cl = CognitoLocal {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let client = plain_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Any HTTP answer means it listens (`/` itself is a 404).
        if client.get(&cl.base).send().await.is_ok() {
            return Some(cl);
        }
        if let Some(status) = cl.child.try_wait().unwrap() {
            panic!("cognito-local ({bin:?}) exited with {status} before answering");
        }
        assert!(
            Instant::now() < deadline,
            "cognito-local did not answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls Cognito's JSON API on cognito-local; panics unless it answers 2xx.
pub(crate) async fn idp(cl: &CognitoLocal, op: &str, body: Value) -> Value {
    let res = plain_client()
        .post(format!("{}/", cl.base))
        .header(
            "X-Amz-Target",
            format!("AWSCognitoIdentityProviderService.{op}"),
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{op}: HTTP {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

struct Setup {
    cl: CognitoLocal,
    app: TestApp,
    pool_id: String,
    client_id: String,
    callback: String,
}

/// cognito-local with a pool, an app client whose callback is derp's, a
/// confirmed user; derp with `[auth.cognito]` pointed at it. `change` may
/// alter derp's Cognito settings.
async fn setup(change: impl FnOnce(&mut CognitoConfig)) -> Option<Setup> {
    let cl = start_cognito_local().await?;
    let derp_port = free_port();
    let callback = format!("http://127.0.0.1:{derp_port}/api/v1/auth/oauth/cognito/callback");
    let pool = idp(&cl, "CreateUserPool", json!({"PoolName": "derp-hosted"})).await;
    let pool_id = pool["UserPool"]["Id"].as_str().unwrap().to_string();
    let client = idp(
        &cl,
        "CreateUserPoolClient",
        json!({
            "UserPoolId": pool_id,
            "ClientName": "derp",
            "GenerateSecret": true,
            "CallbackURLs": [callback, APP],
            "AllowedOAuthFlows": ["code"],
            "AllowedOAuthScopes": ["openid", "email", "profile"],
            "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        }),
    )
    .await;
    let client = &client["UserPoolClient"];
    let client_id = client["ClientId"].as_str().unwrap().to_string();
    let client_secret = client["ClientSecret"].as_str().unwrap().to_string();
    idp(
        &cl,
        "SignUp",
        json!({
            "ClientId": client_id,
            "Username": EMAIL,
            "Password": PASSWORD,
            "UserAttributes": [{"Name": "email", "Value": EMAIL}],
        }),
    )
    .await;
    // CODE=123456 fixes cognito-local's confirmation codes.
    idp(
        &cl,
        "ConfirmSignUp",
        json!({"ClientId": client_id, "Username": EMAIL, "ConfirmationCode": "123456"}),
    )
    .await;

    let mut cognito = CognitoConfig {
        user_pool_id: pool_id.clone(),
        client_id: client_id.clone(),
        client_secret: Some(Secret::new(client_secret)),
        region: "us-east-1".into(),
        endpoint: Some(format!("{}/", cl.base)),
        jwks_url: Some(format!("{}/{pool_id}/.well-known/jwks.json", cl.base)),
        issuer: Some(format!("{}/{pool_id}", cl.base)),
        domain: Some(cl.base.clone()),
        ..Default::default()
    };
    change(&mut cognito);
    let dir = tempfile::tempdir().unwrap();
    let mut config = helpers::base_config(dir.path());
    config.server.bind = format!("127.0.0.1:{derp_port}");
    config.auth.native = None;
    config.auth.cognito = Some(cognito);
    config.auth.org_context_secret = Some(Secret::new(ORG_SECRET));
    config.hosted.allowed_redirect_urls = vec![APP.into()];
    let app = helpers::spawn_config(config, dir).await;
    Some(Setup {
        cl,
        app,
        pool_id,
        client_id,
        callback,
    })
}

fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// derp's `/oauth/cognito/url` for the app (with its state and PKCE).
async fn authorize_url(s: &Setup, b: &Client) -> String {
    let res = b
        .get(s.app.url(&format!(
            "/api/v1/auth/oauth/cognito/url?redirect_to={}&state=app-state&code_challenge={}",
            urlencode(APP),
            s256(VERIFIER)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string()
}

/// At cognito-local: GET the login form, POST the credentials; returns the
/// redirect it answers with (derp's callback URL with `code` and `state`).
async fn log_in_at_cognito(s: &Setup, b: &Client, url: &str) -> String {
    log_in_at_cognito_to(s, b, url, &s.callback).await
}

async fn log_in_at_cognito_to(s: &Setup, b: &Client, url: &str, expect: &str) -> String {
    let form = b.get(url).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK, "{url}");
    let html = form.text().await.unwrap();
    let mut fields: Vec<(String, String)> = [
        "client_id",
        "redirect_uri",
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "state",
    ]
    .iter()
    .map(|n| (n.to_string(), hidden(&html, n)))
    .collect();
    fields.push(("username".into(), EMAIL.into()));
    fields.push(("password".into(), PASSWORD.into()));
    let res = b
        .post(format!("{}/oauth2/authorize", s.cl.base))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let back = location(&res);
    assert!(back.starts_with(expect), "{back}");
    back
}

async fn token_exchange(s: &Setup, code: &str, verifier: &str) -> reqwest::Response {
    s.app
        .post(
            "/api/v1/auth/token",
            json!({
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": APP,
            }),
        )
        .await
}

#[tokio::test]
async fn hosted_ui_sign_in_returns_to_the_app_with_a_code_whose_tokens_work_and_refresh() {
    let Some(s) = setup(|_| {}).await else {
        return;
    };
    // The hosted login page offers the hosted UI.
    let page = s
        .app
        .client
        .get(s.app.url(&format!("/login?redirect_to={}", urlencode(APP))))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("href=\"/oauth/cognito?redirect_to="),
        "no hosted-UI button: {html}"
    );

    let b = browser();
    let url = authorize_url(&s, &b).await;
    assert!(
        url.starts_with(&format!("{}/oauth2/authorize?", s.cl.base)),
        "{url}"
    );
    assert!(url.contains("scope=openid+email+profile"), "{url}");
    assert_eq!(
        param(&url, "client_id").as_deref(),
        Some(s.client_id.as_str())
    );
    assert_eq!(
        param(&url, "redirect_uri").as_deref(),
        Some(s.callback.as_str())
    );
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_ne!(
        param(&url, "code_challenge").as_deref(),
        Some(s256(VERIFIER).as_str()),
        "Cognito gets derp's own PKCE pair, not the app's"
    );
    let callback = log_in_at_cognito(&s, &b, &url).await;

    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let cleared = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("derp_oauth=;"));
    assert!(cleared, "the flow cookie is cleared at the callback");
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("app-state"));
    let code = param(&back, "code").unwrap();

    // The app's backend exchanges derp's code (PKCE checked).
    let res = token_exchange(&s, &code, VERIFIER).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let access = body["tokens"]["access_token"].as_str().unwrap().to_string();
    let refresh = body["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let c = claims(&access);
    assert_eq!(c["token_use"], "access");
    assert_eq!(c["iss"], format!("{}/{}", s.cl.base, s.pool_id));
    assert_eq!(body["tokens"]["expires_at"], c["exp"]);
    assert_eq!(body["user"]["id"], c["sub"]);
    assert_eq!(body["user"]["email"], EMAIL);

    let res = s.app.session(&access).await;
    assert_eq!(res.status(), StatusCode::OK);
    let session: Value = res.json().await.unwrap();
    assert_eq!(session["user_id"], c["sub"]);
    assert_eq!(session["expires_at"], c["exp"]);

    // The code is single use.
    expect_error(
        token_exchange(&s, &code, VERIFIER).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // The refresh token refreshes like a password sign-in's.
    let wrapped: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&refresh).unwrap()).unwrap();
    assert!(wrapped["t"].as_str().is_some_and(|t| !t.is_empty()));
    let res = s.app.refresh(&refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens = res.json::<Value>().await.unwrap()["tokens"].clone();
    let new_access = tokens["access_token"].as_str().unwrap();
    assert_eq!(s.app.session(new_access).await.status(), StatusCode::OK);

    // The same from the hosted pages' button: /oauth/cognito sends the
    // browser to Cognito with the app's return kept in the flow.
    let b = browser();
    let res = b
        .get(s.app.url(&format!(
            "/oauth/cognito?redirect_to={}&state=page-state&code_challenge={}&code_challenge_method=S256",
            urlencode(APP),
            s256(VERIFIER)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let url = location(&res);
    assert!(
        url.starts_with(&format!("{}/oauth2/authorize?", s.cl.base)),
        "{url}"
    );
    let callback = log_in_at_cognito(&s, &b, &url).await;
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = location(&res);
    assert_eq!(param(&back, "state").as_deref(), Some("page-state"));
    let res = token_exchange(&s, &param(&back, "code").unwrap(), VERIFIER).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Without an app to return to, the page refuses to start.
    let res = browser()
        .get(s.app.url("/oauth/cognito"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Apps that run the browser leg themselves: their own PKCE pair, then
    // POST /oauth/cognito/sign-in with the code.
    let own = format!(
        "{}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&state=own&code_challenge={}&code_challenge_method=S256&scope=openid",
        s.cl.base,
        s.client_id,
        urlencode(&s.callback),
        s256(VERIFIER)
    );
    let back = log_in_at_cognito(&s, &browser(), &own).await;
    let cognito_code = param(&back, "code").unwrap();
    let res = s
        .app
        .post(
            "/api/v1/auth/oauth/cognito/sign-in",
            json!({"code": cognito_code, "code_verifier": VERIFIER, "redirect_uri": s.callback}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], EMAIL);
    let access = body["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(s.app.session(access).await.status(), StatusCode::OK);
    // Cognito's code is single use too.
    expect_error(
        s.app
            .post(
                "/api/v1/auth/oauth/cognito/sign-in",
                json!({"code": cognito_code, "code_verifier": VERIFIER, "redirect_uri": s.callback}),
            )
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn hosted_ui_refuses_tampered_state_missing_cookies_replays_and_provider_errors() {
    let Some(s) = setup(|_| {}).await else {
        return;
    };

    // No app to return to: refused before Cognito is involved.
    expect_error(
        s.app
            .client
            .get(s.app.url("/api/v1/auth/oauth/cognito/url"))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    // Tampered state: 400, and the flow is still unspent in this browser.
    let b = browser();
    let url = authorize_url(&s, &b).await;
    let callback = log_in_at_cognito(&s, &b, &url).await;
    let state = param(&callback, "state").unwrap();
    let tampered = callback.replace(&format!("state={state}"), "state=forged");
    assert_ne!(tampered, callback);
    let res = b.get(&tampered).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The right callback in another browser (no flow cookie): 400.
    let res = browser().get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("not started in this browser"),
        "the page says why"
    );

    // The right browser: signed in, back at the app.
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let first = param(&location(&res), "code").unwrap();

    // The same callback again: the flow cookie is gone.
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Cognito's code replayed within a new flow of this browser (the state
    // matches, the code is spent): Cognito refuses it, 401.
    let url = authorize_url(&s, &b).await;
    let new_state = param(&url, "state").unwrap();
    let replay = format!(
        "{}?code={}&state={}",
        s.callback,
        urlencode(&param(&callback, "code").unwrap()),
        urlencode(&new_state)
    );
    let res = b.get(&replay).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The provider reports an error: 400 with its code, nothing exchanged.
    let res = b
        .get(format!(
            "{}?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state={}",
            s.callback,
            urlencode(&new_state)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = res.text().await.unwrap();
    assert!(text.contains("access_denied"), "{text}");
    assert!(!text.contains("<b>no</b>"));

    // derp's code with the wrong verifier: refused, and spent by the attempt.
    expect_error(
        token_exchange(
            &s,
            &first,
            "a-wrong-verifier-that-is-long-enough-0123456789",
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    expect_error(
        token_exchange(&s, &first, VERIFIER).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // An unknown code at the sign-in endpoint.
    expect_error(
        s.app
            .post(
                "/api/v1/auth/oauth/cognito/sign-in",
                json!({"code": "not-a-code", "code_verifier": VERIFIER}),
            )
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // Another provider name is not the hosted UI.
    expect_error(
        s.app
            .client
            .get(s.app.url("/api/v1/auth/oauth/google/url"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "feature_disabled",
    )
    .await;
}

#[tokio::test]
async fn tokens_that_do_not_verify_are_an_upstream_error_and_a_dead_token_endpoint_too() {
    // derp expects another issuer than the one cognito-local signs with.
    let Some(s) = setup(|c| c.issuer = Some("https://cognito-idp.example.com/other".into())).await
    else {
        return;
    };
    let b = browser();
    let url = authorize_url(&s, &b).await;
    let callback = log_in_at_cognito(&s, &b, &url).await;
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert!(res.headers().get("location").is_none());

    // The emulator stops: the code exchange cannot happen, 502.
    let url = authorize_url(&s, &b).await;
    let callback = log_in_at_cognito(&s, &b, &url).await;
    let Setup { cl, app, .. } = s;
    drop(cl);
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    expect_error(
        app.post(
            "/api/v1/auth/oauth/cognito/sign-in",
            json!({"code": "any", "code_verifier": VERIFIER}),
        )
        .await,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
    )
    .await;
}

#[tokio::test]
async fn with_redirect_uri_at_the_app_the_app_posts_cognitos_code_and_derp_supplies_the_verifier() {
    let Some(s) = setup(|c| c.redirect_uri = Some(APP.into())).await else {
        return;
    };
    // No redirect_to needed: Cognito sends the browser to the app itself.
    let b = browser();
    let res = b
        .get(s.app.url("/api/v1/auth/oauth/cognito/url"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let url = res.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(param(&url, "redirect_uri").as_deref(), Some(APP));
    let back = log_in_at_cognito_to(&s, &b, &url, APP).await;
    let (code, state) = (
        param(&back, "code").unwrap(),
        param(&back, "state").unwrap(),
    );

    // Without the browser's flow cookie there is no verifier: Cognito
    // refuses the incomplete exchange (cognito-local keeps the code then).
    expect_error(
        s.app
            .post(
                "/api/v1/auth/oauth/cognito/sign-in",
                json!({"code": code, "state": state}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    // Another state than the flow's, from the browser that started it.
    expect_error(
        b.post(s.app.url("/api/v1/auth/oauth/cognito/sign-in"))
            .json(&json!({"code": code, "state": "forged"}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    // The browser posts the code and state with its cookie: signed in.
    let res = b
        .post(s.app.url("/api/v1/auth/oauth/cognito/sign-in"))
        .json(&json!({"code": code, "state": state}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], EMAIL);
    let access = body["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(s.app.session(access).await.status(), StatusCode::OK);
}
