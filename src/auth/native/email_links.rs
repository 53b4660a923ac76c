//! Magic links and password recovery: links mailed to an address, answered
//! the same whether or not the address has an account.

use super::pipeline::Proof;
use super::{
    NativeBackend, claim_unverified, issue_one_time_token, link_with_token, record,
    spend_account_link,
};
use crate::auth::secrets::hash_token;
use crate::auth::{RequestMeta, SignInStep};
use crate::domain::{Email, Purpose, Role};
use crate::error::{AuthError, AuthResult};
use crate::mail::templates::MailKind;
use crate::storage::users::{self, NewUser};
use crate::storage::{lockouts, sessions, tokens};

impl NativeBackend {
    pub(super) async fn send_magic_link_impl(
        &self,
        email: Email,
        magic_link_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        if !self.cfg.enable_magic_link {
            return Err(AuthError::FeatureDisabled("magic link sign-in"));
        }
        let base = self
            .links
            .target(magic_link_url, "magic_link_url", "/magic-link")?;
        let signup = self.cfg.enable_signup;
        let ttl = self.magic_link_ttl();
        let mail = self.mail.clone();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let user = users::by_email(conn, email.as_str())?;
                let user_id = match &user {
                    Some(r) if r.user.disabled => return Ok(()),
                    Some(r) => Some(r.user.id.clone()),
                    // A new address gets a link only when it could sign up;
                    // the user is created when the link is used, not now.
                    None if signup => None,
                    None => return Ok(()),
                };
                let token = issue_one_time_token(
                    conn,
                    Purpose::MagicLink,
                    email.as_str(),
                    user_id.as_deref(),
                    now,
                    ttl,
                )?;
                mail.push(
                    conn,
                    MailKind::MagicLink,
                    &meta.locale,
                    email.as_str(),
                    &link_with_token(&base, &token),
                    ttl,
                    now,
                )?;
                record(
                    conn,
                    now,
                    &meta,
                    "magic_link.sent",
                    user_id.as_deref(),
                    serde_json::Value::Null,
                )
            })
            .await?;
        self.mail.wake();
        Ok(())
    }

    pub(super) async fn verify_magic_link_impl(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        if !self.cfg.enable_magic_link {
            return Err(AuthError::FeatureDisabled("magic link sign-in"));
        }
        let hash = hash_token(token);
        let signup = self.cfg.enable_signup;
        let pipeline = self.sign_in_pipeline();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<SignInStep> {
                let t = tokens::consume(conn, &hash, Purpose::MagicLink, now)?
                    .ok_or(AuthError::InvalidToken)?;
                let user = match users::by_email(conn, &t.email)? {
                    Some(r) => {
                        // A link for an existing account must name that account.
                        if t.user_id.as_deref().is_some_and(|id| id != r.user.id) {
                            return Err(AuthError::InvalidToken);
                        }
                        if r.user.disabled {
                            return Err(AuthError::AccountDisabled);
                        }
                        if claim_unverified(
                            conn,
                            &r,
                            "unverified account claimed by magic link",
                            &meta,
                            now,
                        )? {
                            record(
                                conn,
                                now,
                                &meta,
                                "email.confirmed",
                                Some(&r.user.id),
                                serde_json::json!({"method": "magic_link"}),
                            )?;
                        }
                        r.user
                    }
                    None if signup && t.user_id.is_none() => {
                        let id = uuid::Uuid::now_v7().to_string();
                        users::insert(
                            conn,
                            &NewUser {
                                id: &id,
                                email: &t.email,
                                password_hash: None,
                                email_confirmed_at: Some(now),
                                role: Role::Default,
                                data: &serde_json::json!({}),
                                now,
                            },
                        )?;
                        record(
                            conn,
                            now,
                            &meta,
                            "sign_up",
                            Some(&id),
                            serde_json::json!({"method": "magic_link"}),
                        )?;
                        users::by_id(conn, &id)?
                            .ok_or(AuthError::InvalidToken)?
                            .user
                    }
                    None => return Err(AuthError::InvalidToken),
                };
                pipeline.complete(conn, &user, &Proof::MagicLink, &meta, now)
            })
            .await
    }

    pub(super) async fn recover_password_impl(
        &self,
        email: Email,
        reset_url: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let base = self
            .links
            .target(reset_url, "reset_url", "/reset-password")?;
        let ttl = self.recovery_ttl();
        let mail = self.mail.clone();
        let meta = meta.clone();
        let now = self.now();
        let db = self.db.clone();
        let queue = self.mail.clone();
        // Answer before looking the address up: known, unknown and disabled
        // addresses then take the same time (the lookup, token and mail
        // rendering ran only for known ones, which timing gave away).
        tokio::spawn(async move {
            let queued = db
                .write(move |conn| -> AuthResult<()> {
                    let Some(r) = users::by_email(conn, email.as_str())? else {
                        return Ok(());
                    };
                    if r.user.disabled {
                        return Ok(());
                    }
                    let token = issue_one_time_token(
                        conn,
                        Purpose::Reset,
                        &r.user.email,
                        Some(&r.user.id),
                        now,
                        ttl,
                    )?;
                    mail.push(
                        conn,
                        MailKind::Reset,
                        &meta.locale,
                        &r.user.email,
                        &link_with_token(&base, &token),
                        ttl,
                        now,
                    )?;
                    record(
                        conn,
                        now,
                        &meta,
                        "password.recovery_sent",
                        Some(&r.user.id),
                        serde_json::Value::Null,
                    )
                })
                .await;
            match queued {
                Ok(()) => queue.wake(),
                Err(e) => tracing::error!(error = %e, "password recovery: mail not queued"),
            }
        });
        Ok(())
    }

    pub(super) async fn reset_password_impl(
        &self,
        token: &str,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        // Policy first, so that a weak password does not spend the link.
        self.check_policy(&password)?;
        let hash = self.hasher.hash(password).await?;
        let token_hash = hash_token(token);
        let pipeline = self.sign_in_pipeline();
        let mail = self.mail.clone();
        let sign_in_page = format!("{}/login", self.links.public_url);
        let meta = meta.clone();
        let now = self.now();
        let outcome = self
            .db
            .write(move |conn| -> AuthResult<SignInStep> {
                let user = spend_account_link(conn, &token_hash, Purpose::Reset, now)?;
                users::set_password_hash(conn, &user.id, Some(&hash), now)?;
                // The mailbox owner chose this password: the address is proven.
                users::confirm_email(conn, &user.id, now)?;
                // A new password ends a sign-in lockout on the address.
                lockouts::clear(conn, user.email.as_str())?;
                let revoked =
                    sessions::revoke_all_for_user(conn, &user.id, None, now, "password_reset")?;
                record(
                    conn,
                    now,
                    &meta,
                    "password.reset",
                    Some(&user.id),
                    serde_json::json!({"sessions_revoked": revoked}),
                )?;
                mail.push(
                    conn,
                    MailKind::PasswordChanged,
                    &meta.locale,
                    &user.email,
                    &sign_in_page,
                    0,
                    now,
                )?;
                pipeline.complete(conn, &user, &Proof::PasswordReset, &meta, now)
            })
            .await?;
        self.mail.wake();
        Ok(outcome)
    }
}
