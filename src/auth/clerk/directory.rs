//! Clerk's users as the admin's [`UserDirectory`], through the Backend API.

use super::{ClerkBackend, NAME, upstream, user_from_clerk};
use crate::auth::directory::{DirectoryPage, UserDirectory};
use crate::domain::User;
use crate::error::{AuthError, AuthResult};
use async_trait::async_trait;
use oauth2::reqwest;

/// Clerk's largest page of users.
const MAX_LIMIT: i64 = 500;

/// A Clerk id as a path segment: `user_…`, `sess_…` are letters, digits
/// and underscores; anything else names no user.
fn clerk_id(id: &str) -> AuthResult<&str> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(id).ok_or(AuthError::NotFound("user"))
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The Backend API's users for the admin: `GET /users?query=` (Clerk's
/// substring search over emails, names and ids), `limit`/`offset` paging
/// (the cursor is the next offset, base64url), ban/unban (a ban also ends
/// the user's sessions on Clerk's side), delete.
#[async_trait]
impl UserDirectory for ClerkBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn list(&self, q: &str, cursor: Option<&str>, limit: i64) -> AuthResult<DirectoryPage> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let limit = limit.clamp(1, MAX_LIMIT);
        let offset: i64 = match cursor.filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse().ok())
                .filter(|n: &i64| *n >= 0)
                .ok_or_else(|| AuthError::field("cursor", "is not a cursor this server issued"))?,
        };
        let mut path = format!("/users?limit={limit}&offset={offset}&order_by=-created_at");
        let q = q.trim();
        if !q.is_empty() {
            path.push_str(&format!("&query={}", encode(q)));
        }
        let v = self.api(reqwest::Method::GET, &path).await?;
        let list = v
            .as_array()
            .or_else(|| v["data"].as_array())
            .ok_or_else(|| upstream("the user list is not an array"))?;
        let users = list
            .iter()
            .map(user_from_clerk)
            .collect::<AuthResult<Vec<_>>>()?;
        let next_cursor = (users.len() as i64 == limit)
            .then(|| URL_SAFE_NO_PAD.encode((offset + limit).to_string()));
        Ok(DirectoryPage { users, next_cursor })
    }

    async fn count(&self) -> AuthResult<Option<i64>> {
        let v = self.api(reqwest::Method::GET, "/users/count").await?;
        Ok(v["total_count"].as_i64())
    }

    async fn get(&self, id: &str) -> AuthResult<User> {
        let id = clerk_id(id)?;
        user_from_clerk(
            &self
                .api(reqwest::Method::GET, &format!("/users/{id}"))
                .await?,
        )
    }

    async fn set_disabled(&self, id: &str, disabled: bool) -> AuthResult<User> {
        let id = clerk_id(id)?;
        let action = if disabled { "ban" } else { "unban" };
        user_from_clerk(
            &self
                .api(reqwest::Method::POST, &format!("/users/{id}/{action}"))
                .await?,
        )
    }

    async fn delete(&self, id: &str) -> AuthResult<()> {
        let id = clerk_id(id)?;
        self.api(reqwest::Method::DELETE, &format!("/users/{id}"))
            .await
            .map(|_| ())
    }

    async fn sign_out(&self, id: &str) -> AuthResult<()> {
        let id = clerk_id(id)?;
        self.get(id).await?;
        let v = self
            .api(
                reqwest::Method::GET,
                &format!("/sessions?user_id={id}&status=active"),
            )
            .await?;
        let list = v.as_array().or_else(|| v["data"].as_array()).cloned();
        for s in list.unwrap_or_default() {
            if let Some(sid) = s["id"].as_str() {
                let sid = clerk_id(sid)?;
                self.api(reqwest::Method::POST, &format!("/sessions/{sid}/revoke"))
                    .await?;
            }
        }
        Ok(())
    }
}
