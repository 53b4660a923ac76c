//! Sign-up, sign-in, confirmation and the signed-in user's own account.
//!
//! About 450 lines: each use case of a user's own account is one short
//! transaction, kept side by side so their checks read alike.

use super::pipeline::Proof;
use super::{
    NativeBackend, issue_one_time_token, link_with_token, record, record_locks, spend_account_link,
};
use crate::auth::lockout::source_of;
use crate::auth::secrets::hash_token;
use crate::auth::{
    AuthOutcome, RequestMeta, SessionInfo, SignInStep, SignUpOutcome, SignUpRequest, UserUpdate,
};
use crate::domain::{Email, Purpose, Role, User};
use crate::error::{AuthError, AuthResult};
use crate::mail::templates::MailKind;
use crate::storage::users::{self, NewUser};
use crate::storage::{StorageError, lockouts, sessions};

/// What the sign-up transaction did.
enum SignUpDone {
    SignedIn(AuthOutcome),
    /// `[auth.native.mfa] required`: the account exists; its first sign-in
    /// waits for a second factor.
    MfaEnrollmentRequired(String),
    /// A confirmation or an "already registered" mail was queued.
    MailQueued,
}

impl NativeBackend {
    pub(super) async fn sign_up_impl(
        &self,
        req: SignUpRequest,
        meta: &RequestMeta,
    ) -> AuthResult<SignUpOutcome> {
        if !self.cfg.enable_signup {
            return Err(AuthError::SignupDisabled);
        }
        if !req.data.is_object() {
            return Err(AuthError::field("data", "must be a JSON object"));
        }
        self.check_policy(&req.password)?;
        let confirm = self.cfg.enable_confirmation;
        let confirm_base =
            self.links
                .target(req.confirmation_url.clone(), "confirmation_url", "/confirm")?;
        let sign_in_page = format!("{}/login", self.links.public_url);
        // Hash first, for new and taken emails alike: same cost either way.
        let hash = self.hasher.hash(req.password).await?;
        let email = req.email.clone();
        let pipeline = self.sign_in_pipeline();
        let mail = self.mail.clone();
        let meta_c = meta.clone();
        let now = self.now();
        let ttl = self.confirmation_ttl();
        let done = self
            .db
            .write(move |conn| -> AuthResult<SignUpDone> {
                let taken = || -> AuthResult<SignUpDone> {
                    if !confirm {
                        return Err(AuthError::EmailExists);
                    }
                    mail.push(
                        conn,
                        MailKind::AlreadyRegistered,
                        &meta_c.locale,
                        email.as_str(),
                        &sign_in_page,
                        0,
                        now,
                    )?;
                    Ok(SignUpDone::MailQueued)
                };
                if users::by_email(conn, email.as_str())?.is_some() {
                    return taken();
                }
                let id = uuid::Uuid::now_v7().to_string();
                let inserted = users::insert(
                    conn,
                    &NewUser {
                        id: &id,
                        email: email.as_str(),
                        password_hash: Some(&hash),
                        email_confirmed_at: None,
                        role: Role::Default,
                        data: &req.data,
                        now,
                    },
                );
                match inserted {
                    Err(StorageError::Conflict(_)) => return taken(),
                    other => other?,
                }
                record(
                    conn,
                    now,
                    &meta_c,
                    "sign_up",
                    Some(&id),
                    serde_json::json!({"method": "password"}),
                )?;
                if confirm {
                    let token = issue_one_time_token(
                        conn,
                        Purpose::Confirm,
                        email.as_str(),
                        Some(&id),
                        now,
                        ttl,
                    )?;
                    let link = link_with_token(&confirm_base, &token);
                    mail.push(
                        conn,
                        MailKind::Confirm,
                        &meta_c.locale,
                        email.as_str(),
                        &link,
                        ttl,
                        now,
                    )?;
                    return Ok(SignUpDone::MailQueued);
                }
                let user = users::by_id(conn, &id)?
                    .ok_or_else(|| AuthError::internal("user vanished"))?
                    .user;
                // A new account has no second factor: the pipeline answers a session.
                match pipeline.complete(conn, &user, &Proof::SignUp, &meta_c, now)? {
                    SignInStep::Session(o) => Ok(SignUpDone::SignedIn(o)),
                    SignInStep::MfaEnrollmentRequired { enrollment_token } => {
                        Ok(SignUpDone::MfaEnrollmentRequired(enrollment_token))
                    }
                    SignInStep::MfaRequired(_) => Err(AuthError::internal(
                        "a new account asked for a second factor",
                    )),
                }
            })
            .await?;
        match done {
            SignUpDone::SignedIn(outcome) => Ok(SignUpOutcome::SignedIn(outcome)),
            SignUpDone::MfaEnrollmentRequired(enrollment_token) => {
                Ok(SignUpOutcome::MfaEnrollmentRequired {
                    email: req.email,
                    enrollment_token,
                })
            }
            SignUpDone::MailQueued => {
                self.mail.wake();
                Ok(SignUpOutcome::ConfirmationRequired { email: req.email })
            }
        }
    }

