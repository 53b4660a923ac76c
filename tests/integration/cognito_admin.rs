//! The admin users API with the Cognito backend: the Admin* calls (signed
//! with SigV4) against moto 5.2.5. moto routes them but does not check the
//! signature; the signer itself is checked against AWS's published example
//! in `src/auth/cognito/sigv4.rs`.

use crate::cognito::{
    PASSWORD, cognito_config, create_pool, idp, signed_in, signed_up_and_confirmed, spawn_cognito,
    start_moto,
};
use crate::helpers::{audit_events, call_as, expect_error};
use derp::config::{CognitoConfig, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const KEY: &str = "a-service-key-for-the-cognito-admin-0123456789";

fn with_keys(mut c: CognitoConfig) -> CognitoConfig {
    c.access_key_id = Some("AKIDEXAMPLE".into());
    c.secret_access_key = Some(Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"));
    c
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn admin_users_are_user_pool_users() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let pool = create_pool(&moto).await;
    let app = spawn_cognito(with_keys(cognito_config(&moto, &pool)), |c| {
        c.admin.service_keys = vec![Secret::new(KEY)];
    })
    .await;
    for email in ["alice@example.com", "bob@example.com", "carol@other.org"] {
        signed_up_and_confirmed(&app, email).await;
    }
    let key = Some(KEY);
    let get = |path: String| call_as(&app, Method::GET, format!("/api/v1/admin{path}"), key, None);
    assert_eq!(app.state.admin.overview().await.unwrap().users, 3);

    // The list, in pages through Cognito's PaginationToken.
    let all: Value = get("/users".into()).await.json().await.unwrap();
    let users = all["users"].as_array().unwrap();
    assert_eq!(users.len(), 3, "{all}");
    assert!(users.iter().all(|u| u["email_confirmed_at"].is_string()));
    assert!(users.iter().all(|u| u["disabled"] == false));
    let first: Value = get("/users?limit=2".into()).await.json().await.unwrap();
    assert_eq!(first["users"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second: Value = get(format!("/users?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["users"].as_array().unwrap().len(), 1);
    let mut seen: Vec<&str> = first["users"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["users"].as_array().unwrap())
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        ["alice@example.com", "bob@example.com", "carol@other.org"]
    );

    // Search: an email prefix.
    let found: Value = get("/users?q=Bob".into()).await.json().await.unwrap();
    assert_eq!(found["users"].as_array().unwrap().len(), 1);
    assert_eq!(found["users"][0]["email"], "bob@example.com");
    let bob_id = found["users"][0]["id"].as_str().unwrap().to_string();
    expect_error(
        get("/users?q=a%22b".into()).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    // Alice signs in and creates an org: derp keys it by her sub.
    let (token, _, body) = signed_in(&app, "alice@example.com", PASSWORD).await;
    let alice_id = body["user"]["id"].as_str().unwrap().to_string();
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &token,
            json!({"name": "Alice Co", "slug": "alice-co"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let alice: Value = get(format!("/users/{alice_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["orgs"][0]["org"]["slug"], "alice-co");
    expect_error(
        get("/users/00000000-0000-0000-0000-000000000000".into()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Disable: AdminDisableUser + AdminUserGlobalSignOut; sign-in is refused.
    let patch = |id: String, body: Value| {
        call_as(
            &app,
            Method::PATCH,
            format!("/api/v1/admin/users/{id}"),
            key,
            Some(body),
        )
    };
    let res = patch(alice_id.clone(), json!({"disabled": true})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);
    expect_error(
        app.sign_in("alice@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let res = patch(alice_id.clone(), json!({"disabled": false})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], false);
    assert_eq!(
        app.sign_in("alice@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    expect_error(
        patch(alice_id.clone(), json!({"role": "admin"})).await,
        StatusCode::NOT_IMPLEMENTED,
        "not_supported_by_backend",
    )
    .await;
    expect_error(
        patch("no-such-sub".into(), json!({"disabled": true})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Create (AdminCreateUser + a permanent password) and confirm
    // (AdminConfirmSignUp) a user that signed up without confirming.
    let res = call_as(
        &app,
        Method::POST,
        "/api/v1/admin/users",
        key,
        Some(json!({"email": "Dave@Example.com", "password": PASSWORD, "email_confirmed": true})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let dave: Value = res.json().await.unwrap();
    assert_eq!(dave["email"], "dave@example.com");
    assert_eq!(
        app.sign_in("dave@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    expect_error(
        call_as(
            &app,
            Method::POST,
            "/api/v1/admin/users",
            key,
            Some(json!({"email": "dave@example.com"})),
        )
        .await,
        StatusCode::CONFLICT,
        "email_exists",
    )
    .await;
    let res = app
        .post(
            "/api/v1/auth/sign-up",
            json!({"email": "erin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let erin = idp(
        &moto,
        "AdminGetUser",
        json!({"UserPoolId": pool.id, "Username": "erin@example.com"}),
    )
    .await;
    assert_eq!(erin["UserStatus"], "UNCONFIRMED");
    let erin_id = erin["UserAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Name"] == "sub")
        .unwrap()["Value"]
        .as_str()
        .unwrap()
        .to_string();
    let res = patch(erin_id.clone(), json!({"email_confirmed": true})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.json::<Value>().await.unwrap()["email_confirmed_at"].is_string());
    assert_eq!(
        app.sign_in("erin@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );

    // A password reset mail through the backend's own flow (ForgotPassword).
    let res = call_as(
        &app,
        Method::POST,
        format!("/api/v1/admin/users/{bob_id}/send-recovery"),
        key,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    // Sign-out everywhere: AdminUserGlobalSignOut.
    let res = call_as(
        &app,
        Method::POST,
        format!("/api/v1/admin/users/{bob_id}/sign-out"),
        key,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Delete: refused while Alice alone owns her org; Bob goes at once.
    let delete = |path: String| call_as(&app, Method::DELETE, path, key, None);
    expect_error(
        delete(format!("/api/v1/admin/users/{alice_id}")).await,
        StatusCode::CONFLICT,
        "last_owner",
    )
    .await;
    assert_eq!(
        get(format!("/users/{alice_id}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        delete(format!("/api/v1/admin/users/{bob_id}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        get(format!("/users/{bob_id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.sign_in("bob@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        delete(format!(
            "/api/v1/admin/users/{alice_id}?delete_owned_orgs=true"
        ))
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get("/orgs/alice-co".into()).await.status(),
        StatusCode::NOT_FOUND
    );

    // The audit log has every action, by the service key.
    let alice_events = audit_events(&app, KEY, &format!("user_id={alice_id}")).await;
    let a = actions(&alice_events);
    for action in [
        "admin.user.disabled",
        "admin.user.enabled",
        "admin.user.deleted",
    ] {
        assert!(a.contains(&action), "{action} in {a:?}");
    }
    assert!(alice_events.iter().all(
        |e| e["actor_id"].as_str().unwrap().starts_with("service_key:")
            || !e["action"].as_str().unwrap().starts_with("admin.")
    ));
    let bob_events = audit_events(&app, KEY, &format!("user_id={bob_id}")).await;
    let b = actions(&bob_events);
    for action in [
        "admin.user.recovery_sent",
        "admin.user.signed_out",
        "admin.user.deleted",
    ] {
        assert!(b.contains(&action), "{action} in {b:?}");
    }
    let created = audit_events(&app, KEY, "action=admin.user.created").await;
    assert_eq!(created[0]["detail"]["email"], "dave@example.com");
    let erin_events = audit_events(&app, KEY, &format!("user_id={erin_id}")).await;
    assert!(actions(&erin_events).contains(&"admin.user.updated"));
}

/// Without access keys the admin's user calls say what is missing; with
/// keys and an unreachable endpoint they are a 502 without details. Neither
/// needs moto.
#[tokio::test]
async fn admin_users_need_access_keys_and_a_reachable_pool() {
    let cognito = CognitoConfig {
        user_pool_id: "us-east-1_abc".into(),
        client_id: "client".into(),
        region: "us-east-1".into(),
        endpoint: Some("http://127.0.0.1:1/".into()),
        jwks_url: Some("http://127.0.0.1:1/jwks.json".into()),
        ..Default::default()
    };
    let app = spawn_cognito(cognito.clone(), |c| {
        c.admin.service_keys = vec![Secret::new(KEY)];
    })
    .await;
    for (method, path) in [
        (Method::GET, "/api/v1/admin/users"),
        (Method::GET, "/api/v1/admin/users/some-sub"),
        (Method::DELETE, "/api/v1/admin/users/some-sub"),
        (Method::POST, "/api/v1/admin/users/some-sub/sign-out"),
    ] {
        let body = expect_error(
            call_as(&app, method, path, Some(KEY), None).await,
            StatusCode::NOT_IMPLEMENTED,
            "not_supported_by_backend",
        )
        .await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("access_key_id"), "{message}");
    }

    let app = spawn_cognito(with_keys(cognito), |c| {
        c.admin.service_keys = vec![Secret::new(KEY)];
    })
    .await;
    let body = expect_error(
        call_as(&app, Method::GET, "/api/v1/admin/users", Some(KEY), None).await,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
    )
    .await;
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
}

/// What the Admin* calls carry: SigV4 headers for the `cognito-idp`
/// service in the configured region, and the operation as `X-Amz-Target`.
#[tokio::test]
async fn admin_calls_are_signed_with_sigv4() {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::<(String, String, String)>::new()));
    let data = web::Data::from(seen.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).default_service(web::to(
            |req: HttpRequest, seen: web::Data<Mutex<Vec<(String, String, String)>>>| async move {
                let h = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                seen.lock()
                    .unwrap()
                    .push((h("authorization"), h("x-amz-date"), h("x-amz-target")));
                HttpResponse::Ok()
                    .content_type("application/x-amz-json-1.1")
                    .body(r#"{"Users": []}"#)
            },
        ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    let cognito = with_keys(CognitoConfig {
        user_pool_id: "eu-west-3_abc".into(),
        client_id: "client".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}/")),
        jwks_url: Some(format!("http://127.0.0.1:{port}/jwks.json")),
        ..Default::default()
    });
    let app = spawn_cognito(cognito, |c| {
        c.admin.service_keys = vec![Secret::new(KEY)];
    })
    .await;
    let res = call_as(&app, Method::GET, "/api/v1/admin/users", Some(KEY), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (auth, date, target) = seen.lock().unwrap()[0].clone();
    assert_eq!(target, "AWSCognitoIdentityProviderService.ListUsers");
    assert_eq!(date.len(), 16, "{date}");
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-3/cognito-idp/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=",
        &date[..8]
    );
    assert!(auth.starts_with(&prefix), "{auth}");
    assert_eq!(auth.len(), prefix.len() + 64);
}
