//! The sign-in that waits for its first second factor (`[auth.native.mfa]
//! required`): its `enrollment_token` stands for the fresh first factor in
//! place of a session. What TOTP (`super::totp_enrollment`) and passkeys
//! (`super::passkey_enrollment`) share: finding the waiting sign-in,
//! counting a wrong answer against it, and completing it once the factor
//! is stored.

use super::mfa::new_recovery_codes;
use super::pipeline::{MFA_MAX_FAILURES, PURPOSE_ENROLL, Proof, SecondFactor, SignIn};
use super::record;
use crate::auth::{RequestMeta, SignInStep};
use crate::domain::User;
use crate::error::{AuthError, AuthResult};
use crate::storage::mfa::{self, ChallengeRow};
use crate::storage::{Conn, users};

/// The live `enrollment_token` stored as `hash` and its user, who still has
/// no active factor (one enrolled meanwhile ends it: sign in again).
pub(super) fn pending_enrollment(
    conn: &Conn,
    hash: &str,
    now: i64,
) -> AuthResult<(ChallengeRow, User)> {
    let ch = mfa::challenge(conn, hash)?
        .filter(|c| {
            c.purpose == PURPOSE_ENROLL
                && c.used_at.is_none()
                && c.expires_at > now
                && c.failures < MFA_MAX_FAILURES
        })
        .ok_or(AuthError::InvalidToken)?;
    let user = users::by_id(conn, &ch.user_id)?
        .ok_or(AuthError::InvalidToken)?
        .user;
    if user.disabled {
        return Err(AuthError::AccountDisabled);
    }
    if mfa::has_active_factor(conn, &user.id)? {
        return Err(AuthError::InvalidToken);
    }
    Ok((ch, user))
}

/// A wrong answer at enrollment (`factor`: `totp` or `passkey`): counted
/// against the `enrollment_token` (5 and it dies) and recorded.
pub(super) fn enrollment_failed(
    conn: &Conn,
    token_hash: &str,
    user_id: &str,
    factor: &str,
    meta: &RequestMeta,
    now: i64,
) -> AuthResult<()> {
    let failures = mfa::challenge_failed(conn, token_hash)?;
    record(
        conn,
        now,
        meta,
        "mfa.challenge.failure",
        Some(user_id),
        serde_json::json!({"failures": failures, "enrollment": true, "factor": factor}),
    )
}

/// The first second factor (`factor_id`) is stored and the token
/// spent: new recovery codes (shown once), `mfa.enrolled`, and the waiting
/// sign-in completes through the pipeline with both factors in its amr.
#[allow(clippy::too_many_arguments)]
pub(super) fn complete_enrollment(
    conn: &Conn,
    pipeline: &SignIn,
    waiting: ChallengeRow,
    user: &User,
    factor_id: &str,
    second: SecondFactor,
    meta: &RequestMeta,
    now: i64,
) -> AuthResult<(Vec<String>, SignInStep)> {
    let codes = new_recovery_codes(conn, &user.id, now)?;
    record(
        conn,
        now,
        meta,
        "mfa.enrolled",
        Some(&user.id),
        serde_json::json!({"factor_id": factor_id, "type": second.name(), "at_sign_in": true}),
    )?;
    let proof = Proof::SecondFactor {
        first_amr: waiting.amr,
        first_method: waiting.method,
        factor: second,
    };
    let step = pipeline.complete(conn, user, &proof, meta, now)?;
    Ok((codes, step))
}
