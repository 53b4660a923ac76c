//! `UserDirectory`: the users an admin finds and changes when they live in an
//! upstream store (Cognito's Admin* API, Clerk's Backend API). The native
//! backend has no directory: its users are rows of derp's own database, and
//! the admin service changes them in one transaction with their audit event.
//! Orgs, the audit log and derp's own sessions stay local either way, keyed
//! by the upstream subject.

use crate::domain::{Email, User};
use crate::error::{AuthError, AuthResult};
use async_trait::async_trait;

/// One page of upstream users. `next_cursor` is opaque to callers.
#[derive(Debug, Clone)]
pub struct DirectoryPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}

/// What an admin may ask of an upstream user store. Operations the store
/// cannot do answer 501 `not_supported_by_backend`.
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
    async fn create(
        &self,
        email: &Email,
        password: Option<&str>,
        email_confirmed: bool,
    ) -> AuthResult<User> {
        let _ = (email, password, email_confirmed);
        Err(AuthError::NotSupportedByBackend(self.name()))
    }
    /// Marks the user's email (and account) confirmed.
    async fn confirm_email(&self, id: &str) -> AuthResult<User> {
        let _ = id;
        Err(AuthError::NotSupportedByBackend(self.name()))
    }
    /// How many users the store holds (an estimate where the store only
    /// gives one), or `None` when it cannot say.
    async fn count(&self) -> AuthResult<Option<i64>> {
        Ok(None)
    }
    /// Whether [`Self::create`] works (the admin pages hide its form otherwise).
    fn can_create(&self) -> bool {
        false
    }
}

/// A store whose admin calls cannot be made as configured (Cognito without
/// access keys): every call answers 501 with the reason.
pub struct Unavailable {
    pub backend: &'static str,
    pub reason: &'static str,
}

impl Unavailable {
    fn refuse<T>(&self) -> AuthResult<T> {
        Err(AuthError::NotConfigured(self.reason))
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
    async fn create(&self, _: &Email, _: Option<&str>, _: bool) -> AuthResult<User> {
        self.refuse()
    }
    async fn confirm_email(&self, _: &str) -> AuthResult<User> {
        self.refuse()
    }
}
