//! The native backend: users, sessions and tokens in SQLite.
//!
//! Each use case is one write transaction (`Db::write`), so nothing is ever
//! half-written; password hashing happens before the transaction, on the
//! blocking pool, so the database lock is never held while argon2 runs.

mod account;
mod backend;
mod code;
pub use code::{check_challenge, pkce_holds, valid_challenge};
mod email_links;
mod enrollment;
mod identity;
pub mod mfa;
mod mfa_challenge;
pub mod passkey_enrollment;
mod passkey_sign_in;
pub mod passkeys;
mod pipeline;
mod totp_enrollment;
pub use pipeline::Proof;
pub mod provider;
mod session;
mod session_cache;

use super::RequestMeta;
use super::jwt::Keyring;
use super::lockout::LockoutPolicy;
use super::password::Hasher;
use super::secrets::{hash_token, random_token};
use crate::clock::Clock;
use crate::config::NativeConfig;
use crate::domain::redirect::{AllowedUrls, with_query};
use crate::domain::{PasswordPolicy, Purpose, User};
use crate::error::{AuthError, AuthResult};
use crate::mail::queue::MailQueue;
use crate::storage::audit::{self, AuditEvent};
use crate::storage::{Conn, Db, lockouts, tokens, users};
use std::sync::Arc;

pub struct NativeBackend {
    db: Db,
    clock: Arc<dyn Clock>,
    keys: Keyring,
    hasher: Hasher,
    policy: PasswordPolicy,
    mail: MailQueue,
    cfg: NativeConfig,
    links: Links,
    lockout: Arc<LockoutPolicy>,
    session_cache: session_cache::SessionCache,
    sealer: crate::auth::sealer::Sealer,
    /// The WebAuthn relying party (passkeys), or why there is none.
    relying_party: passkeys::RelyingParty,
    /// The TOTP issuer when `[auth.native.mfa] issuer_label` is unset
    /// (`[hosted] product_name`).
    mfa_issuer_default: String,
    /// Life of access tokens issued to OpenID Connect clients.
    client_access_ttl: i64,
    /// The org roles configured (`[orgs] roles`): what `org_role` claims.
    org_roles: crate::domain::OrgRoles,
}

/// Where mail links point.
#[derive(Debug, Clone)]
pub struct Links {
    pub public_url: String,
    pub allowed: AllowedUrls,
}

impl Links {
    /// The caller's URL when allowed (else a 400 naming `field`), or derp's own page.
    fn target(&self, requested: Option<String>, field: &str, own_page: &str) -> AuthResult<String> {
        match requested {
            Some(url) if self.allowed.is_allowed(&url) => Ok(url),
            Some(_) => Err(AuthError::field(
                field,
                "is not an allowed URL (see [hosted] allowed_redirect_urls)",
            )),
            None => Ok(format!("{}{own_page}", self.public_url)),
        }
    }
}

pub struct NativeParts {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub keys: Keyring,
    pub hasher: Hasher,
    pub mail: MailQueue,
    pub cfg: NativeConfig,
    pub links: Links,
    pub lockout: Arc<LockoutPolicy>,
    /// Seals TOTP secrets (key file in `data_dir`).
    pub sealer: crate::auth::sealer::Sealer,
    pub mfa_issuer_default: String,
    /// Life of access tokens issued to OpenID Connect clients, in seconds.
    pub client_access_ttl: i64,
    pub org_roles: crate::domain::OrgRoles,
}

impl NativeBackend {
    pub fn new(p: NativeParts) -> Self {
        let relying_party = passkeys::RelyingParty::new(
            p.cfg.mfa.passkeys,
            p.cfg.mfa.rp_id.as_deref(),
            &p.links.public_url,
            p.cfg
                .mfa
                .issuer_label
                .as_deref()
                .unwrap_or(&p.mfa_issuer_default),
        );
        Self {
            relying_party,
            policy: PasswordPolicy::new(p.cfg.password.clone()),
            db: p.db,
            clock: p.clock,
            keys: p.keys,
            hasher: p.hasher,
            mail: p.mail,
            cfg: p.cfg,
            links: p.links,
            lockout: p.lockout,
            session_cache: Default::default(),
            sealer: p.sealer,
            mfa_issuer_default: p.mfa_issuer_default,
            client_access_ttl: p.client_access_ttl,
            org_roles: p.org_roles,
        }
    }

    fn now(&self) -> i64 {
        self.clock.unix()
    }

