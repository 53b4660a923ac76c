//! Passkeys (WebAuthn, through `webauthn-rs`): registration by a signed-in
//! user, a sign-in of their own (discoverable credentials: the browser
//! picks), and the second step of a sign-in whose first factor answered
//! `mfa_required`.
//!
//! Each ceremony's relying-party state (challenge, policy) stays on the
//! server in `passkey_flows`, keyed by the hash of a random `flow_id`,
//! lives [`FLOW_TTL`] and is spent once, before the browser's answer is
//! checked. The credential (public key, sign count) is sealed at rest like
//! a TOTP secret; its id is stored in the clear (unique) to find its owner.
//!
//! User verification is required (the library's passkey policy), so a
//! passkey sign-in is two factors on its own: amr `hwk`, `user`, `mfa`.
//! A sign count that does not grow (a cloned authenticator) is refused by
//! the library. The relying party id is `[auth.native.mfa] rp_id` or the
//! host of `public_url`; WebAuthn refuses IP addresses, so with an IP
//! passkeys are not offered ([`AuthError::PasskeysUnavailable`]).
//!
//! This file holds the relying party, the flows, the sealed credentials
//! and registration; signing in (alone or as the second step) is
//! `super::passkey_sign_in`, and a passkey enrolled with an
//! `enrollment_token` is `super::passkey_enrollment`, on
//! `start_registration` and `finish_registration`. About 480 lines: the
//! ceremony's helpers that all three share are here.

use super::mfa::FactorView;
use super::passkey_sign_in::live_challenge;
use super::{NativeBackend, record};
use crate::auth::secrets::{hash_token, random_id, random_token};
use crate::auth::{RequestMeta, SessionInfo};
use crate::error::{AuthError, AuthResult};
use crate::storage::mfa::{self, FactorRow, PasskeyFlowRow};
use crate::storage::{Conn, sessions, users};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// A ceremony (the browser's prompt included) must finish within 5 minutes.
pub const FLOW_TTL: i64 = 300;
/// The use passkey credentials are sealed for.
pub(super) const SEAL_INFO: &str = "derp mfa passkey v1";

/// The relying party, or why passkeys are not offered.
#[derive(Clone)]
pub enum RelyingParty {
    Ready(Box<Webauthn>),
    /// `[auth.native.mfa] passkeys = false`.
    Disabled,
    /// The configuration gives no usable relying party id (an IP address,
    /// or an `rp_id` that is not the host of `public_url` or a parent).
    Unavailable(&'static str),
}

impl RelyingParty {
    /// From `[auth.native.mfa]` and `public_url`.
    pub fn new(enabled: bool, rp_id: Option<&str>, public_url: &str, rp_name: &str) -> Self {
        if !enabled {
            return Self::Disabled;
        }
        let Ok(origin) = Url::parse(public_url) else {
            return Self::Unavailable(UNUSABLE_URL);
        };
        let Some(host) = origin.domain() else {
            // `domain()` is None for an IP address.
            return Self::Unavailable(IP_ADDRESS);
        };
        let rp_id = rp_id.unwrap_or(host).to_string();
        match WebauthnBuilder::new(&rp_id, &origin).and_then(|b| b.rp_name(rp_name).build()) {
            Ok(w) => Self::Ready(Box::new(w)),
            Err(e) => {
                tracing::warn!(error = %e, %rp_id, "passkeys are off: rp_id does not fit public_url");
                Self::Unavailable(RP_ID_MISMATCH)
            }
        }
    }

    pub(super) fn get(&self) -> AuthResult<&Webauthn> {
        match self {
            Self::Ready(w) => Ok(w),
            Self::Disabled => Err(AuthError::FeatureDisabled("passkeys")),
            Self::Unavailable(why) => Err(AuthError::PasskeysUnavailable(why)),
        }
    }

