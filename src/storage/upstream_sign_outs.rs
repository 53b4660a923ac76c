//! Sign-outs of upstream sessions whose access tokens derp verifies locally
//! (`upstream_sign_outs`): kept until no token they refuse can still be
//! valid, so that a restart does not bring signed-out tokens back.

use super::ExecCached as _;
use super::{Conn, StorageResult};
use crate::storage::params;

/// What a sign-out refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The user's tokens issued before the sign-out (`id` is the `sub`).
    User,
    /// Every token of one session (`id` is the session id).
    Session,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Session => "session",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOut {
    pub kind: Kind,
    pub id: String,
    pub signed_out_at: i64,
}

/// Records a sign-out (a later one replaces an earlier one of the same id),
/// and forgets those that have expired.
pub fn record(conn: &Conn, kind: Kind, id: &str, at: i64, expires_at: i64) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO upstream_sign_outs (kind, id, signed_out_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (kind, id) DO UPDATE SET
             signed_out_at = CASE WHEN excluded.signed_out_at > upstream_sign_outs.signed_out_at
                 THEN excluded.signed_out_at ELSE upstream_sign_outs.signed_out_at END,
             expires_at = CASE WHEN excluded.expires_at > upstream_sign_outs.expires_at
                 THEN excluded.expires_at ELSE upstream_sign_outs.expires_at END",
        params![kind.as_str(), id, at, expires_at],
    )?;
    prune(conn, at)?;
    Ok(())
}

/// Forgets the sign-outs that expired by `now`.
pub fn prune(conn: &Conn, now: i64) -> StorageResult<usize> {
    conn.exec(
        "DELETE FROM upstream_sign_outs WHERE expires_at <= ?1",
        [now],
    )
}

/// The sign-outs still in force at `now`.
pub fn live(conn: &Conn, now: i64) -> StorageResult<Vec<SignOut>> {
    let mut stmt = conn
        .prepare("SELECT kind, id, signed_out_at FROM upstream_sign_outs WHERE expires_at > ?1")?;
    let rows = stmt.query_map([now], |r| {
        let kind: String = r.get(0)?;
        Ok(SignOut {
            kind: if kind == "user" {
                Kind::User
            } else {
                Kind::Session
            },
            id: r.get(1)?,
            signed_out_at: r.get(2)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::storage::Db;

    #[test]
    fn sign_outs_are_kept_until_they_expire_and_a_later_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.write_sync(|conn| -> StorageResult<()> {
            record(conn, Kind::User, "sub-1", 100, 1_000)?;
            record(conn, Kind::Session, "jti-1", 100, 1_000)?;
            // A later sign-out of the same user moves its time forward.
            record(conn, Kind::User, "sub-1", 200, 1_100)?;
            let mut now_live = live(conn, 500)?;
            now_live.sort_by_key(|s| s.id.clone());
            assert_eq!(
                now_live,
                [
                    SignOut {
                        kind: Kind::Session,
                        id: "jti-1".into(),
                        signed_out_at: 100
                    },
                    SignOut {
                        kind: Kind::User,
                        id: "sub-1".into(),
                        signed_out_at: 200
                    },
                ]
            );
            // Expired ones are not live, and a record or prune forgets them.
            assert_eq!(live(conn, 1_000)?.len(), 1);
            record(conn, Kind::User, "sub-2", 1_050, 2_000)?;
            assert_eq!(live(conn, 0)?.len(), 2);
            assert_eq!(prune(conn, 1_100)?, 1);
            assert_eq!(live(conn, 0)?.len(), 1);
            Ok(())
        })
        .unwrap();
    }
}
