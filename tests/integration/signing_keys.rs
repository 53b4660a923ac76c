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

/// The PKCS#8 openings of an Ed25519 and a P-256 private key, and PEM's
/// label: none may be in the database files.
const PLAIN_KEY_MARKS: [&[u8]; 4] = [
    // PKCS#1 RSA 2048: version 0, then the 257-byte modulus.
    &[0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00],
    &[
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ],
    &[
        0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
        0x02, 0x01,
    ],
    b"PRIVATE KEY",
];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_plain_private_key(data: &std::path::Path, extra: &[&[u8]]) {
    for name in ["derp.db", "derp.db-wal"] {
        let bytes = std::fs::read(data.join(name)).unwrap_or_default();
        for mark in PLAIN_KEY_MARKS.iter().chain(extra) {
            assert!(!contains(&bytes, mark), "{name} holds private key material");
        }
    }
}

fn file_config(dir: &std::path::Path, alg: &str) -> (std::path::PathBuf, derp::config::Config) {
    let file = dir.join("derp.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\npublic_url = \"http://derp.test\"\n[auth.native]\nenable_confirmation = false\n[auth.native.jwt]\nalgorithm = \"{alg}\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let loaded = derp::config::Config::load(Some(&file)).unwrap();
    let mut config = base_config(dir);
    config.server = derp::config::ServerConfig {
        bind: "127.0.0.1:0".into(),
        ..loaded.server.clone()
    };
    config.auth = loaded.auth.clone();
    (file, config)
}

#[tokio::test]
async fn private_signing_keys_are_sealed_in_the_database_files_at_start_and_after_rotate() {
    for alg in ["EdDSA", "ES256"] {
        let dir = tempfile::tempdir().unwrap();
        let (file, mut config) = file_config(dir.path(), alg);
        // The OpenID Connect provider's RSA id_token key is sealed too.
        let text = std::fs::read_to_string(&file).unwrap() + "[oidc_provider]\n";
        std::fs::write(&file, text).unwrap();
        config.oidc_provider = Some(Default::default());
        let data = dir.path().join("data");
        let app = spawn_config(config.clone(), tempfile::tempdir().unwrap()).await;
        let up = app.sign_up("sealed@example.com").await;
        let access = up["tokens"]["access_token"].as_str().unwrap().to_string();
        assert_no_plain_private_key(&data, &[]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_derp"))
            .env_remove("DERP_CONFIG")
            .args(["keys", "rotate", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_plain_private_key(&data, &[]);
        let after = spawn_config(config, tempfile::tempdir().unwrap()).await;
        assert_eq!(after.session(&access).await.status(), StatusCode::OK);
        assert_no_plain_private_key(&data, &[]);
    }
}

#[tokio::test]
async fn a_plaintext_key_row_is_sealed_at_the_next_start_and_tokens_signed_before_verify() {
    if sqlite_only("writes a plaintext row into the SQLite file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = file_config(dir.path(), "EdDSA");
    let data = dir.path().join("data");
    let first = spawn_config(config.clone(), tempfile::tempdir().unwrap()).await;
    let up = first.sign_up("old@example.com").await;
    let access = up["tokens"]["access_token"].as_str().unwrap().to_string();
    // A key stored the old way, in plaintext, and a token it signed.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&[0x5a; 32]);
    {
        let conn = rusqlite::Connection::open(data.join("derp.db")).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn.execute(
            "INSERT INTO signing_keys (kid, alg, private_der, created_at, retired_at) VALUES ('old-plain', 'EdDSA', ?1, 0, NULL)",
            [&der],
        )
        .unwrap();
    }
    let mut old_claims = claims(&access);
    old_claims["jti"] = "old-plain-token".into();
    let old_token = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            typ: Some("at+jwt".into()),
            kid: Some("old-plain".into()),
            ..jsonwebtoken::Header::new(Algorithm::EdDSA)
        },
        &old_claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&der),
    )
    .unwrap();

    let second = spawn_config(config, tempfile::tempdir().unwrap()).await;
    let stored: Vec<Vec<u8>> = {
        let conn = rusqlite::Connection::open(data.join("derp.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT private_der FROM signing_keys ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(stored.len(), 2);
    for s in &stored {
        assert!(s.starts_with(b"v1."), "every private key is sealed");
        assert!(!contains(s, &[0x5a; 32]));
    }
    assert_eq!(second.session(&access).await.status(), StatusCode::OK);
    assert_eq!(
        second.session(&old_token).await.status(),
        StatusCode::OK,
        "the sealed old key still verifies what it signed"
    );
}

#[tokio::test]
async fn a_database_whose_secrets_key_was_replaced_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = file_config(dir.path(), "EdDSA");
    let data = dir.path().join("data");
    let first = spawn_config(config.clone(), tempfile::tempdir().unwrap()).await;
    first.sign_up("lost@example.com").await;
    std::fs::write(data.join("secrets.key"), [9u8; 32]).unwrap();
    let config = on_postgres_if_asked(config).await;
    let err = derp::startup::Application::build(config, Default::default())
        .await
        .err()
        .expect("refuses to start");
    let text = err.to_string();
    assert!(text.contains("secrets.key"), "{text}");
}
