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
//! A user with an active second factor gets no session from a first
//! factor: `complete` stores a pending second step (the `mfa_token`, bound
//! to the user and the first factor, 5 minutes, single use) in the same
//! transaction and answers [`SignInStep::MfaRequired`], an `Ok` so that the
//! spent one-time token and the stored `mfa_token` commit. The challenge
//! (`super::mfa`) then calls `complete` with [`Proof::SecondFactor`].
//!
//! Steps that later features insert (an org's policy) go into `complete`;
//! no other code calls [`Minter::new_session`].

use super::record;
use super::session::Minter;
use crate::auth::secrets::{hash_token, random_token};
use crate::auth::{AuthOutcome, FactorRef, MfaChallenge, RequestMeta, SignInStep};
use crate::domain::User;
use crate::error::{AuthError, AuthResult};
use crate::storage::{Conn, mfa, users};

/// An `mfa_token` lives 5 minutes.
pub const MFA_TOKEN_TTL: i64 = 300;
/// Wrong codes an `mfa_token` survives.
pub const MFA_MAX_FAILURES: i64 = 5;
/// An `enrollment_token` lives 15 minutes (time to install an app).
pub const ENROLLMENT_TOKEN_TTL: i64 = 900;
/// The `purpose` of a stored second step that answers a factor.
pub const PURPOSE_CHALLENGE: &str = "challenge";
/// The `purpose` of a stored second step that enrolls the first factor.
pub const PURPOSE_ENROLL: &str = "enroll";

/// Which second factor answered the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    Totp,
    RecoveryCode,
    /// A passkey assertion (with user verification) after the first factor.
    Passkey,
}

impl SecondFactor {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }

    /// RFC 8176 values the factor adds: `otp` for a code; `hwk` (proof of
    /// possession of a key) and `user` (the authenticator verified its
    /// user, by PIN or biometric, which derp cannot tell apart) for a
    /// passkey.
    fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Totp | Self::RecoveryCode => &["otp"],
            Self::Passkey => PASSKEY_AMR,
        }
    }
}

