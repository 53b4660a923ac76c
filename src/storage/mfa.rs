//! Second factors (TOTP, passkeys), recovery codes and pending second steps of a
//! sign-in (`mfa_token`s). Secrets arrive here already sealed; codes and
//! tokens only as hashes.

use super::ExecCached as _;
use super::{Conn, StorageResult, optional};
use crate::storage::params;

#[derive(Debug, Clone)]
pub struct FactorRow {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub name: String,
    pub secret_sealed: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_step: Option<i64>,
    /// Passkeys: the credential id (base64url), unique across users.
    pub credential_id: Option<String>,
}

const FACTOR_COLUMNS: &str = "id, user_id, type, name, secret_sealed, created_at, confirmed_at, last_used_at, last_used_step, credential_id";

fn factor_from_row(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<FactorRow> {
    Ok(FactorRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        kind: r.get(2)?,
        name: r.get(3)?,
        secret_sealed: r.get(4)?,
        created_at: r.get(5)?,
        confirmed_at: r.get(6)?,
        last_used_at: r.get(7)?,
        last_used_step: r.get(8)?,
        credential_id: r.get(9)?,
    })
}

pub fn insert_factor(conn: &Conn, f: &FactorRow) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO mfa_factors (id, user_id, type, name, secret_sealed, created_at, confirmed_at, credential_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            f.id,
            f.user_id,
            f.kind,
            f.name,
            f.secret_sealed,
            f.created_at,
            f.confirmed_at,
            f.credential_id
        ],
    )?;
    Ok(())
}

pub fn factor(conn: &Conn, user_id: &str, id: &str) -> StorageResult<Option<FactorRow>> {
    let sql = format!("SELECT {FACTOR_COLUMNS} FROM mfa_factors WHERE id = ?1 AND user_id = ?2");
    optional(conn.query_row(&sql, params![id, user_id], factor_from_row))
}

/// The user's factors, pending ones included, oldest first.
pub fn factors(conn: &Conn, user_id: &str) -> StorageResult<Vec<FactorRow>> {
    let sql = format!(
        "SELECT {FACTOR_COLUMNS} FROM mfa_factors WHERE user_id = ?1 ORDER BY created_at, id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([user_id], factor_from_row)?;
    rows.collect::<Result<_, _>>()
}

/// The user's verified factors: the ones a sign-in must pass.
pub fn active_factors(conn: &Conn, user_id: &str) -> StorageResult<Vec<FactorRow>> {
    Ok(factors(conn, user_id)?
        .into_iter()
        .filter(|f| f.confirmed_at.is_some())
        .collect())
}

pub fn has_active_factor(conn: &Conn, user_id: &str) -> StorageResult<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM mfa_factors WHERE user_id = ?1 AND confirmed_at IS NOT NULL)",
        [user_id],
        |r| r.get(0),
    )
}

/// The active passkey with this credential id, whoever owns it.
pub fn passkey_by_credential(conn: &Conn, credential_id: &str) -> StorageResult<Option<FactorRow>> {
    let sql = format!(
        "SELECT {FACTOR_COLUMNS} FROM mfa_factors
         WHERE credential_id = ?1 AND type = 'passkey' AND confirmed_at IS NOT NULL"
    );
    optional(conn.query_row(&sql, [credential_id], factor_from_row))
}

/// Whether any factor (of any user) holds this credential id.
pub fn credential_taken(conn: &Conn, credential_id: &str) -> StorageResult<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM mfa_factors WHERE credential_id = ?1)",
        [credential_id],
        |r| r.get(0),
    )
}

/// A passkey was used: its resealed credential (new sign count) and the time.
pub fn passkey_used(conn: &Conn, id: &str, secret_sealed: &str, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE mfa_factors SET secret_sealed = ?2, last_used_at = ?3 WHERE id = ?1",
        params![id, secret_sealed, now],
    )?;
    Ok(())
}

pub fn confirm_factor(conn: &Conn, id: &str, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE mfa_factors SET confirmed_at = ?2 WHERE id = ?1 AND confirmed_at IS NULL",
        params![id, now],
    )?;
    Ok(())
}

