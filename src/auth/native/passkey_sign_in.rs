//! Signing in with a passkey: alone (a discoverable credential, or the
//! passkeys of an address), or as the second step of a pending sign-in.
//! Registration and the relying party are `super::passkeys`.

use super::passkeys::*;
use super::pipeline::{MFA_MAX_FAILURES, PURPOSE_CHALLENGE, Proof, SecondFactor};
use super::{NativeBackend, record};
use crate::auth::secrets::hash_token;
use crate::auth::{RequestMeta, SignInStep};
use crate::domain::Email;
use crate::error::{AuthError, AuthResult};
use crate::storage::mfa::{self, FactorRow, PasskeyFlowRow};
use crate::storage::{Conn, users};
use webauthn_rs::prelude::{DiscoverableKey, Passkey, PublicKeyCredential, Webauthn};

impl NativeBackend {
    /// `POST /passkeys/sign-in/start`: request options for a sign-in. With
    /// an `mfa_token`, the second step of that pending sign-in (its user's
    /// passkeys); with an address, that user's passkeys when there are
    /// any; else a discoverable sign-in (the browser picks).
    pub async fn passkey_sign_in_start(
        &self,
        email: Option<String>,
        mfa_token: Option<String>,
    ) -> AuthResult<PasskeyStart> {
        let webauthn = self.relying_party.get()?.clone();
        let sealer = self.sealer.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<PasskeyStart> {
                let (kind, user_id, mfa_token_hash, ceremony, options) = if let Some(token) =
                    mfa_token
                {
                    let hash = hash_token(&token);
                    let ch = live_challenge(conn, &hash, now)?;
                    let keys = user_passkeys(conn, &sealer, &ch.user_id)?;
                    if keys.is_empty() {
                        return Err(AuthError::field("mfa_token", "the user has no passkey"));
                    }
                    let keys: Vec<Passkey> = keys.into_iter().map(|(_, pk)| pk).collect();
                    let (rcr, state) = webauthn
                        .start_passkey_authentication(&keys)
                        .map_err(AuthError::internal)?;
                    (
                        "second_factor",
                        Some(ch.user_id),
                        Some(hash),
                        Ceremony::Known(state),
                        options_of(&rcr)?,
                    )
                } else {
                    let email = email
                        .map(|e| Email::parse(&e).map_err(|p| AuthError::field("email", p)))
                        .transpose()?;
                    let known = match email {
                        Some(e) => users::by_email(conn, e.as_str())?
                            .map(|r| {
                                user_passkeys(conn, &sealer, &r.user.id).map(|k| (r.user.id, k))
                            })
                            .transpose()?
                            .filter(|(_, k)| !k.is_empty()),
                        None => None,
                    };
                    match known {
                        Some((uid, keys)) => {
                            let keys: Vec<Passkey> = keys.into_iter().map(|(_, pk)| pk).collect();
                            let (rcr, state) = webauthn
                                .start_passkey_authentication(&keys)
                                .map_err(AuthError::internal)?;
                            (
                                "sign_in",
                                Some(uid),
                                None,
                                Ceremony::Known(state),
                                options_of(&rcr)?,
                            )
                        }
                        None => {
                            let (rcr, state) = webauthn
                                .start_discoverable_authentication()
                                .map_err(AuthError::internal)?;
                            (
                                "sign_in",
                                None,
                                None,
                                Ceremony::Discoverable(state),
                                options_of(&rcr)?,
                            )
                        }
                    }
                };
                let flow_id = store_flow(
                    conn,
                    PasskeyFlowRow {
                        kind: kind.into(),
                        user_id,
                        mfa_token_hash,
                        name: None,
                        state: ceremony_json(&ceremony)?,
                        expires_at: now + FLOW_TTL,
                    },
                    now,
                )?;
                Ok(PasskeyStart { flow_id, options })
            })
            .await
    }

    /// `POST /passkeys/sign-in/finish`: the browser's assertion for a flow
    /// of [`Self::passkey_sign_in_start`]. The flow is spent first; the
    /// credential must be an active passkey (of the flow's user, when it
    /// names one); the library checks origin, challenge, signature, user
    /// verification and the sign count. Then the sign-in pipeline: a
    /// passkey alone is [`Proof::Passkey`], the second step finishes the
    /// pending sign-in of its `mfa_token` (`SecondFactor::Passkey`).
    pub async fn passkey_sign_in_finish(
        &self,
        flow_id: &str,
        credential: serde_json::Value,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let webauthn = self.relying_party.get()?.clone();
        let cred: PublicKeyCredential = parse_credential(credential)?;
        let hash = hash_token(flow_id);
        let sealer = self.sealer.clone();
        let pipeline = self.sign_in_pipeline();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<AuthResult<SignInStep>> {
                let Some(flow) = mfa::spend_passkey_flow(conn, &hash, false, now)? else {
                    return Ok(Err(AuthError::InvalidToken));
                };
                let second = match &flow.mfa_token_hash {
                    Some(h) => match live_challenge(conn, h, now) {
                        Ok(ch) => Some((h.clone(), ch)),
                        Err(e) => return Ok(Err(e)),
                    },
                    None => None,
                };
                let answer = verify_assertion(conn, &webauthn, &sealer, &flow, &cred, now)?;
                let (factor, user) = match answer {
                    Ok(found) => found,
                    Err(e) => {
                        if let Some((h, ch)) = &second {
                            let failures = mfa::challenge_failed(conn, h)?;
                            record(
                                conn,
                                now,
                                &meta,
                                "mfa.challenge.failure",
                                Some(&ch.user_id),
                                serde_json::json!({"failures": failures, "factor": "passkey"}),
                            )?;
                        }
                        return Ok(Err(e));
                    }
                };
                if user.disabled {
                    return Ok(Err(AuthError::AccountDisabled));
                }
                record(
                    conn,
                    now,
                    &meta,
                    "passkey.sign_in",
                    Some(&user.id),
                    serde_json::json!({"factor_id": factor.id, "second_step": second.is_some()}),
                )?;
                let proof = match second {
                    Some((h, ch)) => {
                        if !mfa::spend_challenge(conn, &h, MFA_MAX_FAILURES, now)? {
                            return Ok(Err(AuthError::InvalidToken));
                        }
                        Proof::SecondFactor {
                            first_amr: ch.amr,
                            first_method: ch.method,
                            factor: SecondFactor::Passkey,
                        }
                    }
                    None => Proof::Passkey,
                };
                pipeline.complete(conn, &user, &proof, &meta, now).map(Ok)
            })
            .await?
    }
}

