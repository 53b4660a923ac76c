//! The hosted pages' sign-up confirmation and password reset with the
//! Cognito backend, whose user pool mails its own codes: against
//! cognito-local 5.3.0, which checks the codes (moto accepts any code) and
//! fixes them to 123456 (`CODE=123456` in tests/peers/cognito-local.sh).
//! The browser is a reqwest client with a cookie store that follows no
//! redirect by itself.

use crate::cognito_hosted_ui::{CognitoLocal, idp, start_cognito_local};
use crate::helpers::{self, TestApp, hidden, spawn_client};
use derp::config::{CognitoConfig, Secret};
use reqwest::{Client, Response, StatusCode};
use serde_json::json;

const PASSWORD: &str = "Correct-horse-9";
const NEW_PASSWORD: &str = "Battery-staple-7";
const ORG_SECRET: &str = "an org context master secret of 32+ bytes";
const APP: &str = "https://app.example.com/auth/callback";
const CODE: &str = "123456";

/// cognito-local with a pool and an app client (no hosted UI), derp with
/// `[auth.cognito]` pointed at it.
async fn setup() -> Option<(CognitoLocal, TestApp)> {
    let cl = start_cognito_local().await?;
    let pool = idp(&cl, "CreateUserPool", json!({"PoolName": "derp-codes"})).await;
    let pool_id = pool["UserPool"]["Id"].as_str().unwrap().to_string();
    let client = idp(
        &cl,
        "CreateUserPoolClient",
        json!({
            "UserPoolId": pool_id,
            "ClientName": "derp",
            "GenerateSecret": true,
            "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        }),
    )
    .await;
    let client = &client["UserPoolClient"];
    let cognito = CognitoConfig {
        user_pool_id: pool_id.clone(),
        client_id: client["ClientId"].as_str().unwrap().to_string(),
        client_secret: Some(Secret::new(
            client["ClientSecret"].as_str().unwrap().to_string(),
        )),
        region: "us-east-1".into(),
        endpoint: Some(format!("{}/", cl.base)),
        jwks_url: Some(format!("{}/{pool_id}/.well-known/jwks.json", cl.base)),
        issuer: Some(format!("{}/{pool_id}", cl.base)),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = helpers::base_config(dir.path());
    config.auth.native = None;
    config.auth.cognito = Some(cognito);
    config.auth.org_context_secret = Some(Secret::new(ORG_SECRET));
    config.hosted.allowed_redirect_urls = vec![APP.into()];
    let app = helpers::spawn_config(config, dir).await;
    Some((cl, app))
}

fn location(res: &Response) -> String {
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

async fn page(app: &TestApp, b: &Client, path: &str) -> (StatusCode, String) {
    let res = b.get(app.url(path)).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn post(app: &TestApp, b: &Client, path: &str, form: &[(&str, &str)]) -> Response {
    b.post(app.url(path)).form(form).send().await.unwrap()
}

/// The value of the input `name` (any type) in `html`.
fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} in page"));
    let rest = &html[at..];
    let start = rest.find("value=\"").unwrap() + "value=\"".len();
    rest[start..].chars().take_while(|c| *c != '"').collect()
}

async fn sign_in_page(app: &TestApp, b: &Client, email: &str, password: &str) -> Response {
    let (status, html) = page(app, b, "/login").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&html, "csrf_token");
    post(
        app,
        b,
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", email),
            ("password", password),
        ],
    )
    .await
}

#[tokio::test]
async fn cognito_sign_up_at_the_pages_is_confirmed_with_the_mailed_code() {
    let Some((_cl, app)) = setup().await else {
        return;
    };
    let b = spawn_client();
    let email = "ivy@example.com";
    let ret = [("redirect_to", APP), ("state", "st-7")];
    let qs = format!(
        "?redirect_to={}&state=st-7",
        url::form_urlencoded::byte_serialize(APP.as_bytes()).collect::<String>()
    );

    // Sign-up: the page asks for the code, email prefilled, return kept.
    let (_, html) = page(&app, &b, &format!("/signup{qs}")).await;
    let csrf = hidden(&html, "csrf_token");
    let mut form = vec![
        ("csrf_token", csrf.as_str()),
        ("email", email),
        ("password", PASSWORD),
    ];
    form.extend_from_slice(&ret);
    let res = post(&app, &b, "/signup", &form).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"code\""), "{html}");
    assert!(html.contains("action=\"/confirm\""), "{html}");
    assert!(html.contains("formaction=\"/confirm/resend\""), "{html}");
    assert_eq!(input_value(&html, "email"), email);
    assert_eq!(hidden(&html, "redirect_to"), APP);
    assert_eq!(hidden(&html, "state"), "st-7");
    let csrf = hidden(&html, "csrf_token");

    // Not confirmed yet: /login says so and links to the code page.
    let b2 = spawn_client();
    let res = sign_in_page(&app, &b2, email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let login_html = res.text().await.unwrap();
    assert!(
        login_html.contains("href=\"/confirm?email=ivy%40example.com\""),
        "{login_html}"
    );
    let (status, html2) = page(&app, &b2, "/confirm?email=ivy%40example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(input_value(&html2, "email"), email);

    // A wrong code: the form again, the error beside `code`, never a 500.
    let mut form = vec![
        ("csrf_token", csrf.as_str()),
        ("email", email),
        ("code", "654321"),
    ];
    form.extend_from_slice(&ret);
    let res = post(&app, &b, "/confirm", &form).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"code-error\""), "{html}");
    assert!(html.contains("wrong or has expired"), "{html}");
    assert_eq!(input_value(&html, "email"), email);
    assert_eq!(hidden(&html, "redirect_to"), APP);
    // An empty code is named too.
    form[2].1 = "";
    let res = post(&app, &b, "/confirm", &form).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("id=\"code-error\""));

    // "Send me a new code": the code page again with the email, never a
    // 500 page. (Neither cognito-local nor moto has ResendConfirmationCode,
    // so the emulator's refusal shows as a form error here.)
    let res = post(
        &app,
        &b,
        "/confirm/resend",
        &[
            ("csrf_token", &csrf),
            ("email", email),
            ("redirect_to", APP),
            ("state", "st-7"),
        ],
    )
    .await;
    assert_ne!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let html = res.text().await.unwrap();
    assert!(html.contains("name=\"code\""), "{html}");
    assert_eq!(input_value(&html, "email"), email);
    // Without the CSRF token: refused.
    let res = post(&app, &b, "/confirm/resend", &[("email", email)]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // The right code: to /login with the app's return kept and a flash.
    form[2].1 = CODE;
    let res = post(&app, &b, "/confirm", &form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert_eq!(to, format!("/login{qs}"));
    let (status, html) = page(&app, &b, &to).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Your email address is confirmed"), "{html}");
    assert_eq!(hidden(&html, "redirect_to"), APP);

    // Signing in there returns to the app with a derp code.
    let csrf = hidden(&html, "csrf_token");
    let mut form = vec![
        ("csrf_token", csrf.as_str()),
        ("email", email),
        ("password", PASSWORD),
    ];
    form.extend_from_slice(&ret);
    let res = post(&app, &b, "/login", &form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("st-7"));
    let code = param(&back, "code").unwrap();
    let res = app
        .post(
            "/api/v1/auth/token",
            json!({"grant_type": "authorization_code", "code": code, "redirect_uri": APP}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email);

    // A used code no longer confirms: the error beside `code` again.
    let b3 = spawn_client();
    let (_, html) = page(&app, &b3, "/confirm").await;
    let csrf = hidden(&html, "csrf_token");
    let res = post(
        &app,
        &b3,
        "/confirm",
        &[("csrf_token", &csrf), ("email", email), ("code", CODE)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("id=\"code-error\""));
}

#[tokio::test]
async fn cognito_password_reset_at_the_pages_uses_the_mailed_code() {
    let Some((_cl, app)) = setup().await else {
        return;
    };
    let email = "jun@example.com";
    // A confirmed user (through derp's JSON API and the fixed code).
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post(
            "/api/v1/auth/confirm",
            json!({"email": email, "code": CODE}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let b = spawn_client();
    let (status, html) = page(&app, &b, "/forgot-password").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&html, "csrf_token");
    let res = post(
        &app,
        &b,
        "/forgot-password",
        &[("csrf_token", &csrf), ("email", email)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("action=\"/reset-password\""), "{html}");
    assert!(html.contains("name=\"code\""), "{html}");
    assert!(html.contains("name=\"password\""), "{html}");
    assert_eq!(input_value(&html, "email"), email);
    let csrf = hidden(&html, "csrf_token");

    // An unknown email gets the same page (nothing revealed).
    let b2 = spawn_client();
    let (_, other) = page(&app, &b2, "/forgot-password").await;
    let csrf2 = hidden(&other, "csrf_token");
    let res = post(
        &app,
        &b2,
        "/forgot-password",
        &[("csrf_token", &csrf2), ("email", "nobody@example.com")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("name=\"code\""));

    // A wrong code: the error beside `code`, the password unchanged.
    let res = post(
        &app,
        &b,
        "/reset-password",
        &[
            ("csrf_token", &csrf),
            ("email", email),
            ("code", "000000"),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"code-error\""), "{html}");
    assert!(!html.contains("id=\"password-error\""), "{html}");
    assert_eq!(input_value(&html, "email"), email);
    assert_eq!(app.sign_in(email, PASSWORD).await.status(), StatusCode::OK);

    // The right code: signed in at the pages, on /account with a flash.
    let res = post(
        &app,
        &b,
        "/reset-password",
        &[
            ("csrf_token", &csrf),
            ("email", email),
            ("code", CODE),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account");
    let (status, html) = page(&app, &b, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Your password is changed"), "{html}");
    assert!(html.contains(email), "{html}");

    // The new password signs in at /login; the old one no longer does.
    let b3 = spawn_client();
    // (cognito-local refuses a wrong password with InvalidPasswordException
    // where Cognito says NotAuthorizedException, so only the refusal is
    // checked: no sign-in, the form again.)
    let res = sign_in_page(&app, &b3, email, PASSWORD).await;
    assert_ne!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.text().await.unwrap().contains("action=\"/login\""));
    let res = sign_in_page(&app, &b3, email, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account");
}

/// Native pages keep their link tokens: no code forms; resend mails a link.
#[tokio::test]
async fn native_pages_keep_their_links() {
    let app = helpers::spawn_app().await;
    let b = spawn_client();
    let (status, html) = page(&app, &b, "/confirm").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!html.contains("name=\"code\""));
    let (status, html) = page(&app, &b, "/reset-password").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!html.contains("name=\"code\""));
    let (_, html) = page(&app, &b, "/confirm?token=abc").await;
    assert!(html.contains("name=\"token\""));
    let csrf = hidden(&html, "csrf_token");
    let res = post(
        &app,
        &b,
        "/confirm/resend",
        &[("csrf_token", &csrf), ("email", "x@example.com")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("confirmation link") && !html.contains("name=\"code\""));
    let res = post(
        &app,
        &b,
        "/forgot-password",
        &[("csrf_token", &csrf), ("email", "x@example.com")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("Check your email"), "{html}");
    assert!(!html.contains("name=\"code\""), "{html}");
}