/// Records that the TOTP code of time step `step` was accepted. One atomic
/// UPDATE: a step not newer than the last accepted one (a replay, even
/// concurrent) changes nothing and answers false.
pub fn use_totp_step(conn: &Conn, id: &str, step: i64, now: i64) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE mfa_factors SET last_used_step = ?2, last_used_at = ?3
         WHERE id = ?1 AND (last_used_step IS NULL OR last_used_step < ?2)",
        params![id, step, now],
    )? == 1)
}

pub fn delete_factor(conn: &Conn, user_id: &str, id: &str) -> StorageResult<bool> {
    Ok(conn.exec(
        "DELETE FROM mfa_factors WHERE id = ?1 AND user_id = ?2",
        params![id, user_id],
    )? == 1)
}

/// Drops pending (never verified) factors of the user older than `before`.
pub fn delete_stale_pending(conn: &Conn, user_id: &str, before: i64) -> StorageResult<usize> {
    conn.exec(
        "DELETE FROM mfa_factors WHERE user_id = ?1 AND confirmed_at IS NULL AND created_at < ?2",
        params![user_id, before],
    )
}

/// Removes every factor, recovery code and pending challenge of the user;
/// answers how many verified factors there were.
pub fn delete_all_for_user(conn: &Conn, user_id: &str) -> StorageResult<usize> {
    let active = active_factors(conn, user_id)?.len();
    conn.exec("DELETE FROM mfa_factors WHERE user_id = ?1", [user_id])?;
    conn.exec(
        "DELETE FROM mfa_recovery_codes WHERE user_id = ?1",
        [user_id],
    )?;
    conn.exec("DELETE FROM mfa_challenges WHERE user_id = ?1", [user_id])?;
    conn.exec("DELETE FROM passkey_flows WHERE user_id = ?1", [user_id])?;
    Ok(active)
}

/// How many users have at least one active factor (the admin overview).
pub fn count_users_with_factor(conn: &Conn) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(DISTINCT user_id) FROM mfa_factors WHERE confirmed_at IS NOT NULL",
        (),
        |r| r.get(0),
    )
}

/// Replaces the user's recovery codes with `hashes`.
pub fn replace_recovery_codes(
    conn: &Conn,
    user_id: &str,
    hashes: &[String],
    now: i64,
) -> StorageResult<()> {
    conn.exec(
        "DELETE FROM mfa_recovery_codes WHERE user_id = ?1",
        [user_id],
    )?;
    let mut stmt = conn.prepare(
        "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES (?1, ?2, ?3)",
    )?;
    for h in hashes {
        stmt.execute(params![user_id, h, now])?;
    }
    Ok(())
}

pub fn delete_recovery_codes(conn: &Conn, user_id: &str) -> StorageResult<()> {
    conn.exec(
        "DELETE FROM mfa_recovery_codes WHERE user_id = ?1",
        [user_id],
    )?;
    Ok(())
}

/// Spends one unused recovery code: one atomic UPDATE … WHERE used_at IS
/// NULL, so a code works once even under concurrency.
pub fn use_recovery_code(
    conn: &Conn,
    user_id: &str,
    code_hash: &str,
    now: i64,
) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE mfa_recovery_codes SET used_at = ?3
         WHERE id = (SELECT id FROM mfa_recovery_codes
                     WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL LIMIT 1)
           AND used_at IS NULL",
        params![user_id, code_hash, now],
    )? == 1)
}

pub fn unused_recovery_codes(conn: &Conn, user_id: &str) -> StorageResult<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        [user_id],
        |r| r.get(0),
    )
}

/// A pending second step: the first factor passed, the second is awaited.
#[derive(Debug, Clone)]
pub struct ChallengeRow {
    pub user_id: String,
    pub method: String,
    pub amr: Vec<String>,
    pub expires_at: i64,
    pub failures: i64,
    pub used_at: Option<i64>,
    /// `challenge` (an `mfa_token`) or `enroll` (an `enrollment_token`).
    pub purpose: String,
}

