//! The code exchange at the token endpoint and the identity behind it: the
//! provider's id_token verified against its JWKS (or GitHub's REST API).

use super::{ExternalIdentity, GITHUB_API_VERSION, Kind, OAuthService, Provider, upstream};
use crate::error::{AuthError, AuthResult};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use oauth2::{AuthorizationCode, PkceCodeVerifier, TokenResponse};
use std::time::{Duration, Instant};

impl OAuthService {
    pub(super) async fn exchange(
        &self,
        p: &Provider,
        code: &str,
        verifier: Option<String>,
        redirect_uri: &str,
        nonce: Option<&str>,
    ) -> AuthResult<ExternalIdentity> {
        let client = Self::client(p, redirect_uri)?;
        let mut req = client.exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v));
        }
        let token = req.request_async(&self.http).await.map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => {
                tracing::warn!(provider = %p.name, error = ?r.error(), "provider refused the code");
                AuthError::InvalidToken
            }
            // A refusal in a shape other than OAuth's (some providers answer a
            // reused code with a problem document): still a refusal.
            oauth2::RequestTokenError::Parse(e, body)
                if !String::from_utf8_lossy(&body).contains("access_token") =>
            {
                tracing::warn!(provider = %p.name, error = %e, "provider refused the code");
                AuthError::InvalidToken
            }
            other => upstream("token endpoint", other),
        })?;
        if let Kind::GitHub { api_url } = &p.kind {
            return self
                .github_identity(p, api_url, token.access_token().secret())
                .await;
        }
        let id_token = token
            .extra_fields()
            .id_token
            .clone()
            .ok_or_else(|| AuthError::Upstream("the provider sent no id_token".into()))?;
        let claims = self.verify_id_token(p, &id_token, nonce).await?;
        let subject = claims["sub"]
            .as_str()
            .ok_or(AuthError::InvalidToken)?
            .to_string();
        let mut email = claims["email"].as_str().map(str::to_lowercase);
        let mut verified = email_verified(&claims["email_verified"]);
        if email.is_none()
            && let Some(userinfo) = &p.userinfo_url
        {
            let info: serde_json::Value = self
                .http
                .get(userinfo)
                .bearer_auth(token.access_token().secret())
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| upstream("userinfo", e))?
                .bytes()
                .await
                .map_err(|e| upstream("userinfo", e))
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| upstream("userinfo", e)))?;
            if info["sub"].as_str() == Some(subject.as_str()) {
                email = info["email"].as_str().map(str::to_lowercase);
                verified = email_verified(&info["email_verified"]);
            }
        }
        Ok(ExternalIdentity {
            provider: p.name.clone(),
            subject,
            email,
            email_verified: verified,
        })
    }

    /// GitHub's user behind `access_token`: `/user` for the numeric id,
    /// `/user/emails` for the primary address and whether it is verified
    /// (the public `email` of `/user` says nothing of that, so it is not
    /// used; nor is any address but the primary one).
    async fn github_identity(
        &self,
        p: &Provider,
        api_url: &str,
        access_token: &str,
    ) -> AuthResult<ExternalIdentity> {
        let user = self
            .github_get(&format!("{api_url}/user"), access_token)
            .await?;
        let subject = match &user["id"] {
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(AuthError::Upstream("GitHub's /user has no id".into())),
        };
        let emails = self
            .github_get(&format!("{api_url}/user/emails"), access_token)
            .await?;
        let primary = emails
            .as_array()
            .ok_or_else(|| AuthError::Upstream("GitHub's /user/emails is not a list".into()))?
            .iter()
            .find(|e| e["primary"].as_bool() == Some(true));
        Ok(ExternalIdentity {
            provider: p.name.clone(),
            subject,
            email: primary.and_then(|e| e["email"].as_str().map(str::to_lowercase)),
            email_verified: primary.is_some_and(|e| e["verified"].as_bool() == Some(true)),
        })
    }

    async fn github_get(&self, url: &str, access_token: &str) -> AuthResult<serde_json::Value> {
        let res = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", GITHUB_API_VERSION)
            // GitHub refuses API requests without a User-Agent.
            .header("user-agent", concat!("derp/", env!("CARGO_PKG_VERSION")))
            .send()
            .await
            .map_err(|e| upstream("GitHub API", e))?;
        if matches!(res.status().as_u16(), 401 | 403) {
            tracing::warn!(status = %res.status(), url, "GitHub refused the access token");
            return Err(AuthError::InvalidToken);
        }
        res.error_for_status()
            .map_err(|e| upstream("GitHub API", e))?
            .bytes()
            .await
            .map_err(|e| upstream("GitHub API", e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| upstream("GitHub API", e)))
    }

    async fn verify_id_token(
        &self,
        p: &Provider,
        token: &str,
        nonce: Option<&str>,
    ) -> AuthResult<serde_json::Value> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        let kid = header.kid.clone().unwrap_or_default();
        let set = self.jwks(p, &kid).await?;
        let jwk = match set.find(&kid) {
            Some(k) => k.clone(),
            None if kid.is_empty() && set.keys.len() == 1 => set.keys[0].clone(),
            None => return Err(AuthError::InvalidToken),
        };
        let alg = match header.alg {
            a @ (jsonwebtoken::Algorithm::RS256
            | jsonwebtoken::Algorithm::ES256
            | jsonwebtoken::Algorithm::EdDSA) => a,
            _ => return Err(AuthError::InvalidToken),
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| AuthError::InvalidToken)?;
        let mut v = Validation::new(alg);
        v.set_issuer(&[p.issuer.as_str(), p.issuer.trim_end_matches('/')]);
        v.set_audience(&[p.client_id.as_str()]);
        v.validate_exp = false;
        v.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let claims: serde_json::Value = jsonwebtoken::decode(token, &key, &v)
            .map_err(|_| AuthError::InvalidToken)?
            .claims;
        let exp = claims["exp"].as_i64().unwrap_or(0);
        if exp + 60 < self.clock.unix() {
            return Err(AuthError::InvalidToken);
        }
        if let Some(expected) = nonce
            && claims["nonce"].as_str() != Some(expected)
        {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// The provider's keys; refetched when `kid` is unknown, at most once a minute.
    async fn jwks(&self, p: &Provider, kid: &str) -> AuthResult<JwkSet> {
        let cached = self
            .keys
            .lock()
            .map_err(AuthError::internal)?
            .get(&p.jwks_url)
            .cloned();
        if let Some((at, set)) = &cached
            && (set.find(kid).is_some() || at.elapsed() < Duration::from_secs(60))
        {
            return Ok(set.clone());
        }
        let set: JwkSet = self
            .http
            .get(&p.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| upstream("jwks", e))?
            .bytes()
            .await
            .map_err(|e| upstream("jwks", e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| upstream("jwks", e)))?;
        self.keys
            .lock()
            .map_err(AuthError::internal)?
            .insert(p.jwks_url.clone(), (Instant::now(), set.clone()));
        Ok(set)
    }
}

/// Google sends `email_verified` as a boolean, some providers as a string.
fn email_verified(v: &serde_json::Value) -> bool {
    v.as_bool().unwrap_or_else(|| v.as_str() == Some("true"))
}
