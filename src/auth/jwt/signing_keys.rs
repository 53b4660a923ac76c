//! The stored signing keys: loaded (a first one generated), their private
//! parts sealed, rotated, and published as the JWKS.

use super::{HMAC_KID, KEY_SEAL_INFO, KeySet, Keyring, KeyringSettings, SEALED_PREFIX, SigningKey};
use crate::auth::sealer::Sealer;
use crate::config::JwtAlgorithm;
use crate::error::{AuthError, AuthResult};
use crate::storage::Conn;
use crate::storage::keys::{self, KeyRow};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

impl Keyring {
    /// Loads the keys, generating and storing a first key for an asymmetric
    /// algorithm when none exists.
    pub fn load(conn: &Conn, s: KeyringSettings, now: i64) -> AuthResult<Self> {
        let ring = Self {
            alg: s.alg,
            secret: s.secret.map(Arc::from),
            issuer: s.issuer,
            audience: s.audience,
            access_ttl: s.access_ttl_seconds,
            sealer: s.sealer,
            extra: s
                .extra_algs
                .into_iter()
                .filter(|a| *a != JwtAlgorithm::HS256)
                .collect(),
            keys: Arc::new(RwLock::new(Arc::new(KeySet {
                signing: SigningKey {
                    kid: None,
                    alg: Algorithm::HS256,
                    key: EncodingKey::from_secret(&[]),
                    ed25519: None,
                },
                by_alg: HashMap::new(),
                verifying: HashMap::new(),
                jwks: JwkSet { keys: vec![] },
            }))),
        };
        if let Some(sealer) = &ring.sealer {
            let n = seal_plaintext_keys(conn, sealer)?;
            if n > 0 {
                tracing::info!(keys = n, "sealed plaintext signing keys under secrets.key");
            }
        }
        if ring.alg != JwtAlgorithm::HS256 {
            ensure_active_key(conn, ring.alg, ring.sealer()?, now)?;
        }
        for alg in &ring.extra {
            ensure_active_key(conn, *alg, ring.sealer()?, now)?;
        }
        ring.reload(conn, now)?;
        Ok(ring)
    }

    /// Re-reads the keys from the database (after `derp keys rotate`).
    pub fn reload(&self, conn: &Conn, now: i64) -> AuthResult<()> {
        let set = match (&self.secret, self.alg) {
            (Some(secret), JwtAlgorithm::HS256) => {
                let mut set = if self.extra.is_empty() {
                    KeySet {
                        signing: SigningKey {
                            kid: None,
                            alg: Algorithm::HS256,
                            key: EncodingKey::from_secret(secret),
                            ed25519: None,
                        },
                        by_alg: HashMap::new(),
                        verifying: HashMap::new(),
                        jwks: JwkSet { keys: vec![] },
                    }
                } else {
                    // The id_token keys are published; HS256 stays private.
                    let mut set = self.asymmetric_set(conn, now)?;
                    set.signing = SigningKey {
                        kid: None,
                        alg: Algorithm::HS256,
                        key: EncodingKey::from_secret(secret),
                        ed25519: None,
                    };
                    set
                };
                set.verifying.insert(
                    HMAC_KID.to_string(),
                    (Algorithm::HS256, DecodingKey::from_secret(secret)),
                );
                set
            }
            _ => self.asymmetric_set(conn, now)?,
        };
        let mut guard = self
            .keys
            .write()
            .map_err(|_| AuthError::internal("keyring lock poisoned"))?;
        *guard = Arc::new(set);
        Ok(())
    }

    fn sealer(&self) -> AuthResult<&Sealer> {
        self.sealer
            .as_ref()
            .ok_or_else(|| AuthError::internal("signing keys need data_dir/secrets.key"))
    }

    fn asymmetric_set(&self, conn: &Conn, now: i64) -> AuthResult<KeySet> {
        let sealer = self.sealer()?;
        let rows = keys::usable(conn, now - self.access_ttl)?;
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        let mut by_alg: HashMap<&'static str, SigningKey> = HashMap::new();
        for row in rows {
            let alg = parse_alg(&row.alg)?;
            let der = open_private(sealer, &row.kid, &row.private_der)?;
            let enc = encoding_key(alg, &der);
            let mut jwk = Jwk::from_encoding_key(&enc, alg).map_err(AuthError::internal)?;
            jwk.common.key_id = Some(row.kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(key_algorithm(alg));
            let dec = DecodingKey::from_jwk(&jwk).map_err(AuthError::internal)?;
            verifying.insert(row.kid.clone(), (alg, dec));
            jwks.push(jwk);
            let name = alg_name(alg);
            if row.retired_at.is_none() && !by_alg.contains_key(name) {
                by_alg.insert(
                    name,
                    SigningKey {
                        kid: Some(row.kid.clone()),
                        alg,
                        key: enc,
                        ed25519: match alg {
                            Algorithm::EdDSA => {
                                use ed25519_dalek::pkcs8::DecodePrivateKey;
                                ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                                    .ok()
                                    .map(Arc::new)
                            }
                            _ => None,
                        },
                    },
                );
            }
        }
        let signing = match by_alg.get(self.alg.as_str()) {
            Some(k) => SigningKey {
                kid: k.kid.clone(),
                alg: k.alg,
                key: k.key.clone(),
                ed25519: k.ed25519.clone(),
            },
            None if self.alg == JwtAlgorithm::HS256 => SigningKey {
                kid: None,
                alg: Algorithm::HS256,
                key: EncodingKey::from_secret(&[]),
                ed25519: None,
            },
            None => {
                return Err(AuthError::internal(format!(
                    "no active {} signing key",
                    self.alg.as_str()
                )));
            }
        };
        Ok(KeySet {
            signing,
            by_alg,
            verifying,
            jwks: JwkSet { keys: jwks },
        })
    }
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::to_value(&self.current().jwks)
            .unwrap_or_else(|_| serde_json::json!({"keys": []}))
    }
}

