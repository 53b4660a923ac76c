//! Sign-in with GitHub against a local fake of GitHub that answers as
//! GitHub's documentation says: the authorize page sends the browser back
//! with `code` and `state`; the token endpoint takes `client_id` and
//! `client_secret` as parameters, answers form-encoded unless asked for
//! JSON, and answers a bad or used code with `200 {"error":
//! "bad_verification_code"}`; `/user` and `/user/emails` need a bearer token
//! and a User-Agent. (GitHub itself cannot be reached from the tests.)

use crate::helpers::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use derp::config::{Config, GitHubOAuthConfig, Secret};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const CLIENT_ID: &str = "Iv1.derp-test";
const CLIENT_SECRET: &str = "github-test-secret";
const APP: &str = "https://app.example.com/auth/callback";

/// Who signs in at the fake's authorize page next: `/user` and `/user/emails`.
#[derive(Clone)]
struct Account {
    user: Value,
    emails: Value,
}

/// A code GitHub issued: who, for which redirect URI, with which PKCE challenge.
type Issued = (Account, String, Option<String>);

#[derive(Default)]
struct Fake {
    next: Mutex<Option<Account>>,
    /// Codes not yet exchanged: the account, the redirect URI and the PKCE challenge.
    codes: Mutex<HashMap<String, Issued>>,
    tokens: Mutex<HashMap<String, Account>>,
    /// Every API request's headers that GitHub requires, as seen.
    api_headers: Mutex<Vec<(String, String)>>,
}

struct FakeGitHub {
    base: String,
    fake: Arc<Fake>,
    _server: actix_web::dev::ServerHandle,
}

impl FakeGitHub {
    fn next(&self, id: u64, login: &str, emails: Value) {
        *self.fake.next.lock().unwrap() = Some(Account {
            user: json!({
                "login": login, "id": id, "name": login, "email": null,
                "avatar_url": format!("https://avatars.example.com/{id}"),
            }),
            emails,
        });
    }
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

async fn authorize(fake: web::Data<Fake>, q: web::Query<HashMap<String, String>>) -> HttpResponse {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return HttpResponse::NotFound().body("unknown client");
    }
    let Some(account) = fake.next.lock().unwrap().clone() else {
        return HttpResponse::BadRequest().body("no account to sign in");
    };
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let code = random();
    let challenge = q.get("code_challenge").cloned();
    if challenge.is_some() && q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return HttpResponse::BadRequest().body("code_challenge_method");
    }
    fake.codes
        .lock()
        .unwrap()
        .insert(code.clone(), (account, redirect.clone(), challenge));
    let mut back = url::Url::parse(&redirect).unwrap();
    back.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = q.get("state") {
        back.query_pairs_mut().append_pair("state", state);
    }
    HttpResponse::Found()
        .insert_header(("location", back.to_string()))
        .finish()
}

/// GitHub's token answer: JSON when asked for, else form-encoded (also for errors).
fn token_answer(req: &HttpRequest, fields: &[(&str, &str)]) -> HttpResponse {
    let json = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if json {
        let map: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        HttpResponse::Ok().json(map)
    } else {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            s.append_pair(k, v);
        }
        HttpResponse::Ok()
            .content_type("application/x-www-form-urlencoded; charset=utf-8")
            .body(s.finish())
    }
}

async fn access_token(
    req: HttpRequest,
    fake: web::Data<Fake>,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let bad_code = [
        ("error", "bad_verification_code"),
        (
            "error_description",
            "The code passed is incorrect or expired.",
        ),
        (
            "error_uri",
            "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
        ),
    ];
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return token_answer(
            &req,
            &[
                ("error", "incorrect_client_credentials"),
                (
                    "error_description",
                    "The client_id and/or client_secret passed are incorrect.",
                ),
            ],
        );
    }
    // A code is good once.
    let Some((account, redirect, challenge)) = form
        .get("code")
        .and_then(|c| fake.codes.lock().unwrap().remove(c))
    else {
        return token_answer(&req, &bad_code);
    };
    if form.get("redirect_uri").is_some_and(|r| *r != redirect) {
        return token_answer(&req, &[("error", "redirect_uri_mismatch")]);
    }
    if let Some(challenge) = challenge
        && form.get("code_verifier").map(|v| s256(v)) != Some(challenge)
    {
        return token_answer(&req, &bad_code);
    }
    let token = format!("gho_{}", random());
    fake.tokens.lock().unwrap().insert(token.clone(), account);
    token_answer(
        &req,
        &[
            ("access_token", &token),
            ("scope", "user:email"),
            ("token_type", "bearer"),
        ],
    )
}

