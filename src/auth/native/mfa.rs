//! Second factors of native users: TOTP enrollment, verification and
//! removal, recovery codes, and the challenge that finishes a sign-in whose
//! first factor asked for a second (see the pipeline).
//!
//! TOTP secrets are sealed at rest ([`crate::auth::sealer`]), bound to
//! their user and factor; recovery codes are stored hashed and spent with
//! one atomic UPDATE. Enrolling, removing and replacing recovery codes need
//! a sign-in within the last 10 minutes. A wrong code counts against the
//! `mfa_token` (5 and it dies) and toward the address's sign-in lockout.

use super::{NativeBackend, record};
use crate::auth::secrets::{hash_token, random_id};
use crate::auth::{RequestMeta, SessionInfo, SignInStep, totp};
use crate::clock::from_unix;
use crate::domain::User;
use crate::error::{AuthError, AuthResult};
use crate::storage::mfa::{self, FactorRow};
use crate::storage::{Conn, sessions, users};
use rand::Rng;
use serde::Serialize;

/// A sign-in counts as recent for this long (enroll, remove, new codes).
pub const RECENT_SIGN_IN_SECS: i64 = 600;
/// How many recovery codes a set holds.
pub const RECOVERY_CODES: usize = 10;
/// The use the TOTP secrets are sealed for.
pub(super) const SEAL_INFO: &str = "derp mfa totp secret v1";

/// A factor as its owner sees it: no secret.
#[derive(Debug, Clone, Serialize)]
pub struct FactorView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<time::OffsetDateTime>,
}

impl From<&FactorRow> for FactorView {
    fn from(f: &FactorRow) -> Self {
        Self {
            id: f.id.clone(),
            kind: f.kind.clone(),
            name: f.name.clone(),
            created_at: from_unix(f.created_at),
            last_used_at: f.last_used_at.map(from_unix),
        }
    }
}

/// A pending TOTP factor: what the authenticator app needs, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrollment {
    pub factor_id: String,
    /// Base32, for typing into the app.
    pub secret: String,
    pub otpauth_url: String,
}

pub(super) fn aad(f: &FactorRow) -> String {
    format!("{}/{}", f.user_id, f.id)
}

/// `abcde-fghij`: 50 random bits from a 32-letter alphabet without
/// look-alikes.
pub(super) fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// Codes are compared without case, spaces or dashes.
pub(super) fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

pub(super) fn is_totp_code(code: &str) -> bool {
    code.len() == usize::from(totp::DIGITS) && code.bytes().all(|b| b.is_ascii_digit())
}

/// A fresh set of recovery codes replaces the old one; answers the codes.
pub(super) fn new_recovery_codes(conn: &Conn, user_id: &str, now: i64) -> AuthResult<Vec<String>> {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| hash_token(&normalise_code(c)))
        .collect();
    mfa::replace_recovery_codes(conn, user_id, &hashes, now)?;
    Ok(codes)
}

/// The session must come from a sign-in within [`RECENT_SIGN_IN_SECS`].
pub(super) fn require_recent(conn: &Conn, session: &SessionInfo, now: i64) -> AuthResult<()> {
    match sessions::get(conn, &session.session_id)? {
        Some(s) if s.user_id == session.user_id && s.is_live(now) => {
            if now - s.created_at <= RECENT_SIGN_IN_SECS {
                Ok(())
            } else {
                Err(AuthError::ReauthenticationRequired)
            }
        }
        _ => Err(AuthError::Unauthenticated),
    }
}

/// Which active TOTP factor `code` belongs to (not a replay), marking its
/// step used.
pub(super) fn accept_totp(
    conn: &Conn,
    sealer: &crate::auth::sealer::Sealer,
    factors: &[FactorRow],
    code: &str,
    now: i64,
) -> AuthResult<Option<String>> {
    for f in factors.iter().filter(|f| f.kind == "totp") {
        let secret = sealer.open(SEAL_INFO, &aad(f), &f.secret_sealed)?;
        if let Some(step) = totp::matching_step(&secret, code, now)
            && mfa::use_totp_step(conn, &f.id, step, now)?
        {
            return Ok(Some(f.id.clone()));
        }
    }
    Ok(None)
}

