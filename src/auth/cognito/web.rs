//! The hosted pages' session with the Cognito backend.
//!
//! The page cookie names a session, and `web_session(id)` must read it back
//! without the browser sending a token; Cognito cannot hand out tokens for a
//! user later. So the sign-in's tokens (Cognito's access token and derp's
//! refresh wrapper) are kept server-side in `upstream_web_sessions`, sealed
//! with AES-256-GCM under a key derived from the page session id (a random
//! 256-bit value that only the encrypted cookie holds), and found by that
//! id's SHA-256: the database alone holds nothing usable. An access token
//! with less than a minute left is refreshed (REFRESH_TOKEN_AUTH) before
//! use and the new one sealed again, so group changes (the `admin` role)
//! reach the page session at the next refresh. A refused refresh ends the
//! page session. The org switched to on the pages is kept with the page
//! session and its membership read again at every request. A sign-out (GlobalSignOut, which ends every Cognito
//! session of the user) deletes every page session of the user.

use super::CognitoBackend;
use super::account::user_from;
use super::verify::Verified;
use crate::auth::seal::{seal, unseal};
use crate::auth::secrets::{hash_token, random_token};
use crate::auth::{AuthOutcome, CodeGrant, SessionInfo};
use crate::error::{AuthError, AuthResult};
use crate::storage::orgs;
use crate::storage::web_sessions::{self, WebSessionRow};
use serde::{Deserialize, Serialize};

const HKDF_INFO: &[u8] = b"derp cognito page session v1";
/// As long as the page cookie; the refresh token's own life (an app client
/// setting) ends a page session sooner.
const WEB_SESSION_TTL: i64 = 30 * 86_400;
/// An access token with less left than this is refreshed before use.
const REFRESH_MARGIN: i64 = 60;

#[derive(Serialize, Deserialize)]
struct PageTokens {
    access_token: String,
    /// derp's refresh wrapper, as the sign-in (or the last refresh) gave it.
    refresh_token: String,
}

impl CognitoBackend {
    pub(super) async fn start_web_session_impl(&self, outcome: &AuthOutcome) -> AuthResult<String> {
        let sid = random_token();
        let user_id = outcome.user.id.clone();
        let sealed = seal(
            &sid,
            HKDF_INFO,
            &user_id,
            &PageTokens {
                access_token: outcome.tokens.access_token.clone(),
                refresh_token: outcome.tokens.refresh_token.clone(),
            },
        )?;
        let now = self.now();
        let row = WebSessionRow {
            user_id,
            sealed,
            expires_at: now + WEB_SESSION_TTL,
            active_org_id: None,
        };
        let hash = hash_token(&sid);
        self.db
            .write(move |conn| -> AuthResult<()> {
                web_sessions::insert(conn, &hash, &row, now)?;
                Ok(())
            })
            .await?;
        Ok(sid)
    }

    async fn forget_web_session(&self, hash: String) -> AuthResult<()> {
        self.db
            .write(move |conn| -> AuthResult<()> {
                web_sessions::delete(conn, &hash)?;
                Ok(())
            })
            .await
    }

    /// The page session's tokens, the access token verified and fresh
    /// (refreshed when it has less than [`REFRESH_MARGIN`] left).
    async fn web_tokens(&self, sid: &str) -> AuthResult<(PageTokens, Verified, WebSessionRow)> {
        let hash = hash_token(sid);
        let now = self.now();
        let lookup = hash.clone();
        let row = self
            .db
            .read(move |conn| -> AuthResult<_> { Ok(web_sessions::get(conn, &lookup, now)?) })
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let tokens: PageTokens =
            unseal(sid, HKDF_INFO, &row.user_id, &row.sealed).ok_or(AuthError::Unauthenticated)?;
        if let Ok(v) = self.verifier.verify(&tokens.access_token).await
            && v.sub == row.user_id
            && v.exp - now > REFRESH_MARGIN
        {
            return Ok((tokens, v, row));
        }
        let pair = match self.refresh_impl(&tokens.refresh_token).await {
            Ok(pair) => pair,
            Err(AuthError::InvalidToken) => {
                // Cognito refused the refresh token: the session is over.
                self.forget_web_session(hash).await?;
                return Err(AuthError::Unauthenticated);
            }
            Err(e) => return Err(e),
        };
        let v = self.verifier.verify(&pair.access_token).await?;
        if v.sub != row.user_id {
            self.forget_web_session(hash).await?;
            return Err(AuthError::Unauthenticated);
        }
        let tokens = PageTokens {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
        };
        let sealed = seal(sid, HKDF_INFO, &row.user_id, &tokens)?;
        let row = WebSessionRow {
            sealed: sealed.clone(),
            ..row
        };
        let still_there = self
            .db
            .write(move |conn| -> AuthResult<bool> {
                Ok(web_sessions::update(conn, &hash, &sealed, now)?)
            })
            .await?;
        if !still_there {
            return Err(AuthError::Unauthenticated);
        }
        Ok((tokens, v, row))
    }

