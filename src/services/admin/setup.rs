//! The first admin: the one-time setup link `derp serve` prints while no
//! admin exists, and `derp admin create`.

use super::{AdminService, record, user_or_404};

use crate::domain::{Email, Purpose, Role, User};
use crate::error::{AuthError, AuthResult};
use crate::services::orgs::Actor;
use crate::storage::users::{self, NewUser};
use crate::storage::{StorageError, tokens};

const SETUP_TTL: i64 = 24 * 3600;

/// What `derp admin create` did.
#[derive(Debug, Clone)]
pub struct AdminCreated {
    pub user: User,
    pub promoted: bool,
    /// A one-time link to choose a password, when none was given.
    pub password_link: Option<String>,
}

impl AdminService {
    /// When no admin exists: a new one-time setup link (earlier ones die).
    pub async fn setup_link(&self, public_url: &str) -> AuthResult<Option<String>> {
        let now = self.now();
        let token = self
            .db
            .write(move |conn| -> AuthResult<Option<String>> {
                if users::count_admins(conn)? > 0 {
                    return Ok(None);
                }
                tokens::spend_all(conn, Purpose::AdminSetup, now)?;
                let token = crate::auth::secrets::random_token();
                tokens::insert(
                    conn,
                    &crate::auth::secrets::hash_token(&token),
                    &tokens::OneTimeToken {
                        purpose: Purpose::AdminSetup,
                        email: String::new(),
                        user_id: None,
                        payload: serde_json::json!({}),
                        expires_at: now + SETUP_TTL,
                    },
                    now,
                )?;
                Ok(Some(token))
            })
            .await?;
        Ok(token.map(|t| format!("{public_url}/admin/setup?token={t}")))
    }

    pub async fn setup_token_valid(&self, token_hash: &str) -> AuthResult<bool> {
        let hash = token_hash.to_string();
        let now = self.now();
        self.db
            .read(move |conn| -> AuthResult<bool> {
                Ok(users::count_admins(conn)? == 0
                    && tokens::is_valid(conn, &hash, Purpose::AdminSetup, now)?)
            })
            .await
    }

    /// Spends the setup link and creates the first admin (confirmed).
    pub async fn complete_setup(
        &self,
        token_hash: &str,
        email: Email,
        password: String,
    ) -> AuthResult<User> {
        let hash = self.checked_hash(&password).await?;
        let token_hash = token_hash.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<User> {
                if users::count_admins(conn)? > 0 {
                    return Err(AuthError::InvalidToken);
                }
                tokens::consume(conn, &token_hash, Purpose::AdminSetup, now)?
                    .ok_or(AuthError::InvalidToken)?;
                let id = uuid::Uuid::now_v7().to_string();
                let inserted = users::insert(
                    conn,
                    &NewUser {
                        id: &id,
                        email: email.as_str(),
                        password_hash: Some(&hash),
                        email_confirmed_at: Some(now),
                        role: Role::Admin,
                        data: &serde_json::json!({}),
                        now,
                    },
                );
                match inserted {
                    Err(StorageError::Conflict(_)) => return Err(AuthError::EmailExists),
                    other => other?,
                }
                let actor = Actor {
                    user_id: id.clone(),
                    ip: None,
                    user_agent: None,
                    admin: true,
                };
                record(
                    conn,
                    now,
                    &actor,
                    "admin.setup",
                    Some(&id),
                    None,
                    serde_json::json!({"email": email.as_str()}),
                )?;
                user_or_404(conn, &id)
            })
            .await
    }

    /// `derp admin create`: makes `email` an admin, creating the user when
    /// needed. Without a password, returns a one-time link to choose one.
    pub async fn create_admin(
        &self,
        email: Email,
        password: Option<String>,
        public_url: &str,
    ) -> AuthResult<AdminCreated> {
        let hash = match &password {
            Some(p) => Some(self.checked_hash(p).await?),
            None => None,
        };
        let now = self.now();
        let public_url = public_url.to_string();
        self.db
            .write(move |conn| -> AuthResult<AdminCreated> {
                let actor = Actor {
                    user_id: "cli".into(),
                    ip: None,
                    user_agent: Some("derp admin create".into()),
                    admin: true,
                };
                let (id, promoted) = match users::by_email(conn, email.as_str())? {
                    Some(existing) => {
                        users::set_role(conn, &existing.user.id, Role::Admin, now)?;
                        if let Some(h) = &hash {
                            users::set_password_hash(conn, &existing.user.id, Some(h), now)?;
                        }
                        users::confirm_email(conn, &existing.user.id, now)?;
                        (existing.user.id, true)
                    }
                    None => {
                        let id = uuid::Uuid::now_v7().to_string();
                        users::insert(
                            conn,
                            &NewUser {
                                id: &id,
                                email: email.as_str(),
                                password_hash: hash.as_deref(),
                                email_confirmed_at: Some(now),
                                role: Role::Admin,
                                data: &serde_json::json!({}),
                                now,
                            },
                        )?;
                        (id, false)
                    }
                };
                record(
                    conn,
                    now,
                    &actor,
                    if promoted {
                        "admin.user.promoted"
                    } else {
                        "admin.user.created"
                    },
                    Some(&id),
                    None,
                    serde_json::json!({"email": email.as_str(), "role": "admin"}),
                )?;
                let password_link = if hash.is_none() {
                    let token = crate::auth::secrets::random_token();
                    tokens::insert(
                        conn,
                        &crate::auth::secrets::hash_token(&token),
                        &tokens::OneTimeToken {
                            purpose: Purpose::Reset,
                            email: email.as_str().into(),
                            user_id: Some(id.clone()),
                            payload: serde_json::json!({}),
                            expires_at: now + SETUP_TTL,
                        },
                        now,
                    )?;
                    Some(format!("{public_url}/reset-password?token={token}"))
                } else {
                    None
                };
                Ok(AdminCreated {
                    user: user_or_404(conn, &id)?,
                    promoted,
                    password_link,
                })
            })
            .await
    }
}