/// `derp mfa reset --email E`: removes every second factor and recovery
/// code of the account (a user who lost them all), recorded as
/// `mfa.removed`. Answers the user id and how many factors there were, or
/// `None` for an unknown address.
pub fn reset_factors(conn: &Conn, email: &str, now: i64) -> AuthResult<Option<(String, usize)>> {
    let Some(r) = users::by_email(conn, email)? else {
        return Ok(None);
    };
    let removed = mfa::delete_all_for_user(conn, &r.user.id)?;
    record(
        conn,
        now,
        &RequestMeta::default(),
        "mfa.removed",
        Some(&r.user.id),
        serde_json::json!({"all": true, "factors": removed, "by": "cli"}),
    )?;
    Ok(Some((r.user.id, removed)))
}

/// A factor's name: trimmed, a default when empty, at most 64 characters.
pub(super) fn factor_name(name: Option<String>) -> AuthResult<String> {
    let name = name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Authenticator app".into());
    if name.chars().count() > 64 {
        return Err(AuthError::field("name", "must be at most 64 characters"));
    }
    Ok(name)
}

/// A new pending TOTP factor of `user` (earlier pending ones are dropped).
pub(super) fn pending_totp(
    conn: &Conn,
    sealer: &crate::auth::sealer::Sealer,
    issuer: &str,
    user: &User,
    name: String,
    now: i64,
) -> AuthResult<TotpEnrollment> {
    let secret = totp::new_secret();
    mfa::delete_stale_pending(conn, &user.id, now + 1)?;
    let mut row = FactorRow {
        id: format!("mfa_{}", random_id(12)),
        user_id: user.id.clone(),
        kind: "totp".into(),
        name,
        secret_sealed: String::new(),
        created_at: now,
        confirmed_at: None,
        last_used_at: None,
        last_used_step: None,
        credential_id: None,
    };
    row.secret_sealed = sealer.seal(SEAL_INFO, &aad(&row), &secret)?;
    mfa::insert_factor(conn, &row)?;
    Ok(TotpEnrollment {
        otpauth_url: totp::otpauth_url(&secret, issuer, &user.email)?,
        secret: totp::base32(&secret),
        factor_id: row.id,
    })
}

/// What a verified enrollment answers: the factor, its recovery codes
/// (shown once), and for an `enrollment_token` the completed sign-in.
pub struct Verified {
    pub factor: FactorView,
    pub recovery_codes: Vec<String>,
    pub step: Option<SignInStep>,
}

impl NativeBackend {
    pub(super) fn mfa_issuer(&self) -> String {
        self.cfg
            .mfa
            .issuer_label
            .clone()
            .unwrap_or_else(|| self.mfa_issuer_default.clone())
    }

    /// The user's verified factors.
    pub async fn mfa_factors(&self, session: &SessionInfo) -> AuthResult<Vec<FactorView>> {
        let uid = session.user_id.clone();
        self.db
            .read(move |conn| -> AuthResult<_> {
                Ok(mfa::active_factors(conn, &uid)?
                    .iter()
                    .map(FactorView::from)
                    .collect())
            })
            .await
    }

    /// How many unused recovery codes the user has.
    pub async fn mfa_recovery_codes_left(&self, session: &SessionInfo) -> AuthResult<i64> {
        let uid = session.user_id.clone();
        self.db
            .read(move |conn| -> AuthResult<_> { Ok(mfa::unused_recovery_codes(conn, &uid)?) })
            .await
    }

