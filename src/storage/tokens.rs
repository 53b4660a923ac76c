//! One-time tokens (confirmation, magic link, reset, invitation, code),
//! stored only as hashes and consumed atomically.

use super::ExecCached as _;
use super::{Conn, StorageResult, optional};
use crate::domain::Purpose;
use crate::storage::params;

#[derive(Debug, Clone)]
pub struct OneTimeToken {
    pub purpose: Purpose,
    pub email: String,
    pub user_id: Option<String>,
    pub payload: serde_json::Value,
    pub expires_at: i64,
}

pub fn insert(conn: &Conn, token_hash: &str, t: &OneTimeToken, now: i64) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO one_time_tokens (token_hash, purpose, email, user_id, payload, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token_hash,
            t.purpose.as_str(),
            t.email,
            t.user_id,
            t.payload.to_string(),
            now,
            t.expires_at
        ],
    )?;
    Ok(())
}

/// Consumes the token if it exists, has this purpose, is unused and unexpired;
/// one atomic UPDATE, so two concurrent uses cannot both succeed.
pub fn consume(
    conn: &Conn,
    token_hash: &str,
    purpose: Purpose,
    now: i64,
) -> StorageResult<Option<OneTimeToken>> {
    optional(conn.query_row(
        "UPDATE one_time_tokens SET used_at = ?3
         WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3
         RETURNING email, user_id, payload, expires_at",
        params![token_hash, purpose.as_str(), now],
        |r| {
            let payload: String = r.get(2)?;
            Ok(OneTimeToken {
                purpose,
                email: r.get(0)?,
                user_id: r.get(1)?,
                payload: serde_json::from_str(&payload).unwrap_or_default(),
                expires_at: r.get(3)?,
            })
        },
    ))
}

/// Whether an unused, unexpired token of `purpose` exists (without spending it).
pub fn is_valid(conn: &Conn, token_hash: &str, purpose: Purpose, now: i64) -> StorageResult<bool> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM one_time_tokens WHERE token_hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3",
        params![token_hash, purpose.as_str(), now],
        |r| r.get::<_, i64>(0),
    )? > 0)
}

/// Spends every unused token of `purpose` (so only the newest setup link works).
pub fn spend_all(conn: &Conn, purpose: Purpose, now: i64) -> StorageResult<usize> {
    conn.exec(
        "UPDATE one_time_tokens SET used_at = ?2 WHERE purpose = ?1 AND used_at IS NULL",
        params![purpose.as_str(), now],
    )
}

/// Deletes spent and expired tokens older than `before`.
pub fn purge(conn: &Conn, before: i64) -> StorageResult<usize> {
    conn.exec(
        "DELETE FROM one_time_tokens WHERE expires_at < ?1 OR used_at < ?1",
        [before],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_once_and_never_after_expiry_or_for_another_purpose() {
        let c = Conn::open_in_memory().unwrap();
        crate::storage::migrations::apply(&c).unwrap();
        let t = OneTimeToken {
            purpose: Purpose::Confirm,
            email: "a@example.com".into(),
            user_id: Some("u".into()),
            payload: serde_json::json!({}),
            expires_at: 100,
        };
        insert(&c, "h", &t, 0).unwrap();
        assert!(consume(&c, "h", Purpose::Reset, 1).unwrap().is_none());
        assert!(
            consume(&c, "h", Purpose::Confirm, 100).unwrap().is_none(),
            "expired"
        );
        assert_eq!(
            consume(&c, "h", Purpose::Confirm, 99)
                .unwrap()
                .unwrap()
                .email,
            "a@example.com"
        );
        assert!(
            consume(&c, "h", Purpose::Confirm, 99).unwrap().is_none(),
            "used"
        );
    }
}
