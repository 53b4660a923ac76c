//! A passkey as the first second factor of a sign-in that waits for one
//! (`[auth.native.mfa] required`): the `enrollment_token` the first factor
//! left stands for that fresh sign-in, in place of a session, as it does
//! for TOTP (`super::mfa`).
//!
//! The registration flow is bound to the token (its hash) and to its user:
//! a flow started for another sign-in, or by a signed-in session, finishes
//! nothing here. Once the passkey is stored the token is spent and the
//! waiting sign-in completes through the pipeline as a second factor
//! (amr: the first factor's, `hwk`, `user`, `mfa`), with recovery codes
//! shown once. A refused passkey counts against the token like a wrong
//! TOTP code (5 and it dies).

use super::enrollment::{complete_enrollment, enrollment_failed, pending_enrollment};
use super::mfa::{FactorView, Verified};
use super::passkeys::{
    PasskeyStart, finish_registration, parse_credential, passkey_name, start_registration,
};
use super::pipeline::{MFA_MAX_FAILURES, SecondFactor};
use super::{NativeBackend, record};
use crate::auth::RequestMeta;
use crate::auth::secrets::hash_token;
use crate::error::{AuthError, AuthResult};
use crate::storage::mfa;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

impl NativeBackend {
    /// Creation options for a passkey of the user of `enrollment_token`.
    pub async fn passkey_enroll_start(
        &self,
        enrollment_token: &str,
        name: Option<String>,
    ) -> AuthResult<PasskeyStart> {
        let webauthn = self.relying_party.get()?.clone();
        let name = passkey_name(name)?;
        let hash = hash_token(enrollment_token);
        let sealer = self.sealer.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<PasskeyStart> {
                let (_, user) = pending_enrollment(conn, &hash, now)?;
                start_registration(conn, &webauthn, &sealer, &user, Some(hash), name, now)
            })
            .await
    }

    /// Checks the browser's new credential for a flow of
    /// [`Self::passkey_enroll_start`] (spent first, whatever the answer),
    /// stores the passkey, spends the token and completes its sign-in.
    /// A flow that is not this token's answers 400 naming `flow_id`.
    pub async fn passkey_enroll_finish(
        &self,
        enrollment_token: &str,
        flow_id: &str,
        credential: serde_json::Value,
        meta: &RequestMeta,
    ) -> AuthResult<Verified> {
        let webauthn = self.relying_party.get()?.clone();
        let reg: RegisterPublicKeyCredential = parse_credential(credential)?;
        let hash = hash_token(enrollment_token);
        let flow_hash = hash_token(flow_id);
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
                let flow = match mfa::spend_passkey_flow(conn, &flow_hash, true, now)? {
                    Some(f)
                        if f.user_id.as_deref() == Some(user.id.as_str())
                            && f.mfa_token_hash.as_deref() == Some(hash.as_str()) =>
                    {
                        f
                    }
                    _ => {
                        return Ok(Err(AuthError::field(
                            "flow_id",
                            "is not a passkey setup of this sign-in, or it expired",
                        )));
                    }
                };
                let row = match finish_registration(
                    conn, &webauthn, &sealer, &flow, &reg, &user.id, now,
                )? {
                    Ok(row) => row,
                    Err(e) => {
                        enrollment_failed(conn, &hash, &user.id, "passkey", &meta, now)?;
                        return Ok(Err(e));
                    }
                };
                // Checked live above, in this transaction; should it fail
                // anyway, the outer error rolls the passkey back.
                if !mfa::spend_challenge(conn, &hash, MFA_MAX_FAILURES, now)? {
                    return Err(AuthError::InvalidToken);
                }
                // A TOTP setup left pending on the way is not needed.
                mfa::delete_stale_pending(conn, &user.id, now + 1)?;
                record(
                    conn,
                    now,
                    &meta,
                    "passkey.registered",
                    Some(&user.id),
                    serde_json::json!({"factor_id": row.id, "type": "passkey"}),
                )?;
                let (codes, step) = complete_enrollment(
                    conn,
                    &pipeline,
                    ch,
                    &user,
                    &row.id,
                    SecondFactor::Passkey,
                    &meta,
                    now,
                )?;
                Ok(Ok(Verified {
                    factor: FactorView::from(&row),
                    recovery_codes: codes,
                    step: Some(step),
                }))
            })
            .await?
    }
}
