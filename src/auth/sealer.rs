//! Secrets at rest that derp must read back (TOTP secrets): sealed with
//! AES-256-GCM under a key kept in a file beside the database
//! (`data_dir/secrets.key`, 32 random bytes, created 0600 at first start),
//! never in the database itself, so that a copy of `derp.db` alone does not
//! reveal them. Each use derives its own key (HKDF-SHA256, `info` = the use)
//! and binds the text to its row (`aad`, e.g. the user id), so a sealed
//! value copied to another row or use does not open. The cipher is the
//! shared [`super::seal`]; this module adds the key file.
//!
//! Stored form: `v1.` + base64url(nonce || ciphertext).

use crate::error::{AuthError, AuthResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use std::path::Path;
use std::sync::Arc;

/// The key file's name inside `data_dir`.
pub const KEY_FILE: &str = "secrets.key";

#[derive(Clone)]
pub struct Sealer {
    /// The key file's 32 bytes, hex: the secret [`super::seal`] derives from.
    key_hex: Arc<str>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn from_key(key: [u8; 32]) -> Self {
        Self {
            key_hex: hex::encode(key).into(),
        }
    }

    /// Reads `data_dir/secrets.key`, or creates it (0600, 32 random bytes)
    /// when it does not exist yet. A file of another length is an error:
    /// replacing it would make every sealed secret unreadable.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    format!(
                        "{} must hold exactly 32 bytes (it holds {}); restore it from the backup",
                        path.display(),
                        bytes.len()
                    )
                })?;
                Ok(Self::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                file.write_all(&key)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(Self::from_key(key))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Seals `plain` for the use `info`, bound to `aad`: [`super::seal`]
    /// (AES-256-GCM, key from HKDF-SHA256) with this file's key as the secret.
    pub fn seal(&self, info: &str, aad: &str, plain: &[u8]) -> AuthResult<String> {
        let text = super::seal::seal(
            &self.key_hex,
            info.as_bytes(),
            aad,
            &URL_SAFE_NO_PAD.encode(plain),
        )?;
        Ok(format!("v1.{text}"))
    }

    /// Opens what [`Self::seal`] gave for the same `info` and `aad`; any
    /// other key, use or context is an error.
    pub fn open(&self, info: &str, aad: &str, text: &str) -> AuthResult<Vec<u8>> {
        text.strip_prefix("v1.")
            .and_then(|t| super::seal::unseal::<String>(&self.key_hex, info.as_bytes(), aad, t))
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .ok_or_else(|| AuthError::internal("a sealed secret does not open: wrong secrets.key?"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_use_and_context() {
        let s = Sealer::from_key([7; 32]);
        let text = s.seal("totp", "user-1", b"secret").unwrap();
        assert!(text.starts_with("v1.") && !text.contains("secret"));
        assert_eq!(s.open("totp", "user-1", &text).unwrap(), b"secret");
        assert!(s.open("other", "user-1", &text).is_err());
        assert!(s.open("totp", "user-2", &text).is_err());
        assert!(
            Sealer::from_key([8; 32])
                .open("totp", "user-1", &text)
                .is_err()
        );
    }

    #[test]
    fn the_key_file_is_created_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = a.seal("totp", "u", b"x").unwrap();
        let b = Sealer::load_or_create(dir.path()).unwrap();
        assert_eq!(b.open("totp", "u", &text).unwrap(), b"x");
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        assert!(Sealer::load_or_create(dir.path()).is_err());
    }
}
