//! Sign-in (USER_PASSWORD_AUTH), refresh (REFRESH_TOKEN_AUTH), sign-out
//! (GlobalSignOut) and the active org (a signed X-Org-Context value).

use super::CognitoBackend;
use super::api::{CallError, upstream};
use super::verify::Verified;
use crate::auth::{AuthOutcome, SessionInfo, TokenPair};
use crate::error::{AuthError, AuthResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The refresh token derp hands out: `base64url(JSON {"u", "t"})`, the
/// Cognito username (for REFRESH_TOKEN_AUTH's SECRET_HASH) and Cognito's
/// refresh token. Not signed: changing `u` only makes the SECRET_HASH wrong,
/// and Cognito refuses the refresh.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RefreshWrapper {
    pub u: String,
    pub t: String,
}

/// Longer refresh tokens are refused unread (Cognito's are about 1.8 KB).
const MAX_REFRESH_LEN: usize = 16 * 1024;

impl RefreshWrapper {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(token: &str) -> Option<Self> {
        let token = token.trim();
        if token.len() > MAX_REFRESH_LEN {
            return None;
        }
        let w: Self = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        (!w.u.is_empty() && !w.t.is_empty()).then_some(w)
    }
}

/// A challenge name fit for a message (letters, digits, `_` only).
fn challenge_name(v: &Value) -> Option<String> {
    v.get("ChallengeName").and_then(Value::as_str).map(|c| {
        c.chars()
            .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
            .take(64)
            .collect()
    })
}

fn sign_in_error(e: CallError) -> AuthError {
    // Unknown user and wrong password answer the same; so do disabled
    // users, whose state Cognito may report before checking the password.
    if e.is_any(&["NotAuthorizedException", "UserNotFoundException"]) {
        return AuthError::InvalidCredentials;
    }
    if e.is("UserNotConfirmedException") {
        return AuthError::EmailNotConfirmed;
    }
    if e.is("PasswordResetRequiredException") {
        return AuthError::Forbidden(
            "the user pool requires a password reset: use password recovery".into(),
        );
    }
    upstream("InitiateAuth", e)
}

impl CognitoBackend {
    /// The token pair for a verified Cognito access token.
    pub(super) fn pair(
        &self,
        access_token: String,
        refresh_token: String,
        v: &Verified,
    ) -> TokenPair {
        TokenPair {
            access_token,
            refresh_token,
            token_type: "bearer",
            expires_in: (v.exp - self.now()).max(0),
            expires_at: v.exp,
        }
    }

    /// Verifies a token Cognito just issued (it must pass `/session` too).
    pub(super) async fn verify_issued(&self, access_token: &str) -> AuthResult<Verified> {
        self.verifier.verify(access_token).await.map_err(|_| {
            AuthError::Upstream(
                "cognito issued an access token that does not verify (check issuer, jwks_url and client_id)".into(),
            )
        })
    }

    pub(super) async fn sign_in_impl(
        &self,
        username: &str,
        password: &str,
    ) -> AuthResult<AuthOutcome> {
        let mut params = json!({"USERNAME": username, "PASSWORD": password});
        if let Some(hash) = self.api.secret_hash(username) {
            params["SECRET_HASH"] = hash.into();
        }
        let body = json!({
            "AuthFlow": "USER_PASSWORD_AUTH",
            "ClientId": self.api.client_id(),
            "AuthParameters": params,
        });
        let answer = self
            .api
            .call("InitiateAuth", &body)
            .await
            .map_err(sign_in_error)?;
        if let Some(challenge) = challenge_name(&answer) {
            return Err(AuthError::Forbidden(format!(
                "the user pool asks for the {challenge} challenge, which derp does not support; \
                 complete it with Cognito"
            )));
        }
        let result = answer
            .get("AuthenticationResult")
            .ok_or_else(|| AuthError::Upstream("cognito InitiateAuth: no tokens".into()))?;
        let text = |key: &str| result.get(key).and_then(Value::as_str).map(str::to_string);
        let (Some(access), Some(refresh)) = (text("AccessToken"), text("RefreshToken")) else {
            return Err(AuthError::Upstream(
                "cognito InitiateAuth: no tokens".into(),
            ));
        };
        let verified = self.verify_issued(&access).await?;
        let wrapper = RefreshWrapper {
            u: verified
                .username
                .clone()
                .unwrap_or_else(|| username.to_string()),
            t: refresh,
        };
        let user = self.user_for_token(&access, &verified).await;
        let tokens = self.pair(access, wrapper.encode(), &verified);
        Ok(AuthOutcome {
            user,
            tokens,
            session_id: verified.session_id,
            amr: Vec::new(),
        })
    }

