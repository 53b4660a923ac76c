use super::signing_keys::{open_private, parse_alg};
use super::*;
use crate::auth::sealer::Sealer;
use crate::config::JwtAlgorithm;
use crate::storage::keys;
use crate::storage::{Conn, migrations};
use jsonwebtoken::{Algorithm, Header};

fn conn() -> Conn {
    let c = Conn::open_in_memory().unwrap();
    migrations::apply(&c).unwrap();
    c
}

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        sub: "u".into(),
        sid: "s".into(),
        session_id: "s".into(),
        iat: now,
        exp: now + 900,
        nbf: None,
        jti: "j".into(),
        iss: "https://issuer".into(),
        aud: None,
        email: "a@example.com".into(),
        role: "default".into(),
        org_id: None,
        org_role: None,
        amr: vec!["pwd".into()],
        client_id: None,
        scope: None,
    }
}

fn settings(alg: JwtAlgorithm, secret: Option<&str>) -> KeyringSettings {
    KeyringSettings {
        alg,
        secret: secret.map(|s| s.as_bytes().to_vec()),
        issuer: "https://issuer".into(),
        audience: None,
        access_ttl_seconds: 900,
        sealer: Some(sealer()),
        extra_algs: vec![],
    }
}

fn sealer() -> Sealer {
    Sealer::from_key([7; 32])
}

#[test]
fn private_keys_are_stored_sealed_and_plaintext_rows_are_sealed_at_load() {
    let c = conn();
    let ring = Keyring::load(&c, settings(JwtAlgorithm::ES256, None), 1000).unwrap();
    let token = ring.sign(&claims(1000)).unwrap();
    let (kid, stored) = keys::all(&c).unwrap().remove(0);
    assert!(stored.starts_with(SEALED_PREFIX), "stored sealed");
    // An older derp's row: the plaintext DER.
    let der = open_private(&sealer(), &kid, &stored).unwrap();
    assert_eq!(der[0], 0x30);
    keys::set_private(&c, &kid, &der).unwrap();
    let again = Keyring::load(&c, settings(JwtAlgorithm::ES256, None), 1000).unwrap();
    let (_, resealed) = keys::all(&c).unwrap().remove(0);
    assert!(resealed.starts_with(SEALED_PREFIX), "sealed at load");
    assert_eq!(again.verify(&token, 1000).unwrap().sub, "u");
    // Another secrets.key: the load fails, naming it.
    let mut other = settings(JwtAlgorithm::ES256, None);
    other.sealer = Some(Sealer::from_key([8; 32]));
    let err = Keyring::load(&c, other, 1000).unwrap_err();
    assert!(format!("{err:?}").contains("secrets.key"), "{err:?}");
}

#[test]
fn every_algorithm_round_trips_and_publishes() {
    for alg in [
        JwtAlgorithm::EdDSA,
        JwtAlgorithm::ES256,
        JwtAlgorithm::RS256,
    ] {
        let c = conn();
        let ring = Keyring::load(&c, settings(alg, None), 1000).unwrap();
        let token = ring.sign(&claims(1000)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, parse_alg(alg.as_str()).unwrap());
        assert!(header.kid.is_some());
        assert_eq!(ring.verify(&token, 1000).unwrap().sub, "u");
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 1);
    }
}

/// Ed25519 signatures are deterministic: the cached key gives the very
/// bytes the library's encoder gives.
#[test]
fn the_cached_ed25519_signer_matches_the_library() {
    let c = conn();
    let ring = Keyring::load(&c, settings(JwtAlgorithm::EdDSA, None), 1000).unwrap();
    let token = ring.sign(&claims(1000)).unwrap();
    let set = ring.current();
    assert!(set.signing.ed25519.is_some());
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = set.signing.kid.clone();
    let library = jsonwebtoken::encode(&header, &claims(1000), &set.signing.key).unwrap();
    assert_eq!(token, library);
    // A changed byte of the payload no longer verifies.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let first = if parts[1].starts_with('e') { "f" } else { "e" };
    parts[1].replace_range(0..1, first);
    assert!(ring.verify(&parts.join("."), 1000).is_err());
}

#[test]
fn hs256_has_no_kid_and_no_jwks() {
    let c = conn();
    let ring = Keyring::load(&c, settings(JwtAlgorithm::HS256, Some(&"k".repeat(32))), 0).unwrap();
    let token = ring.sign(&claims(0)).unwrap();
    assert!(jsonwebtoken::decode_header(&token).unwrap().kid.is_none());
    assert!(ring.verify(&token, 0).is_ok());
    assert!(ring.jwks()["keys"].as_array().unwrap().is_empty());
    let other = Keyring::load(&c, settings(JwtAlgorithm::HS256, Some(&"x".repeat(32))), 0).unwrap();
    assert!(
        other.verify(&token, 0).is_err(),
        "another secret must not verify"
    );
}

