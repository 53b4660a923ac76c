//! Sign-in with an OpenID provider nobody here wrote (oauth2-mock-server,
//! with Google's checks added by tests/oidc/provider.mjs), over real HTTP.

use crate::helpers::*;
use base64::Engine;
use derp::config::{Config, GoogleOAuthConfig, OidcConfig, Secret};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENT_ID: &str = "derp-client";
const CLIENT_SECRET: &str = "derp-secret";
const APP: &str = "https://app.example.com/auth/callback";

struct Provider {
    child: Child,
    base: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn provider() -> Provider {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
    if !std::path::Path::new(dir)
        .join("node_modules/oauth2-mock-server")
        .exists()
    {
        panic!(
            "the OpenID provider is not installed: run ./test.sh (it runs `npm ci` in tests/oidc)"
        );
    }
    let port = crate::smtp_server::free_port().await;
    let child = Command::new("node")
        .arg(format!("{dir}/provider.mjs"))
        .arg(port.to_string())
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs the provider");
    let p = Provider {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::get(format!("{}/.well-known/openid-configuration", p.base))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the OpenID provider did not start");
}

fn google(base: &str) -> GoogleOAuthConfig {
    GoogleOAuthConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        authorization_url: format!("{base}/authorize"),
        token_url: format!("{base}/token"),
        userinfo_url: format!("{base}/userinfo"),
        jwks_url: format!("{base}/jwks"),
        issuer: base.to_string(),
        ..Default::default()
    }
}

async fn oauth_app(p: &Provider, change: impl FnOnce(&mut Config)) -> TestApp {
    let base = p.base.clone();
    spawn_with(move |c| {
        c.hosted.allowed_redirect_urls = vec![APP.into()];
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.google_oauth = Some(google(&base));
        change(c);
    })
    .await
}

fn hint(v: Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
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

/// Runs the browser leg: derp's URL -> the provider -> back to derp's
/// callback. Returns the callback's response.
async fn browser_leg(
    app: &TestApp,
    b: &Client,
    who: Value,
    tamper_state: bool,
) -> reqwest::Response {
    let res = b
        .get(app.url(&format!(
            "/api/v1/auth/oauth/google/url?redirect_to={}&state=app-state&login_hint={}",
            urlencode(APP),
            hint(who)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let url = res.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let at_provider = b.get(&url).send().await.unwrap();
    assert!(
        at_provider.status().is_redirection(),
        "{}",
        at_provider.status()
    );
    let mut callback = location(&at_provider);
    assert!(callback.starts_with(&app.base), "{callback}");
    if tamper_state {
        callback = callback.replace("state=", "state=x");
    }
    b.get(&callback).send().await.unwrap()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn exchange(app: &TestApp, code: &str) -> Value {
    let res = app
        .post(
            "/api/v1/auth/token",
            json!({"grant_type": "authorization_code", "code": code, "redirect_uri": APP}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn full_sign_in_and_a_returning_user_found_by_subject() {
    let p = provider().await;
    let app = oauth_app(&p, |_| {}).await;
    let b = browser();
    let res = browser_leg(
        &app,
        &b,
        json!({"sub": "g-100", "email": "Gina@Example.com", "email_verified": true}),
        false,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("app-state"));
    let body = exchange(&app, &param(&back, "code").unwrap()).await;
    assert_eq!(body["user"]["email"], "gina@example.com");
    assert!(
        body["user"]["email_confirmed_at"].is_string(),
        "verified by the provider"
    );
    let id = body["user"]["id"].clone();

    // Same subject, another email: still the same user.
    let res = browser_leg(
        &app,
        &browser(),
        json!({"sub": "g-100", "email": "gina.new@example.com", "email_verified": true}),
        false,
    )
    .await;
    let again = exchange(&app, &param(&location(&res), "code").unwrap()).await;
    assert_eq!(again["user"]["id"], id);
}

#[tokio::test]
async fn tampered_state_replayed_code_and_a_flow_from_another_browser_are_refused() {
    let p = provider().await;
    let app = oauth_app(&p, |_| {}).await;
    let b = browser();
    let res = browser_leg(
        &app,
        &b,
        json!({"sub": "t-1", "email": "t@example.com", "email_verified": true}),
        true,
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("state"));

    // A good flow, then its callback URL replayed in a new flow of the same browser.
    let start = b
        .get(app.url(&format!(
            "/api/v1/auth/oauth/google/url?login_hint={}",
            hint(json!({"sub": "t-2", "email": "t2@example.com", "email_verified": true}))
        )))
        .send()
        .await
        .unwrap();
    let url = start.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = location(&b.get(&url).send().await.unwrap());
    let first = b.get(&callback).send().await.unwrap();
    assert_eq!(
        first.status(),
        StatusCode::SEE_OTHER,
        "signed in on the hosted pages"
    );
    assert_eq!(location(&first), "/account");
    let replay = b.get(&callback).send().await.unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::BAD_REQUEST,
        "the flow cookie is gone after use"
    );
    let code = param(&callback, "code").unwrap();
    let start = b
        .get(app.url("/api/v1/auth/oauth/google/url"))
        .send()
        .await
        .unwrap();
    let url = start.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let state = param(&url, "state").unwrap();
    let res = b
        .get(app.url(&format!(
            "/api/v1/auth/oauth/google/callback?code={code}&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the provider refuses a used code"
    );

    // The callback in a browser that did not start the flow.
    let start = b
        .get(app.url("/api/v1/auth/oauth/google/url"))
        .send()
        .await
        .unwrap();
    let url = start.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = location(&b.get(&url).send().await.unwrap());
    let res = browser().get(&callback).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_issuer_or_audience_are_refused() {
    let p = provider().await;
    let app = oauth_app(&p, |_| {}).await;
    for bad in [
        json!({"sub": "n-1", "email": "n@example.com", "email_verified": true, "nonce": "not-the-nonce"}),
        json!({"sub": "n-2", "email": "n@example.com", "email_verified": true, "iss": "https://evil.example.com"}),
        json!({"sub": "n-3", "email": "n@example.com", "email_verified": true, "aud": "another-client"}),
    ] {
        let res = browser_leg(&app, &browser(), bad.clone(), false).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    let users: i64 = app.state.admin.overview().await.unwrap().users;
    assert_eq!(users, 0, "nobody was created");
}

#[tokio::test]
async fn an_unverified_email_is_not_linked_and_a_verified_one_is_with_the_unproven_password_cleared()
 {
    let p = provider().await;
    let app = oauth_app(&p, |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = true
    })
    .await;
    // Pre-hijack: someone signs up with the victim's address (never confirmed).
    app.post(
        "/api/v1/auth/sign-up",
        json!({"email": "victim@example.com", "password": "attacker password"}),
    )
    .await;
    let res = browser_leg(
        &app,
        &browser(),
        json!({"sub": "v-1", "email": "victim@example.com", "email_verified": false}),
        false,
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "an unverified provider email is not linked"
    );
    let res = browser_leg(
        &app,
        &browser(),
        json!({"sub": "v-1", "email": "victim@example.com", "email_verified": true}),
        false,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let body = exchange(&app, &param(&location(&res), "code").unwrap()).await;
    let id = body["user"]["id"].as_str().unwrap().to_string();
    expect_error(
        app.sign_in("victim@example.com", "attacker password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let actions = app
        .state
        .db
        .read(move |c| derp::storage::audit::actions_for_user(c, &id))
        .await
        .unwrap();
    let names: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    assert!(
        names.contains(&"password.cleared") && names.contains(&"oauth.linked"),
        "{names:?}"
    );

    // An unverified email with no account is refused too.
    let res = browser_leg(
        &app,
        &browser(),
        json!({"sub": "v-2", "email": "fresh@example.com", "email_verified": false}),
        false,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn apps_running_the_browser_leg_themselves_sign_in_with_the_code() {
    let p = provider().await;
    let app = oauth_app(&p, |_| {}).await;
    let verifier = "an-app-made-pkce-verifier-that-is-long-enough-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let authorize = format!(
        "{}/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid%20email&state=s&code_challenge={challenge}&code_challenge_method=S256&login_hint={}",
        p.base,
        urlencode(APP),
        hint(json!({"sub": "a-1", "email": "appuser@example.com", "email_verified": true}))
    );
    let res = browser().get(&authorize).send().await.unwrap();
    let code = param(&location(&res), "code").unwrap();
    let res = app
        .post(
            "/api/v1/auth/oauth/google/sign-in",
            json!({"code": code, "code_verifier": verifier, "redirect_uri": APP}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "appuser@example.com");
    assert_eq!(
        app.session(body["tokens"]["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let res = app
        .post(
            "/api/v1/auth/oauth/google/sign-in",
            json!({"code": code, "code_verifier": verifier, "redirect_uri": APP}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

/// The original library's two-step flow against a provider that enforces
/// PKCE (tests/oidc refuses a code whose challenge is not answered): the app
/// asks derp for the URL with its own `state`, the provider returns the
/// browser to the app, and the app passes the code with that `state`.
#[tokio::test]
async fn the_two_step_flow_with_the_apps_state_passes_a_pkce_enforcing_provider() {
    let p = provider().await;
    let app = oauth_app(&p, |c| {
        let g = c
            .auth
            .native
            .as_mut()
            .unwrap()
            .google_oauth
            .as_mut()
            .unwrap();
        g.redirect_uri = Some(APP.into());
    })
    .await;
    // Step 1: the URL, with the app's state in it and derp's PKCE challenge.
    let start = |state: &str, extra: &str, who: Value| {
        let url = app.url(&format!(
            "/api/v1/auth/oauth/google/url?state={state}{extra}&login_hint={}",
            hint(who)
        ));
        let client = app.client.clone();
        async move {
            let res = client.get(url).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body: Value = res.json().await.unwrap();
            let url = body["url"].as_str().unwrap().to_string();
            (url, body["state"].as_str().unwrap().to_string())
        }
    };
    let user = json!({"sub": "two-1", "email": "twostep@example.com", "email_verified": true});
    let (url, state) = start("app-csrf-1", "", user.clone()).await;
    assert_eq!(state, "app-csrf-1");
    assert_eq!(param(&url, "state").as_deref(), Some("app-csrf-1"));
    assert!(param(&url, "code_challenge").is_some(), "{url}");
    assert_eq!(param(&url, "redirect_uri").as_deref(), Some(APP));
    // The browser leg is the app's: the provider sends the browser to it.
    let to_app = |url: String| async move {
        let res = browser().get(&url).send().await.unwrap();
        let back = location(&res);
        assert!(back.starts_with(APP), "{back}");
        (
            param(&back, "code").unwrap(),
            param(&back, "state").unwrap(),
        )
    };
    let (code, back_state) = to_app(url).await;
    assert_eq!(back_state, "app-csrf-1");
    // Step 2: the code and the state; derp finishes with the verifier it kept.
    let res = app
        .post(
            "/api/v1/auth/oauth/google/sign-in",
            json!({"code": code, "state": back_state}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "twostep@example.com");
    // The state was spent with it.
    let res = app
        .post(
            "/api/v1/auth/oauth/google/sign-in",
            json!({"code": "another", "state": "app-csrf-1"}),
        )
        .await;
    let err = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(err["error"]["fields"]["state"].is_string(), "{err}");

    // Without the state, the provider refuses the code: it enforces PKCE.
    let (url, _) = start("app-csrf-2", "", user.clone()).await;
    let (code, _) = to_app(url).await;
    let res = app
        .post("/api/v1/auth/oauth/google/sign-in", json!({"code": code}))
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Or the app brings its own PKCE pair: its challenge goes to the provider.
    let verifier = "the-apps-own-pkce-verifier-for-the-provider-0123456789abc";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let (url, _) = start("app-csrf-3", &format!("&code_challenge={challenge}"), user).await;
    assert_eq!(
        param(&url, "code_challenge").as_deref(),
        Some(challenge.as_str())
    );
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let (code, state) = to_app(url).await;
    let res = app
        .post(
            "/api/v1/auth/oauth/google/sign-in",
            json!({"code": code, "state": state, "code_verifier": verifier}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_provider_that_is_down_is_a_clean_502_and_unknown_providers_are_404() {
    let port = crate::smtp_server::free_port().await;
    let dead = format!("http://127.0.0.1:{port}");
    let app = spawn_with(move |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .google_oauth = Some(google(&dead))
    })
    .await;
    let res = app
        .post(
            "/api/v1/auth/oauth/google/sign-in",
            json!({"code": "whatever"}),
        )
        .await;
    let body = expect_error(res, StatusCode::BAD_GATEWAY, "upstream_error").await;
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no upstream detail leaks"
    );
    let res = app
        .client
        .get(app.url("/api/v1/auth/oauth/gitlab/url"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "feature_disabled").await;
    let res = app
        .client
        .get(app.url(&format!(
            "/api/v1/auth/oauth/google/url?redirect_to={}",
            urlencode("https://evil.example.com/cb")
        )))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_generic_oidc_provider_by_discovery_signs_in_through_the_hosted_pages() {
    let p = provider().await;
    let base = p.base.clone();
    let app = spawn_with(move |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .oidc
            .insert(
                "corp".into(),
                OidcConfig {
                    issuer: base,
                    client_id: CLIENT_ID.into(),
                    client_secret: Some(Secret::new(CLIENT_SECRET)),
                    display_name: Some("Corp SSO".into()),
                    ..Default::default()
                },
            );
    })
    .await;
    let b = browser();
    let login = b
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("Continue with Corp SSO") && login.contains("href=\"/oauth/corp\""));
    let res = b.get(app.url("/oauth/corp")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to_provider = format!(
        "{}&login_hint={}",
        location(&res),
        hint(json!({"sub": "c-1", "email": "corp@example.com", "email_verified": true}))
    );
    let callback = location(&b.get(&to_provider).send().await.unwrap());
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(location(&res), "/account");
    let account = b
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("corp@example.com") && account.contains("Unlink"));
    // The only way in cannot be unlinked.
    let csrf = {
        let m = "name=\"csrf_token\" value=\"";
        let s = account.find(m).unwrap() + m.len();
        account[s..]
            .chars()
            .take_while(|c| *c != '"')
            .collect::<String>()
    };
    let res = b
        .post(app.url("/account/identities/corp/unlink"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("only way to sign in"));
}

/// With a second factor, a provider's sign-in asks for it: the API answers
/// `mfa_required`, the pages' callback goes to `/mfa` with the app's return.
#[tokio::test]
async fn a_provider_sign_in_asks_for_the_second_factor() {
    use derp::clock::Clock;
    let p = provider().await;
    let app = oauth_app(&p, |_| {}).await;
    let who = json!({"sub": "m-1", "email": "mfa@example.com", "email_verified": true});
    let res = browser_leg(&app, &browser(), who.clone(), false).await;
    let first = exchange(&app, &param(&location(&res), "code").unwrap()).await;
    let access = first["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["fed"]));
    let e: Value = app
        .post_bearer("/api/v1/auth/mfa/totp/enroll", access, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let secret = e["secret"].as_str().unwrap();
    let res = app
        .post_bearer(
            "/api/v1/auth/mfa/totp/verify",
            access,
            json!({"factor_id": e["factor_id"], "code": crate::mfa::totp(secret, app.clock.unix())}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // The hosted pages' callback: the second step, keeping the app's return.
    let b = browser();
    let res = browser_leg(&app, &b, who.clone(), false).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let next = location(&res);
    assert!(next.starts_with("/mfa?"), "{next}");
    assert!(next.contains("state=app-state"), "{next}");

    // The app running the browser leg itself: `mfa_required`, no tokens.
    let authorize = format!(
        "{}/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid%20email&state=s&login_hint={}",
        p.base,
        urlencode(APP),
        hint(who)
    );
    let res = browser().get(&authorize).send().await.unwrap();
    let code = param(&location(&res), "code").unwrap();
    let res = app
        .post(
            "/api/v1/auth/oauth/google/sign-in",
            json!({"code": code, "redirect_uri": APP}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body["tokens"].is_null());
    app.advance(30);
    let res = app
        .post(
            "/api/v1/auth/mfa/challenge",
            json!({"mfa_token": body["mfa_token"], "code": crate::mfa::totp(secret, app.clock.unix())}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        claims(body["tokens"]["access_token"].as_str().unwrap())["amr"],
        json!(["fed", "otp", "mfa"])
    );
}
