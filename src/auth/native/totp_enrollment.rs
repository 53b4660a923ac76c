//! TOTP as the first factor enrolled at sign-in (`[auth.native.mfa]
//! required`): the `enrollment_token` stands for the fresh first factor in
//! place of a session; the passkey path is `super::passkey_enrollment`.

use super::NativeBackend;
use super::enrollment::{complete_enrollment, enrollment_failed, pending_enrollment};
use super::mfa::*;
use super::pipeline::{MFA_MAX_FAILURES, SecondFactor};
use crate::auth::RequestMeta;
use crate::auth::secrets::hash_token;
use crate::error::{AuthError, AuthResult};
use crate::storage::mfa::{self};

impl NativeBackend {
    /// A pending TOTP factor for the user of an `enrollment_token`
    /// (`[auth.native.mfa] required`): the token stands for the fresh first
    /// factor, in place of a session.
    pub async fn mfa_totp_enroll_with_token(
        &self,
        enrollment_token: &str,
        name: Option<String>,
    ) -> AuthResult<TotpEnrollment> {
        if !self.cfg.mfa.totp {
            return Err(AuthError::FeatureDisabled("TOTP enrollment"));
        }
        let name = factor_name(name)?;
        let hash = hash_token(enrollment_token);
        let sealer = self.sealer.clone();
        let issuer = self.mfa_issuer();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<TotpEnrollment> {
                let (_, user) = pending_enrollment(conn, &hash, now)?;
                pending_totp(conn, &sealer, &issuer, &user, name, now)
            })
            .await
    }

    /// Activates the pending TOTP factor of an `enrollment_token`'s user
    /// with its first code, then completes the waiting sign-in through the
    /// pipeline (amr: the first factor's, `otp`, `mfa`). A wrong code counts
    /// against the token (5 and it dies).
    pub async fn mfa_totp_verify_with_token(
        &self,
        enrollment_token: &str,
        factor_id: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> AuthResult<Verified> {
        let hash = hash_token(enrollment_token);
        let fid = factor_id.to_string();
        let code = normalise_code(code);
        let sealer = self.sealer.clone();
        let pipeline = self.sign_in_pipeline();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<AuthResult<Verified>> {
                let (ch, user) = match pending_enrollment(conn, &hash, now) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let Some(f) = mfa::factor(conn, &user.id, &fid)? else {
                    return Ok(Err(AuthError::NotFound("factor")));
                };
                if f.confirmed_at.is_some() {
                    return Ok(Err(AuthError::field("factor_id", "is already verified")));
                }
                if accept_totp(conn, &sealer, std::slice::from_ref(&f), &code, now)?.is_none() {
                    enrollment_failed(conn, &hash, &user.id, "totp", &meta, now)?;
                    return Ok(Err(AuthError::field("code", "is not the current code")));
                }
                if !mfa::spend_challenge(conn, &hash, MFA_MAX_FAILURES, now)? {
                    return Ok(Err(AuthError::InvalidToken));
                }
                mfa::confirm_factor(conn, &f.id, now)?;
                let (codes, step) = complete_enrollment(
                    conn,
                    &pipeline,
                    ch,
                    &user,
                    &f.id,
                    SecondFactor::Totp,
                    &meta,
                    now,
                )?;
                let f = mfa::factor(conn, &user.id, &fid)?.ok_or(AuthError::NotFound("factor"))?;
                Ok(Ok(Verified {
                    factor: FactorView::from(&f),
                    recovery_codes: codes,
                    step: Some(step),
                }))
            })
            .await?
    }
}
