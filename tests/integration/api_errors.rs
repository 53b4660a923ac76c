use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn broken_json_wrong_types_and_missing_fields_name_the_field() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/auth/sign-in");
    let send = |body: &'static str| {
        app.client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let body = expect_error(
        send("{\"email\": ").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(body["error"]["fields"]["body"].is_string());
    let body = expect_error(
        send("").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(body["error"]["fields"]["body"].is_string());
    let body = expect_error(
        send("{\"email\": 42, \"password\": \"x\"}").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(body["error"]["fields"]["email"].is_string(), "{body}");
    let body = expect_error(
        send("{\"email\": \"a@example.com\"}").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(body["error"]["fields"]["password"], "is required");
    let body = expect_error(
        send("[1,2]").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(body["error"]["fields"]["body"].is_string());
}

#[tokio::test]
async fn oversized_bodies_unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let big = "x".repeat(70 * 1024);
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "a@example.com", "password": big}),
        )
        .await;
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let res = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .client
        .get(app.url("/api/v1/auth/sign-in"))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let res = app.client.put(app.url("/healthz")).send().await.unwrap();
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn every_response_has_a_request_id_and_api_answers_are_not_cached() {
    let app = spawn_app().await;
    let ok = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let id = ok.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(id.len() >= 16);
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
    let up = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "c@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(up.headers()["cache-control"], "no-store");
    let err = app
        .client
        .get(app.url("/api/v1/auth/session"))
        .send()
        .await
        .unwrap();
    let rid = err.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = err.json().await.unwrap();
    assert_eq!(
        body["error"]["request_id"],
        rid.as_str(),
        "the body names the same request id"
    );
}

#[tokio::test]
async fn readiness_and_discovery() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let doc: serde_json::Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], app.base);
    assert_eq!(
        doc["jwks_uri"],
        format!("{}/.well-known/jwks.json", app.base)
    );
}

#[tokio::test]
async fn every_route_in_the_openapi_document_is_served() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 40);
    for (path, methods) in paths {
        let concrete = path
            .replace("{provider}", "google")
            .replace("{inv_id}", "x")
            .replace("{user_id}", "x")
            .replace("{id}", "x");
        for method in methods.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = app
                .client
                .request(m, app.url(&concrete))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            let text = res.text().await.unwrap();
            assert!(
                !(status == StatusCode::NOT_FOUND && text.contains("no such resource")),
                "{method} {path} is not routed"
            );
        }
    }
}
