//! Read-only counts for `/metrics` and for checks of the database after a
//! crash, and the WAL checkpoint taken when the server stops.

use super::{Conn, Engine, StorageResult};

/// How many refresh-token reuses were detected (audit rows
/// `refresh.reuse_detected`; index-only through `audit_log_action`).
pub fn refresh_reuse_detected(conn: &Conn) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'refresh.reuse_detected'",
        (),
        |r| r.get(0),
    )
}

/// Tokens issued to OpenID Connect clients, by grant type (audit rows
/// `oauth.token.issued`), and codes used twice (`oauth.code.reused`).
pub fn oauth_grants(conn: &Conn) -> StorageResult<(Vec<(String, i64)>, i64)> {
    let grant_type = match conn.engine() {
        Engine::Sqlite => "json_extract(detail, '$.grant_type')",
        Engine::Postgres => "(detail::jsonb ->> 'grant_type')",
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT COALESCE({grant_type}, 'unknown'), COUNT(*)
         FROM audit_log WHERE action = 'oauth.token.issued' GROUP BY 1 ORDER BY 1"
    ))?;
    let grants = stmt
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let reused = conn.query_row(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'oauth.code.reused'",
        (),
        |r| r.get(0),
    )?;
    Ok((grants, reused))
}

/// Users whose email is unconfirmed and who have no confirmation token, or
/// no confirmation mail in the outbox: a sign-up with confirmation on writes
/// all three in one transaction, so after any crash this list is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignUpGaps {
    pub unconfirmed_users: i64,
    pub without_token: Vec<String>,
    pub without_mail: Vec<String>,
}

pub fn sign_up_gaps(conn: &Conn) -> StorageResult<SignUpGaps> {
    let unconfirmed_users = conn.query_row(
        "SELECT COUNT(*) FROM users WHERE email_confirmed_at IS NULL",
        (),
        |r| r.get(0),
    )?;
    let emails = |sql: &str| -> StorageResult<Vec<String>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map((), |r| r.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>()
    };
    Ok(SignUpGaps {
        unconfirmed_users,
        without_token: emails(
            "SELECT u.email FROM users u WHERE u.email_confirmed_at IS NULL AND NOT EXISTS
               (SELECT 1 FROM one_time_tokens t
                WHERE t.purpose = 'confirm' AND t.user_id = u.id AND t.email = u.email)
             ORDER BY u.email",
        )?,
        without_mail: emails(
            "SELECT u.email FROM users u WHERE u.email_confirmed_at IS NULL AND NOT EXISTS
               (SELECT 1 FROM outbox o WHERE o.kind = 'confirm' AND o.to_addr = u.email)
             ORDER BY u.email",
        )?,
    })
}

/// Moves every page of the write-ahead log into the database file and
/// empties the log (`PRAGMA wal_checkpoint(TRUNCATE)`); run outside a
/// transaction. Returns whether the checkpoint completed (SQLite reports
/// `busy` while another connection still reads or writes).
pub fn checkpoint(conn: &Conn) -> StorageResult<bool> {
    if conn.engine() == Engine::Postgres {
        return Ok(true); // PostgreSQL checkpoints itself
    }
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", (), |r| r.get(0))?;
    Ok(busy == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_on_an_empty_database() {
        let c = Conn::open_in_memory().unwrap();
        crate::storage::migrations::apply(&c).unwrap();
        assert_eq!(refresh_reuse_detected(&c).unwrap(), 0);
        assert_eq!(sign_up_gaps(&c).unwrap(), SignUpGaps::default());
    }
}
