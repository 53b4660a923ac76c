//! Access tokens: minting, verification, signing keys and the JWKS.
//!
//! HS256 uses the configured secret. The asymmetric algorithms use keys the
//! server generates and stores in `signing_keys`; the newest unretired key of
//! the configured algorithm signs, and every key retired less than one access
//! token lifetime ago still verifies (and is published), so a rotation never
//! invalidates a token that is still within its life. Verification pins the
//! algorithm to the key's own: `alg: none` and algorithm switching fail.
//! When an audience is configured, a token without `aud` is refused; `exp`,
//! `nbf` and `iat` are checked against the injected clock, the last two with
//! [`CLOCK_LEEWAY`] seconds of skew.
//!
//! The private part of a stored key is sealed under `data_dir/secrets.key`
//! ([`Sealer`], use [`KEY_SEAL_INFO`], bound to the `kid`): the column holds
//! `v1.` + the sealed text, never the DER. A plaintext row left by an older
//! derp (DER starts with `0x30`, never `v1.`) is sealed at the next start;
//! a sealed row that does not open (another `secrets.key`) stops the start.

use crate::auth::sealer::Sealer;
use crate::config::JwtAlgorithm;
use crate::error::{AuthError, AuthResult};
use crate::storage::Conn;
use crate::storage::keys::{self, KeyRow};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Seconds a token's `nbf` or `iat` may lie in the future (clock skew between
/// derp and whoever signed it); beyond that it is refused. `exp` gets none.
pub const CLOCK_LEEWAY: i64 = 60;

/// The sealer's use label for private signing keys.
pub const KEY_SEAL_INFO: &str = "signing-key";

/// What marks a sealed private key in `signing_keys.private_der`.
const SEALED_PREFIX: &[u8] = b"v1.";

/// The claims of a derp access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub sid: String,
    pub session_id: String,
    pub iat: i64,
    pub exp: i64,
    /// Never set by derp; checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Empty (and left out) in a client's token without the `email` scope.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_role: Option<String>,
    /// RFC 8176 authentication methods of the sign-in (`pwd`, `otp`,
    /// `mfa`, `email`, `fed`), kept across refresh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// RFC 9068: the OpenID Connect client the token was issued to. derp's
    /// own API refuses a token that carries one ([`Keyring::verify`]);
    /// `/oauth2/userinfo` asks for one ([`Keyring::verify_client`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// RFC 9068: the scopes granted to the client, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

struct SigningKey {
    kid: Option<String>,
    alg: Algorithm,
    key: EncodingKey,
    /// The Ed25519 key parsed once: the library's encoder parses the DER
    /// and derives the public key again on every signature, which doubled
    /// the cost of each token.
    ed25519: Option<Arc<ed25519_dalek::SigningKey>>,
}

struct KeySet {
    signing: SigningKey,
    /// The newest active asymmetric key of each algorithm (id_tokens).
    by_alg: HashMap<&'static str, SigningKey>,
    verifying: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: JwkSet,
}

/// Signing and verification keys, reloadable from the database.
#[derive(Clone)]
pub struct Keyring {
    alg: JwtAlgorithm,
    secret: Option<Arc<[u8]>>,
    issuer: String,
    audience: Option<String>,
    access_ttl: i64,
    sealer: Option<Sealer>,
    /// Asymmetric algorithms kept with an active key besides `alg` (the
    /// id_token algorithms of the OpenID Connect provider).
    extra: Vec<JwtAlgorithm>,
    keys: Arc<RwLock<Arc<KeySet>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The `kid` under which an HS256 key is kept internally (never published).
const HMAC_KID: &str = "";

pub struct KeyringSettings {
    pub alg: JwtAlgorithm,
    pub secret: Option<Vec<u8>>,
    pub issuer: String,
    pub audience: Option<String>,
    pub access_ttl_seconds: i64,
    /// Seals and opens the private keys; required for the asymmetric
    /// algorithms (HS256 keeps its secret in the config).
    pub sealer: Option<Sealer>,
    /// Asymmetric algorithms that also need an active key (the id_token
    /// algorithms of `[oidc_provider]`); their public keys are published
    /// in the JWKS beside the others.
    pub extra_algs: Vec<JwtAlgorithm>,
}

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

