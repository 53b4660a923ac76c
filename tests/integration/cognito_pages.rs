//! The hosted pages and the admin UI with the Cognito backend, against moto
//! 5.2.5: a password sign-in at `/login` returns to the app with a derp
//! code, the browser keeps a page session, and members of the Cognito group
//! `admin` are admins.

use crate::cognito::{
    PASSWORD, cognito_config, create_pool, idp, signed_in, signed_up_and_confirmed, spawn_cognito,
    start_moto,
};
use crate::helpers::{TestApp, expect_error, hidden, spawn_client};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use derp::config::{CognitoConfig, Secret};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

const APP: &str = "https://app.example.com/auth/callback";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

fn with_keys(mut c: CognitoConfig) -> CognitoConfig {
    c.access_key_id = Some("AKIDEXAMPLE".into());
    c.secret_access_key = Some(Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"));
    c
}

fn pkce() -> (String, String) {
    let verifier = "a-pkce-verifier-for-the-cognito-pages-0123456789-abcdef".to_string();
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn login_path(ret: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in ret {
        q.append_pair(k, v);
    }
    format!("/login?{}", q.finish())
}

async fn get(app: &TestApp, browser: &Client, path: &str) -> Response {
    browser.get(app.url(path)).send().await.unwrap()
}

/// The `/login` form filled in and sent, with the app's return parameters.
async fn page_sign_in(
    app: &TestApp,
    browser: &Client,
    email: &str,
    ret: &[(&str, &str)],
) -> Response {
    let res = get(app, browser, &login_path(ret)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token");
    let mut form = vec![
        ("csrf_token", csrf.as_str()),
        ("email", email),
        ("password", PASSWORD),
    ];
    form.extend_from_slice(ret);
    browser
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn exchange(app: &TestApp, code: &str, verifier: &str) -> Response {
    app.post(
        "/api/v1/auth/token",
        json!({"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": APP}),
    )
    .await
}

/// `token` with its payload changed by `change`, header and signature kept.
fn tampered(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    change(&mut payload);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    )
}

async fn csrf_of(app: &TestApp, browser: &Client, path: &str) -> String {
    let res = get(app, browser, path).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    hidden(&res.text().await.unwrap(), "csrf_token")
}

#[tokio::test]
async fn cognito_pages_sign_in_return_to_the_app_and_keep_a_page_session() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let app = spawn_cognito(cognito_config(&moto, &pool), |c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
    })
    .await;
    signed_up_and_confirmed(&app, BOB).await;
    let browser = spawn_client();

    // /login with an app's return address: back to the app with a derp code.
    let (verifier, challenge) = pkce();
    let ret = [
        ("redirect_to", APP),
        ("state", "st-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let res = page_sign_in(&app, &browser, BOB, &ret).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(back.starts_with(APP), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-1"));
    let code = query_param(&back, "code").unwrap();
    expect_error(
        exchange(
            &app,
            &code,
            "a-wrong-verifier-a-wrong-verifier-a-wrong-verifier",
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // A failed exchange spends the code; signed in already, /login goes
    // straight back with a new one.
    let res = get(&app, &browser, &login_path(&ret)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(&res), "code").unwrap();
    let res = exchange(&app, &code, &verifier).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], BOB);
    let access = body["tokens"]["access_token"].as_str().unwrap().to_string();
    let refresh = body["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let info: Value = app.session(&access).await.json().await.unwrap();
    assert_eq!(
        (info["user_id"].clone(), info["role"].as_str()),
        (body["user"]["id"].clone(), Some("default"))
    );
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
    expect_error(
        exchange(&app, &code, &verifier).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // The browser has a page session: the account and org pages.
    let res = get(&app, &browser, "/account").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains(BOB));
    assert_eq!(get(&app, &browser, "/orgs").await.status(), StatusCode::OK);
    let csrf = csrf_of(&app, &browser, "/orgs/new").await;
    let res = browser
        .post(app.url("/orgs/new"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Bob Co"),
            ("slug", "bob-co"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", location(&res));
    let res = get(&app, &browser, "/orgs/bob-co").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(!html.contains("badge\">active"), "{html}");
    // Making it active keeps it with the page session.
    let csrf = hidden(&html, "csrf_token");
    let res = browser
        .post(app.url("/orgs/bob-co/activate"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = get(&app, &browser, "/orgs/bob-co")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("badge\">active"), "{html}");
    // Again, after the pages were used.
    let res = get(&app, &browser, &login_path(&ret)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(&res), "code").unwrap();
    let res = exchange(&app, &code, &verifier).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["user"]["email"], BOB);
    // No admin: /admin says so.
    let res = get(&app, &browser, "/admin/users").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // The page session outlives its access token: it is refreshed.
    app.advance(3590);
    let res = get(&app, &browser, "/account").await;
    assert_eq!(res.status(), StatusCode::OK);
    app.advance(-3590);

    // Sign-out ends the page session.
    let csrf = csrf_of(&app, &browser, "/logout").await;
    let res = browser
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = get(&app, &browser, "/account").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
}

#[tokio::test]
async fn members_of_the_cognito_admin_group_are_admins() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let app = spawn_cognito(with_keys(cognito_config(&moto, &pool)), |_| {}).await;
    for email in [ALICE, BOB, CAROL] {
        signed_up_and_confirmed(&app, email).await;
    }
    idp(
        &moto,
        "CreateGroup",
        json!({"UserPoolId": pool.id, "GroupName": "admin"}),
    )
    .await;
    idp(
        &moto,
        "AdminAddUserToGroup",
        json!({"UserPoolId": pool.id, "Username": ALICE, "GroupName": "admin"}),
    )
    .await;

    // Anonymous browsers are sent to /login and back; a plain user is refused.
    let carol = spawn_client();
    assert!(location(&get(&app, &carol, "/admin/users").await).starts_with("/login?redirect_to="));
    let res = page_sign_in(&app, &carol, CAROL, &[]).await;
    assert_eq!(location(&res), "/account");
    let res = get(&app, &carol, "/admin/users").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Bob has a page session too, until an admin disables him.
    let bob_browser = spawn_client();
    let res = page_sign_in(&app, &bob_browser, BOB, &[]).await;
    assert_eq!(location(&res), "/account");
    assert_eq!(
        get(&app, &bob_browser, "/account").await.status(),
        StatusCode::OK
    );

    // Alice signs in at the pages and manages the pool's users.
    let browser = spawn_client();
    let res = page_sign_in(&app, &browser, ALICE, &[]).await;
    assert_eq!(location(&res), "/account");
    let res = get(&app, &browser, "/admin/users").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    for email in [ALICE, BOB, CAROL] {
        assert!(html.contains(email), "{email} listed: {html}");
    }
    let bob = idp(
        &moto,
        "AdminGetUser",
        json!({"UserPoolId": pool.id, "Username": BOB}),
    )
    .await;
    let bob_id = bob["UserAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Name"] == "sub")
        .unwrap()["Value"]
        .as_str()
        .unwrap()
        .to_string();
    let csrf = hidden(&html, "csrf_token");
    let disable = format!("/admin/users/{bob_id}/disable");
    let res = browser
        .post(app.url(&disable))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = browser
        .post(app.url(&disable))
        .form(&[("csrf_token", csrf.as_str()), ("confirmed", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), format!("/admin/users/{bob_id}"));
    let bob = idp(
        &moto,
        "AdminGetUser",
        json!({"UserPoolId": pool.id, "Username": BOB}),
    )
    .await;
    assert_eq!(bob["Enabled"], false);
    let res = get(&app, &bob_browser, "/account").await;
    assert_eq!(
        location(&res),
        "/login",
        "the disabled user's page session ended"
    );

    // Her access token is an admin's for the JSON API too.
    let (token, refresh, _) = signed_in(&app, ALICE, PASSWORD).await;
    let info: Value = app.session(&token).await.json().await.unwrap();
    assert_eq!(info["role"], "admin");
    assert_eq!(
        app.get_bearer("/api/v1/admin/users", &token).await.status(),
        StatusCode::OK
    );

    // A group claim added to a plain user's token breaks its signature.
    let (plain, _, _) = signed_in(&app, CAROL, PASSWORD).await;
    expect_error(
        app.get_bearer("/api/v1/admin/users", &plain).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let forged = tampered(&plain, |p| p["cognito:groups"] = json!(["admin"]));
    expect_error(
        app.session(&forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    expect_error(
        app.get_bearer("/api/v1/admin/users", &forged).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // Removed from the group: the next token (a refresh) is no admin's.
    idp(
        &moto,
        "AdminRemoveUserFromGroup",
        json!({"UserPoolId": pool.id, "Username": ALICE, "GroupName": "admin"}),
    )
    .await;
    let res = app.refresh(&refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let fresh = res.json::<Value>().await.unwrap()["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let info: Value = app.session(&fresh).await.json().await.unwrap();
    assert_eq!(info["role"], "default");
    expect_error(
        app.get_bearer("/api/v1/admin/users", &fresh).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // The page session loses the admin pages when its token is refreshed.
    app.advance(3590);
    let res = get(&app, &browser, "/admin/users").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app, &browser, "/account").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cognito_codes_issued_without_pkce_refuse_any_code_verifier() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let app = spawn_cognito(cognito_config(&moto, &pool), |c| {
        c.hosted.allowed_redirect_urls = vec!["https://app.example.com/auth/".into()];
    })
    .await;
    signed_up_and_confirmed(&app, "dave@example.com").await;
    let browser = spawn_client();
    // No code_challenge on the way in.
    let ret = [("redirect_to", APP), ("state", "st-2")];
    let res = page_sign_in(&app, &browser, "dave@example.com", &ret).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(&res), "code").unwrap();
    let (verifier, _) = pkce();
    expect_error(
        exchange(&app, &code, &verifier).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // Spent by the failure; a new code without a verifier is exchanged.
    let res = get(&app, &browser, &login_path(&ret)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(&res), "code").unwrap();
    let res = app
        .post(
            "/api/v1/auth/token",
            json!({"grant_type": "authorization_code", "code": code, "redirect_uri": APP}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["user"]["email"],
        "dave@example.com"
    );
}
