//! Argon2id hashing on a pool of its own: one thread per core (so at most one
//! hash per core at once, never on the async workers), each at a lower CPU
//! priority (nice +10 on Linux) so that when hashing saturates the cores the
//! scheduler still runs request handling first: a sign-in flood slows other
//! requests' latency far less, and hashing still takes every idle cycle.
//! Unknown users get a dummy verification so that timing reveals nothing.

use crate::error::{AuthError, AuthResult};
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
};
use std::sync::{Arc, Mutex, mpsc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub valid: bool,
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    pool: Arc<HashPool>,
    dummy_hash: Arc<str>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads; they end when the last `Hasher` clone is dropped.
struct HashPool {
    jobs: mpsc::Sender<Job>,
    /// Threads that started; with none, hashing answers an error at once
    /// instead of leaving requests waiting forever.
    threads: usize,
}

/// The nice value of the hashing threads: request handling (nice 0) wins
/// the CPU when both want it (CFS weight 1024 against 110).
const HASH_NICE: i32 = 10;

impl HashPool {
    fn start(threads: usize) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("derp-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panicking job drops its reply channel: the
                            // caller sees an internal error, the thread lives.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a password hashing thread"),
            }
        }
        Self {
            jobs,
            threads: started,
        }
    }
}

/// Lowers the calling thread's CPU priority (Linux: nice is per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), HASH_NICE)
    {
        tracing::debug!(error = %e, "could not lower the hashing thread's priority");
    }
}

impl Hasher {
    /// OWASP's argon2id parameters (m = 19 MiB, t = 2, p = 1).
    pub fn new() -> Self {
        Self::with_params(Params::default())
    }

    /// argon2id at another cost (memory in KiB, passes), one lane. The test
    /// suite uses a cheap one; the server always runs [`Self::new`].
    pub fn with_cost(memory_kib: u32, passes: u32) -> AuthResult<Self> {
        let params = Params::new(memory_kib, passes, 1, None).map_err(AuthError::internal)?;
        Ok(Self::with_params(params))
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
            pool: Arc::new(HashPool::start(cores)),
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
        if self.pool.threads == 0 {
            return Err(AuthError::internal(
                "no password hashing thread could start",
            ));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.pool
            .jobs
            .send(Box::new(move || {
                let _ = reply.send(f());
            }))
            .map_err(|_| AuthError::internal("the password hashing threads are gone"))?;
        answer
            .await
            .map_err(|_| AuthError::internal("a password hash failed"))?
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