    /// A new pending TOTP factor (earlier pending ones of the user are
    /// dropped); active once [`Self::mfa_totp_verify`] sees its first code.
    pub async fn mfa_totp_enroll(
        &self,
        session: &SessionInfo,
        name: Option<String>,
    ) -> AuthResult<TotpEnrollment> {
        if !self.cfg.mfa.totp {
            return Err(AuthError::FeatureDisabled("TOTP enrollment"));
        }
        let name = factor_name(name)?;
        let sealer = self.sealer.clone();
        let issuer = self.mfa_issuer();
        let session = session.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<TotpEnrollment> {
                require_recent(conn, &session, now)?;
                let user = users::by_id(conn, &session.user_id)?
                    .ok_or(AuthError::Unauthenticated)?
                    .user;
                pending_totp(conn, &sealer, &issuer, &user, name, now)
            })
            .await
    }

    /// Activates a pending TOTP factor with its first code. The user's
    /// first factor also gets a new set of recovery codes, shown once.
    pub async fn mfa_totp_verify(
        &self,
        session: &SessionInfo,
        factor_id: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> AuthResult<(FactorView, Vec<String>)> {
        let (uid, fid) = (session.user_id.clone(), factor_id.to_string());
        let sid = session.session_id.clone();
        let code = normalise_code(code);
        let sealer = self.sealer.clone();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<(FactorView, Vec<String>)> {
                let f = mfa::factor(conn, &uid, &fid)?.ok_or(AuthError::NotFound("factor"))?;
                if f.confirmed_at.is_some() {
                    return Err(AuthError::field("factor_id", "is already verified"));
                }
                if accept_totp(conn, &sealer, std::slice::from_ref(&f), &code, now)?.is_none() {
                    return Err(AuthError::field("code", "is not the current code"));
                }
                mfa::confirm_factor(conn, &f.id, now)?;
                let codes = new_recovery_codes(conn, &uid, now)?;
                // The session that enrolled it has now shown both factors
                // (its sign-in was recent at enrollment, and this code):
                // its next tokens say `otp` and `mfa`.
                if let Some(s) = sessions::get(conn, &sid)?
                    && s.user_id == uid
                    && s.is_live(now)
                {
                    let mut amr = s.amr;
                    for m in ["otp", "mfa"] {
                        if !amr.iter().any(|x| x == m) {
                            amr.push(m.to_string());
                        }
                    }
                    sessions::set_amr(conn, &sid, &amr)?;
                }
                record(
                    conn,
                    now,
                    &meta,
                    "mfa.enrolled",
                    Some(&uid),
                    serde_json::json!({"factor_id": f.id, "type": f.kind}),
                )?;
                let f = mfa::factor(conn, &uid, &fid)?.ok_or(AuthError::NotFound("factor"))?;
                Ok((FactorView::from(&f), codes))
            })
            .await
    }

    /// Replaces the user's recovery codes (recent sign-in, an active factor).
    pub async fn mfa_new_recovery_codes(
        &self,
        session: &SessionInfo,
        meta: &RequestMeta,
    ) -> AuthResult<Vec<String>> {
        let session = session.clone();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<Vec<String>> {
                require_recent(conn, &session, now)?;
                if !mfa::has_active_factor(conn, &session.user_id)? {
                    return Err(AuthError::NotFound("second factor"));
                }
                let codes = new_recovery_codes(conn, &session.user_id, now)?;
                record(
                    conn,
                    now,
                    &meta,
                    "mfa.recovery_codes.replaced",
                    Some(&session.user_id),
                    serde_json::Value::Null,
                )?;
                Ok(codes)
            })
            .await
    }

    /// Removes a factor (recent sign-in); with the last one go the
    /// recovery codes.
    pub async fn mfa_remove(
        &self,
        session: &SessionInfo,
        factor_id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let session = session.clone();
        let fid = factor_id.to_string();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                require_recent(conn, &session, now)?;
                let uid = &session.user_id;
                let f = mfa::factor(conn, uid, &fid)?.ok_or(AuthError::NotFound("factor"))?;
                mfa::delete_factor(conn, uid, &fid)?;
                if !mfa::has_active_factor(conn, uid)? {
                    mfa::delete_recovery_codes(conn, uid)?;
                }
                if f.confirmed_at.is_some() {
                    record(
                        conn,
                        now,
                        &meta,
                        "mfa.removed",
                        Some(uid),
                        serde_json::json!({"factor_id": f.id, "type": f.kind}),
                    )?;
                }
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let a = new_recovery_code();
        assert_eq!(a.len(), 11);
        assert_ne!(a, new_recovery_code());
        assert_eq!(normalise_code(" ABCDE-fghij "), "abcdefghij");
        assert!(is_totp_code("012345") && !is_totp_code("01234a") && !is_totp_code("1234567"));
    }
}
