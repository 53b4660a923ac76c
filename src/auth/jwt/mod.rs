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
//!
//! In parts: `signing_keys` (loading, sealing, generating and rotating the
//! stored keys, the JWKS), `sign` (access tokens and id_tokens), `verify`.

mod sign;
mod signing_keys;
#[cfg(test)]
mod tests;
mod verify;

pub use signing_keys::{ensure_active_key, rotate, seal_plaintext_keys};

use crate::auth::sealer::Sealer;
use crate::config::JwtAlgorithm;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
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
}
