//! Webhooks through the real surface: endpoints made with the admin API or
//! `derp.toml`, a receiver on a real port, signatures checked, the mirror an
//! app would keep compared with derp's own state, and the failure cases
//! (receiver down, hanging, gone for three days).

use crate::admin::{KEY, admin_app};
use crate::helpers::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use derp::clock::Clock;
use derp::config::{Secret, WebhookEndpointConfig};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Fail(u16),
    /// Never answers (the deliverer's 10 s timeout ends the attempt).
    Hang,
}

#[derive(Debug, Clone)]
struct Got {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    mode: Arc<Mutex<Mode>>,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let (g, m) = (got.clone(), mode.clone());
        let server = HttpServer::new(move || {
            let (g, m) = (g.clone(), m.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (g, m) = (g.clone(), m.clone());
                async move {
                    let mode = *m.lock().unwrap();
                    let header = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let answered = match mode {
                        Mode::Ok => 200,
                        Mode::Fail(s) => s,
                        Mode::Hang => 0,
                    };
                    g.lock().unwrap().push(Got {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                        answered,
                    });
                    if mode == Mode::Hang {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(answered.max(200)).unwrap(),
                    )
                    .body(if answered >= 300 {
                        "receiver says no"
                    } else {
                        "ok"
                    })
                }
            }))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, got, mode }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Accepted deliveries, first of each `webhook-id` only.
    fn accepted(&self) -> Vec<Got> {
        let mut seen = HashSet::new();
        self.all()
            .into_iter()
            .filter(|g| g.answered == 200 && seen.insert(g.id.clone()))
            .collect()
    }

    async fn wait_accepted(&self, n: usize, limit: Duration) -> Vec<Got> {
        let start = Instant::now();
        loop {
            let got = self.accepted();
            if got.len() >= n || start.elapsed() > limit {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The Standard Webhooks check: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`.
fn verify(secret: &str, g: &Got, now: i64) {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", g.id, g.timestamp, g.body).as_bytes());
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    assert_eq!(g.signature, expected, "signature of {}", g.id);
    assert!(g.id.starts_with("msg_"));
    let ts: i64 = g.timestamp.parse().unwrap();
    assert!((ts - now).abs() < 600, "a fresh timestamp");
}

async fn call(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    call_as(app, method, path, Some(KEY), body).await
}

/// Makes an endpoint with the admin API; returns `(id, secret)`.
async fn endpoint(app: &TestApp, name: &str, url: &str, events: &[&str]) -> (String, String) {
    let res = call(
        app,
        Method::POST,
        "/api/v1/admin/webhooks",
        Some(json!({"name": name, "url": url, "events": events})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    (body["endpoint"]["id"].as_str().unwrap().to_string(), secret)
}

async fn endpoint_view(app: &TestApp, id: &str) -> Value {
    let res = call(
        app,
        Method::GET,
        &format!("/api/v1/admin/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// The endpoint's view once `until` holds (or after 10 s): the receiver
/// sees a request before derp has recorded its outcome, so a test that
/// reads the record right after the receiver saw something waits for it.
async fn endpoint_view_when(app: &TestApp, id: &str, until: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let view = endpoint_view(app, id).await;
        if until(&view) || start.elapsed() > Duration::from_secs(10) {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The token of the `/invitations/<token>` link in an invitation mail.
fn invitation_token(text: &str) -> String {
    let start = text.find("/invitations/").unwrap() + "/invitations/".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn event(g: &Got) -> Value {
    serde_json::from_str(&g.body).unwrap()
}

/// Signs up `email` and returns `(user id, access token)`.
async fn user(app: &TestApp, email: &str) -> (String, String) {
    let body = app.sign_up(email).await;
    (
        body["user"]["id"].as_str().unwrap().to_string(),
        body["tokens"]["access_token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn an_app_can_mirror_users_and_memberships_from_webhooks_alone() {
    let app = admin_app().await;
    let rx = Receiver::start().await;
    let (_, secret) = endpoint(
        &app,
        "mirror",
        &rx.url,
        &["user.*", "org.*", "invitation.*"],
    )
    .await;

    let (alice, alice_token) = user(&app, "alice@example.com").await;
    let (bob, _) = user(&app, "bob@example.com").await;
    let (dave, _) = user(&app, "dave@example.com").await;
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &alice_token,
            json!({"name": "Acme", "slug": "acme"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let org = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let members = format!("/api/v1/orgs/{org}/members");
    let res = app
        .post_bearer(&members, &alice_token, json!({"email": "bob@example.com"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post_bearer(
            &members,
            &alice_token,
            json!({"user_id": dave, "role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .client
        .patch(app.url(&format!("{members}/{bob}")))
        .bearer_auth(&alice_token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // An invitation, accepted by a new user.
    let res = app
        .post_bearer(
            &format!("/api/v1/orgs/{org}/invitations"),
            &alice_token,
            json!({"email": "carol@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mail = app.mails_to("carol@example.com", 1).await;
    let (carol, carol_token) = user(&app, "carol@example.com").await;
    let res = app
        .post_bearer(
            "/api/v1/invitations/accept",
            &carol_token,
            json!({"token": invitation_token(&mail[0].text)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Changes by an admin.
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{bob}"),
        Some(json!({"data": {"plan": "pro"}})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin/users/{carol}"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/orgs/{org}")))
        .bearer_auth(&alice_token)
        .json(&json!({"name": "Acme Inc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .delete(app.url(&format!("{members}/{bob}")))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/admin/users/{dave}"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Every event: 4 user.created, org.created, 4 member.added (alice, bob,
    // dave, carol), role_changed, invitation.created and .accepted (which
    // confirms carol's address: user.updated), user.updated (bob's data),
    // user.disabled, org.updated, member.removed for bob and for dave
    // (deleted), user.deleted.
    let got = rx.wait_accepted(19, Duration::from_secs(20)).await;
    let types: Vec<String> = got
        .iter()
        .map(|g| event(g)["type"].as_str().unwrap().to_string())
        .collect();
    for g in rx.all() {
        verify(&secret, &g, app.clock.unix());
        for secret_word in ["password", "$argon2", "refresh_token", "token_hash"] {
            assert!(!g.body.contains(secret_word), "{secret_word} in {}", g.body);
        }
    }
    assert_eq!(got.len(), 19, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "user.created").count(), 4);
    assert!(types.contains(&"invitation.accepted".to_string()));
    assert!(types.contains(&"org.member.role_changed".to_string()));
    let changed = got
        .iter()
        .map(event)
        .find(|e| e["type"] == "org.member.role_changed")
        .unwrap();
    assert_eq!(changed["data"]["previous_role"], "member");
    assert_eq!(changed["data"]["role"], "admin");
    assert!(changed["timestamp"].as_str().unwrap().ends_with('Z'));

    // The mirror an app keeps from these events alone.
    let mut users: BTreeMap<String, Value> = BTreeMap::new();
    let mut orgs: BTreeMap<String, Value> = BTreeMap::new();
    let mut roles: BTreeMap<(String, String), String> = BTreeMap::new();
    for e in got.iter().map(event) {
        let d = &e["data"];
        let id = |k: &str| d[k].as_str().unwrap().to_string();
        match e["type"].as_str().unwrap() {
            "user.created" | "user.updated" | "user.disabled" => {
                users.insert(id("id"), d.clone());
            }
            "user.deleted" => {
                users.remove(&id("id"));
            }
            "org.created" | "org.updated" => {
                orgs.insert(id("id"), d.clone());
            }
            "org.deleted" => {
                orgs.remove(&id("id"));
            }
            "org.member.added" | "org.member.role_changed" => {
                roles.insert((id("org_id"), id("user_id")), id("role"));
            }
            "org.member.removed" => {
                roles.remove(&(id("org_id"), id("user_id")));
            }
            "invitation.created" | "invitation.accepted" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    // derp's own state, from its admin API.
    let listed: Value = call(&app, Method::GET, "/api/v1/admin/users?limit=100", None)
        .await
        .json()
        .await
        .unwrap();
    let truth: BTreeMap<String, Value> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u.clone()))
        .collect();
    assert_eq!(
        users.keys().collect::<Vec<_>>(),
        truth.keys().collect::<Vec<_>>()
    );
    for (id, u) in &truth {
        for field in ["email", "disabled", "role", "data", "email_confirmed_at"] {
            assert_eq!(users[id][field], u[field], "{field} of {id}");
        }
    }
    let listed: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/admin/orgs/{org}/members"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let truth: BTreeMap<(String, String), String> = listed
        .as_array()
        .or_else(|| listed["members"].as_array())
        .unwrap()
        .iter()
        .map(|m| {
            (
                (org.clone(), m["user_id"].as_str().unwrap().to_string()),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(roles, truth);
    assert_eq!(orgs[&org]["name"], "Acme Inc");
    assert_eq!(truth.len(), 2, "alice and carol remain: {truth:?}");
    assert!(truth.contains_key(&(org.clone(), alice.clone())));
}

#[tokio::test]
async fn sessions_and_filters_and_test_events() {
    let app = admin_app().await;
    let rx = Receiver::start().await;
    let (id, secret) = endpoint(&app, "sessions", &rx.url, &["session.*"]).await;
    let (_, _) = user(&app, "erin@example.com").await;
    let body: Value = app
        .sign_in("erin@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let access = body["tokens"]["access_token"].as_str().unwrap();
    let res = app
        .post_bearer("/api/v1/auth/sign-out", access, json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Sign-up's session, the sign-in's, then the sign-out's revocation.
    let got = rx.wait_accepted(3, Duration::from_secs(10)).await;
    let events: Vec<Value> = got.iter().map(event).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["session.created", "session.created", "session.revoked"]
    );
    assert_eq!(events[1]["data"]["amr"], json!(["pwd"]));
    assert_eq!(events[2]["data"]["id"], events[1]["data"]["id"]);
    assert_eq!(events[2]["data"]["reason"], "sign_out");
    for g in &got {
        verify(&secret, g, app.clock.unix());
    }

    // A test event reaches this endpoint whatever its filter.
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let test_id = res.json::<Value>().await.unwrap()["webhook_id"]
        .as_str()
        .unwrap()
        .to_string();
    let got = rx.wait_accepted(4, Duration::from_secs(10)).await;
    assert_eq!(got[3].id, test_id);
    assert_eq!(event(&got[3])["type"], "webhook.test");
    endpoint_view_when(&app, &id, |v| v["deliveries"]["pending"] == 0).await;

    // The console's record of the deliveries, newest first, paged.
    let res = call(
        &app,
        Method::GET,
        &format!("/api/v1/admin/webhooks/{id}/deliveries?limit=2"),
        None,
    )
    .await;
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["deliveries"][0]["webhook_id"], test_id.as_str());
    assert_eq!(page["deliveries"][0]["status"], "delivered");
    assert_eq!(page["deliveries"][0]["response_status"], 200);
    assert_eq!(page["deliveries"][0]["response_excerpt"], "ok");
    let cursor = page["next_cursor"].as_str().unwrap();
    let res = call(
        &app,
        Method::GET,
        &format!("/api/v1/admin/webhooks/{id}/deliveries?limit=2&cursor={cursor}"),
        None,
    )
    .await;
    let rest: Value = res.json().await.unwrap();
    assert_eq!(rest["deliveries"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_string() || rest["next_cursor"].is_null());
}

#[tokio::test]
async fn bad_input_is_refused_by_field_and_config_endpoints_are_read_only() {
    let rx = Receiver::start().await;
    let secret = format!("whsec_{}", B64.encode([7u8; 32]));
    let url = rx.url.clone();
    let config_secret = secret.clone();
    let app = spawn_with(move |c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.admin.service_keys = vec![Secret::new(KEY)];
        c.webhooks.insert(
            "billing".into(),
            WebhookEndpointConfig {
                url,
                secret: Secret::new(config_secret),
                events: vec!["org.*".into()],
            },
        );
    })
    .await;
    let cases = [
        (json!({"name": "Bad Name", "url": rx.url}), "name"),
        (json!({"name": "x", "url": "ftp://example.com/"}), "url"),
        (json!({"name": "x", "url": "not a url"}), "url"),
        (
            json!({"name": "x", "url": rx.url, "events": ["user.create"]}),
            "events",
        ),
        (json!({"name": "x", "url": rx.url, "events": []}), "events"),
        (json!({"name": "billing", "url": rx.url}), "name"),
    ];
    for (body, field) in cases {
        let res = call(
            &app,
            Method::POST,
            "/api/v1/admin/webhooks",
            Some(body.clone()),
        )
        .await;
        let err = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            err["error"]["message"].as_str().unwrap().starts_with(field),
            "{body} -> {err}"
        );
    }
    let res = call(
        &app,
        Method::POST,
        "/api/v1/admin/webhooks",
        Some(json!({"url": rx.url})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "a missing name");
    let listed: Value = call(&app, Method::GET, "/api/v1/admin/webhooks", None)
        .await
        .json()
        .await
        .unwrap();
    let endpoints = listed["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "nothing half-made: {listed}");
    assert_eq!(endpoints[0]["source"], "config");
    for (method, path) in [
        (Method::PATCH, "/api/v1/admin/webhooks/billing"),
        (Method::DELETE, "/api/v1/admin/webhooks/billing"),
        (Method::POST, "/api/v1/admin/webhooks/billing/rotate-secret"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"url": "http://127.0.0.1:1/"}));
        let res = call(&app, method, path, body).await;
        expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = call(&app, Method::GET, "/api/v1/admin/webhooks/nope", None).await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = call_as(&app, Method::GET, "/api/v1/admin/webhooks", None, None).await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    // The file's filter: orgs only, signed with the file's secret.
    let (_, token) = user(&app, "frank@example.com").await;
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &token,
            json!({"name": "F", "slug": "frank-co"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let got = rx.wait_accepted(2, Duration::from_secs(10)).await;
    let types: Vec<Value> = got.iter().map(|g| event(g)["type"].clone()).collect();
    assert_eq!(types, [json!("org.created"), json!("org.member.added")]);
    for g in &got {
        verify(&secret, g, app.clock.unix());
    }
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_in_order_when_it_is_back() {
    let app = admin_app().await;
    let rx = Receiver::start().await;
    rx.set(Mode::Fail(503));
    let (id, _) = endpoint(&app, "flaky", &rx.url, &["user.created"]).await;
    let mut emails = Vec::new();
    for i in 0..5 {
        let email = format!("u{i}@example.com");
        user(&app, &email).await;
        emails.push(email);
    }
    // Retried (5, 30, 120, 600 ms… in this test's units), always the head.
    let start = Instant::now();
    while rx.all().len() < 4 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tries = rx.all();
    assert!(tries.len() >= 4, "{} attempts", tries.len());
    assert!(
        tries.iter().all(|g| g.id == tries[0].id),
        "later events wait behind the failing one"
    );
    let view = endpoint_view_when(&app, &id, |v| {
        v["consecutive_failures"].as_i64().unwrap() >= 4
    })
    .await;
    assert_eq!(view["health"], "retrying");
    assert!(
        view["consecutive_failures"].as_i64().unwrap() >= 4,
        "{view}"
    );
    let page: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/admin/webhooks/{id}/deliveries"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let head = page["deliveries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(head["response_status"], 503);
    assert_eq!(head["response_excerpt"], "receiver says no");
    assert!(head["next_attempt_at"].is_string());

    rx.set(Mode::Ok);
    let got = rx.wait_accepted(5, Duration::from_secs(15)).await;
    let order: Vec<String> = got
        .iter()
        .map(|g| event(g)["data"]["email"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, emails, "in the order of the changes");
    let view = endpoint_view_when(&app, &id, |v| v["deliveries"]["delivered"] == 5).await;
    assert_eq!(view["health"], "healthy");
    assert_eq!(view["deliveries"]["delivered"], 5);
    assert_eq!(view["deliveries"]["pending"], 0);
}

#[tokio::test]
async fn a_hanging_receiver_holds_up_neither_sign_ins_nor_other_endpoints() {
    let app = admin_app().await;
    let slow = Receiver::start().await;
    slow.set(Mode::Hang);
    let fast = Receiver::start().await;
    endpoint(&app, "slow", &slow.url, &["*"]).await;
    endpoint(&app, "fast", &fast.url, &["user.created"]).await;
    for i in 0..5 {
        let started = Instant::now();
        user(&app, &format!("h{i}@example.com")).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a sign-up took {:?}",
            started.elapsed()
        );
    }
    let got = fast.wait_accepted(5, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 5, "the other endpoint is served meanwhile");
    assert_eq!(slow.all().len(), 1, "one request at a time per endpoint");
}

#[tokio::test]
async fn after_three_days_a_delivery_is_given_up_and_can_be_sent_again() {
    let app = admin_app().await;
    let rx = Receiver::start().await;
    rx.set(Mode::Fail(500));
    let (id, _) = endpoint(&app, "gone", &rx.url, &["user.created"]).await;
    user(&app, "late@example.com").await;
    let start = Instant::now();
    while rx.all().is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Three days (in this test's units) later, still failing: given up.
    app.advance(300);
    let mut view = endpoint_view(&app, &id).await;
    let start = Instant::now();
    while view["health"] != "failing" && start.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        view = endpoint_view(&app, &id).await;
    }
    assert_eq!(view["health"], "failing", "{view}");
    assert_eq!(view["deliveries"]["failed"], 1);
    assert_eq!(view["deliveries"]["pending"], 0);
    let first_id = rx.all()[0].id.clone();

    rx.set(Mode::Ok);
    let page: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/admin/webhooks/{id}/deliveries"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let failed = page["deliveries"][0]["id"].as_i64().unwrap();
    assert_eq!(page["deliveries"][0]["status"], "failed");
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/webhooks/{id}/deliveries/{failed}/retry"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let got = rx.wait_accepted(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].id, first_id, "the same webhook-id");
    let start = Instant::now();
    while endpoint_view(&app, &id).await["health"] != "healthy"
        && start.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(endpoint_view(&app, &id).await["health"], "healthy");
    // A pending delivery cannot be "sent again"; an unknown one is 404.
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/webhooks/{id}/deliveries/999999/retry"),
        None,
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = call(
        &app,
        Method::POST,
        &format!("/api/v1/admin/webhooks/{id}/deliveries/abc/retry"),
        None,
    )
    .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let audit = audit_events(&app, KEY, "action=admin.webhook.redelivered").await;
    assert_eq!(audit.len(), 1);
}

#[tokio::test]
async fn nothing_is_written_for_events_no_endpoint_takes_and_rolled_back_changes_send_nothing() {
    let app = admin_app().await;
    let rx = Receiver::start().await;
    user(&app, "before@example.com").await;
    let (_, token) = user(&app, "owner@example.com").await;
    endpoint(&app, "orgs", &rx.url, &["org.created"]).await;
    // A slug that is taken: the transaction rolls back, and its event with it.
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &token,
            json!({"name": "A", "slug": "taken"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post_bearer(
            "/api/v1/orgs",
            &token,
            json!({"name": "B", "slug": "taken"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let got = rx.wait_accepted(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = rx.all();
    assert_eq!(all.len(), 1, "only the committed org: {all:?}");
    assert_eq!(event(&got[0])["data"]["name"], "A");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("derp_webhook_deliveries{status=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("derp_webhook_oldest_pending_seconds 0"));
}

#[tokio::test]
async fn the_console_creates_shows_the_secret_once_and_sends_a_test_event() {
    use crate::admin::admin_token;
    let app = admin_app().await;
    let rx = Receiver::start().await;
    admin_token(&app, "boss@example.com").await;
    app.sign_in_through_pages("boss@example.com").await;
    let page = app
        .client
        .get(app.url("/admin/webhooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("No endpoint yet") && html.contains("href=\"/admin/webhooks\""));
    let csrf = hidden(&html, "csrf_token");

    let res = app
        .client
        .post(app.url("/admin/webhooks"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "app"),
            ("url", "javascript:alert(1)"),
            ("events", "user.*"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"url-error\""), "the field is named");

    let res = app
        .client
        .post(app.url("/admin/webhooks"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "app"),
            ("url", rx.url.as_str()),
            ("events", "user.*, org.member.added"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let html = res.text().await.unwrap();
    let start = html.find("whsec_").expect("the secret is shown");
    let secret: String = html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "_+/=".contains(*c))
        .collect();
    let again = app
        .client
        .get(app.url("/admin/webhooks/app"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!again.contains("whsec_"), "shown once only");
    assert!(again.contains("user.*, org.member.added"));

    let res = app
        .client
        .post(app.url("/admin/webhooks/app/test"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let got = rx.wait_accepted(1, Duration::from_secs(10)).await;
    assert_eq!(event(&got[0])["type"], "webhook.test");
    verify(&secret, &got[0], app.clock.unix());
    let audit = audit_events(&app, KEY, "action=admin.webhook.created").await;
    assert_eq!(audit.len(), 1);
    // The secret is sealed under secrets.key: not in the database files.
    let data = app._dir.path().join("data");
    for name in ["derp.db", "derp.db-wal"] {
        let bytes = std::fs::read(data.join(name)).unwrap_or_default();
        let key_part = secret.trim_start_matches("whsec_");
        assert!(
            !bytes
                .windows(key_part.len())
                .any(|w| w == key_part.as_bytes()),
            "{name} holds the plain secret"
        );
    }
}
