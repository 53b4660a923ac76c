//! The second step of a sign-in: the `mfa_token` of a first factor and a
//! TOTP or recovery code (a passkey answers it in `super::passkey_sign_in`).

use super::mfa::*;
use super::pipeline::{MFA_MAX_FAILURES, PURPOSE_CHALLENGE, Proof, SecondFactor};
use super::{NativeBackend, record};
use crate::auth::secrets::hash_token;
use crate::auth::{RequestMeta, SignInStep};
use crate::error::{AuthError, AuthResult};
use crate::storage::mfa::{self};
use crate::storage::{lockouts, users};

impl NativeBackend {
    /// `POST /mfa/challenge`: the `mfa_token` of a first factor and a TOTP
    /// or recovery code. A wrong code is counted (and committed) before the
    /// error is answered.
    pub async fn mfa_challenge(
        &self,
        mfa_token: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let hash = hash_token(mfa_token);
        let code = normalise_code(code);
        let sealer = self.sealer.clone();
        let pipeline = self.sign_in_pipeline();
        let limits = self.lockout.limits();
        let source = crate::auth::lockout::source_of(meta.ip.as_deref());
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<AuthResult<SignInStep>> {
                let Some(ch) = mfa::challenge(conn, &hash)? else {
                    return Ok(Err(AuthError::InvalidToken));
                };
                if ch.purpose != PURPOSE_CHALLENGE
                    || ch.used_at.is_some()
                    || ch.expires_at <= now
                    || ch.failures >= MFA_MAX_FAILURES
                {
                    return Ok(Err(AuthError::InvalidToken));
                }
                let user = match users::by_id(conn, &ch.user_id)? {
                    Some(r) if !r.user.disabled => r.user,
                    Some(_) => return Ok(Err(AuthError::AccountDisabled)),
                    None => return Ok(Err(AuthError::InvalidToken)),
                };
                let rows = lockouts::for_source(conn, &user.email, &source)?;
                if let Some(left) = lockouts::remaining(&rows, now) {
                    return Ok(Err(AuthError::RateLimited {
                        retry_after: u64::try_from(left).unwrap_or(1),
                    }));
                }
                let factors = mfa::active_factors(conn, &user.id)?;
                let answered = if is_totp_code(&code) {
                    accept_totp(conn, &sealer, &factors, &code, now)?.map(|_| SecondFactor::Totp)
                } else if !code.is_empty()
                    && !factors.is_empty()
                    && mfa::use_recovery_code(conn, &user.id, &hash_token(&code), now)?
                {
                    Some(SecondFactor::RecoveryCode)
                } else {
                    None
                };
                let Some(factor) = answered else {
                    let failures = mfa::challenge_failed(conn, &hash)?;
                    let mut detail = serde_json::json!({"failures": failures});
                    if let Some(limits) = limits {
                        let counted =
                            lockouts::record_failure(conn, &user.email, &source, now, limits)?;
                        detail["lockout_failures"] = counted.source.failures.into();
                        super::record_locks(conn, now, &meta, Some(&user.id), &counted, limits)?;
                    }
                    record(
                        conn,
                        now,
                        &meta,
                        "mfa.challenge.failure",
                        Some(&user.id),
                        detail,
                    )?;
                    return Ok(Err(AuthError::InvalidMfaCode));
                };
                if !mfa::spend_challenge(conn, &hash, MFA_MAX_FAILURES, now)? {
                    return Ok(Err(AuthError::InvalidToken));
                }
                if factor == SecondFactor::RecoveryCode {
                    record(
                        conn,
                        now,
                        &meta,
                        "mfa.recovery_code.used",
                        Some(&user.id),
                        serde_json::json!({"left": mfa::unused_recovery_codes(conn, &user.id)?}),
                    )?;
                }
                // The whole sign-in passed: this source's earlier failures
                // are forgotten (the per-address brake counts on).
                lockouts::clear_source(conn, &user.email, &source)?;
                let proof = Proof::SecondFactor {
                    first_amr: ch.amr,
                    first_method: ch.method,
                    factor,
                };
                // A failure here is the database's: roll everything back.
                pipeline.complete(conn, &user, &proof, &meta, now).map(Ok)
            })
            .await?
    }
}