    pub fn offered(&self) -> bool {
        matches!(self, Self::Ready(_))
    }
}

pub(super) const IP_ADDRESS: &str = "passkeys need a domain name: WebAuthn refuses an IP address as relying party id; set server.public_url to http://localhost:PORT or an https:// domain";
pub(super) const UNUSABLE_URL: &str =
    "passkeys need server.public_url to be a URL with a domain name";
pub(super) const RP_ID_MISMATCH: &str = "passkeys are off: auth.native.mfa.rp_id must be the host of server.public_url or a parent domain of it";

/// A ceremony's state as stored in `passkey_flows.state`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "ceremony", content = "state", rename_all = "snake_case")]
pub(super) enum Ceremony {
    Register(PasskeyRegistration),
    /// No account named: the browser picks a discoverable credential.
    Discoverable(DiscoverableAuthentication),
    /// The credentials of one user (an address given, or the second step).
    Known(PasskeyAuthentication),
}

/// What `…/start` answers: the flow and the browser's options.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyStart {
    pub flow_id: String,
    /// `PublicKeyCredentialCreationOptions` or `…RequestOptions` as JSON
    /// (binary fields base64url).
    pub options: serde_json::Value,
}

/// A registered passkey, and the recovery codes made when it is the
/// user's first factor (shown once).
pub struct Registered {
    pub factor: FactorView,
    pub recovery_codes: Option<Vec<String>>,
}