    /// The page session as `SessionInfo`, with the org switched to on the
    /// pages while the user is still a member (read at every request).
    pub(super) async fn web_session_impl(&self, sid: &str) -> AuthResult<SessionInfo> {
        let (_, v, row) = self.web_tokens(sid).await?;
        let mut info = v.session_info();
        if let Some(org_id) = row.active_org_id {
            let user_id = info.user_id.clone();
            let lookup = org_id.clone();
            let amr = info.amr.clone();
            let member = self
                .db
                .read(move |conn| -> AuthResult<_> {
                    if !orgs::mfa_satisfied(conn, &lookup, &amr)? {
                        return Ok(None);
                    }
                    Ok(orgs::member(conn, &lookup, &user_id)?)
                })
                .await?;
            if let Some(m) = member {
                info.org_id = Some(org_id);
                info.org_role = Some(self.org_context.roles().effective(m.role).to_string());
            }
        }
        Ok(info)
    }

    /// Checks the membership (as `POST /active-org` does) and keeps the org
    /// with the page session.
    pub(super) async fn set_web_session_org_impl(
        &self,
        session: &SessionInfo,
        sid: &str,
        org_id: Option<String>,
    ) -> AuthResult<()> {
        let user_id = session.user_id.clone();
        let amr = session.amr.clone();
        let hash = hash_token(sid);
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let org = match org_id {
                    Some(key) => {
                        let org =
                            orgs::find(conn, &key)?.ok_or(AuthError::NotFound("organization"))?;
                        orgs::member(conn, &org.id, &user_id)?
                            .ok_or(AuthError::NotFound("organization"))?;
                        if !orgs::mfa_satisfied(conn, &org.id, &amr)? {
                            return Err(AuthError::MfaRequired);
                        }
                        Some(org.id)
                    }
                    None => None,
                };
                if !web_sessions::set_org(conn, &hash, org.as_deref(), now)? {
                    return Err(AuthError::Unauthenticated);
                }
                Ok(())
            })
            .await
    }

    /// Ends every page session of `user_id` (a GlobalSignOut ends every
    /// Cognito session of the user anyway).
    pub(super) async fn end_web_sessions(&self, user_id: &str) -> AuthResult<()> {
        let user_id = user_id.to_string();
        self.db
            .write(move |conn| -> AuthResult<()> {
                web_sessions::delete_for_user(conn, &user_id)?;
                Ok(())
            })
            .await
    }

    /// A derp code carrying Cognito tokens: those of the sign-in that just
    /// happened, or those of a live page session (the app then shares that
    /// Cognito session: derp cannot start another one without the password).
    pub(super) async fn issue_code_impl(
        &self,
        grant: CodeGrant<'_>,
        redirect_uri: &str,
        code_challenge: Option<String>,
    ) -> AuthResult<String> {
        match grant {
            CodeGrant::SignIn(outcome) => {
                self.issue_code_for(outcome, None, redirect_uri, code_challenge)
                    .await
            }
            CodeGrant::WebSession {
                session,
                web_session_id,
            } => {
                let (tokens, v, _) = self.web_tokens(web_session_id).await?;
                if v.sub != session.user_id {
                    return Err(AuthError::Unauthenticated);
                }
                let outcome = AuthOutcome {
                    user: user_from(&v, None),
                    tokens: self.pair(tokens.access_token, tokens.refresh_token, &v),
                    session_id: v.session_id.clone(),
                    amr: Vec::new(),
                };
                self.issue_code_for(&outcome, None, redirect_uri, code_challenge)
                    .await
            }
        }
    }
}
