//! The sign-in pipeline: the one place a native login session is minted.
//!
//! Every way in (password, sign-up without confirmation, email confirmation,
//! magic link, password reset, a provider's identity, the code exchange)
//! first proves who the user is inside its own write transaction (a spent
//! one-time token, a verified password, a provider's verified identity), then
//! hands the user and its [`Proof`] to [`SignIn::complete`] in that same
//! transaction. `complete` applies the sign-in policy, creates the session
//! with its first tokens, and records the sign-in in the audit log, so the
//! proof, the session and the record commit together or not at all.
//!
//! Steps that later features insert (a second factor, an org's policy) go
//! into `complete`; no other code calls [`Minter::new_session`].

use super::record;
use super::session::Minter;
use crate::auth::{AuthOutcome, RequestMeta};
use crate::domain::User;
use crate::error::{AuthError, AuthResult};
use crate::storage::{Conn, users};

/// How the user proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Email and password.
    Password,
    /// A sign-up with confirmation off: the new account signs in at once.
    SignUp,
    /// The confirmation link mailed at sign-up.
    EmailConfirmation,
    /// A magic link mailed to the address.
    MagicLink,
    /// A password reset link: the mailbox owner chose a new password.
    PasswordReset,
    /// A provider (Google, OIDC) vouched for the identity.
    Federated { provider: String },
    /// An authorization code issued after a sign-in on the hosted pages.
    AuthorizationCode,
}

impl Proof {
    /// The `method` recorded with the sign-in in the audit log.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SignUp => "sign_up",
            Self::EmailConfirmation => "confirmation",
            Self::MagicLink => "magic_link",
            Self::PasswordReset => "password_reset",
            Self::Federated { .. } => "oauth",
            Self::AuthorizationCode => "authorization_code",
        }
    }

    /// Whether an unconfirmed address stops this proof when confirmation is
    /// on. The links and providers prove the mailbox themselves; a code was
    /// issued after a sign-in that passed this check.
    fn needs_confirmed_email(&self) -> bool {
        matches!(self, Self::Password)
    }

    fn audit_detail(&self) -> serde_json::Value {
        match self {
            Self::Federated { provider } => {
                serde_json::json!({"method": self.method(), "provider": provider})
            }
            _ => serde_json::json!({"method": self.method()}),
        }
    }
}

/// The sign-in policy and the minting of sessions, shared by every way in.
#[derive(Clone)]
pub(super) struct SignIn {
    pub minter: Minter,
    /// `[auth.native] enable_confirmation`: an unconfirmed address may not
    /// sign in with a proof that does not show the mailbox.
    pub require_confirmed_email: bool,
}

impl SignIn {
    /// Applies the policy to `user`, creates the session and records the
    /// sign-in, inside the caller's transaction.
    pub fn complete(
        &self,
        conn: &Conn,
        user: &User,
        proof: &Proof,
        meta: &RequestMeta,
        now: i64,
    ) -> AuthResult<AuthOutcome> {
        if user.disabled {
            return Err(AuthError::AccountDisabled);
        }
        if self.require_confirmed_email
            && user.email_confirmed_at.is_none()
            && proof.needs_confirmed_email()
        {
            return Err(AuthError::EmailNotConfirmed);
        }
        let (tokens, session_id) = self.minter.new_session(conn, user, meta, now)?;
        record(
            conn,
            now,
            meta,
            "sign_in",
            Some(&user.id),
            proof.audit_detail(),
        )?;
        // Read back: the sign-in changed `last_sign_in_at`.
        let user = users::by_id(conn, &user.id)?
            .ok_or(AuthError::InvalidToken)?
            .user;
        Ok(AuthOutcome {
            user,
            tokens,
            session_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Proof;

    #[test]
    fn methods_are_the_audit_log_values() {
        let all = [
            (Proof::Password, "password"),
            (Proof::SignUp, "sign_up"),
            (Proof::EmailConfirmation, "confirmation"),
            (Proof::MagicLink, "magic_link"),
            (Proof::PasswordReset, "password_reset"),
            (
                Proof::Federated {
                    provider: "google".into(),
                },
                "oauth",
            ),
            (Proof::AuthorizationCode, "authorization_code"),
        ];
        for (proof, method) in all {
            assert_eq!(proof.method(), method);
            assert_eq!(proof.audit_detail()["method"], method);
        }
        assert!(Proof::Password.needs_confirmed_email());
        assert!(!Proof::MagicLink.needs_confirmed_email());
    }
}