/// The account behind the request's bearer token, or GitHub's 401/403.
fn api_account(req: &HttpRequest, fake: &Fake) -> Result<Account, Box<HttpResponse>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let Some(agent) = header("user-agent") else {
        return Err(Box::new(HttpResponse::Forbidden().body(
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
        )));
    };
    {
        let mut seen = fake.api_headers.lock().unwrap();
        seen.push(("user-agent".into(), agent));
        for name in ["accept", "x-github-api-version"] {
            seen.push((name.into(), header(name).unwrap_or_default()));
        }
    }
    header("authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
                .map(str::to_string)
        })
        .and_then(|t| fake.tokens.lock().unwrap().get(&t).cloned())
        .ok_or_else(|| {
            Box::new(HttpResponse::Unauthorized().json(json!({
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401",
            })))
        })
}

async fn fake_github() -> FakeGitHub {
    let fake = Arc::new(Fake::default());
    let data = web::Data::from(fake.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/login/oauth/authorize", web::get().to(authorize))
            .route("/login/oauth/access_token", web::post().to(access_token))
            .route(
                "/api/user",
                web::get().to(|req: HttpRequest, fake: web::Data<Fake>| async move {
                    match api_account(&req, &fake) {
                        Ok(a) => HttpResponse::Ok().json(a.user),
                        Err(res) => *res,
                    }
                }),
            )
            .route(
                "/api/user/emails",
                web::get().to(|req: HttpRequest, fake: web::Data<Fake>| async move {
                    match api_account(&req, &fake) {
                        Ok(a) => HttpResponse::Ok().json(a.emails),
                        Err(res) => *res,
                    }
                }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    FakeGitHub {
        base: format!("http://127.0.0.1:{port}"),
        fake,
        _server: handle,
    }
}

fn github(base: &str) -> GitHubOAuthConfig {
    GitHubOAuthConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        authorization_url: format!("{base}/login/oauth/authorize"),
        token_url: format!("{base}/login/oauth/access_token"),
        api_url: format!("{base}/api"),
        ..Default::default()
    }
}

async fn github_app(gh: &FakeGitHub, change: impl FnOnce(&mut Config)) -> TestApp {
    let base = gh.base.clone();
    spawn_with(move |c| {
        c.hosted.allowed_redirect_urls = vec![APP.into()];
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.github_oauth = Some(github(&base));
        change(c);
    })
    .await
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

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn emails(list: &[(&str, bool, bool)]) -> Value {
    list.iter()
        .map(|(email, primary, verified)| {
            json!({"email": email, "primary": primary, "verified": verified,
                   "visibility": if *primary { json!("public") } else { Value::Null }})
        })
        .collect()
}

/// derp's URL -> GitHub's authorize page -> derp's callback; returns the
/// callback's answer.
async fn browser_leg(app: &TestApp, b: &Client, tamper_state: bool) -> reqwest::Response {
    let res = b
        .get(app.url(&format!(
            "/api/v1/auth/oauth/github/url?redirect_to={}&state=app-state",
            urlencode(APP)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let url = res.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let at_github = b.get(&url).send().await.unwrap();
    assert_eq!(at_github.status(), StatusCode::FOUND);
    let mut callback = location(&at_github);
    assert!(
        callback.starts_with(&app.url("/api/v1/auth/oauth/github/callback")),
        "{callback}"
    );
    if tamper_state {
        callback = callback.replace("state=", "state=x");
    }
    b.get(&callback).send().await.unwrap()
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
async fn the_fake_answers_the_token_endpoint_form_encoded_unless_asked_for_json() {
    let gh = fake_github().await;
    let c = plain_client();
    let url = format!("{}/login/oauth/access_token", gh.base);
    let form = [
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("code", "nope"),
    ];
    let res = c.post(&url).form(&form).send().await.unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .starts_with("error=bad_verification_code")
    );
    let res = c
        .post(&url)
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "bad_verification_code"
    );
}

#[tokio::test]
async fn sign_in_with_the_verified_primary_email_and_a_returning_user_found_by_id() {
    let gh = fake_github().await;
    let app = github_app(&gh, |_| {}).await;

    // The login page offers GitHub.
    let page = app.client.get(app.url("/login")).send().await.unwrap();
    assert!(
        page.text().await.unwrap().contains("Continue with GitHub"),
        "a GitHub button"
    );

    gh.next(
        4242,
        "octocat",
        emails(&[
            ("old@example.com", false, true),
            ("Octo.Cat@Example.com", true, true),
        ]),
    );
    let res = browser_leg(&app, &browser(), false).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("app-state"));
    let body = exchange(&app, &param(&back, "code").unwrap()).await;
    assert_eq!(body["user"]["email"], "octo.cat@example.com", "the primary");
    assert!(body["user"]["email_confirmed_at"].is_string());
    let id = body["user"]["id"].clone();

    // derp spoke GitHub's API as documented.
    let seen = gh.fake.api_headers.lock().unwrap().clone();
    assert!(seen.contains(&("accept".into(), "application/vnd.github+json".into())));
    assert!(seen.contains(&("x-github-api-version".into(), "2022-11-28".into())));
    assert!(
        seen.iter()
            .any(|(k, v)| k == "user-agent" && v.starts_with("derp/"))
    );

    // The same GitHub id with another primary address: the same user.
    gh.next(
        4242,
        "octocat",
        emails(&[("renamed@example.com", true, true)]),
    );
    let res = browser_leg(&app, &browser(), false).await;
    let again = exchange(&app, &param(&location(&res), "code").unwrap()).await;
    assert_eq!(again["user"]["id"], id);

    let access = again["tokens"]["access_token"].as_str().unwrap();
    let user: Value = app
        .get_bearer("/api/v1/auth/user", access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["id"], id);
}

#[tokio::test]
async fn an_unverified_primary_or_no_primary_is_refused_even_with_a_verified_secondary() {
    let gh = fake_github().await;
    let app = github_app(&gh, |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = true;
    })
    .await;
    // Pre-hijack attempt: an unconfirmed password account for the address.
    app.post(
        "/api/v1/auth/sign-up",
        json!({"email": "victim@example.com", "password": "attacker password"}),
    )
    .await;
    for (id, list) in [
        // The primary is the victim's, but GitHub has not verified it.
        (
            1,
            emails(&[
                ("victim@example.com", true, false),
                ("me@example.com", false, true),
            ]),
        ),
        // No primary at all (only verified secondaries).
        (2, emails(&[("victim@example.com", false, true)])),
        // No address at all.
        (3, json!([])),
    ] {
        gh.next(id, "mallory", list.clone());
        let res = browser_leg(&app, &browser(), false).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{list}");
    }
    assert_eq!(
        app.state.admin.overview().await.unwrap().users,
        1,
        "only the password account exists"
    );
    // The API sign-in (GitHub returns to the app) refuses the same way,
    // naming the reason.
    let app = github_app(&gh, |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .github_oauth
            .as_mut()
            .unwrap()
            .redirect_uri = Some(APP.into());
    })
    .await;
    gh.next(1, "mallory", emails(&[("victim@example.com", true, false)]));
    let (verifier, challenge) = ("v".repeat(50), s256(&"v".repeat(50)));
    let code = app_leg(&app, &gh, Some(&challenge), "st-1").await;
    let res = app
        .post(
            "/api/v1/auth/oauth/github/sign-in",
            json!({"code": code, "code_verifier": verifier, "redirect_uri": APP}),
        )
        .await;
    let body = expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(body.to_string().contains("not verified"), "{body}");
    assert_eq!(app.state.admin.overview().await.unwrap().users, 0);
}

/// The app runs the browser leg (GitHub returns to the app): the code
/// GitHub gives the app.
async fn app_leg(app: &TestApp, gh: &FakeGitHub, challenge: Option<&str>, state: &str) -> String {
    let mut url = format!("/api/v1/auth/oauth/github/url?state={state}");
    if let Some(c) = challenge {
        url.push_str(&format!("&code_challenge={c}"));
    }
    let res = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["state"], state);
    let to = body["url"].as_str().unwrap();
    assert!(to.starts_with(&gh.base));
    assert_eq!(param(to, "redirect_uri").as_deref(), Some(APP));
    let res = browser().get(to).send().await.unwrap();
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some(state));
    param(&back, "code").unwrap()
}

