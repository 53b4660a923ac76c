//! `UserDirectory`: the users an admin finds and changes when they live in an
//! upstream store (Cognito's Admin* API, Clerk's Backend API). The native
//! backend has no directory: its users are rows of derp's own database, and
//! the admin service changes them in one transaction with their audit event.
//! Orgs, the audit log and derp's own sessions stay local either way, keyed
//! by the upstream subject.
//!
//! As with `auth::backend`, what only some stores can do is a trait of its
//! own reached by an accessor (`Some(self)` when the store has it, `None`
//! by default); `services::admin` is the one place that turns a missing
//! one into 501 ([`UserDirectory::refusal`]).
//!
//! | capability | Cognito | Clerk |
//! |---|---|---|
//! | [`UserCreation`] (admin "new user") | ✓ | |
//! | [`EmailConfirmation`] (mark the address confirmed) | ✓ | |

use crate::domain::{Email, User};
use crate::error::{AuthError, AuthResult};
use async_trait::async_trait;

/// One page of upstream users. `next_cursor` is opaque to callers.
#[derive(Debug, Clone)]
pub struct DirectoryPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}

/// What an admin may ask of every upstream user store; what only some can
/// do is behind the accessors below.
#[async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Users whose email matches `q` (each store's own matching), newest
    /// first where the store says so.
    async fn list(&self, q: &str, cursor: Option<&str>, limit: i64) -> AuthResult<DirectoryPage>;
    /// The user with this id (the upstream subject); 404 `not_found` if none.
    async fn get(&self, id: &str) -> AuthResult<User>;
    /// Disabling also ends the user's upstream sessions.
    async fn set_disabled(&self, id: &str, disabled: bool) -> AuthResult<User>;
    async fn delete(&self, id: &str) -> AuthResult<()>;
    /// Ends every upstream session of the user.
    async fn sign_out(&self, id: &str) -> AuthResult<()>;
    /// How many users the store holds (an estimate where the store only
    /// gives one), or `None` when it cannot say.
    async fn count(&self) -> AuthResult<Option<i64>> {
        Ok(None)
    }
    /// Creating users (the admin pages hide their form without it).
    fn user_creation(&self) -> Option<&dyn UserCreation> {
        None
    }
    /// Marking a user's address confirmed.
    fn email_confirmation(&self) -> Option<&dyn EmailConfirmation> {
        None
    }
    /// What asking for a capability the store lacks answers: 501
    /// `not_supported_by_backend`.
    fn refusal(&self) -> AuthError {
        AuthError::NotSupportedByBackend(self.name())
    }
}

/// A store where admins create users.
#[async_trait]
pub trait UserCreation: Send + Sync {
    async fn create(
        &self,
        email: &Email,
        password: Option<&str>,
        email_confirmed: bool,
    ) -> AuthResult<User>;
}

/// A store where admins mark a user's address (and account) confirmed.
#[async_trait]
pub trait EmailConfirmation: Send + Sync {
    async fn confirm_email(&self, id: &str) -> AuthResult<User>;
}

/// A store whose admin calls cannot be made as configured (Cognito without
/// access keys): every call answers 501 with the reason, and so does every
/// capability (it offers none).
pub struct Unavailable {
    pub backend: &'static str,
    pub reason: &'static str,
}

impl Unavailable {
    fn refuse<T>(&self) -> AuthResult<T> {
        Err(self.refusal())
    }
}

#[async_trait]
impl UserDirectory for Unavailable {
    fn name(&self) -> &'static str {
        self.backend
    }
    async fn list(&self, _: &str, _: Option<&str>, _: i64) -> AuthResult<DirectoryPage> {
        self.refuse()
    }
    async fn get(&self, _: &str) -> AuthResult<User> {
        self.refuse()
    }
    async fn set_disabled(&self, _: &str, _: bool) -> AuthResult<User> {
        self.refuse()
    }
    async fn delete(&self, _: &str) -> AuthResult<()> {
        self.refuse()
    }
    async fn sign_out(&self, _: &str) -> AuthResult<()> {
        self.refuse()
    }
    fn refusal(&self) -> AuthError {
        AuthError::NotConfigured(self.reason)
    }
}
