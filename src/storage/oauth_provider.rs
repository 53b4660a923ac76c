//! derp as an OpenID Connect provider: clients created at run time, the
//! consents users gave, and authorization codes.

use super::ExecCached as _;
use super::{Conn, StorageResult, optional};
use crate::storage::params;

/// A client created with `derp clients create` (or the admin API).
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    /// SHA-256 hex of the secret; `None` for a public client.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub created_at: i64,
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: String) -> Vec<String> {
    serde_json::from_str(&s).unwrap_or_default()
}

const CLIENT_COLUMNS: &str = "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, scopes, first_party, created_at";

fn client_from_row(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<ClientRow> {
    Ok(ClientRow {
        client_id: r.get(0)?,
        name: r.get(1)?,
        secret_hash: r.get(2)?,
        redirect_uris: parse_list(r.get(3)?),
        post_logout_redirect_uris: parse_list(r.get(4)?),
        scopes: parse_list(r.get(5)?),
        first_party: r.get(6)?,
        created_at: r.get(7)?,
    })
}

pub fn insert_client(conn: &Conn, c: &ClientRow) -> StorageResult<()> {
    conn.exec(
        &format!(
            "INSERT INTO oauth_clients ({CLIENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ),
        params![
            c.client_id,
            c.name,
            c.secret_hash,
            json_list(&c.redirect_uris),
            json_list(&c.post_logout_redirect_uris),
            json_list(&c.scopes),
            c.first_party,
            c.created_at
        ],
    )?;
    Ok(())
}

pub fn client(conn: &Conn, client_id: &str) -> StorageResult<Option<ClientRow>> {
    optional(conn.query_row(
        &format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = ?1"),
        [client_id],
        client_from_row,
    ))
}

pub fn clients(conn: &Conn) -> StorageResult<Vec<ClientRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY created_at, client_id"
    ))?;
    let rows = stmt.query_map((), client_from_row)?;
    rows.collect::<Result<_, _>>()
}

/// Replaces the secret hash; false when no such client.
pub fn set_client_secret(conn: &Conn, client_id: &str, hash: &str) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE oauth_clients SET secret_hash = ?2 WHERE client_id = ?1",
        params![client_id, hash],
    )? == 1)
}

/// Deletes the client with its consents and codes; false when no such client.
pub fn delete_client(conn: &Conn, client_id: &str) -> StorageResult<bool> {
    conn.exec(
        "DELETE FROM oauth_consents WHERE client_id = ?1",
        [client_id],
    )?;
    conn.exec("DELETE FROM oauth_codes WHERE client_id = ?1", [client_id])?;
    Ok(conn.exec(
        "DELETE FROM oauth_clients WHERE client_id = ?1",
        [client_id],
    )? == 1)
}

/// The scopes `user_id` allowed `client_id`, if any consent is remembered.
pub fn consent(conn: &Conn, user_id: &str, client_id: &str) -> StorageResult<Option<Vec<String>>> {
    let scopes: Option<String> = optional(conn.query_row(
        "SELECT scopes FROM oauth_consents WHERE user_id = ?1 AND client_id = ?2",
        [user_id, client_id],
        |r| r.get(0),
    ))?;
    Ok(scopes.map(|s| {
        s.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }))
}

/// Remembers consent to `scopes` (replacing an earlier one).
pub fn set_consent(
    conn: &Conn,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: i64,
) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO oauth_consents (user_id, client_id, scopes, granted_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        params![user_id, client_id, scopes.join(" "), now],
    )?;
    Ok(())
}

/// Forgets a consent; false when there was none.
pub fn delete_consent(conn: &Conn, user_id: &str, client_id: &str) -> StorageResult<bool> {
    Ok(conn.exec(
        "DELETE FROM oauth_consents WHERE user_id = ?1 AND client_id = ?2",
        [user_id, client_id],
    )? == 1)
}

/// `(client_id, scopes, granted_at)` of every consent `user_id` gave.
pub fn consents_of(conn: &Conn, user_id: &str) -> StorageResult<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT client_id, scopes, granted_at FROM oauth_consents WHERE user_id = ?1 ORDER BY granted_at DESC",
    )?;
    let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect::<Result<_, _>>()
}

/// An authorization code of the provider.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub client_id: String,
    pub user_id: String,
    pub payload: serde_json::Value,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub session_id: Option<String>,
}

pub fn insert_code(
    conn: &Conn,
    code_hash: &str,
    client_id: &str,
    user_id: &str,
    payload: &serde_json::Value,
    now: i64,
    expires_at: i64,
) -> StorageResult<()> {
    conn.exec(
        "INSERT INTO oauth_codes (code_hash, client_id, user_id, payload, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            code_hash,
            client_id,
            user_id,
            payload.to_string(),
            now,
            expires_at
        ],
    )?;
    // Codes past their life are of no further use, not even to spot reuse.
    conn.exec(
        "DELETE FROM oauth_codes WHERE expires_at < ?1",
        [now - 3600],
    )?;
    Ok(())
}

/// The code's row, used or not.
pub fn code(conn: &Conn, code_hash: &str) -> StorageResult<Option<CodeRow>> {
    optional(conn.query_row(
        "SELECT client_id, user_id, payload, expires_at, used_at, session_id FROM oauth_codes WHERE code_hash = ?1",
        [code_hash],
        |r| {
            Ok(CodeRow {
                client_id: r.get(0)?,
                user_id: r.get(1)?,
                payload: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                expires_at: r.get(3)?,
                used_at: r.get(4)?,
                session_id: r.get(5)?,
            })
        },
    ))
}

/// Marks the code used; false when it already was (one atomic UPDATE).
pub fn use_code(conn: &Conn, code_hash: &str, now: i64) -> StorageResult<bool> {
    Ok(conn.exec(
        "UPDATE oauth_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
        params![code_hash, now],
    )? == 1)
}

/// Records the session the code's exchange minted.
pub fn set_code_session(conn: &Conn, code_hash: &str, session_id: &str) -> StorageResult<()> {
    conn.exec(
        "UPDATE oauth_codes SET session_id = ?2 WHERE code_hash = ?1",
        params![code_hash, session_id],
    )?;
    Ok(())
}
