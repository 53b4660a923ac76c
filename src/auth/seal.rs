//! Token material sealed under a key derived from a secret the browser or
//! the app holds (an authorization code, a page session id, the refresh
//! token a child token was rotated from): AES-256-GCM
//! with a key from HKDF-SHA256 over that secret, `info` naming the use, and
//! `aad` binding the text to its context. What derp stores is
//! `base64url(nonce || ciphertext)`, useless without the secret.

use crate::error::{AuthError, AuthResult};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

fn cipher(secret: &str, info: &[u8]) -> Aes256Gcm {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, secret.as_bytes())
        .expand(info, &mut key)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
    Aes256Gcm::new(&key.into())
}

pub fn seal<T: Serialize>(secret: &str, info: &[u8], aad: &str, value: &T) -> AuthResult<String> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let plain = serde_json::to_vec(value).map_err(AuthError::internal)?;
    let ct = cipher(secret, info)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &plain,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| AuthError::internal("sealing token material failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

pub fn unseal<T: DeserializeOwned>(secret: &str, info: &[u8], aad: &str, text: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let (nonce, ct) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let plain = cipher(secret, info)
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: ct,
                aad: aad.as_bytes(),
            },
        )
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_secret_use_and_context() {
        let text = seal("secret-1", b"use a", "user-1", &"tokens").unwrap();
        assert!(!text.contains("tokens"));
        assert_eq!(
            unseal::<String>("secret-1", b"use a", "user-1", &text).as_deref(),
            Some("tokens")
        );
        assert!(unseal::<String>("secret-2", b"use a", "user-1", &text).is_none());
        assert!(unseal::<String>("secret-1", b"use b", "user-1", &text).is_none());
        assert!(unseal::<String>("secret-1", b"use a", "user-2", &text).is_none());
    }
}
