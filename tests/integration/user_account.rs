use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn access(body: &Value) -> String {
    body["tokens"]["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn get_and_patch_user_data() {
    let app = spawn_app().await;
    let up = app.sign_up("u1@example.com").await;
    let a = access(&up);
    let res = app.get_bearer("/api/v1/auth/user", &a).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["email"],
        "u1@example.com"
    );
    let res = app
        .client
        .patch(app.url("/api/v1/auth/user"))
        .bearer_auth(&a)
        .json(&json!({"data": {"name": "Uma"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["data"]["name"], "Uma");
    let res = app
        .client
        .patch(app.url("/api/v1/auth/user"))
        .bearer_auth(&a)
        .json(&json!({"data": [1, 2]}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(
        app.get_bearer("/api/v1/auth/user", "nope").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn role_and_email_cannot_be_changed_by_the_user() {
    let app = spawn_app().await;
    let a = access(&app.sign_up("u2@example.com").await);
    for body in [
        json!({"role": "admin"}),
        json!({"email": "x@example.com"}),
        json!({"email_confirmed_at": "2020-01-01T00:00:00Z"}),
    ] {
        let res = app
            .client
            .patch(app.url("/api/v1/auth/user"))
            .bearer_auth(&a)
            .json(&body)
            .send()
            .await
            .unwrap();
        let err = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert!(err["error"]["fields"][&field].is_string(), "{err}");
    }
    let user: Value = app
        .get_bearer("/api/v1/auth/user", &a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["role"], "default");
    assert_eq!(user["email"], "u2@example.com");
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let here = access(&app.sign_up("u3@example.com").await);
    let other: Value = app
        .sign_in("u3@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let patch = |body: Value| {
        app.client
            .patch(app.url("/api/v1/auth/user"))
            .bearer_auth(&here)
            .json(&body)
            .send()
    };

    let res = patch(json!({"password": "brand new password"}))
        .await
        .unwrap();
    let err = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(err["error"]["fields"]["current_password"].is_string());
    let res = patch(json!({"password": "brand new password", "current_password": "wrong one"}))
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = patch(json!({"password": "short", "current_password": PASSWORD}))
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;

    let res = patch(json!({"password": "brand new password", "current_password": PASSWORD}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.session(&here).await.status(),
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        app.session(&access(&other)).await.status(),
        StatusCode::UNAUTHORIZED,
        "others end"
    );
    assert_eq!(
        app.sign_in("u3@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.sign_in("u3@example.com", "brand new password")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn sessions_are_listed_without_tokens_and_revocable() {
    let app = spawn_app().await;
    let first = app.sign_up("u4@example.com").await;
    let a1 = access(&first);
    let second: Value = app
        .client
        .post(app.url("/api/v1/auth/sign-in"))
        .header("user-agent", "test-agent/2")
        .json(&json!({"email": "u4@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a2 = access(&second);
    let res = app.get_bearer("/api/v1/auth/sessions", &a1).await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let text = serde_json::to_string(list).unwrap();
    assert!(!text.contains(first["tokens"]["refresh_token"].as_str().unwrap()));
    let current: Vec<_> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], claims(&a1)["sid"]);
    let other = list.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["user_agent"], "test-agent/2");
    assert_eq!(other["ip"], "127.0.0.1");
    assert!(other["created_at"].is_string() && other["last_used_at"].is_string());

    let sid2 = claims(&a2)["sid"].as_str().unwrap().to_string();
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/auth/sessions/{sid2}")))
        .bearer_auth(&a1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.session(&a2).await.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/auth/sessions/{sid2}")))
        .bearer_auth(&a1)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;

    // Someone else's session is not found, not revoked.
    let stranger = access(&app.sign_up("u5@example.com").await);
    let sid1 = claims(&a1)["sid"].as_str().unwrap().to_string();
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/auth/sessions/{sid1}")))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.session(&a1).await.status(), StatusCode::OK);
}
