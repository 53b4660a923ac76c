//! Signing in with an identity a provider vouched for (Google, GitHub, OIDC).
//!
//! A returning identity is found by `(provider, subject)` first. Linking to
//! an existing account by email happens only when the provider says the email
//! is verified; an account whose email was never confirmed then loses any
//! password set before (the pre-hijack defence), recorded in the audit log.
//! A new user is created only from a verified email.

use super::pipeline::Proof;
use super::{NativeBackend, claim_unverified, record};
use crate::auth::{RequestMeta, SessionInfo, SignInStep};
use crate::domain::{Email, ExternalIdentity, Role, User};
use crate::error::{AuthError, AuthResult};
use crate::storage::Conn;
use crate::storage::users::{self, NewUser};

impl NativeBackend {
    pub async fn sign_in_with_identity(
        &self,
        id: ExternalIdentity,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let signup = self.cfg.enable_signup;
        let pipeline = self.sign_in_pipeline();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<SignInStep> {
                let user = match users::identity_user(conn, &id.provider, &id.subject)? {
                    Some(user_id) => {
                        users::by_id(conn, &user_id)?
                            .ok_or(AuthError::InvalidToken)?
                            .user
                    }
                    None => link_or_create(conn, &id, signup, &meta, now)?,
                };
                let proof = Proof::Federated {
                    provider: id.provider,
                };
                pipeline.complete(conn, &user, &proof, &meta, now)
            })
            .await
    }

    /// `(provider, email)` of the user's linked identities.
    pub async fn identities(
        &self,
        session: &SessionInfo,
    ) -> AuthResult<Vec<(String, Option<String>)>> {
        let uid = session.user_id.clone();
        self.db
            .read(move |conn| -> AuthResult<_> {
                Ok(users::identities(conn, &uid)?
                    .into_iter()
                    .map(|(p, _, e, _)| (p, e))
                    .collect())
            })
            .await
    }

    /// Unlinks a provider, unless it is the last way in.
    pub async fn unlink(
        &self,
        session: &SessionInfo,
        provider: &str,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let (uid, provider) = (session.user_id.clone(), provider.to_string());
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let record_ = users::by_id(conn, &uid)?.ok_or(AuthError::Unauthenticated)?;
                let linked = users::identities(conn, &uid)?;
                if !linked.iter().any(|i| i.0 == provider) {
                    return Err(AuthError::NotFound("identity"));
                }
                if record_.password_hash.is_none() && linked.len() <= 1 {
                    return Err(AuthError::Forbidden(
                        "this is your only way to sign in: set a password first (Forgot password)"
                            .into(),
                    ));
                }
                users::unlink_identity(conn, &uid, &provider)?;
                record(
                    conn,
                    now,
                    &meta,
                    "oauth.unlinked",
                    Some(&uid),
                    serde_json::json!({"provider": provider}),
                )
            })
            .await
    }
}

/// A first sign-in with `id`: links it to the account with its verified
/// email (claiming an unconfirmed account), or creates one when sign-up is on.
fn link_or_create(
    conn: &Conn,
    id: &ExternalIdentity,
    signup: bool,
    meta: &RequestMeta,
    now: i64,
) -> AuthResult<User> {
    let raw = id
        .email
        .clone()
        .ok_or_else(|| AuthError::Forbidden("the provider shared no email address".into()))?;
    let email = Email::parse(&raw)
        .map_err(|_| AuthError::Forbidden("the provider's email address is not valid".into()))?;
    if !id.email_verified {
        return Err(AuthError::Forbidden(
            "the provider has not verified this email address, so it cannot be used to sign in here"
                .into(),
        ));
    }
    let provider = serde_json::json!({"provider": id.provider});
    let user_id = match users::by_email(conn, email.as_str())? {
        Some(existing) => {
            claim_unverified(
                conn,
                &existing,
                "unverified account linked to a verified provider identity",
                meta,
                now,
            )?;
            users::link_identity(
                conn,
                &existing.user.id,
                &id.provider,
                &id.subject,
                Some(email.as_str()),
                now,
            )?;
            record(
                conn,
                now,
                meta,
                "oauth.linked",
                Some(&existing.user.id),
                provider,
            )?;
            existing.user.id
        }
        None if signup => {
            let uid = uuid::Uuid::now_v7().to_string();
            users::insert(
                conn,
                &NewUser {
                    id: &uid,
                    email: email.as_str(),
                    password_hash: None,
                    email_confirmed_at: Some(now),
                    role: Role::Default,
                    data: &serde_json::json!({}),
                    now,
                },
            )?;
            users::link_identity(
                conn,
                &uid,
                &id.provider,
                &id.subject,
                Some(email.as_str()),
                now,
            )?;
            record(
                conn,
                now,
                meta,
                "sign_up",
                Some(&uid),
                serde_json::json!({"method": "oauth", "provider": id.provider}),
            )?;
            uid
        }
        None => return Err(AuthError::SignupDisabled),
    };
    Ok(users::by_id(conn, &user_id)?
        .ok_or(AuthError::InvalidToken)?
        .user)
}