    pub(super) async fn sign_in_impl(
        &self,
        email: Email,
        password: String,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let lookup = email.clone();
        let source = source_of(meta.ip.as_deref());
        let source_c = source.clone();
        let (record_, lockout) = self
            .db
            .read(move |conn| -> AuthResult<_> {
                Ok((
                    users::by_email(conn, lookup.as_str())?,
                    lockouts::for_source(conn, lookup.as_str(), &source_c)?,
                ))
            })
            .await?;
        let now = self.now();
        let user_id = record_.as_ref().map(|r| r.user.id.clone());
        if let Some(left) = lockouts::remaining(&lockout, now) {
            // Locked for this source, or for every source: no password
            // check at all (known and unknown addresses lock alike, so this
            // tells nothing about the account).
            let meta_c = meta.clone();
            let email_s = email.as_str().to_string();
            self.db
                .write(move |conn| {
                    record(
                        conn,
                        now,
                        &meta_c,
                        "sign_in.failure",
                        user_id.as_deref(),
                        serde_json::json!({"reason": "locked", "email": email_s}),
                    )
                })
                .await?;
            return Err(AuthError::RateLimited {
                retry_after: u64::try_from(left).unwrap_or(1),
            });
        }
        let stored_hash = record_.as_ref().and_then(|r| r.password_hash.clone());
        let verdict = self.hasher.verify(password.clone(), stored_hash).await?;
        let now = self.now();
        let failure = match &record_ {
            None => Some("unknown_email"),
            Some(_) if !verdict.valid => Some("wrong_password"),
            Some(r) if r.user.disabled => Some("account_disabled"),
            Some(r) if self.cfg.enable_confirmation && r.user.email_confirmed_at.is_none() => {
                Some("email_not_confirmed")
            }
            Some(_) => None,
        };
        if let Some(reason) = failure {
            let meta_c = meta.clone();
            let email_s = email.as_str().to_string();
            // Only a wrong password counts toward a lock (an unknown address
            // counts too, so that locks do not reveal accounts).
            let counts = matches!(reason, "unknown_email" | "wrong_password");
            let limits = self.lockout.limits();
            self.db
                .write(move |conn| -> AuthResult<()> {
                    let mut detail = serde_json::json!({"reason": reason, "email": email_s});
                    if counts && let Some(limits) = limits {
                        let counted =
                            lockouts::record_failure(conn, &email_s, &source, now, limits)?;
                        detail["failures"] = counted.source.failures.into();
                        if let Some(a) = &counted.address {
                            detail["address_failures"] = a.failures.into();
                        }
                        record_locks(conn, now, &meta_c, user_id.as_deref(), &counted, limits)?;
                        if let Some(until) = counted.source.locked_until
                            && counted.source.failures == limits.per_source
                        {
                            detail["locked_until"] = until.into();
                        }
                    }
                    record(
                        conn,
                        now,
                        &meta_c,
                        "sign_in.failure",
                        user_id.as_deref(),
                        detail,
                    )
                })
                .await?;
            return Err(match reason {
                "account_disabled" => AuthError::AccountDisabled,
                "email_not_confirmed" => AuthError::EmailNotConfirmed,
                _ => AuthError::InvalidCredentials,
            });
        }
        if lockout.iter().any(|l| !l.is_address_wide()) {
            // A correct password forgets this source's earlier failures (one
            // write, only when there were any; the per-address brake counts
            // on), unless a second factor is still to come: then its wrong
            // codes add up with these until the challenge passes, so that a
            // known password cannot reset the count.
            let email_s = email.as_str().to_string();
            let uid = record_.as_ref().map(|r| r.user.id.clone());
            self.db
                .write(move |conn| -> AuthResult<bool> {
                    if let Some(uid) = uid
                        && crate::storage::mfa::has_active_factor(conn, &uid)?
                    {
                        return Ok(false);
                    }
                    Ok(lockouts::clear_source(conn, &email_s, &source)?)
                })
                .await?;
        }
        let user = record_.ok_or(AuthError::InvalidCredentials)?.user;
        if verdict.needs_rehash {
            let hash = self.hasher.hash(password).await?;
            let id = user.id.clone();
            self.db
                .write(move |conn| -> AuthResult<()> {
                    Ok(users::set_password_hash(conn, &id, Some(&hash), now)?)
                })
                .await?;
        }
        self.sign_in_user(user, Proof::Password, meta).await
    }

