//! Minting: access tokens (`typ: at+jwt`) and id_tokens.

use super::{AccessClaims, Keyring};
use crate::config::JwtAlgorithm;
use crate::error::{AuthError, AuthResult};
use jsonwebtoken::Header;
use serde::Serialize;

impl Keyring {
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
}

/// A JWS compact serialisation signed with an Ed25519 key: the same bytes
/// as `jsonwebtoken::encode` (its header, the claims as JSON, base64url
/// without padding).
pub(super) fn sign_ed25519<T: Serialize>(
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