pub fn insert_challenge(
    conn: &Conn,
    token_hash: &str,
    c: &ChallengeRow,
    now: i64,
) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO mfa_challenges (token_hash, user_id, method, amr, created_at, expires_at, purpose)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token_hash,
            c.user_id,
            c.method,
            serde_json::to_string(&c.amr).unwrap_or_else(|_| "[]".into()),
            now,
            c.expires_at,
            c.purpose
        ],
    )?;
    Ok(())
}

pub fn challenge(conn: &Conn, token_hash: &str) -> StorageResult<Option<ChallengeRow>> {
    optional(conn.query_row(
        "SELECT user_id, method, amr, expires_at, failures, used_at, purpose
         FROM mfa_challenges WHERE token_hash = ?1",
        [token_hash],
        |r| {
            let amr: String = r.get(2)?;
            Ok(ChallengeRow {
                user_id: r.get(0)?,
                method: r.get(1)?,
                amr: serde_json::from_str(&amr).unwrap_or_default(),
                expires_at: r.get(3)?,
                failures: r.get(4)?,
                used_at: r.get(5)?,
                purpose: r.get(6)?,
            })
        },
    ))
}

/// Counts a wrong code against the challenge; answers the new count.
pub fn challenge_failed(conn: &Conn, token_hash: &str) -> StorageResult<i64> {
    conn.query_row(
        "UPDATE mfa_challenges SET failures = failures + 1 WHERE token_hash = ?1
         RETURNING failures",
        [token_hash],
        |r| r.get(0),
    )
}

/// Spends the challenge: one atomic UPDATE … WHERE used_at IS NULL that also
/// checks its life and its failures.
pub fn spend_challenge(
    conn: &Conn,
    token_hash: &str,
    max_failures: i64,
    now: i64,
) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE mfa_challenges SET used_at = ?2
         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2 AND failures < ?3",
        params![token_hash, now, max_failures],
    )? == 1)
}

/// Forgets challenges that expired before `before`.
pub fn prune_challenges(conn: &Conn, before: i64) -> StorageResult<usize> {
    conn.exec("DELETE FROM mfa_challenges WHERE expires_at < ?1", [before])
}

/// A WebAuthn ceremony in progress (`passkey_flows`).
#[derive(Debug, Clone)]
pub struct PasskeyFlowRow {
    /// `register`, `sign_in` or `second_factor`.
    pub kind: String,
    pub user_id: Option<String>,
    pub mfa_token_hash: Option<String>,
    pub name: Option<String>,
    /// The relying party's ceremony state, JSON.
    pub state: String,
    pub expires_at: i64,
}

pub fn insert_passkey_flow(
    conn: &Conn,
    flow_hash: &str,
    f: &PasskeyFlowRow,
    now: i64,
) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO passkey_flows (flow_hash, kind, user_id, mfa_token_hash, name, state, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            flow_hash,
            f.kind,
            f.user_id,
            f.mfa_token_hash,
            f.name,
            f.state,
            now,
            f.expires_at
        ],
    )?;
    Ok(())
}

/// Spends the live flow stored as `flow_hash` (a registration, or a
/// sign-in of either kind): one atomic
/// UPDATE … WHERE used_at IS NULL, so a flow is used once even under
/// concurrency. `None` for an unknown, spent or expired flow.
pub fn spend_passkey_flow(
    conn: &Conn,
    flow_hash: &str,
    register: bool,
    now: i64,
) -> StorageResult<Option<PasskeyFlowRow>> {
    optional(conn.query_row(
        "UPDATE passkey_flows SET used_at = ?3
         WHERE flow_hash = ?1 AND (kind = 'register') = ?2 AND used_at IS NULL AND expires_at > ?3
         RETURNING kind, user_id, mfa_token_hash, name, state, expires_at",
        params![flow_hash, register, now],
        |r| {
            Ok(PasskeyFlowRow {
                kind: r.get(0)?,
                user_id: r.get(1)?,
                mfa_token_hash: r.get(2)?,
                name: r.get(3)?,
                state: r.get(4)?,
                expires_at: r.get(5)?,
            })
        },
    ))
}

/// Forgets ceremonies that expired before `before`.
pub fn prune_passkey_flows(conn: &Conn, before: i64) -> StorageResult<usize> {
    conn.exec("DELETE FROM passkey_flows WHERE expires_at < ?1", [before])
}