#[tokio::test]
async fn the_app_kept_state_flow_signs_in_once_per_code_and_state() {
    let gh = fake_github().await;
    let app = github_app(&gh, |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .github_oauth
            .as_mut()
            .unwrap()
            .redirect_uri = Some(APP.into());
    })
    .await;

    // derp keeps the verifier bound to the app's state.
    gh.next(7, "ada", emails(&[("ada@example.com", true, true)]));
    let code = app_leg(&app, &gh, None, "app-state-1").await;
    let res = app
        .post(
            "/api/v1/auth/oauth/github/sign-in",
            json!({"code": code, "state": "app-state-1"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert!(body["tokens"]["access_token"].is_string());
    // The same state again: derp's flow is used up.
    let res = app
        .post(
            "/api/v1/auth/oauth/github/sign-in",
            json!({"code": code, "state": "app-state-1"}),
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Another state than the one started: refused.
    let code = app_leg(&app, &gh, None, "app-state-2").await;
    let res = app
        .post(
            "/api/v1/auth/oauth/github/sign-in",
            json!({"code": code, "state": "app-state-3"}),
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    // The app's own PKCE: a code is good once (GitHub refuses it again).
    let verifier = "w".repeat(60);
    let code = app_leg(&app, &gh, Some(&s256(&verifier)), "app-state-4").await;
    let sign_in = json!({"code": code, "code_verifier": verifier});
    let res = app
        .post("/api/v1/auth/oauth/github/sign-in", sign_in.clone())
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.post("/api/v1/auth/oauth/github/sign-in", sign_in).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // A wrong verifier: refused too.
    let code = app_leg(&app, &gh, Some(&s256(&verifier)), "app-state-5").await;
    let res = app
        .post(
            "/api/v1/auth/oauth/github/sign-in",
            json!({"code": code, "code_verifier": "x".repeat(60)}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn a_tampered_state_a_replayed_callback_and_a_bad_secret_are_refused() {
    let gh = fake_github().await;
    let app = github_app(&gh, |_| {}).await;
    gh.next(9, "eve", emails(&[("eve@example.com", true, true)]));
    let res = browser_leg(&app, &browser(), true).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("state"));

    // A good callback, then the same callback again in the same browser.
    let b = browser();
    let start = b
        .get(app.url("/api/v1/auth/oauth/github/url"))
        .send()
        .await
        .unwrap();
    let url = start.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = location(&b.get(&url).send().await.unwrap());
    let first = b.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&first), "/account");
    let replay = b.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    // The used code in a new flow of the same browser: GitHub refuses it.
    let code = param(&callback, "code").unwrap();
    let start = b
        .get(app.url("/api/v1/auth/oauth/github/url"))
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
            "/api/v1/auth/oauth/github/callback?code={code}&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // derp with the wrong client secret: GitHub's refusal is derp's 401.
    let base = gh.base.clone();
    let wrong = github_app(&gh, move |c| {
        let mut g = github(&base);
        g.client_secret = Some(Secret::new("wrong"));
        g.redirect_uri = Some(APP.into());
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .github_oauth = Some(g);
    })
    .await;
    let code = app_leg(&wrong, &gh, None, "s-1").await;
    let res = wrong
        .post(
            "/api/v1/auth/oauth/github/sign-in",
            json!({"code": code, "state": "s-1"}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
