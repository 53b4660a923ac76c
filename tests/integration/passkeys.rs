//! Passkeys over real HTTP with a software authenticator made here: a P-256
//! key, the authenticator data, the "none" attestation in CBOR and the
//! client data JSON built by hand as a browser and an authenticator would
//! (WebAuthn Level 2, §6.1, §6.5, §5.8.1), signed with `p256`. derp checks
//! them with webauthn-rs; nothing of the protocol is mocked on its side.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The origin the tests' "browser" runs on (rp id `localhost`).
pub(crate) const ORIGIN: &str = "http://localhost:8443";
const KEY: &str = crate::admin::KEY;

async fn passkey_app() -> TestApp {
    spawn_with(|c| {
        c.server.public_url = Some(ORIGIN.into());
        c.admin.service_keys = vec![derp::config::Secret::new(KEY)];
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
    })
    .await
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

/// CBOR (RFC 8949) heads: major type and length.
fn cbor_head(major: u8, len: usize, out: &mut Vec<u8>) {
    let m = major << 5;
    match len {
        0..=23 => out.push(m | len as u8),
        24..=255 => out.extend([m | 24, len as u8]),
        _ => {
            out.push(m | 25);
            out.extend((len as u16).to_be_bytes());
        }
    }
}

fn cbor_text(s: &str, out: &mut Vec<u8>) {
    cbor_head(3, s.len(), out);
    out.extend(s.as_bytes());
}

fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, b.len(), out);
    out.extend(b);
}

/// A resident ES256 credential on a software authenticator.
pub(crate) struct SoftKey {
    key: SigningKey,
    cred_id: Vec<u8>,
    user_handle: Vec<u8>,
    counter: u32,
    /// The origin its "browser" reports.
    pub(crate) origin: String,
    /// Whether the authenticator verifies its user (PIN, biometric).
    verifies_user: bool,
}