/// What a passkey assertion with user verification proves (RFC 8176).
const PASSKEY_AMR: &[&str] = &["hwk", "user"];

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
    /// A provider (Google, GitHub, OIDC) vouched for the identity.
    Federated { provider: String },
    /// A passkey with user verification: something held (the key) and
    /// something known or been (the authenticator's PIN or biometric), two
    /// factors on its own.
    Passkey,
    /// An authorization code issued after a sign-in on the hosted pages,
    /// with the methods (`amr`) of that sign-in.
    AuthorizationCode { amr: Vec<String> },
    /// The second step: a code for the pending challenge of a first factor
    /// (its `amr` and audit method).
    SecondFactor {
        first_amr: Vec<String>,
        first_method: String,
        factor: SecondFactor,
    },
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
            Self::Passkey => "passkey",
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::SecondFactor { .. } => "mfa",
        }
    }

    /// RFC 8176 method references: `pwd` (password), `email` (a link mailed
    /// to the address), `fed` (a provider), `otp` + `mfa` after a second
    /// factor (a recovery code is a one-time password too); `hwk`, `user`
    /// and `mfa` for a passkey with user verification (alone or as the
    /// second step).
    pub fn amr(&self) -> Vec<String> {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Self::Password | Self::SignUp => v(&["pwd"]),
            Self::EmailConfirmation | Self::MagicLink | Self::PasswordReset => v(&["email"]),
            Self::Federated { .. } => v(&["fed"]),
            Self::Passkey => {
                let mut out = v(PASSKEY_AMR);
                out.push("mfa".into());
                out
            }
            Self::AuthorizationCode { amr } => amr.clone(),
            Self::SecondFactor {
                first_amr, factor, ..
            } => {
                let mut out = first_amr.clone();
                for m in factor.amr().iter().chain(&["mfa"]) {
                    if !out.iter().any(|x| x == m) {
                        out.push(m.to_string());
                    }
                }
                out
            }
        }
    }

    /// Whether this proof already includes a second factor (so a user with
    /// one needs no further step).
    fn has_second_factor(&self) -> bool {
        match self {
            Self::SecondFactor { .. } | Self::Passkey => true,
            Self::AuthorizationCode { amr } => amr.iter().any(|m| m == "mfa"),
            _ => false,
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
            Self::SecondFactor {
                first_method,
                factor,
                ..
            } => serde_json::json!({
                "method": self.method(),
                "first": first_method,
                "factor": factor.name(),
            }),
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
    /// `[auth.native.mfa] required`: a user without a second factor gets
    /// no session until they enroll one.
    pub require_second_factor: bool,
}

impl SignIn {
    /// Applies the policy to `user`, then creates the session and records
    /// the sign-in, or (an active second factor and a proof without one)
    /// stores the second step, inside the caller's transaction.
    pub fn complete(
        &self,
        conn: &Conn,
        user: &User,
        proof: &Proof,
        meta: &RequestMeta,
        now: i64,
    ) -> AuthResult<SignInStep> {
        if user.disabled {
            return Err(AuthError::AccountDisabled);
        }
        if self.require_confirmed_email
            && user.email_confirmed_at.is_none()
            && proof.needs_confirmed_email()
        {
            return Err(AuthError::EmailNotConfirmed);
        }
        if !proof.has_second_factor() {
            let factors = mfa::active_factors(conn, &user.id)?;
            if !factors.is_empty() {
                return self.second_step(conn, user, proof, factors, meta, now);
            }
            if self.require_second_factor {
                return self.enrollment_step(conn, user, proof, meta, now);
            }
        }
        let amr = proof.amr();
        let (tokens, session_id) = self.minter.new_session(conn, user, &amr, meta, now)?;
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
        Ok(SignInStep::Session(AuthOutcome {
            user,
            tokens,
            session_id,
            amr,
        }))
    }

    /// Stores the pending second step and answers its `mfa_token`.
    fn second_step(
        &self,
        conn: &Conn,
        user: &User,
        proof: &Proof,
        factors: Vec<mfa::FactorRow>,
        meta: &RequestMeta,
        now: i64,
    ) -> AuthResult<SignInStep> {
        let token = random_token();
        mfa::insert_challenge(
            conn,
            &hash_token(&token),
            &mfa::ChallengeRow {
                user_id: user.id.clone(),
                method: proof.method().to_string(),
                amr: proof.amr(),
                expires_at: now + MFA_TOKEN_TTL,
                failures: 0,
                used_at: None,
                purpose: PURPOSE_CHALLENGE.into(),
            },
            now,
        )?;
        record(
            conn,
            now,
            meta,
            "sign_in.mfa_required",
            Some(&user.id),
            proof.audit_detail(),
        )?;
        Ok(SignInStep::MfaRequired(MfaChallenge {
            mfa_token: token,
            factors: factors
                .into_iter()
                .map(|f| FactorRef {
                    id: f.id,
                    kind: f.kind,
                })
                .collect(),
        }))
    }

    /// `[auth.native.mfa] required` and no factor yet: stores the pending
    /// sign-in as an `enrollment_token`, which enrolls the first factor and
    /// then completes this sign-in (`super::mfa`).
    fn enrollment_step(
        &self,
        conn: &Conn,
        user: &User,
        proof: &Proof,
        meta: &RequestMeta,
        now: i64,
    ) -> AuthResult<SignInStep> {
        let token = random_token();
        mfa::insert_challenge(
            conn,
            &hash_token(&token),
            &mfa::ChallengeRow {
                user_id: user.id.clone(),
                method: proof.method().to_string(),
                amr: proof.amr(),
                expires_at: now + ENROLLMENT_TOKEN_TTL,
                failures: 0,
                used_at: None,
                purpose: PURPOSE_ENROLL.into(),
            },
            now,
        )?;
        record(
            conn,
            now,
            meta,
            "sign_in.mfa_enrollment_required",
            Some(&user.id),
            proof.audit_detail(),
        )?;
        Ok(SignInStep::MfaEnrollmentRequired {
            enrollment_token: token,
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
            (Proof::Passkey, "passkey"),
            (Proof::PasswordReset, "password_reset"),
            (
                Proof::Federated {
                    provider: "google".into(),
                },
                "oauth",
            ),
            (
                Proof::AuthorizationCode {
                    amr: vec!["pwd".into()],
                },
                "authorization_code",
            ),
        ];
        for (proof, method) in all {
            assert_eq!(proof.method(), method);
            assert_eq!(proof.audit_detail()["method"], method);
        }
        assert!(Proof::Password.needs_confirmed_email());
        assert!(!Proof::MagicLink.needs_confirmed_email());
    }

    #[test]
    fn amr_follows_rfc_8176_and_a_second_factor_adds_otp_and_mfa() {
        assert_eq!(Proof::Password.amr(), ["pwd"]);
        assert_eq!(Proof::MagicLink.amr(), ["email"]);
        let second = Proof::SecondFactor {
            first_amr: vec!["pwd".into()],
            first_method: "password".into(),
            factor: super::SecondFactor::Totp,
        };
        assert_eq!(second.amr(), ["pwd", "otp", "mfa"]);
        assert!(second.has_second_factor());
        assert!(!Proof::Password.has_second_factor());
        assert_eq!(Proof::Passkey.amr(), ["hwk", "user", "mfa"]);
        assert!(Proof::Passkey.has_second_factor());
        let passkey_second = Proof::SecondFactor {
            first_amr: vec!["pwd".into()],
            first_method: "password".into(),
            factor: super::SecondFactor::Passkey,
        };
        assert_eq!(passkey_second.amr(), ["pwd", "hwk", "user", "mfa"]);
        let code = Proof::AuthorizationCode { amr: second.amr() };
        assert!(code.has_second_factor());
        assert!(
            !Proof::AuthorizationCode {
                amr: vec!["pwd".into()]
            }
            .has_second_factor()
        );
    }
}