#[test]
fn rotation_keeps_old_key_verifying_until_its_tokens_expire() {
    let c = conn();
    let ring = Keyring::load(&c, settings(JwtAlgorithm::EdDSA, None), 1000).unwrap();
    let old = ring.sign(&claims(1000)).unwrap();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let new_kid = rotate(&c, JwtAlgorithm::EdDSA, &[], &sealer(), 1100)
        .unwrap()
        .remove(0);
    ring.reload(&c, 1100).unwrap();
    let new = ring.sign(&claims(1100)).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(),
        new_kid
    );
    assert!(ring.verify(&old, 1100).is_ok(), "old key still verifies");
    assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);
    ring.reload(&c, 1100 + 901).unwrap();
    assert!(
        ring.verify(&old, 1100).is_err(),
        "old key dropped after one token life"
    );
    assert!(ring.verify(&new, 1100).is_ok());
    assert_ne!(old_kid, new_kid);
}

#[test]
fn id_token_keys_sit_beside_hs256_and_client_tokens_stay_off_the_api() {
    let c = conn();
    let mut s = settings(JwtAlgorithm::HS256, Some(&"k".repeat(32)));
    s.extra_algs = vec![JwtAlgorithm::RS256];
    let ring = Keyring::load(&c, s, 1000).unwrap();
    let jwks = ring.jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    let id = ring
        .sign_id_token(JwtAlgorithm::RS256, &serde_json::json!({"sub": "u"}))
        .unwrap();
    let header = jsonwebtoken::decode_header(&id).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), jwks["keys"][0]["kid"].as_str());
    assert!(
        ring.sign_id_token(JwtAlgorithm::ES256, &serde_json::json!({}))
            .is_err()
    );
    // The access tokens are still HS256, with no kid.
    let token = ring.sign(&claims(1000)).unwrap();
    assert!(jsonwebtoken::decode_header(&token).unwrap().kid.is_none());
    assert!(ring.verify(&token, 1000).is_ok());
    // A client's token is not derp's API token, and the reverse.
    let mut cc = claims(1000);
    cc.client_id = Some("app".into());
    cc.aud = Some("app".into());
    let client_token = ring.sign(&cc).unwrap();
    assert!(ring.verify(&client_token, 1000).is_err());
    assert_eq!(ring.verify_client(&client_token, 1000).unwrap().sub, "u");
    assert!(ring.verify_client(&token, 1000).is_err());
    cc.aud = Some("other".into());
    assert!(ring.verify_client(&ring.sign(&cc).unwrap(), 1000).is_err());
    // Rotation renews the RS256 key too.
    let kids = rotate(
        &c,
        JwtAlgorithm::HS256,
        &[JwtAlgorithm::RS256],
        &sealer(),
        1100,
    )
    .unwrap();
    assert_eq!(kids.len(), 1);
    ring.reload(&c, 1100).unwrap();
    assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);
}

fn hs256_ring(audience: Option<&str>) -> Keyring {
    let mut s = settings(JwtAlgorithm::HS256, Some(&"k".repeat(32)));
    s.audience = audience.map(str::to_string);
    Keyring::load(&conn(), s, 0).unwrap()
}

#[test]
fn a_configured_audience_is_required() {
    let ring = hs256_ring(Some("my-app"));
    let mut c = claims(1000);
    c.aud = None;
    let without = ring.sign(&c).unwrap();
    assert!(ring.verify(&without, 1000).is_err(), "no aud");
    c.aud = Some("other-app".into());
    assert!(ring.verify(&ring.sign(&c).unwrap(), 1000).is_err());
    c.aud = Some("my-app".into());
    assert!(ring.verify(&ring.sign(&c).unwrap(), 1000).is_ok());
    // No audience configured: none is asked for.
    assert!(hs256_ring(None).verify(&without, 1000).is_ok());
}

#[test]
fn nbf_and_iat_in_the_future_are_refused_beyond_the_leeway() {
    let ring = hs256_ring(None);
    let now = 10_000;
    let at = |iat: i64, nbf: Option<i64>| {
        let mut c = claims(now);
        c.iat = iat;
        c.nbf = nbf;
        ring.verify(&ring.sign(&c).unwrap(), now)
    };
    assert!(at(now, None).is_ok());
    assert!(at(now, Some(now)).is_ok());
    assert!(at(now + CLOCK_LEEWAY, Some(now + CLOCK_LEEWAY)).is_ok());
    assert!(at(now + CLOCK_LEEWAY + 1, None).is_err(), "iat ahead");
    assert!(at(now, Some(now + CLOCK_LEEWAY + 1)).is_err(), "nbf ahead");
    assert!(at(now + 3600, Some(now + 3600)).is_err());
    // Expired: no leeway.
    assert!(
        ring.verify(&ring.sign(&claims(now)).unwrap(), now + 900)
            .is_err()
    );
}