impl SoftKey {
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(point.x().unwrap(), &mut out);
        out.push(0x22);
        cbor_bytes(point.y().unwrap(), &mut out);
        out
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut f = 0x01; // user present
        if self.verifies_user {
            f |= 0x04;
        }
        if attested {
            f |= 0x40;
        }
        f
    }

    fn auth_data(&self, rp_id: &str, attested: bool) -> Vec<u8> {
        let mut out = Sha256::digest(rp_id.as_bytes()).to_vec();
        out.push(self.flags(attested));
        out.extend(self.counter.to_be_bytes());
        if attested {
            out.extend([0u8; 16]); // AAGUID
            out.extend((self.cred_id.len() as u16).to_be_bytes());
            out.extend(&self.cred_id);
            out.extend(self.cose_key());
        }
        out
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// `navigator.credentials.create(options)`, as `toJSON()` gives it.
    pub(crate) fn create(options: &Value) -> (SoftKey, Value) {
        let mut key = SoftKey::new(unb64(options["user"]["id"].as_str().unwrap()));
        let credential = key.attest(options);
        (key, credential)
    }

    /// A new key pair and credential id for `user_handle`.
    fn new(user_handle: Vec<u8>) -> SoftKey {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        SoftKey {
            key: SigningKey::random(&mut rand::rngs::OsRng),
            cred_id: id.to_vec(),
            user_handle,
            counter: 0,
            origin: ORIGIN.into(),
            verifies_user: true,
        }
    }

    pub(crate) fn attest(&mut self, options: &Value) -> Value {
        let rp_id = options["rp"]["id"].as_str().unwrap();
        let client_data =
            self.client_data("webauthn.create", options["challenge"].as_str().unwrap());
        let mut att = vec![0xa3];
        cbor_text("fmt", &mut att);
        cbor_text("none", &mut att);
        cbor_text("attStmt", &mut att);
        att.push(0xa0);
        cbor_text("authData", &mut att);
        cbor_bytes(&self.auth_data(rp_id, true), &mut att);
        json!({
            "id": b64(&self.cred_id),
            "rawId": b64(&self.cred_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&att),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get(options)`: the counter goes up by one.
    pub(crate) fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.sign(options)
    }

    /// An assertion with the current counter (no increment).
    fn sign(&self, options: &Value) -> Value {
        let rp_id = options["rpId"].as_str().unwrap();
        let client_data = self.client_data("webauthn.get", options["challenge"].as_str().unwrap());
        let auth_data = self.auth_data(rp_id, false);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let sig: DerSignature = self.key.sign(&signed);
        json!({
            "id": b64(&self.cred_id),
            "rawId": b64(&self.cred_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(sig.as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

pub(crate) fn access(body: &Value) -> String {
    body["tokens"]["access_token"].as_str().unwrap().to_string()
}

async fn start_registration(app: &TestApp, access: &str) -> (String, Value) {
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/start",
            access,
            json!({"name": "Laptop"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    (
        body["flow_id"].as_str().unwrap().to_string(),
        body["options"].clone(),
    )
}

/// Registers a new soft passkey for the signed-in user; answers it and the
/// finish body.
async fn register(app: &TestApp, access: &str) -> (SoftKey, Value) {
    let (flow_id, options) = start_registration(app, access).await;
    let (key, credential) = SoftKey::create(&options);
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/finish",
            access,
            json!({"flow_id": flow_id, "credential": credential}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    (key, res.json().await.unwrap())
}

async fn sign_in_start(app: &TestApp, body: Value) -> (String, Value) {
    let res = app.post("/api/v1/auth/passkeys/sign-in/start", body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    (
        body["flow_id"].as_str().unwrap().to_string(),
        body["options"].clone(),
    )
}

async fn sign_in_finish(app: &TestApp, flow_id: &str, credential: Value) -> reqwest::Response {
    app.post(
        "/api/v1/auth/passkeys/sign-in/finish",
        json!({"flow_id": flow_id, "credential": credential}),
    )
    .await
}

/// A discoverable sign-in (no address) with `key`.
async fn passkey_sign_in(app: &TestApp, key: &mut SoftKey) -> reqwest::Response {
    let (flow_id, options) = sign_in_start(app, json!({})).await;
    sign_in_finish(app, &flow_id, key.assert(&options)).await
}

#[tokio::test]
async fn a_passkey_registers_and_signs_in_alone_as_two_factors() {
    let app = passkey_app().await;
    let up = app.sign_up("pk@example.com").await;
    let (flow_id, options) = start_registration(&app, &access(&up)).await;
    // Discoverable, user verification required, rp id the public host.
    assert_eq!(options["rp"]["id"], "localhost", "{options}");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_ne!(
        options["user"]["id"].as_str().unwrap(),
        b64(up["user"]["id"].as_str().unwrap().as_bytes()),
        "the user handle is not the user id"
    );
    let (mut key, credential) = SoftKey::create(&options);
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/finish",
            &access(&up),
            json!({"flow_id": flow_id, "credential": credential}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["factor"]["type"], "passkey");
    assert_eq!(done["factor"]["name"], "Laptop");
    assert_eq!(done["recovery_codes"].as_array().unwrap().len(), 10);
    let factors: Value = app
        .get_bearer("/api/v1/auth/mfa/factors", &access(&up))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(factors["factors"][0]["type"], "passkey", "{factors}");
    assert!(factors["factors"][0].get("secret").is_none());
    // The session that registered it has shown the passkey too.
    let refreshed: Value = app
        .refresh(up["tokens"]["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(&access(&refreshed))["amr"],
        json!(["pwd", "hwk", "user", "mfa"])
    );

    // The passkey alone: no address, the browser picks it.
    let (flow_id, options) = sign_in_start(&app, json!({})).await;
    assert_eq!(options["rpId"], "localhost");
    assert_eq!(options["userVerification"], "required");
    assert!(
        options
            .get("allowCredentials")
            .is_none_or(|a| a.as_array().is_some_and(|a| a.is_empty())),
        "{options}"
    );
    let res = sign_in_finish(&app, &flow_id, key.assert(&options)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "pk@example.com");
    let amr = json!(["hwk", "user", "mfa"]);
    assert_eq!(claims(&access(&body))["amr"], amr);
    let session: Value = app.session(&access(&body)).await.json().await.unwrap();
    assert_eq!(session["amr"], amr, "{session}");
    // Kept across refresh.
    let refreshed: Value = app
        .refresh(body["tokens"]["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(claims(&access(&refreshed))["amr"], amr);

    // With the address: that user's passkeys are offered.
    let (flow_id, options) = sign_in_start(&app, json!({"email": "pk@example.com"})).await;
    assert_eq!(
        options["allowCredentials"][0]["id"],
        b64(&key.cred_id),
        "{options}"
    );
    let res = sign_in_finish(&app, &flow_id, key.assert(&options)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // An address without passkeys (or unknown) gets the discoverable
    // options; a malformed one is a 400 naming the field.
    let (_, options) = sign_in_start(&app, json!({"email": "nobody@example.com"})).await;
    assert!(
        options
            .get("allowCredentials")
            .is_none_or(|a| a.as_array().is_some_and(|a| a.is_empty())),
        "{options}"
    );
    let res = app
        .post(
            "/api/v1/auth/passkeys/sign-in/start",
            json!({"email": "not-an-address"}),
        )
        .await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(body["error"]["fields"]["email"].is_string(), "{body}");

    let events = audit_events(&app, KEY, "action=passkey.registered").await;
    assert_eq!(events.len(), 1);
    let events = audit_events(&app, KEY, "action=passkey.sign_in").await;
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn a_password_then_a_passkey_finishes_the_second_step() {
    let app = passkey_app().await;
    let up = app.sign_up("two@example.com").await;
    let (mut key, done) = register(&app, &access(&up)).await;
    let factor_id = done["factor"]["id"].as_str().unwrap();

    let res = app.sign_in("two@example.com", PASSWORD).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body["tokens"].is_null());
    assert_eq!(
        body["factors"],
        json!([{"id": factor_id, "type": "passkey"}])
    );
    let mfa_token = body["mfa_token"].as_str().unwrap();
    let (flow_id, options) = sign_in_start(&app, json!({"mfa_token": mfa_token})).await;
    assert_eq!(options["allowCredentials"][0]["id"], b64(&key.cred_id));
    let res = sign_in_finish(&app, &flow_id, key.assert(&options)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        claims(&access(&body))["amr"],
        json!(["pwd", "hwk", "user", "mfa"])
    );
    // The mfa_token is spent with it.
    let res = app
        .post(
            "/api/v1/auth/passkeys/sign-in/start",
            json!({"mfa_token": mfa_token}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // A junk mfa_token starts nothing.
    let res = app
        .post(
            "/api/v1/auth/passkeys/sign-in/start",
            json!({"mfa_token": "junk"}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn another_users_passkey_cannot_answer_the_second_step() {
    let app = passkey_app().await;
    let a = app.sign_up("a@example.com").await;
    let b = app.sign_up("b@example.com").await;
    let (_a_key, _) = register(&app, &access(&a)).await;
    let (mut b_key, _) = register(&app, &access(&b)).await;

    let body: Value = app
        .sign_in("a@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let mfa_token = body["mfa_token"].as_str().unwrap().to_string();
    for _ in 0..5 {
        let (flow_id, options) = sign_in_start(&app, json!({"mfa_token": mfa_token})).await;
        let res = sign_in_finish(&app, &flow_id, b_key.assert(&options)).await;
        expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    }
    // Each refusal counted against the mfa_token: five and it is dead.
    let res = app
        .post(
            "/api/v1/auth/passkeys/sign-in/start",
            json!({"mfa_token": mfa_token}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // B's passkey still signs B in on its own.
    assert_eq!(
        passkey_sign_in(&app, &mut b_key).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_wrong_origin_a_missing_verification_and_a_bad_signature_are_refused() {
    let app = passkey_app().await;
    let up = app.sign_up("origin@example.com").await;

    // Registration from another origin.
    let (flow_id, options) = start_registration(&app, &access(&up)).await;
    let (mut evil, _) = SoftKey::create(&options);
    evil.origin = "http://evil.localhost:8443".into();
    let credential = evil.attest(&options);
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/finish",
            &access(&up),
            json!({"flow_id": flow_id, "credential": credential}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;

    // Registration without user verification.
    let (flow_id, options) = start_registration(&app, &access(&up)).await;
    let (mut lazy, _) = SoftKey::create(&options);
    lazy.verifies_user = false;
    let credential = lazy.attest(&options);
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/finish",
            &access(&up),
            json!({"flow_id": flow_id, "credential": credential}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;

    // Junk is a 400 naming the field.
    let (flow_id, _) = start_registration(&app, &access(&up)).await;
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/finish",
            &access(&up),
            json!({"flow_id": flow_id, "credential": {"id": 1}}),
        )
        .await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(body["error"]["fields"]["credential"].is_string(), "{body}");

    let (mut key, _) = register(&app, &access(&up)).await;
    // A sign-in from another origin.
    key.origin = "http://evil.localhost:8443".into();
    let res = passkey_sign_in(&app, &mut key).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    key.origin = ORIGIN.into();
    // Without user verification.
    key.verifies_user = false;
    let res = passkey_sign_in(&app, &mut key).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    key.verifies_user = true;
    // Signed by another key.
    let (flow_id, options) = sign_in_start(&app, json!({})).await;
    let mut forged = key.assert(&options);
    let other = SoftKey::new(key.user_handle.clone());
    forged["response"]["signature"] = other.sign(&options)["response"]["signature"].clone();
    let res = sign_in_finish(&app, &flow_id, forged).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    // An unknown credential.
    let mut stranger = SoftKey::new(key.user_handle.clone());
    let res = passkey_sign_in(&app, &mut stranger).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    // And the real one still works.
    assert_eq!(
        passkey_sign_in(&app, &mut key).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_flow_is_spent_once_and_expires() {
    let app = passkey_app().await;
    let up = app.sign_up("flow@example.com").await;
    let (mut key, _) = register(&app, &access(&up)).await;

    // Replay: the same flow and answer a second time.
    let (flow_id, options) = sign_in_start(&app, json!({})).await;
    let answer = key.assert(&options);
    let res = sign_in_finish(&app, &flow_id, answer.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = sign_in_finish(&app, &flow_id, answer).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // A refused answer spends the flow too.
    let (flow_id, options) = sign_in_start(&app, json!({})).await;
    key.origin = "http://evil.localhost:8443".into();
    let bad = key.assert(&options);
    key.origin = ORIGIN.into();
    expect_error(
        sign_in_finish(&app, &flow_id, bad).await,
        StatusCode::UNAUTHORIZED,
        "passkey_rejected",
    )
    .await;
    let res = sign_in_finish(&app, &flow_id, key.assert(&options)).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // Expired: 5 minutes.
    let (flow_id, options) = sign_in_start(&app, json!({})).await;
    app.advance(301);
    let res = sign_in_finish(&app, &flow_id, key.assert(&options)).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // An unknown flow, and a registration flow used to sign in.
    let res = sign_in_finish(&app, "no-such-flow", key.assert(&options)).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let fresh: Value = passkey_sign_in(&app, &mut key).await.json().await.unwrap();
    let (reg_flow, _) = start_registration(&app, &access(&fresh)).await;
    let res = sign_in_finish(&app, &reg_flow, key.assert(&options)).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // A registration flow is its user's only.
    let other = app.sign_up("other@example.com").await;
    let (flow_id, options) = start_registration(&app, &access(&fresh)).await;
    let (_, credential) = SoftKey::create(&options);
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/finish",
            &access(&other),
            json!({"flow_id": flow_id, "credential": credential}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn a_sign_count_that_does_not_grow_is_refused() {
    let app = passkey_app().await;
    let up = app.sign_up("clone@example.com").await;
    let (mut key, _) = register(&app, &access(&up)).await;
    assert_eq!(
        passkey_sign_in(&app, &mut key).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        passkey_sign_in(&app, &mut key).await.status(),
        StatusCode::OK
    );
    // A clone of the authenticator still at the earlier count.
    let (flow_id, options) = sign_in_start(&app, json!({})).await;
    key.counter = 1;
    let res = sign_in_finish(&app, &flow_id, key.sign(&options)).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    // The same count again is refused too; a higher one passes.
    let (flow_id, options) = sign_in_start(&app, json!({})).await;
    key.counter = 2;
    let res = sign_in_finish(&app, &flow_id, key.sign(&options)).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    assert_eq!(
        passkey_sign_in(&app, &mut key).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_removed_passkey_signs_in_no_more_and_admins_see_and_remove_passkeys() {
    let app = passkey_app().await;
    let up = app.sign_up("gone@example.com").await;
    let user_id = up["user"]["id"].as_str().unwrap().to_string();
    let (mut key, done) = register(&app, &access(&up)).await;
    let (mut second, _) = register(&app, &access(&up)).await;
    // A passkey already registered cannot be registered again.
    let (flow_id, options) = start_registration(&app, &access(&up)).await;
    assert_eq!(
        options["excludeCredentials"].as_array().map(Vec::len),
        Some(2),
        "{options}"
    );
    let again = key.attest(&options);
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/finish",
            &access(&up),
            json!({"flow_id": flow_id, "credential": again}),
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    let factor_id = done["factor"]["id"].as_str().unwrap();
    let res = call_as(
        &app,
        Method::DELETE,
        format!("/api/v1/auth/mfa/factors/{factor_id}"),
        Some(&access(&up)),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = passkey_sign_in(&app, &mut key).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    assert_eq!(
        passkey_sign_in(&app, &mut second).await.status(),
        StatusCode::OK
    );

    // Admins: the user page lists it, the overview counts the user, and
    // "remove all factors" removes the passkeys.
    let detail: Value = call_as(
        &app,
        Method::GET,
        format!("/api/v1/admin/users/{user_id}"),
        Some(KEY),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(detail["factors"][0]["type"], "passkey", "{detail}");
    let overview: Value = call_as(&app, Method::GET, "/api/v1/admin/overview", Some(KEY), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(overview["users_with_mfa"], 1, "{overview}");
    let res = call_as(
        &app,
        Method::DELETE,
        format!("/api/v1/admin/users/{user_id}/mfa"),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = passkey_sign_in(&app, &mut second).await;
    expect_error(res, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    let res = app.sign_in("gone@example.com", PASSWORD).await;
    let body: Value = res.json().await.unwrap();
    assert!(body["tokens"]["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn passkeys_need_a_domain_and_can_be_turned_off() {
    // The default public_url of the tests is an IP address.
    let app = spawn_app().await;
    let up = app.sign_up("ip@example.com").await;
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/start",
            &access(&up),
            json!({}),
        )
        .await;
    let body = expect_error(res, StatusCode::NOT_IMPLEMENTED, "passkeys_unavailable").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("localhost"),
        "{body}"
    );
    let res = app
        .post("/api/v1/auth/passkeys/sign-in/start", json!({}))
        .await;
    expect_error(res, StatusCode::NOT_IMPLEMENTED, "passkeys_unavailable").await;
    // No button on the pages.
    let html = app
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("passkeys.js"), "{html}");

    let off = spawn_with(|c| {
        c.server.public_url = Some(ORIGIN.into());
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.mfa.passkeys = false;
    })
    .await;
    let res = off
        .post("/api/v1/auth/passkeys/sign-in/start", json!({}))
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "feature_disabled").await;

    // Bearer needed to register; a recent sign-in too.
    let app = passkey_app().await;
    let res = app
        .post("/api/v1/auth/passkeys/register/start", json!({}))
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let up = app.sign_up("old@example.com").await;
    app.advance(601);
    let res = app
        .post_bearer(
            "/api/v1/auth/passkeys/register/start",
            &access(&up),
            json!({}),
        )
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "reauthentication_required").await;
}

async fn page(app: &TestApp, path: &str) -> String {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.text().await.unwrap()
}

async fn form_json(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = crate::mfa::post_form(app, path, form).await;
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn the_pages_register_a_passkey_sign_in_with_it_and_use_it_as_the_second_step() {
    let app = passkey_app().await;
    app.sign_up("pages@example.com").await;
    app.sign_in_through_pages("pages@example.com").await;

    // /account/security: "Add a passkey", our script, no inline script.
    let html = page(&app, "/account/security").await;
    assert!(html.contains("Add a passkey"), "{html}");
    assert!(html.contains(r#"<script src="/static/passkeys.js" defer></script>"#));
    let csrf = hidden(&html, "csrf_token");
    // The options step is a form post: its CSRF token is checked.
    let res = crate::mfa::post_form(&app, "/account/security/passkeys/options", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (status, start) = form_json(
        &app,
        "/account/security/passkeys/options",
        &[("csrf_token", &csrf), ("name", "Phone")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let (mut key, credential) = SoftKey::create(&start["options"]);
    let res = crate::mfa::post_form(
        &app,
        "/account/security/passkeys",
        &[
            ("csrf_token", &csrf),
            ("flow_id", start["flow_id"].as_str().unwrap()),
            ("credential", &credential.to_string()),
        ],
    )
    .await;
    // The first factor: its recovery codes are shown once.
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("recovery code"), "{html}");
    let html = page(&app, "/account/security").await;
    assert!(html.contains("Phone"), "{html}");

    // Sign out; "Sign in with a passkey" on /login signs in alone.
    let res = crate::mfa::post_form(&app, "/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = page(&app, "/login").await;
    assert!(html.contains("Sign in with a passkey"), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let (status, start) = form_json(&app, "/login/passkey/options", &[("csrf_token", &csrf)]).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let answer = key.assert(&start["options"]);
    let res = crate::mfa::post_form(
        &app,
        "/login/passkey",
        &[
            ("csrf_token", &csrf),
            ("flow_id", start["flow_id"].as_str().unwrap()),
            ("credential", &answer.to_string()),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/account");
    let html = page(&app, "/account").await;
    assert!(html.contains("pages@example.com"), "{html}");
    // A replayed answer shows the login page with an error, no sign-in.
    let other = spawn_client();
    let login = other
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let other_csrf = hidden(&login, "csrf_token");
    let res = other
        .post(app.url("/login/passkey"))
        .form(&[
            ("csrf_token", other_csrf.as_str()),
            ("flow_id", start["flow_id"].as_str().unwrap()),
            ("credential", &answer.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.text().await.unwrap().contains("expired"));

    // A password sign-in on the pages now asks for the second step, where
    // the passkey is offered and finishes it.
    let csrf = hidden(&page(&app, "/account").await, "csrf_token");
    crate::mfa::post_form(&app, "/logout", &[("csrf_token", &csrf)]).await;
    let csrf = hidden(&page(&app, "/login").await, "csrf_token");
    let res = crate::mfa::post_form(
        &app,
        "/login",
        &[
            ("csrf_token", &csrf),
            ("email", "pages@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/mfa");
    let html = page(&app, "/mfa").await;
    assert!(html.contains("Use a passkey"), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let (status, start) = form_json(&app, "/mfa/passkey/options", &[("csrf_token", &csrf)]).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    assert_eq!(
        start["options"]["allowCredentials"][0]["id"],
        b64(&key.cred_id)
    );
    let res = crate::mfa::post_form(
        &app,
        "/mfa/passkey",
        &[
            ("csrf_token", &csrf),
            ("flow_id", start["flow_id"].as_str().unwrap()),
            ("credential", &key.assert(&start["options"]).to_string()),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/account");
    let events = audit_events(&app, KEY, "action=sign_in").await;
    assert_eq!(events[0]["detail"]["factor"], "passkey", "{events:?}");

    // The script is ours, served from static/ with the pages' CSP.
    let res = app
        .client
        .get(app.url("/static/passkeys.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let res = spawn_client().get(app.url("/login")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
}
