//! The redirect-back flow: authorization codes for apps, and the hosted
//! pages' own session lookup.

use super::NativeBackend;
use super::pipeline::Proof;
use crate::auth::secrets::{constant_time_eq, hash_token, random_token};
use crate::auth::{RequestMeta, SessionInfo, SignInStep};
use crate::domain::Purpose;
use crate::error::{AuthError, AuthResult};
use crate::storage::{orgs, sessions, tokens, users};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Authorization codes live 60 seconds.
const CODE_TTL: i64 = 60;

/// A PKCE S256 challenge is the base64url SHA-256 of a 43-128 char verifier.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// [`valid_challenge`] as the answer to a request that carries one: a 400
/// naming `code_challenge`.
pub fn check_challenge(challenge: Option<&str>) -> AuthResult<()> {
    match challenge {
        Some(c) if !valid_challenge(c) => Err(AuthError::field(
            "code_challenge",
            "must be an S256 challenge (43 base64url characters)",
        )),
        _ => Ok(()),
    }
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// PKCE at the exchange (RFC 7636 S256, and OAuth 2.1 section 4.1.3): a code
/// issued with a challenge needs the verifier that hashes to it; a code issued
/// without one must come with no verifier at all, since a client that sends
/// one believes the code is bound to it when it is not (a downgrade).
pub fn pkce_holds(challenge: Option<&str>, verifier: Option<&str>) -> bool {
    match (challenge, verifier) {
        (None, None) => true,
        (Some(challenge), Some(verifier)) => {
            constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
        }
        (Some(_), None) | (None, Some(_)) => false,
    }
}

impl NativeBackend {
    pub(super) async fn web_session_impl(&self, session_id: &str) -> AuthResult<SessionInfo> {
        let sid = session_id.to_string();
        let now = self.now();
        let roles = self.org_roles.clone();
        self.db
            .read(move |conn| -> AuthResult<SessionInfo> {
                let s = sessions::get(conn, &sid)?
                    .filter(|s| s.is_live(now))
                    .ok_or(AuthError::Unauthenticated)?;
                let user = users::by_id(conn, &s.user_id)?
                    .filter(|u| !u.user.disabled)
                    .ok_or(AuthError::Unauthenticated)?
                    .user;
                let org_role = match &s.active_org_id {
                    Some(org) if orgs::mfa_satisfied(conn, org, &s.amr)? => {
                        orgs::member(conn, org, &user.id)?
                            .map(|m| roles.effective(m.role).to_string())
                    }
                    _ => None,
                };
                Ok(SessionInfo {
                    user_id: user.id,
                    session_id: s.id,
                    role: user.role.as_str().to_string(),
                    expires_at: s.expires_at,
                    org_id: org_role.as_ref().and(s.active_org_id),
                    org_role,
                    email: Some(user.email),
                    amr: s.amr,
                })
            })
            .await
    }

    pub(super) async fn issue_code_impl(
        &self,
        user_id: &str,
        amr: Vec<String>,
        redirect_uri: &str,
        code_challenge: Option<String>,
    ) -> AuthResult<String> {
        check_challenge(code_challenge.as_deref())?;
        let user_id = user_id.to_string();
        let payload = serde_json::json!({"redirect_uri": redirect_uri, "code_challenge": code_challenge, "amr": amr});
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<String> {
                let user = users::by_id(conn, &user_id)?
                    .ok_or(AuthError::Unauthenticated)?
                    .user;
                let code = random_token();
                tokens::insert(
                    conn,
                    &hash_token(&code),
                    &tokens::OneTimeToken {
                        purpose: Purpose::AuthorizationCode,
                        email: user.email,
                        user_id: Some(user.id),
                        payload,
                        expires_at: now + CODE_TTL,
                    },
                    now,
                )?;
                Ok(code)
            })
            .await
    }

    pub(super) async fn exchange_code_impl(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<String>,
        meta: &RequestMeta,
    ) -> AuthResult<SignInStep> {
        let hash = hash_token(code);
        let redirect_uri = redirect_uri.to_string();
        let pipeline = self.sign_in_pipeline();
        let meta = meta.clone();
        let now = self.now();
        // The inner result is the answer; the transaction commits either way,
        // so a failed check still spends the code and a stolen code cannot be
        // tried against many verifiers.
        self.db
            .write(move |conn| -> AuthResult<AuthResult<SignInStep>> {
                let Some(t) = tokens::consume(conn, &hash, Purpose::AuthorizationCode, now)? else {
                    return Ok(Err(AuthError::InvalidToken));
                };
                if t.payload["redirect_uri"].as_str() != Some(redirect_uri.as_str()) {
                    return Ok(Err(AuthError::InvalidToken));
                }
                if !pkce_holds(
                    t.payload["code_challenge"].as_str(),
                    code_verifier.as_deref(),
                ) {
                    return Ok(Err(AuthError::InvalidToken));
                }
                let user = match t
                    .user_id
                    .as_deref()
                    .map(|id| users::by_id(conn, id))
                    .transpose()?
                    .flatten()
                {
                    Some(u) if !u.user.disabled => u.user,
                    _ => return Ok(Err(AuthError::InvalidToken)),
                };
                // The methods of the sign-in the code was issued on: a code
                // from before a second factor asks for it now.
                let amr: Vec<String> =
                    serde_json::from_value(t.payload["amr"].clone()).unwrap_or_default();
                // A failure here is the database's: roll the whole exchange back.
                pipeline
                    .complete(conn, &user, &Proof::AuthorizationCode { amr }, &meta, now)
                    .map(Ok)
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_an_independent_computation() {
        // Python: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=")
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wNMYr4p-G3Hk"),
            "zLXJbLIVedaczzR4ZbQ3zDf0tzU451UvE5mZC-AYydM"
        );
        assert!(valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeKt8zpW2CWqDHsw6ARQ"
        ));
        assert!(!valid_challenge("short"));
    }

    #[test]
    fn pkce_needs_the_verifier_asked_for_and_no_other() {
        let (v, c) = (
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wNMYr4p-G3Hk",
            "zLXJbLIVedaczzR4ZbQ3zDf0tzU451UvE5mZC-AYydM",
        );
        assert!(pkce_holds(Some(c), Some(v)));
        assert!(pkce_holds(None, None));
        assert!(!pkce_holds(Some(c), None), "a challenge needs its verifier");
        assert!(!pkce_holds(
            Some(c),
            Some("another-verifier-0123456789abcdefghijklmno")
        ));
        assert!(!pkce_holds(None, Some(v)), "a verifier nobody asked for");
        assert!(!pkce_holds(None, Some("")));
    }
}