    pub(super) async fn get_user_impl(&self, session: &SessionInfo) -> AuthResult<User> {
        let id = session.user_id.clone();
        self.db
            .read(move |conn| -> AuthResult<User> {
                Ok(users::by_id(conn, &id)?
                    .ok_or(AuthError::Unauthenticated)?
                    .user)
            })
            .await
    }

    pub(super) async fn update_user_impl(
        &self,
        session: &SessionInfo,
        update: UserUpdate,
        meta: &RequestMeta,
    ) -> AuthResult<User> {
        if let Some(data) = &update.data
            && !data.is_object()
        {
            return Err(AuthError::field("data", "must be a JSON object"));
        }
        let new_hash = match &update.password {
            None => None,
            Some(password) => {
                self.check_policy(password)?;
                let Some(current) = update.current_password.clone() else {
                    return Err(AuthError::field(
                        "current_password",
                        "is required to change the password",
                    ));
                };
                let id = session.user_id.clone();
                let stored = self
                    .db
                    .read(move |conn| -> AuthResult<_> { Ok(users::by_id(conn, &id)?) })
                    .await?
                    .ok_or(AuthError::Unauthenticated)?
                    .password_hash;
                if !self.hasher.verify(current, stored).await?.valid {
                    return Err(AuthError::field("current_password", "is not correct"));
                }
                Some(self.hasher.hash(password.clone()).await?)
            }
        };
        let (id, sid) = (session.user_id.clone(), session.session_id.clone());
        let meta = meta.clone();
        let now = self.now();
        let mail = self.mail.clone();
        let sign_in_page = format!("{}/login", self.links.public_url);
        let user = self
            .db
            .write(move |conn| -> AuthResult<User> {
                if users::by_id(conn, &id)?.is_none() {
                    return Err(AuthError::Unauthenticated);
                }
                if let Some(data) = &update.data {
                    users::set_data(conn, &id, data, now)?;
                }
                if let Some(hash) = &new_hash {
                    users::set_password_hash(conn, &id, Some(hash), now)?;
                    let revoked = sessions::revoke_all_for_user(
                        conn,
                        &id,
                        Some(&sid),
                        now,
                        "password_changed",
                    )?;
                    record(
                        conn,
                        now,
                        &meta,
                        "password.changed",
                        Some(&id),
                        serde_json::json!({"other_sessions_revoked": revoked}),
                    )?;
                    let email = users::by_id(conn, &id)?
                        .map(|r| r.user.email)
                        .unwrap_or_default();
                    mail.push(
                        conn,
                        MailKind::PasswordChanged,
                        &meta.locale,
                        &email,
                        &sign_in_page,
                        0,
                        now,
                    )?;
                }
                Ok(users::by_id(conn, &id)?
                    .ok_or(AuthError::Unauthenticated)?
                    .user)
            })
            .await?;
        self.mail.wake();
        Ok(user)
    }

    pub(super) async fn confirm_impl(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let hash = hash_token(token);
        let pipeline = self.sign_in_pipeline();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<SignInStep> {
                let user = spend_account_link(conn, &hash, Purpose::Confirm, now)?;
                users::confirm_email(conn, &user.id, now)?;
                record(
                    conn,
                    now,
                    &meta,
                    "email.confirmed",
                    Some(&user.id),
                    serde_json::Value::Null,
                )?;
                pipeline.complete(conn, &user, &Proof::EmailConfirmation, &meta, now)
            })
            .await
    }

    pub(super) async fn resend_confirmation_impl(
        &self,
        email: Email,
        confirmation_url: Option<String>,
        locale: &str,
    ) -> AuthResult<()> {
        let locale = locale.to_string();
        let base = self
            .links
            .target(confirmation_url, "confirmation_url", "/confirm")?;
        let now = self.now();
        let ttl = self.confirmation_ttl();
        let mail = self.mail.clone();
        let db = self.db.clone();
        let queue = self.mail.clone();
        // Answer before looking the address up: unknown, confirmed and
        // unconfirmed addresses then take the same time.
        tokio::spawn(async move {
            let queued = db
                .write(move |conn| -> AuthResult<()> {
                    if let Some(r) = users::by_email(conn, email.as_str())?
                        && r.user.email_confirmed_at.is_none()
                        && !r.user.disabled
                    {
                        let token = issue_one_time_token(
                            conn,
                            Purpose::Confirm,
                            &r.user.email,
                            Some(&r.user.id),
                            now,
                            ttl,
                        )?;
                        mail.push(
                            conn,
                            MailKind::Confirm,
                            &locale,
                            &r.user.email,
                            &link_with_token(&base, &token),
                            ttl,
                            now,
                        )?;
                    }
                    Ok(())
                })
                .await;
            match queued {
                Ok(()) => queue.wake(),
                Err(e) => tracing::error!(error = %e, "confirmation resend: mail not queued"),
            }
        });
        Ok(())
    }
}
