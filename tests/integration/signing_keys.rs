//! Networkless verification as an app's backend would do it, in every mode.

use crate::helpers::*;
use derp::config::{JwtAlgorithm, Secret};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

async fn verify_with_jwks(app: &TestApp, token: &str, alg: Algorithm) -> Value {
    let set: JwkSet = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(token)
        .unwrap()
        .kid
        .expect("kid");
    let jwk = set.find(&kid).expect("the signing key is published");
    let mut v = Validation::new(alg);
    v.set_issuer(&[&app.base]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .expect("verifies against the JWKS")
        .claims
}

#[tokio::test]
async fn asymmetric_modes_verify_against_the_published_jwks() {
    for (alg, jwt_alg) in [
        (JwtAlgorithm::EdDSA, Algorithm::EdDSA),
        (JwtAlgorithm::ES256, Algorithm::ES256),
        (JwtAlgorithm::RS256, Algorithm::RS256),
    ] {
        let app = spawn_with(|c| {
            let n = c.auth.native.get_or_insert_with(Default::default);
            n.enable_confirmation = false;
            n.jwt.algorithm = Some(alg);
        })
        .await;
        let up = app.sign_up("k@example.com").await;
        let access = up["tokens"]["access_token"].as_str().unwrap();
        assert_eq!(header(access)["alg"], alg.as_str());
        let c = verify_with_jwks(&app, access, jwt_alg).await;
        assert_eq!(c["sub"], up["user"]["id"]);
        assert_eq!(app.session(access).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn hs256_uses_the_configured_secret_without_kid_or_jwks() {
    let secret = "a-long-enough-secret-for-hs256-tokens!!";
    let app = spawn_with(|c| {
        let n = c.auth.native.get_or_insert_with(Default::default);
        n.enable_confirmation = false;
        n.jwt.secret = Some(Secret::new(secret));
        n.jwt.audience = Some("my-app".into());
    })
    .await;
    let up = app.sign_up("h@example.com").await;
    let access = up["tokens"]["access_token"].as_str().unwrap();
    let h = header(access);
    assert_eq!(h["alg"], "HS256");
    assert!(h.get("kid").is_none());
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&["my-app"]);
    let c = jsonwebtoken::decode::<Value>(access, &DecodingKey::from_secret(secret.as_bytes()), &v)
        .unwrap()
        .claims;
    assert_eq!(c["aud"], "my-app");
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        0,
        "the secret is never published"
    );
    // A token signed with another secret is refused.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            typ: Some("at+jwt".into()),
            ..jsonwebtoken::Header::new(Algorithm::HS256)
        },
        &c,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-that-is-32-bytes-long!"),
    )
    .unwrap();
    assert_eq!(
        app.session(&forged).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_signing_key_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(dir.path());
    config
        .auth
        .native
        .get_or_insert_with(Default::default)
        .enable_confirmation = false;
    // A fixed public URL: the issuer must not depend on the random port.
    config.server.public_url = Some("http://derp.test".into());
    let first = spawn_config(config.clone(), tempfile::tempdir().unwrap()).await;
    let up = first.sign_up("p@example.com").await;
    let access = up["tokens"]["access_token"].as_str().unwrap().to_string();
    let second = spawn_config(config, tempfile::tempdir().unwrap()).await;
    assert_eq!(
        second.session(&access).await.status(),
        StatusCode::OK,
        "same database, same key"
    );
}
