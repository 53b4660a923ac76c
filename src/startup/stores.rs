//! What lives in `data_dir`: the database, the sealing key, the signing keys,
//! the hosted pages' cookie key and the org context secret derp keeps when
//! none is configured.

use super::StartError;
use crate::auth::jwt::{Keyring, KeyringSettings};
use crate::auth::sealer::Sealer;
use crate::config::{BackendKind, Config, JwtAlgorithm, Secret};
use crate::error::AuthError;
use crate::storage::Db;

pub(super) struct Stores {
    pub db: Db,
    /// `data_dir/secrets.key`: seals TOTP secrets, private signing keys and
    /// webhook secrets.
    pub secrets: Sealer,
    pub keys: Keyring,
    pub alg: JwtAlgorithm,
    pub issuer: String,
    /// 64 bytes encrypting the hosted pages' cookie.
    pub cookie_key: Vec<u8>,
}

impl Stores {
    /// Opens (and migrates) the database, then loads or makes the keys.
    pub(super) async fn open(config: &Config, now: i64) -> Result<Self, StartError> {
        let data_dir = config.server.data_dir.clone();
        let postgres_url = config.storage.postgres_url().map(str::to_string);
        let db =
            tokio::task::spawn_blocking(move || Db::open_store(postgres_url.as_deref(), &data_dir))
                .await
                .map_err(|e| StartError::Other(e.to_string()))?
                .map_err(|e| StartError::Storage(e.to_string()))?;
        let secrets = {
            let dir = config.server.data_dir.clone();
            tokio::task::spawn_blocking(move || Sealer::load_or_create(&dir))
                .await
                .map_err(|e| StartError::Other(e.to_string()))?
                .map_err(StartError::Storage)?
        };
        let native = config.native();
        let alg = native.jwt.effective_algorithm();
        let issuer = config.issuer();
        let settings = KeyringSettings {
            alg,
            secret: native
                .jwt
                .secret
                .as_ref()
                .map(|s| s.expose().as_bytes().to_vec()),
            issuer: issuer.clone(),
            audience: native.jwt.audience.clone(),
            // Retired keys verify for as long as the longest token lives.
            access_ttl_seconds: (native.jwt.access_token_expire_minutes as i64 * 60)
                .max(client_access_ttl(config)),
            sealer: (config.backend() == BackendKind::Native || alg != JwtAlgorithm::HS256)
                .then(|| secrets.clone()),
            extra_algs: config
                .oidc_provider
                .as_ref()
                .map(|p| p.id_token_algs())
                .unwrap_or_default(),
        };
        let keys = db
            .write(move |conn| Keyring::load(conn, settings, now))
            .await
            .map_err(|e: AuthError| match e {
                AuthError::Internal(m) => StartError::Other(format!("signing keys: {m}")),
                other => StartError::Other(format!("signing keys: {other:?}")),
            })?;
        let cookie_key = db
            .write(move |conn| {
                crate::storage::settings::get_or_create(conn, "cookie_key", now, || {
                    let mut key = vec![0u8; 64];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                    key
                })
            })
            .await
            .map_err(|e| StartError::Storage(e.to_string()))?;
        Ok(Self {
            db,
            secrets,
            keys,
            alg,
            issuer,
            cookie_key,
        })
    }
}

/// Life of the access tokens issued to OpenID Connect clients, in seconds.
pub(super) fn client_access_ttl(config: &Config) -> i64 {
    let minutes = config
        .oidc_provider
        .as_ref()
        .and_then(|p| p.access_token_expire_minutes)
        .unwrap_or(config.native().jwt.access_token_expire_minutes);
    minutes as i64 * 60
}

/// The org context secret kept in `<data_dir>/org_context_secret` (0600),
/// made at the first start without `[auth] org_context_secret`: 32 random
/// bytes, hex. Like the signing keys, it lives with the data, so restarts
/// keep X-Org-Context values valid; instances that share users need the
/// same configured secret instead.
pub(super) fn kept_org_context_secret(data_dir: &std::path::Path) -> Result<Secret, StartError> {
    use rand::RngCore;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("org_context_secret");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => {
            tracing::warn!(
                path = %path.display(),
                "[auth] org_context_secret is not set: using the one derp generated"
            );
            return Ok(Secret::new(text.trim()));
        }
        Ok(_) => {
            return Err(StartError::Config(format!(
                "{} is shorter than 32 bytes: remove it or set [auth] org_context_secret",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StartError::Other(format!("{}: {e}", path.display()))),
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(secret.as_bytes()).map(|()| f))
        .map_err(|e| StartError::Other(format!("cannot write {}: {e}", path.display())))?;
    file.flush()
        .map_err(|e| StartError::Other(format!("{}: {e}", path.display())))?;
    tracing::warn!(
        path = %path.display(),
        "[auth] org_context_secret is not set: generated one and kept it there"
    );
    Ok(Secret::new(secret))
}