    pub(super) async fn refresh_impl(&self, refresh_token: &str) -> AuthResult<TokenPair> {
        let wrapper = RefreshWrapper::decode(refresh_token).ok_or(AuthError::InvalidToken)?;
        let mut params = json!({"REFRESH_TOKEN": wrapper.t});
        if let Some(hash) = self.api.secret_hash(&wrapper.u) {
            params["SECRET_HASH"] = hash.into();
        }
        let body = json!({
            "AuthFlow": "REFRESH_TOKEN_AUTH",
            "ClientId": self.api.client_id(),
            "AuthParameters": params,
        });
        let answer = self.api.call("InitiateAuth", &body).await.map_err(|e| {
            if e.is_any(&["NotAuthorizedException", "UserNotFoundException"]) {
                AuthError::InvalidToken
            } else {
                upstream("InitiateAuth", e)
            }
        })?;
        let result = answer
            .get("AuthenticationResult")
            .ok_or_else(|| AuthError::Upstream("cognito refresh: no tokens".into()))?;
        let access = result
            .get("AccessToken")
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::Upstream("cognito refresh: no access token".into()))?
            .to_string();
        let verified = self.verify_issued(&access).await?;
        // Cognito returns a new refresh token only when rotation is on.
        let refresh = match result.get("RefreshToken").and_then(Value::as_str) {
            Some(new) if !new.is_empty() => RefreshWrapper {
                u: wrapper.u,
                t: new.to_string(),
            }
            .encode(),
            _ => refresh_token.trim().to_string(),
        };
        Ok(self.pair(access, refresh, &verified))
    }

    /// GlobalSignOut: Cognito has no per-session sign-out without the
    /// refresh token, so both scopes end every session of the user.
    pub(super) async fn sign_out_impl(&self, session: &SessionInfo) -> AuthResult<()> {
        let token = self.verifier.recent_token(session);
        self.verifier
            .sign_out(&session.user_id, &session.session_id)
            .await?;
        self.end_web_sessions(&session.user_id).await?;
        let token = token.ok_or(AuthError::Unauthenticated)?;
        match self
            .api
            .call("GlobalSignOut", &json!({"AccessToken": token}))
            .await
        {
            Ok(_) => Ok(()),
            // Already signed out (or the token was revoked meanwhile).
            Err(e) if e.is("NotAuthorizedException") => Ok(()),
            Err(e) => Err(upstream("GlobalSignOut", e)),
        }
    }

    /// The signed org context for `X-Org-Context`, after checking the
    /// membership in derp's org tables; `None` clears it (the client drops
    /// the header: an empty value that expires now).
    pub(super) async fn set_active_org_impl(
        &self,
        session: &SessionInfo,
        org_id: Option<String>,
    ) -> AuthResult<TokenPair> {
        crate::auth::org_context::active_org_tokens(
            &self.db,
            &self.org_context,
            session,
            org_id,
            self.now(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refresh_wrapper_round_trips_and_refuses_junk() {
        let w = RefreshWrapper {
            u: "alice@example.com".into(),
            t: "eyJjdHkiOiJKV1QiLCJlbmMiOi".into(),
        };
        let s = w.encode();
        assert_eq!(RefreshWrapper::decode(&s).unwrap(), w);
        assert!(RefreshWrapper::decode("not base64 !").is_none());
        assert!(
            RefreshWrapper::decode(&URL_SAFE_NO_PAD.encode(b"{\"u\":\"\",\"t\":\"x\"}")).is_none()
        );
        assert!(RefreshWrapper::decode(&URL_SAFE_NO_PAD.encode(b"[1]")).is_none());
    }
}