    fn current(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    pub fn access_ttl(&self) -> i64 {
        self.access_ttl
    }

    pub fn sign(&self, claims: &AccessClaims) -> AuthResult<String> {
        let set = self.current();
        let mut header = Header::new(set.signing.alg);
        header.typ = Some("at+jwt".into());
        header.kid = set.signing.kid.clone();
        match &set.signing.ed25519 {
            Some(key) => sign_ed25519(&header, claims, key),
            None => {
                jsonwebtoken::encode(&header, claims, &set.signing.key).map_err(AuthError::internal)
            }
        }
    }

    /// Verifies signature, algorithm, issuer, audience (required when
    /// configured) and, against `now` from the injected clock, `exp`, `nbf`
    /// and `iat`.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(AuthError::InvalidToken);
        }
        let set = self.current();
        let kid = header.kid.as_deref().unwrap_or(HMAC_KID);
        let (alg, key) = set.verifying.get(kid).ok_or(AuthError::InvalidToken)?;
        if header.alg != *alg {
            return Err(AuthError::InvalidToken);
        }
        let mut validation = Validation::new(*alg);
        // Times are checked below against the injected clock, not the
        // library's reading of the wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let mut required = vec!["exp", "sub", "iss"];
        validation.set_issuer(&[&self.issuer]);
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                // Without this, jsonwebtoken checks `aud` only when present.
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.required_spec_claims = required.iter().map(|s| s.to_string()).collect();
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|_| AuthError::InvalidToken)?;
        if !times_hold(&claims, now) || claims.client_id.is_some() {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// Verifies an access token issued to an OpenID Connect client (RFC
    /// 9068): as [`Self::verify`], but it must carry `client_id` and an
    /// `aud` equal to it (the configured audience is for derp's own tokens).
    pub fn verify_client(&self, token: &str, now: i64) -> Result<AccessClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(AuthError::InvalidToken);
        }
        let set = self.current();
        let kid = header.kid.as_deref().unwrap_or(HMAC_KID);
        let (alg, key) = set.verifying.get(kid).ok_or(AuthError::InvalidToken)?;
        if header.alg != *alg {
            return Err(AuthError::InvalidToken);
        }
        let mut validation = Validation::new(*alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.required_spec_claims = ["exp", "sub", "iss", "aud"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|_| AuthError::InvalidToken)?;
        let bound = claims.client_id.is_some() && claims.aud == claims.client_id;
        if !times_hold(&claims, now) || !bound {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// The `aud` of an id_token this keyring signed, its signature, algorithm
    /// and issuer checked but not its times (an `id_token_hint` may have
    /// expired).
    pub fn id_token_audience(&self, token: &str) -> Option<String> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let set = self.current();
        let (alg, key) = set.verifying.get(header.kid.as_deref()?)?;
        if header.alg != *alg {
            return None;
        }
        let mut validation = Validation::new(*alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.required_spec_claims = ["iss", "aud", "sub"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .ok()?
            .claims;
        match &claims["aud"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) => a.first()?.as_str().map(str::to_string),
            _ => None,
        }
    }

    /// Signs an id_token (`typ: JWT`) with the newest active key of `alg`.
    pub fn sign_id_token(
        &self,
        alg: JwtAlgorithm,
        claims: &serde_json::Value,
    ) -> AuthResult<String> {
        let set = self.current();
        let key = set.by_alg.get(alg.as_str()).ok_or_else(|| {
            AuthError::internal(format!("no active {} key for id_tokens", alg.as_str()))
        })?;
        let mut header = Header::new(key.alg);
        header.kid = key.kid.clone();
        jsonwebtoken::encode(&header, claims, &key.key).map_err(AuthError::internal)
    }

    pub fn jwks(&self) -> serde_json::Value {
        serde_json::to_value(&self.current().jwks)
            .unwrap_or_else(|_| serde_json::json!({"keys": []}))
    }
}

/// Not expired, and neither valid-from nor issued more than the leeway ahead.
fn times_hold(c: &AccessClaims, now: i64) -> bool {
    c.exp > now && c.iat <= now + CLOCK_LEEWAY && c.nbf.is_none_or(|nbf| nbf <= now + CLOCK_LEEWAY)
}

fn parse_alg(alg: &str) -> AuthResult<Algorithm> {
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

/// A JWS compact serialisation signed with an Ed25519 key: the same bytes
/// as `jsonwebtoken::encode` (its header, the claims as JSON, base64url
/// without padding).
fn sign_ed25519<T: Serialize>(
    header: &Header,
    claims: &T,
    key: &ed25519_dalek::SigningKey,
) -> AuthResult<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::Signer as _;
    let header = serde_json::to_vec(header).map_err(AuthError::internal)?;
    let claims = serde_json::to_vec(claims).map_err(AuthError::internal)?;
    let mut message = URL_SAFE_NO_PAD.encode(header);
    message.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut message);
    let signature = key.sign(message.as_bytes());
    message.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut message);
    Ok(message)
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
fn open_private(sealer: &Sealer, kid: &str, stored: &[u8]) -> AuthResult<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::migrations;

    fn conn() -> Conn {
        let mut c = Conn::open_in_memory().unwrap();
        migrations::apply(&mut c).unwrap();
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
        let ring =
            Keyring::load(&c, settings(JwtAlgorithm::HS256, Some(&"k".repeat(32))), 0).unwrap();
        let token = ring.sign(&claims(0)).unwrap();
        assert!(jsonwebtoken::decode_header(&token).unwrap().kid.is_none());
        assert!(ring.verify(&token, 0).is_ok());
        assert!(ring.jwks()["keys"].as_array().unwrap().is_empty());
        let other =
            Keyring::load(&c, settings(JwtAlgorithm::HS256, Some(&"x".repeat(32))), 0).unwrap();
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
}
