//! Argon2id hashing on the blocking pool, at most one hash per core at once,
//! with a dummy verification for unknown users so that timing reveals nothing.

use crate::error::{AuthError, AuthResult};
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub valid: bool,
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .finish()
    }
}

impl Hasher {
    /// OWASP's argon2id parameters (m = 19 MiB, t = 2, p = 1).
    pub fn new() -> Self {
        Self::with_params(Params::default())
    }

    pub fn with_params(params: Params) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let argon = argon(&params);
        let dummy_hash = argon
            .hash_password(b"dummy password that matches nothing")
            .map(|h| h.to_string())
            .unwrap_or_default();
        Self {
            params,
            permits: Arc::new(Semaphore::new(cores)),
            dummy_hash: dummy_hash.into(),
        }
    }

    pub async fn hash(&self, password: String) -> AuthResult<String> {
        let params = self.params.clone();
        self.blocking(move || {
            argon(&params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(AuthError::internal)
        })
        .await
    }

    /// Verifies `password` against `hash`, or against the dummy hash when
    /// there is none, so that both paths cost one argon2 run.
    pub async fn verify(&self, password: String, hash: Option<String>) -> AuthResult<Verification> {
        let params = self.params.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        self.blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return Ok(Verification {
                    valid: false,
                    needs_rehash: false,
                });
            };
            let valid = argon(&params)
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && known;
            let needs_rehash = valid && !same_params(&parsed, &params);
            Ok(Verification {
                valid,
                needs_rehash,
            })
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> AuthResult<T> + Send + 'static,
    ) -> AuthResult<T> {
        let _permit = self.permits.acquire().await.map_err(AuthError::internal)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(AuthError::internal)?
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn same_params(hash: &PasswordHash, params: &Params) -> bool {
    let get = |name: &str| hash.params.get_decimal(name);
    hash.algorithm.as_str() == "argon2id"
        && get("m") == Some(params.m_cost())
        && get("t") == Some(params.t_cost())
        && get("p") == Some(params.p_cost())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verify_and_rehash() {
        let weak = Hasher::with_params(Params::new(8 * 1024, 1, 1, None).unwrap());
        let strong = Hasher::new();
        let h = weak.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        let ok = weak
            .verify("correct horse".into(), Some(h.clone()))
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verification {
                valid: true,
                needs_rehash: false
            }
        );
        let bad = weak.verify("wrong".into(), Some(h.clone())).await.unwrap();
        assert!(!bad.valid);
        let upgrade = strong
            .verify("correct horse".into(), Some(h))
            .await
            .unwrap();
        assert_eq!(
            upgrade,
            Verification {
                valid: true,
                needs_rehash: true
            }
        );
        let unknown = strong
            .verify("dummy password that matches nothing".into(), None)
            .await
            .unwrap();
        assert!(!unknown.valid, "the dummy hash never verifies");
    }
}