pub(super) fn parse_alg(alg: &str) -> AuthResult<Algorithm> {
    match alg {
        "EdDSA" => Ok(Algorithm::EdDSA),
        "ES256" => Ok(Algorithm::ES256),
        "RS256" => Ok(Algorithm::RS256),
        other => Err(AuthError::internal(format!(
            "unknown key algorithm {other}"
        ))),
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::EdDSA => "EdDSA",
        _ => "HS256",
    }
}
fn key_algorithm(alg: Algorithm) -> KeyAlgorithm {
    match alg {
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::RS256 => KeyAlgorithm::RS256,
        _ => KeyAlgorithm::EdDSA,
    }
}

fn encoding_key(alg: Algorithm, der: &[u8]) -> EncodingKey {
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_der(der),
        Algorithm::ES256 => EncodingKey::from_ec_der(der),
        _ => EncodingKey::from_ed_der(der),
    }
}

/// Seals the private part of `kid` for storage.
fn seal_private(sealer: &Sealer, kid: &str, der: &[u8]) -> AuthResult<Vec<u8>> {
    Ok(sealer.seal(KEY_SEAL_INFO, kid, der)?.into_bytes())
}

/// Opens a stored private part; a plaintext DER (an older derp's row not yet
/// sealed) is returned as it is.
pub(super) fn open_private(sealer: &Sealer, kid: &str, stored: &[u8]) -> AuthResult<Vec<u8>> {
    if !stored.starts_with(SEALED_PREFIX) {
        return Ok(stored.to_vec());
    }
    std::str::from_utf8(stored)
        .ok()
        .and_then(|text| sealer.open(KEY_SEAL_INFO, kid, text).ok())
        .ok_or_else(|| {
            AuthError::internal(format!(
                "signing key {kid} does not open with data_dir/{}: restore the secrets.key that was kept with this database, or move the database aside to start with new keys",
                crate::auth::sealer::KEY_FILE
            ))
        })
}

/// Seals every private key still stored in plaintext (rows written by a
/// derp before sealing), in the caller's transaction; returns how many.
pub fn seal_plaintext_keys(conn: &Conn, sealer: &Sealer) -> AuthResult<usize> {
    let mut n = 0;
    for (kid, stored) in keys::all(conn)? {
        if !stored.starts_with(SEALED_PREFIX) {
            keys::set_private(conn, &kid, &seal_private(sealer, &kid, &stored)?)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Makes sure an unretired key of `alg` exists.
pub fn ensure_active_key(
    conn: &Conn,
    alg: JwtAlgorithm,
    sealer: &Sealer,
    now: i64,
) -> AuthResult<()> {
    let have = keys::usable(conn, now)?
        .iter()
        .any(|k| k.retired_at.is_none() && k.alg == alg.as_str());
    if !have {
        keys::insert(conn, &generate_key(alg, sealer, now)?)?;
    }
    Ok(())
}

/// Retires the active keys and adds a new one of `alg`, sealed, and one of
/// each of `extra` (the id_token algorithms); returns the new `kid`s.
/// With HS256 only the `extra` keys rotate (the secret is in derp.toml).
pub fn rotate(
    conn: &Conn,
    alg: JwtAlgorithm,
    extra: &[JwtAlgorithm],
    sealer: &Sealer,
    now: i64,
) -> AuthResult<Vec<String>> {
    let mut algs: Vec<JwtAlgorithm> = Vec::new();
    for a in std::iter::once(alg).chain(extra.iter().copied()) {
        if a != JwtAlgorithm::HS256 && !algs.contains(&a) {
            algs.push(a);
        }
    }
    if algs.is_empty() {
        return Err(AuthError::InvalidRequest {
            message: "HS256 uses the configured secret: rotate it in derp.toml".into(),
            fields: Default::default(),
        });
    }
    keys::retire_all(conn, now)?;
    let mut kids = Vec::new();
    for a in algs {
        let key = generate_key(a, sealer, now)?;
        keys::insert(conn, &key)?;
        kids.push(key.kid);
    }
    Ok(kids)
}

fn generate_key(alg: JwtAlgorithm, sealer: &Sealer, now: i64) -> AuthResult<KeyRow> {
    use rand::RngCore;
    let der = match alg {
        JwtAlgorithm::EdDSA => {
            // PKCS#8 v1 for Ed25519: a fixed 16-byte prefix and the 32-byte seed.
            let mut der =
                hex::decode("302e020100300506032b657004220420").map_err(AuthError::internal)?;
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            der.extend_from_slice(&seed);
            der
        }
        JwtAlgorithm::ES256 => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
            key.to_pkcs8_der()
                .map_err(AuthError::internal)?
                .as_bytes()
                .to_vec()
        }
        JwtAlgorithm::RS256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(AuthError::internal)?;
            key.to_pkcs1_der()
                .map_err(AuthError::internal)?
                .as_bytes()
                .to_vec()
        }
        JwtAlgorithm::HS256 => return Err(AuthError::internal("HS256 keys are not generated")),
    };
    let kid = crate::auth::secrets::random_id(12);
    let private_der = seal_private(sealer, &kid, &der)?;
    Ok(KeyRow {
        kid,
        alg: alg.as_str().to_string(),
        private_der,
        created_at: now,
        retired_at: None,
    })
}
