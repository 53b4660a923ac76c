//! Minting: the access and refresh tokens of a new session (only the
//! sign-in pipeline creates one) or of a rotated one.

use crate::auth::jwt::{AccessClaims, Keyring};
use crate::auth::native::NativeBackend;
use crate::auth::native::pipeline::{Proof, SignIn};
use crate::auth::secrets::{new_refresh_token, refresh_key};
use crate::auth::{RequestMeta, SignInStep, TokenPair};
use crate::domain::User;
use crate::error::AuthResult;
use crate::storage::sessions::{self, SessionRow};
use crate::storage::{Conn, users};

/// Everything needed to mint tokens inside a transaction.
#[derive(Clone)]
pub(in crate::auth::native) struct Minter {
    pub keys: Keyring,
    /// Life of the access tokens of sessions minted for OpenID Connect
    /// clients.
    pub client_access_ttl: i64,
    pub session_ttl: i64,
    pub idle_ttl: i64,
    /// The configured org roles: a stored role no longer configured is
    /// claimed as `member`.
    pub org_roles: crate::domain::OrgRoles,
    /// The time prefix of new refresh tokens (milliseconds).
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

impl Minter {
    /// Creates a login session with its first refresh token. Only the
    /// sign-in pipeline calls it.
    pub(in crate::auth::native) fn new_session(
        &self,
        conn: &Conn,
        user: &User,
        amr: &[String],
        meta: &RequestMeta,
        now: i64,
    ) -> AuthResult<(TokenPair, String)> {
        let session = SessionRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            created_at: now,
            last_used_at: now,
            expires_at: now + self.session_ttl,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            active_org_id: None,
            revoked_at: None,
            amr: amr.to_vec(),
            client_id: None,
            scope: None,
        };
        sessions::insert(conn, &session)?;
        users::touch_sign_in(conn, &user.id, now)?;
        Ok((
            self.pair(conn, user, &session, None, None, now)?,
            session.id,
        ))
    }

    /// A new refresh token for `session` (child of `parent`) and an access token.
    pub fn pair(
        &self,
        conn: &Conn,
        user: &User,
        session: &SessionRow,
        parent: Option<i64>,
        org_role: Option<String>,
        now: i64,
    ) -> AuthResult<TokenPair> {
        let refresh = self.new_refresh(conn, session, parent, now)?;
        self.with_refresh(user, session, refresh, org_role, now)
    }

    /// Stores a new refresh token for `session` (a child of `parent`) and
    /// returns it: the database half of [`Minter::pair`].
    pub(super) fn new_refresh(
        &self,
        conn: &Conn,
        session: &SessionRow,
        parent: Option<i64>,
        now: i64,
    ) -> AuthResult<String> {
        let refresh = new_refresh_token(self.clock.unix_ms());
        let idle_expiry = (now + self.idle_ttl).min(session.expires_at);
        sessions::insert_refresh(
            conn,
            &session.id,
            &refresh_key(&refresh),
            parent,
            now,
            idle_expiry,
        )?;
        Ok(refresh)
    }

    /// A new access token beside an existing refresh token.
    pub fn with_refresh(
        &self,
        user: &User,
        session: &SessionRow,
        refresh: String,
        org_role: Option<String>,
        now: i64,
    ) -> AuthResult<TokenPair> {
        let client = session.client_id.clone();
        let scope = session.scope.clone().filter(|_| client.is_some());
        let ttl = if client.is_some() {
            self.client_access_ttl
        } else {
            self.keys.access_ttl()
        };
        let exp = now + ttl;
        // A client's token (RFC 9068) names the client as its audience and
        // carries the address only when the `email` scope was granted.
        let email_granted = scope
            .as_deref()
            .is_none_or(|s| s.split(' ').any(|x| x == "email"));
        let claims = AccessClaims {
            sub: user.id.clone(),
            sid: session.id.clone(),
            session_id: session.id.clone(),
            iat: now,
            exp,
            nbf: None,
            jti: uuid::Uuid::new_v4().to_string(),
            iss: self.keys.issuer().to_string(),
            aud: match &client {
                Some(c) => Some(c.clone()),
                None => self.keys.audience().map(str::to_string),
            },
            email: if email_granted {
                user.email.clone()
            } else {
                String::new()
            },
            role: user.role.as_str().to_string(),
            org_id: org_role.as_ref().and(session.active_org_id.clone()),
            org_role,
            amr: session.amr.clone(),
            client_id: client,
            scope,
        };
        Ok(TokenPair {
            access_token: self.keys.sign(&claims)?,
            refresh_token: refresh,
            token_type: "bearer",
            expires_in: exp - now,
            expires_at: exp,
        })
    }
}

impl NativeBackend {
    pub(in crate::auth::native) fn minter(&self) -> Minter {
        Minter {
            keys: self.keys.clone(),
            client_access_ttl: self.client_access_ttl,
            session_ttl: self.cfg.session_expire_days as i64 * 86_400,
            idle_ttl: self.cfg.jwt.refresh_token_expire_days as i64 * 86_400,
            org_roles: self.org_roles.clone(),
            clock: self.clock.clone(),
        }
    }

    /// The sign-in pipeline with this backend's settings.
    pub(in crate::auth::native) fn sign_in_pipeline(&self) -> SignIn {
        SignIn {
            minter: self.minter(),
            require_confirmed_email: self.cfg.enable_confirmation,
            require_second_factor: self.cfg.mfa.required,
        }
    }

    /// Signs in `user`, whose proof was checked outside a transaction (a
    /// password), through the pipeline in a transaction of its own.
    pub(in crate::auth::native) async fn sign_in_user(
        &self,
        user: User,
        proof: Proof,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let pipeline = self.sign_in_pipeline();
        let meta = meta.clone();
        let now = self.now();
        self.db
            .write(move |conn| pipeline.complete(conn, &user, &proof, &meta, now))
            .await
    }
}