    fn check_policy(&self, password: &str) -> AuthResult<()> {
        let problems = self.policy.check(password);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AuthError::WeakPassword(
                problems.into_iter().map(|p| p.code()).collect(),
            ))
        }
    }

    fn confirmation_ttl(&self) -> i64 {
        self.cfg.confirmation_token_expire_hours as i64 * 3600
    }

    fn magic_link_ttl(&self) -> i64 {
        self.cfg.magic_link_expire_minutes as i64 * 60
    }

    fn recovery_ttl(&self) -> i64 {
        self.cfg.recovery_token_expire_minutes as i64 * 60
    }
}

/// Stores a new one-time token and returns its plaintext (for the mail only).
fn issue_one_time_token(
    conn: &Conn,
    purpose: Purpose,
    email: &str,
    user_id: Option<&str>,
    now: i64,
    ttl: i64,
) -> AuthResult<String> {
    let token = random_token();
    tokens::insert(
        conn,
        &hash_token(&token),
        &tokens::OneTimeToken {
            purpose,
            email: email.into(),
            user_id: user_id.map(str::to_string),
            payload: serde_json::json!({}),
            expires_at: now + ttl,
        },
        now,
    )?;
    Ok(token)
}

/// Spends a link token of `purpose` issued for an account and returns that
/// account. The token is bound to the address it was mailed to, so a changed
/// address voids it; a disabled account is refused.
fn spend_account_link(
    conn: &Conn,
    token_hash: &str,
    purpose: Purpose,
    now: i64,
) -> AuthResult<User> {
    let t = tokens::consume(conn, token_hash, purpose, now)?.ok_or(AuthError::InvalidToken)?;
    let user = match t
        .user_id
        .as_deref()
        .map(|id| users::by_id(conn, id))
        .transpose()?
        .flatten()
    {
        Some(r) if r.user.email == t.email => r.user,
        _ => return Err(AuthError::InvalidToken),
    };
    if user.disabled {
        return Err(AuthError::AccountDisabled);
    }
    Ok(user)
}

/// An account whose address was never confirmed, now proven by a magic link
/// or a provider's verified email: whoever set a password before the address
/// was proven may not be its owner, so that password is dropped (recorded as
/// `password.cleared` with `reason`), and the address counts as confirmed.
/// Answers whether the account was unconfirmed.
fn claim_unverified(
    conn: &Conn,
    account: &users::UserRecord,
    reason: &str,
    meta: &RequestMeta,
    now: i64,
) -> AuthResult<bool> {
    if account.user.email_confirmed_at.is_some() {
        return Ok(false);
    }
    if account.password_hash.is_some() {
        users::set_password_hash(conn, &account.user.id, None, now)?;
        record(
            conn,
            now,
            meta,
            "password.cleared",
            Some(&account.user.id),
            serde_json::json!({ "reason": reason }),
        )?;
    }
    users::confirm_email(conn, &account.user.id, now)?;
    Ok(true)
}

fn record(
    conn: &Conn,
    now: i64,
    meta: &RequestMeta,
    action: &str,
    user_id: Option<&str>,
    detail: serde_json::Value,
) -> AuthResult<()> {
    audit::record(
        conn,
        now,
        &AuditEvent {
            action,
            actor_id: user_id,
            user_id,
            ip: meta.ip.as_deref(),
            user_agent: meta.user_agent.as_deref(),
            detail,
            ..Default::default()
        },
    )?;
    Ok(())
}

/// Records `sign_in.locked` when this failure locked the address: for its
/// source (`scope: "source"`) or, through the per-address brake, for
/// everyone (`scope: "address"`).
fn record_locks(
    conn: &Conn,
    now: i64,
    meta: &RequestMeta,
    user_id: Option<&str>,
    counted: &lockouts::Counted,
    limits: lockouts::Limits,
) -> AuthResult<()> {
    let mut locks = vec![(&counted.source, limits.per_source, "source")];
    if let Some(a) = &counted.address {
        locks.push((a, limits.per_address, "address"));
    }
    for (l, threshold, scope) in locks {
        if l.failures == threshold
            && let Some(until) = l.locked_until
        {
            let mut detail = serde_json::json!({"email": l.email, "failures": l.failures,
                "locked_until": until, "scope": scope});
            if !l.is_address_wide() {
                detail["source"] = l.source.clone().into();
            }
            record(conn, now, meta, "sign_in.locked", user_id, detail)?;
        }
    }
    Ok(())
}

/// `base?token=…`
fn link_with_token(base: &str, token: &str) -> String {
    with_query(base, &[("token", token)])
}
