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
    // Truthful: nothing that derp does not implement is advertised.
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 2, "{doc}");
}

async fn openapi_document(app: &TestApp) -> serde_json::Value {
    let res = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// The `{name}`s of a templated path.
fn template_names(path: &str) -> std::collections::BTreeSet<String> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

#[tokio::test]
async fn every_route_in_the_openapi_document_is_served() {
    let app = spawn_app().await;
    let doc = openapi_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 40);
    for (path, methods) in paths {
        let mut concrete = path.replace("{provider}", "google");
        for name in template_names(path) {
            concrete = concrete.replace(&format!("{{{name}}}"), "x");
        }
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

#[tokio::test]
async fn openapi_operations_declare_their_path_parameters_bodies_and_responses() {
    let app = spawn_app().await;
    let doc = openapi_document(&app).await;
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("bearer") && schemes.contains_key("service_key"));
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let wanted = template_names(path);
        for (method, op) in item.as_object().unwrap() {
            let declared: std::collections::BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .inspect(|p| assert_eq!(p["required"], true, "{method} {path}: {p}"))
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(declared, wanted, "{method} {path}: path parameters");
            assert!(
                operation_ids.insert(op["operationId"].as_str().unwrap().to_string()),
                "{method} {path}: duplicate operationId"
            );
            let responses = op["responses"].as_object().unwrap();
            let success = responses
                .iter()
                .find(|(code, _)| code.starts_with('2') || code.starts_with('3'))
                .unwrap_or_else(|| panic!("{method} {path}: no success response"));
            if success.0.starts_with('2') && success.0 != "204" {
                assert!(
                    success.1["content"].is_object(),
                    "{method} {path}: no schema for {}",
                    success.0
                );
            }
            // Every JSON operation (the OAuth callback is the browser's, HTML).
            if path.starts_with("/api/") && !path.ends_with("/callback") {
                assert_eq!(
                    responses["4XX"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}: the error shape"
                );
            }
            if let Some(body) = op.get("requestBody") {
                let schema = &body["content"]["application/json"]["schema"];
                // `{"$ref"}` and required, or an optional body (sign-out,
                // enroll): `{"oneOf": [{"$ref"}, null]}`, not required.
                let reference = match schema["$ref"].as_str() {
                    Some(r) => {
                        assert_eq!(body["required"], true, "{method} {path}: requestBody");
                        r
                    }
                    None => {
                        assert_eq!(schema["oneOf"][1]["type"], "null", "{method} {path}");
                        assert_ne!(body["required"], true, "{method} {path}");
                        schema["oneOf"][0]["$ref"]
                            .as_str()
                            .unwrap_or_else(|| panic!("{method} {path}: body {schema}"))
                    }
                };
                let name = reference.rsplit('/').next().unwrap();
                let schema = &doc["components"]["schemas"][name];
                assert!(schema.is_object(), "{method} {path}: {name}");
            }
        }
    }
}

/// The routes registered in the JSON API's route files, as `(METHOD, path)`:
/// read from the source, so a route added without an OpenAPI entry fails.
fn registered_json_routes() -> std::collections::BTreeSet<(String, String)> {
    let files: [(&str, &str); 9] = [
        ("/api/v1/auth", "src/http/api/auth.rs"),
        ("/api/v1/auth", "src/http/api/mfa.rs"),
        ("/api/v1/auth", "src/http/api/oauth.rs"),
        // The provider's callback: a browser leg under the API's path.
        ("/api/v1/auth", "src/http/pages/oauth.rs"),
        ("/api/v1/orgs", "src/http/api/orgs.rs"),
        ("", "src/http/api/ops.rs"),
        ("", "src/http/api/oidc.rs"),
        ("/api/v1/admin", "src/http/admin/api/mod.rs"),
        ("/api/v1/admin", "src/http/admin/lockouts.rs"),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // A new route file under src/http/api must be added above.
    for entry in std::fs::read_dir(root.join("src/http/api")).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            !source.contains("web::resource(") || files.iter().any(|(_, f)| *f == rel),
            "{rel} registers routes: list it in registered_json_routes"
        );
    }
    let files =
        files.map(|(prefix, file)| (prefix, std::fs::read_to_string(root.join(file)).unwrap()));
    let mut routes = std::collections::BTreeSet::new();
    for (prefix, source) in &files {
        for chunk in source.split("web::resource(\"").skip(1) {
            let (path, mut rest) = chunk.split_once("\")").unwrap();
            if path.starts_with("/admin/") {
                continue; // an HTML page
            }
            let full = if path == "/accept" {
                "/api/v1/invitations/accept".to_string()
            } else {
                format!("{prefix}{path}")
            };
            loop {
                rest = rest.trim_start();
                let Some(call) = rest.strip_prefix('.') else {
                    break;
                };
                let Some((method, after)) = call.split_once('(') else {
                    break;
                };
                if !["get", "post", "patch", "put", "delete"].contains(&method) {
                    break;
                }
                routes.insert((method.to_string(), full.clone()));
                rest = after.split_once(')').unwrap().1;
            }
        }
        for chunk in source.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).unwrap();
            routes.insert(("get".to_string(), format!("{prefix}{path}")));
        }
    }
    routes
}

#[tokio::test]
async fn every_json_route_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc = openapi_document(&app).await;
    let routes = registered_json_routes();
    assert!(routes.len() > 55, "{routes:?}");
    for (method, path) in routes {
        assert!(
            doc["paths"][&path][&method].is_object(),
            "{} {path} is served but not in /openapi.json",
            method.to_uppercase()
        );
    }
}

#[tokio::test]
async fn a_confirmation_code_on_the_native_backend_is_a_400_naming_the_field() {
    // Found by schemathesis: this was a 501, a server error for a request
    // that only has the wrong shape for this backend.
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/auth/confirm",
            json!({"email": "someone@example.com", "code": "123456"}),
        )
        .await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        body["error"]["fields"]["code"]
            .as_str()
            .unwrap()
            .contains("token"),
        "{body}"
    );
}
