//! The user pool as the admin's user directory: ListUsers, AdminGetUser,
//! AdminDisableUser / AdminEnableUser (+ AdminUserGlobalSignOut),
//! AdminDeleteUser, AdminCreateUser, AdminConfirmSignUp, DescribeUserPool
//! (the user count), all signed with
//! SigV4 using `[auth.cognito] access_key_id` / `secret_access_key`.
//!
//! derp's user id for a Cognito user is its `sub`; the Admin* calls take a
//! `Username`, so an id is first looked up with `ListUsers` and the filter
//! `sub = "<id>"`. Search is Cognito's: an email prefix (`email ^= "q"`).
//! The cursor is Cognito's `PaginationToken`, base64url-wrapped so it
//! travels in a query string unchanged. Cognito says when a user was created
//! but not when they last signed in nor when the email was confirmed:
//! `last_sign_in_at` is null and a confirmed email shows the Unix epoch.

use super::api::{self, Api, CallError, upstream};
use super::sigv4::Keys;
use crate::auth::directory::{
    DirectoryPage, EmailConfirmation, Unavailable, UserCreation, UserDirectory,
};
use crate::clock::{Clock, from_unix};
use crate::config::CognitoConfig;
use crate::domain::{Email, Role, User};
use crate::error::{AuthError, AuthResult};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

/// Cognito's largest `Limit` for ListUsers.
const MAX_LIMIT: i64 = 60;

const NO_KEYS: &str = "the cognito backend manages users only with [auth.cognito] \
                       access_key_id and secret_access_key set (IAM keys allowed the \
                       Admin* calls and ListUsers on the user pool)";

pub struct CognitoDirectory {
    api: Api,
    pool_id: String,
    region: String,
    keys: Keys,
    clock: Arc<dyn Clock>,
}

