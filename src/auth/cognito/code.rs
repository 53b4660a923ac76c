//! derp's authorization codes for the Cognito backend: the browser comes
//! back from the hosted UI, and the app's backend exchanges a derp code at
//! `POST /api/v1/auth/token`, as after a native sign-in.
//!
//! derp cannot mint Cognito tokens for a user id later, so the code carries
//! the tokens of the sign-in that just happened. They are stored sealed:
//! AES-256-GCM under a key derived (HKDF-SHA256) from the code itself, and
//! the row is found by the code's SHA-256 like every one-time token. The
//! database alone therefore holds nothing usable, and the code is single
//! use (one atomic UPDATE), lives 60 seconds, and is bound to the redirect
//! URI and the app's PKCE challenge (a verifier for a code issued without a
//! challenge is refused). A failed exchange spends it too.

use super::CognitoBackend;
use crate::auth::native::{check_challenge, pkce_holds};
use crate::auth::secrets::{hash_token, random_token};
use crate::auth::{AuthOutcome, RequestMeta};
use crate::domain::Purpose;
use crate::error::{AuthError, AuthResult};
use crate::storage::tokens;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Authorization codes live 60 seconds.
const CODE_TTL: i64 = 60;
const HKDF_INFO: &[u8] = b"derp cognito authorization code v1";

/// What a code unseals to.
#[derive(Serialize, Deserialize)]
struct Sealed {
    access_token: String,
    /// derp's refresh token (the wrapper), as the sign-in returned it.
    refresh_token: String,
    /// The verified id_token's claims, to describe the user again.
    id_claims: Option<Value>,
}

fn seal(code: &str, aad: &str, sealed: &Sealed) -> AuthResult<String> {
    crate::auth::seal::seal(code, HKDF_INFO, aad, sealed)
}

fn unseal(code: &str, aad: &str, text: &str) -> Option<Sealed> {
    crate::auth::seal::unseal(code, HKDF_INFO, aad, text)
}

impl CognitoBackend {
    /// A derp authorization code for a hosted-UI sign-in that just happened.
    pub async fn issue_code_for(
        &self,
        outcome: &AuthOutcome,
        id_claims: Option<Value>,
        redirect_uri: &str,
        code_challenge: Option<String>,
    ) -> AuthResult<String> {
        check_challenge(code_challenge.as_deref())?;
        let code = random_token();
        let sealed = seal(
            &code,
            redirect_uri,
            &Sealed {
                access_token: outcome.tokens.access_token.clone(),
                refresh_token: outcome.tokens.refresh_token.clone(),
                id_claims,
            },
        )?;
        let row = tokens::OneTimeToken {
            purpose: Purpose::CognitoAuthorizationCode,
            email: outcome.user.email.clone(),
            user_id: Some(outcome.user.id.clone()),
            payload: json!({
                "redirect_uri": redirect_uri,
                "code_challenge": code_challenge,
                "sealed": sealed,
            }),
            expires_at: self.now() + CODE_TTL,
        };
        let hash = hash_token(&code);
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                tokens::insert(conn, &hash, &row, now)?;
                Ok(())
            })
            .await?;
        Ok(code)
    }

    /// `POST /token` with a code from [`Self::issue_code_for`].
    pub(super) async fn exchange_code_impl(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<String>,
        _meta: &RequestMeta,
    ) -> AuthResult<AuthOutcome> {
        let hash = hash_token(code);
        let now = self.now();
        let row = self
            .db
            .write(move |conn| -> AuthResult<_> {
                Ok(tokens::consume(
                    conn,
                    &hash,
                    Purpose::CognitoAuthorizationCode,
                    now,
                )?)
            })
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if row.payload["redirect_uri"].as_str() != Some(redirect_uri) {
            return Err(AuthError::InvalidToken);
        }
        if !pkce_holds(
            row.payload["code_challenge"].as_str(),
            code_verifier.as_deref(),
        ) {
            return Err(AuthError::InvalidToken);
        }
        let sealed = row.payload["sealed"]
            .as_str()
            .and_then(|s| unseal(code, redirect_uri, s))
            .ok_or(AuthError::InvalidToken)?;
        // Still good (not expired, not signed out since)?
        let verified = self
            .verifier
            .verify(&sealed.access_token)
            .await
            .map_err(|_| AuthError::InvalidToken)?;
        let user = self
            .hosted_user(&sealed.access_token, &verified, sealed.id_claims.as_ref())
            .await;
        let tokens = self.pair(sealed.access_token, sealed.refresh_token, &verified);
        Ok(AuthOutcome {
            user,
            tokens,
            session_id: verified.session_id,
            amr: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_tokens_open_only_with_their_code_and_redirect_uri() {
        let s = Sealed {
            access_token: "a".into(),
            refresh_token: "r".into(),
            id_claims: Some(json!({"email": "a@example.com"})),
        };
        let text = seal("code-1", "https://app.example.com/cb", &s).unwrap();
        assert!(!text.contains("a@example.com"));
        let back = unseal("code-1", "https://app.example.com/cb", &text).unwrap();
        assert_eq!(
            (back.access_token.as_str(), back.refresh_token.as_str()),
            ("a", "r")
        );
        assert!(unseal("code-2", "https://app.example.com/cb", &text).is_none());
        assert!(unseal("code-1", "https://evil.example.com/cb", &text).is_none());
        assert!(unseal("code-1", "https://app.example.com/cb", "AAAA").is_none());
    }
}