/// The live pending second step stored as `hash`.
pub(super) fn live_challenge(conn: &Conn, hash: &str, now: i64) -> AuthResult<mfa::ChallengeRow> {
    mfa::challenge(conn, hash)?
        .filter(|c| {
            c.purpose == PURPOSE_CHALLENGE
                && c.used_at.is_none()
                && c.expires_at > now
                && c.failures < MFA_MAX_FAILURES
        })
        .ok_or(AuthError::InvalidToken)
}

/// Checks an assertion against a spent flow: the passkey it names, its
/// owner (the flow's user, if any; the user handle of a discoverable
/// sign-in), then the library's checks. On success the passkey's new sign
/// count is stored. The outer `Err` is the database's, the inner the
/// refusal.
pub(super) fn verify_assertion(
    conn: &Conn,
    webauthn: &Webauthn,
    sealer: &crate::auth::sealer::Sealer,
    flow: &PasskeyFlowRow,
    cred: &PublicKeyCredential,
    now: i64,
) -> AuthResult<AuthResult<(FactorRow, crate::domain::User)>> {
    let cred_id = credential_id(cred.get_credential_id());
    let Some(factor) = mfa::passkey_by_credential(conn, &cred_id)? else {
        return Ok(Err(rejected("unknown credential")));
    };
    if flow
        .user_id
        .as_deref()
        .is_some_and(|uid| uid != factor.user_id)
    {
        return Ok(Err(rejected("the credential belongs to another user")));
    }
    let mut pk = open_passkey(sealer, &factor)?;
    let result = match ceremony_of(flow)? {
        Ceremony::Discoverable(state) => {
            match webauthn.identify_discoverable_authentication(cred) {
                Ok((handle, _)) if handle == user_handle(&factor.user_id) => {}
                Ok(_) => return Ok(Err(rejected("the user handle is not the credential's"))),
                Err(e) => return Ok(Err(rejected(e))),
            }
            webauthn.finish_discoverable_authentication(cred, state, &[DiscoverableKey::from(&pk)])
        }
        Ceremony::Known(state) => webauthn.finish_passkey_authentication(cred, &state),
        Ceremony::Register(_) => return Ok(Err(AuthError::InvalidToken)),
    };
    let result = match result {
        Ok(r) if r.user_verified() => r,
        Ok(_) => return Ok(Err(rejected("no user verification"))),
        Err(e) => return Ok(Err(rejected(e))),
    };
    pk.update_credential(&result);
    mfa::passkey_used(conn, &factor.id, &seal_passkey(sealer, &factor, &pk)?, now)?;
    let Some(user) = users::by_id(conn, &factor.user_id)? else {
        return Ok(Err(AuthError::PasskeyRejected));
    };
    Ok(Ok((factor, user.user)))
}