/// The directory for `cfg`: the user pool when access keys are set, else one
/// that answers 501 `not_supported_by_backend` saying the keys are needed.
pub fn directory(
    cfg: &CognitoConfig,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn UserDirectory>, String> {
    let key_id = cfg.access_key_id.as_deref().map(str::trim).unwrap_or("");
    let secret = cfg
        .secret_access_key
        .as_ref()
        .map(|s| s.expose().trim())
        .unwrap_or("");
    if key_id.is_empty() || secret.is_empty() {
        return Ok(Arc::new(Unavailable {
            backend: super::NAME,
            reason: NO_KEYS,
        }));
    }
    Ok(Arc::new(CognitoDirectory {
        api: Api::new(api::http_client()?, cfg, super::endpoint(cfg)),
        pool_id: cfg.user_pool_id.clone(),
        region: super::region(cfg),
        keys: Keys {
            access_key_id: key_id.to_string(),
            secret_access_key: secret.to_string(),
        },
        clock,
    }))
}

/// A value inside a ListUsers filter's quotes: no quote, backslash or
/// control character can reach it.
fn filter_value(s: &str) -> Option<&str> {
    (!s.chars().any(|c| c == '"' || c == '\\' || c.is_control())).then_some(s)
}

fn epoch(v: &Value) -> Option<OffsetDateTime> {
    v.as_f64().map(|t| from_unix(t as i64))
}

/// A Cognito user (ListUsers' `Attributes` or AdminGetUser's
/// `UserAttributes`) as derp's user.
pub fn user_from_cognito(v: &Value) -> AuthResult<User> {
    let attrs = v
        .get("Attributes")
        .or_else(|| v.get("UserAttributes"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut data = Map::new();
    let (mut sub, mut email, mut verified) = (None, String::new(), false);
    for a in &attrs {
        let (Some(name), Some(value)) = (a["Name"].as_str(), a["Value"].as_str()) else {
            continue;
        };
        match name {
            "sub" => sub = Some(value.to_string()),
            "email" => email = value.to_lowercase(),
            "email_verified" => verified = value == "true",
            _ => {
                data.insert(name.to_string(), Value::String(value.to_string()));
            }
        }
    }
    let id = sub.ok_or_else(|| AuthError::Upstream("cognito: a user without sub".into()))?;
    let confirmed = verified || v["UserStatus"].as_str() == Some("CONFIRMED");
    Ok(User {
        id,
        email,
        email_confirmed_at: confirmed.then_some(OffsetDateTime::UNIX_EPOCH),
        role: Role::Default,
        disabled: v["Enabled"].as_bool() == Some(false),
        created_at: epoch(&v["UserCreateDate"]).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        last_sign_in_at: None,
        data: Value::Object(data),
    })
}

/// Cognito's errors as derp's: an unknown user is 404, a taken email 409,
/// throttling 429, anything else 502 (cause in the log only).
fn mapped(op: &'static str, e: CallError) -> AuthError {
    if e.is("UserNotFoundException") {
        return AuthError::NotFound("user");
    }
    if e.is_any(&["UsernameExistsException", "AliasExistsException"]) {
        return AuthError::EmailExists;
    }
    if e.is("InvalidPasswordException") {
        return AuthError::WeakPassword(vec!["pool_policy"]);
    }
    let err = upstream(op, e);
    if let AuthError::Upstream(cause) = &err {
        tracing::warn!(cause = %cause, "cognito admin call failed");
    }
    err
}

impl CognitoDirectory {
    async fn call(&self, op: &'static str, mut body: Value) -> AuthResult<Value> {
        body["UserPoolId"] = self.pool_id.clone().into();
        self.api
            .call_signed(op, &body, &self.keys, &self.region, self.clock.unix())
            .await
            .map_err(|e| mapped(op, e))
    }

    /// The Cognito `Username` of the user whose `sub` is `id`.
    async fn username(&self, id: &str) -> AuthResult<String> {
        let id = filter_value(id.trim()).ok_or(AuthError::NotFound("user"))?;
        if id.is_empty() {
            return Err(AuthError::NotFound("user"));
        }
        let found = self
            .call(
                "ListUsers",
                json!({"Filter": format!("sub = \"{id}\""), "Limit": 1}),
            )
            .await?;
        found["Users"]
            .as_array()
            .and_then(|u| u.first())
            .and_then(|u| u["Username"].as_str())
            .map(str::to_string)
            .ok_or(AuthError::NotFound("user"))
    }

    async fn get_by_username(&self, username: &str) -> AuthResult<User> {
        user_from_cognito(
            &self
                .call("AdminGetUser", json!({"Username": username}))
                .await?,
        )
    }
}

#[async_trait]
impl UserDirectory for CognitoDirectory {
    fn name(&self) -> &'static str {
        super::NAME
    }

    async fn list(&self, q: &str, cursor: Option<&str>, limit: i64) -> AuthResult<DirectoryPage> {
        let mut body = json!({"Limit": limit.clamp(1, MAX_LIMIT)});
        let q = q.trim().to_lowercase();
        if !q.is_empty() {
            let q = filter_value(&q)
                .ok_or_else(|| AuthError::field("q", "may not contain quotes or backslashes"))?;
            body["Filter"] = format!("email ^= \"{q}\"").into();
        }
        if let Some(c) = cursor.filter(|c| !c.is_empty()) {
            let token = URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| AuthError::field("cursor", "is not a cursor this server issued"))?;
            body["PaginationToken"] = token.into();
        }
        let answer = self.call("ListUsers", body).await?;
        let users = answer["Users"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(user_from_cognito)
            .collect::<AuthResult<Vec<_>>>()?;
        let next_cursor = answer["PaginationToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| URL_SAFE_NO_PAD.encode(t));
        Ok(DirectoryPage { users, next_cursor })
    }

    async fn get(&self, id: &str) -> AuthResult<User> {
        let username = self.username(id).await?;
        self.get_by_username(&username).await
    }

    async fn set_disabled(&self, id: &str, disabled: bool) -> AuthResult<User> {
        let username = self.username(id).await?;
        let who = json!({"Username": username});
        if disabled {
            self.call("AdminDisableUser", who.clone()).await?;
            self.call("AdminUserGlobalSignOut", who).await?;
        } else {
            self.call("AdminEnableUser", who).await?;
        }
        self.get_by_username(&username).await
    }

    async fn delete(&self, id: &str) -> AuthResult<()> {
        let username = self.username(id).await?;
        self.call("AdminDeleteUser", json!({"Username": username}))
            .await
            .map(|_| ())
    }

    async fn sign_out(&self, id: &str) -> AuthResult<()> {
        let username = self.username(id).await?;
        self.call("AdminUserGlobalSignOut", json!({"Username": username}))
            .await
            .map(|_| ())
    }

    /// DescribeUserPool's `EstimatedNumberOfUsers`.
    async fn count(&self) -> AuthResult<Option<i64>> {
        let pool = self.call("DescribeUserPool", json!({})).await?;
        Ok(pool["UserPool"]["EstimatedNumberOfUsers"].as_i64())
    }

    fn user_creation(&self) -> Option<&dyn UserCreation> {
        Some(self)
    }

    fn email_confirmation(&self) -> Option<&dyn EmailConfirmation> {
        Some(self)
    }
}

#[async_trait]
impl UserCreation for CognitoDirectory {
    /// AdminCreateUser with the email as username and no invitation mail
    /// (`MessageAction: SUPPRESS`); a password given becomes permanent
    /// (AdminSetUserPassword), so the user can sign in with it.
    async fn create(
        &self,
        email: &Email,
        password: Option<&str>,
        email_confirmed: bool,
    ) -> AuthResult<User> {
        let mut attributes = vec![json!({"Name": "email", "Value": email.as_str()})];
        if email_confirmed {
            attributes.push(json!({"Name": "email_verified", "Value": "true"}));
        }
        let created = self
            .call(
                "AdminCreateUser",
                json!({
                    "Username": email.as_str(),
                    "UserAttributes": attributes,
                    "MessageAction": "SUPPRESS",
                }),
            )
            .await?;
        let username = created["User"]["Username"]
            .as_str()
            .unwrap_or(email.as_str())
            .to_string();
        if let Some(p) = password {
            self.call(
                "AdminSetUserPassword",
                json!({"Username": username, "Password": p, "Permanent": true}),
            )
            .await?;
        }
        self.get_by_username(&username).await
    }
}

#[async_trait]
impl EmailConfirmation for CognitoDirectory {
    async fn confirm_email(&self, id: &str) -> AuthResult<User> {
        let username = self.username(id).await?;
        let user = self.get_by_username(&username).await?;
        if user.email_confirmed_at.is_none() {
            self.call("AdminConfirmSignUp", json!({"Username": username}))
                .await?;
        }
        self.get_by_username(&username).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_users_map_with_sub_as_id() {
        let v = json!({
            "Username": "a@example.com",
            "Attributes": [
                {"Name": "sub", "Value": "0b1c"},
                {"Name": "email", "Value": "A@Example.com"},
                {"Name": "email_verified", "Value": "false"},
                {"Name": "name", "Value": "Ann"}
            ],
            "UserCreateDate": 1_700_000_000.5,
            "Enabled": false,
            "UserStatus": "UNCONFIRMED"
        });
        let u = user_from_cognito(&v).unwrap();
        assert_eq!((u.id.as_str(), u.email.as_str()), ("0b1c", "a@example.com"));
        assert!(u.disabled && u.email_confirmed_at.is_none());
        assert_eq!(u.created_at.unix_timestamp(), 1_700_000_000);
        assert_eq!(u.data, json!({"name": "Ann"}));
    }

    #[test]
    fn filter_values_cannot_break_out_of_quotes() {
        assert_eq!(filter_value("ann@ex"), Some("ann@ex"));
        assert_eq!(filter_value("a\" or sub ^= \""), None);
        assert_eq!(filter_value("a\\"), None);
    }
}