/// The stable WebAuthn user handle of a user: not their id, the same for
/// all their passkeys (so an authenticator keeps one per account).
pub(super) fn user_handle(user_id: &str) -> Uuid {
    let digest = Sha256::digest(format!("derp passkey user handle\0{user_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

pub(super) fn aad(f: &FactorRow) -> String {
    format!("{}/{}", f.user_id, f.id)
}

pub(super) fn open_passkey(
    sealer: &crate::auth::sealer::Sealer,
    f: &FactorRow,
) -> AuthResult<Passkey> {
    let json = sealer.open(SEAL_INFO, &aad(f), &f.secret_sealed)?;
    serde_json::from_slice(&json).map_err(AuthError::internal)
}

pub(super) fn seal_passkey(
    sealer: &crate::auth::sealer::Sealer,
    f: &FactorRow,
    pk: &Passkey,
) -> AuthResult<String> {
    let json = serde_json::to_vec(pk).map_err(AuthError::internal)?;
    sealer.seal(SEAL_INFO, &aad(f), &json)
}

pub(super) fn parse_credential<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> AuthResult<T> {
    serde_json::from_value(value).map_err(|e| {
        AuthError::field(
            "credential",
            format!("is not a WebAuthn PublicKeyCredential as JSON ({e})"),
        )
    })
}

/// Base64url of a credential id, as stored.
pub(super) fn credential_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

pub(super) fn rejected(e: impl std::fmt::Display) -> AuthError {
    tracing::info!(error = %e, "passkey refused");
    AuthError::PasskeyRejected
}

pub(super) fn store_flow(conn: &Conn, flow: PasskeyFlowRow, now: i64) -> AuthResult<String> {
    let flow_id = random_token();
    mfa::insert_passkey_flow(conn, &hash_token(&flow_id), &flow, now)?;
    Ok(flow_id)
}

pub(super) fn ceremony_json(c: &Ceremony) -> AuthResult<String> {
    serde_json::to_string(c).map_err(AuthError::internal)
}

pub(super) fn ceremony_of(flow: &PasskeyFlowRow) -> AuthResult<Ceremony> {
    serde_json::from_str(&flow.state).map_err(AuthError::internal)
}

/// The active passkeys of a user, opened.
pub(super) fn user_passkeys(
    conn: &Conn,
    sealer: &crate::auth::sealer::Sealer,
    user_id: &str,
) -> AuthResult<Vec<(FactorRow, Passkey)>> {
    mfa::active_factors(conn, user_id)?
        .into_iter()
        .filter(|f| f.kind == "passkey")
        .map(|f| open_passkey(sealer, &f).map(|pk| (f, pk)))
        .collect()
}

/// A passkey's name: trimmed, a default when empty, at most 64 characters.
pub(super) fn passkey_name(name: Option<String>) -> AuthResult<String> {
    let name = name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Passkey".into());
    if name.chars().count() > 64 {
        return Err(AuthError::field("name", "must be at most 64 characters"));
    }
    Ok(name)
}

/// The browser's options without the library's envelope (`publicKey`).
pub(super) fn options_of<T: Serialize>(envelope: &T) -> AuthResult<serde_json::Value> {
    let v = serde_json::to_value(envelope).map_err(AuthError::internal)?;
    Ok(v.get("publicKey").cloned().unwrap_or(v))
}

/// Starts a registration for `user`: creation options for a discoverable
/// passkey (the user's passkeys excluded) and the flow that keeps the
/// ceremony, bound to `enrollment` (the hash of an `enrollment_token`) when
/// the passkey is to be the first factor of a waiting sign-in.
pub(super) fn start_registration(
    conn: &Conn,
    webauthn: &Webauthn,
    sealer: &crate::auth::sealer::Sealer,
    user: &crate::domain::User,
    enrollment: Option<String>,
    name: String,
    now: i64,
) -> AuthResult<PasskeyStart> {
    let exclude = user_passkeys(conn, sealer, &user.id)?
        .iter()
        .map(|(_, pk)| pk.cred_id().clone())
        .collect::<Vec<_>>();
    let (ccr, state) = webauthn
        .start_passkey_registration(
            user_handle(&user.id),
            &user.email,
            &user.email,
            Some(exclude),
        )
        .map_err(AuthError::internal)?;
    let mut options = options_of(&ccr)?;
    // Discoverable: the credential lives on the authenticator with the
    // user handle, so a sign-in needs no address.
    if let Some(sel) = options.get_mut("authenticatorSelection") {
        sel["residentKey"] = "required".into();
        sel["requireResidentKey"] = true.into();
    }
    let flow_id = store_flow(
        conn,
        PasskeyFlowRow {
            kind: "register".into(),
            user_id: Some(user.id.clone()),
            mfa_token_hash: enrollment,
            name: Some(name),
            state: ceremony_json(&Ceremony::Register(state))?,
            expires_at: now + FLOW_TTL,
        },
        now,
    )?;
    Ok(PasskeyStart { flow_id, options })
}

/// Checks the browser's answer to a spent registration `flow` and stores
/// the passkey of `user_id`, active at once. The outer `Err` is the
/// database's, the inner the refusal.
pub(super) fn finish_registration(
    conn: &Conn,
    webauthn: &Webauthn,
    sealer: &crate::auth::sealer::Sealer,
    flow: &PasskeyFlowRow,
    reg: &RegisterPublicKeyCredential,
    user_id: &str,
    now: i64,
) -> AuthResult<AuthResult<FactorRow>> {
    let Ceremony::Register(state) = ceremony_of(flow)? else {
        return Ok(Err(AuthError::InvalidToken));
    };
    // Registered already (here or to another account): say so rather than
    // the library's generic refusal.
    if mfa::credential_taken(conn, &credential_id(reg.raw_id.as_ref()))? {
        return Ok(Err(AuthError::field("credential", "is already registered")));
    }
    let pk = match webauthn.finish_passkey_registration(reg, &state) {
        Ok(pk) => pk,
        Err(e) => return Ok(Err(rejected(e))),
    };
    let cred_id = credential_id(pk.cred_id().as_ref());
    if mfa::credential_taken(conn, &cred_id)? {
        return Ok(Err(AuthError::field("credential", "is already registered")));
    }
    let mut row = FactorRow {
        id: format!("mfa_{}", random_id(12)),
        user_id: user_id.to_string(),
        kind: "passkey".into(),
        name: flow.name.clone().unwrap_or_else(|| "Passkey".into()),
        secret_sealed: String::new(),
        created_at: now,
        confirmed_at: Some(now),
        last_used_at: None,
        last_used_step: None,
        credential_id: Some(cred_id),
    };
    row.secret_sealed = seal_passkey(sealer, &row, &pk)?;
    mfa::insert_factor(conn, &row)?;
    Ok(Ok(row))
}

impl NativeBackend {
    /// Whether the pages should offer passkeys.
    pub fn passkeys_offered(&self) -> bool {
        self.relying_party.offered()
    }

    /// Whether the pending sign-in of `mfa_token` can be finished with a
    /// passkey (the user has one, and passkeys are offered).
    pub async fn passkey_can_finish(&self, mfa_token: &str) -> AuthResult<bool> {
        if !self.passkeys_offered() {
            return Ok(false);
        }
        let hash = hash_token(mfa_token);
        let now = self.now();
        self.db
            .read(move |conn| -> AuthResult<bool> {
                let Ok(ch) = live_challenge(conn, &hash, now) else {
                    return Ok(false);
                };
                Ok(mfa::active_factors(conn, &ch.user_id)?
                    .iter()
                    .any(|f| f.kind == "passkey"))
            })
            .await
    }

    /// `POST /passkeys/register/start`: the creation options for a new
    /// discoverable passkey of the signed-in user (recent sign-in needed,
    /// as for TOTP). The user's passkeys are excluded.
    pub async fn passkey_register_start(
        &self,
        session: &SessionInfo,
        name: Option<String>,
    ) -> AuthResult<PasskeyStart> {
        let webauthn = self.relying_party.get()?.clone();
        let name = passkey_name(name)?;
        let sealer = self.sealer.clone();
        let session = session.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<PasskeyStart> {
                super::mfa::require_recent(conn, &session, now)?;
                let user = users::by_id(conn, &session.user_id)?
                    .ok_or(AuthError::Unauthenticated)?
                    .user;
                start_registration(conn, &webauthn, &sealer, &user, None, name, now)
            })
            .await
    }

    /// `POST /passkeys/register/finish`: checks the browser's answer
    /// against the flow (spent first, whatever the answer) and stores the
    /// passkey, active at once. A first factor also gets recovery codes.
    pub async fn passkey_register_finish(
        &self,
        session: &SessionInfo,
        flow_id: &str,
        credential: serde_json::Value,
        meta: &RequestMeta,
    ) -> AuthResult<Registered> {
        let webauthn = self.relying_party.get()?.clone();
        let reg: RegisterPublicKeyCredential = parse_credential(credential)?;
        let hash = hash_token(flow_id);
        let sealer = self.sealer.clone();
        let session = session.clone();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<AuthResult<Registered>> {
                // A flow of the user's own, not one started by an
                // enrollment token (`super::passkey_enrollment`).
                let flow = match mfa::spend_passkey_flow(conn, &hash, true, now)? {
                    Some(f)
                        if f.user_id.as_deref() == Some(session.user_id.as_str())
                            && f.mfa_token_hash.is_none() =>
                    {
                        f
                    }
                    _ => return Ok(Err(AuthError::InvalidToken)),
                };
                let first = !mfa::has_active_factor(conn, &session.user_id)?;
                let row = match finish_registration(
                    conn,
                    &webauthn,
                    &sealer,
                    &flow,
                    &reg,
                    &session.user_id,
                    now,
                )? {
                    Ok(row) => row,
                    Err(e) => return Ok(Err(e)),
                };
                let recovery_codes = if first {
                    Some(super::mfa::new_recovery_codes(conn, &session.user_id, now)?)
                } else {
                    None
                };
                // The session that registered it has now shown the passkey
                // (with user verification) too, as a TOTP enrollment shows
                // its code: its next tokens say so (an org that requires a
                // second factor opens without signing in again).
                if let Some(s) = sessions::get(conn, &session.session_id)?
                    && s.user_id == session.user_id
                    && s.is_live(now)
                {
                    let mut amr = s.amr;
                    for m in ["hwk", "user", "mfa"] {
                        if !amr.iter().any(|x| x == m) {
                            amr.push(m.to_string());
                        }
                    }
                    sessions::set_amr(conn, &session.session_id, &amr)?;
                }
                record(
                    conn,
                    now,
                    &meta,
                    "passkey.registered",
                    Some(&session.user_id),
                    serde_json::json!({"factor_id": row.id, "type": "passkey"}),
                )?;
                Ok(Ok(Registered {
                    factor: FactorView::from(&row),
                    recovery_codes,
                }))
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_ip_address_or_a_foreign_rp_id_offers_no_passkeys() {
        let ip = RelyingParty::new(true, None, "http://127.0.0.1:8080", "derp");
        assert!(matches!(ip, RelyingParty::Unavailable(m) if m == IP_ADDRESS));
        let v6 = RelyingParty::new(true, None, "http://[::1]:8080", "derp");
        assert!(!v6.offered());
        assert!(RelyingParty::new(true, None, "http://localhost:8080", "derp").offered());
        assert!(RelyingParty::new(true, None, "https://auth.example.com", "derp").offered());
        assert!(
            RelyingParty::new(
                true,
                Some("example.com"),
                "https://auth.example.com",
                "derp"
            )
            .offered()
        );
        assert!(
            !RelyingParty::new(true, Some("other.com"), "https://auth.example.com", "derp")
                .offered()
        );
        assert!(matches!(
            RelyingParty::new(false, None, "https://auth.example.com", "derp"),
            RelyingParty::Disabled
        ));
    }

    #[test]
    fn the_user_handle_is_stable_and_not_the_id() {
        assert_eq!(user_handle("u1"), user_handle("u1"));
        assert_ne!(user_handle("u1"), user_handle("u2"));
        assert!(!user_handle("u1").to_string().contains("u1"));
    }
}
