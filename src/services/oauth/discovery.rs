//! Which provider a name means: configured endpoints, or found by OpenID
//! discovery (cached for an hour), and the oauth2 client for it.

use super::{Kind, OAuthService, OidcClient, Provider, Source, upstream};
use crate::error::{AuthError, AuthResult};
use oauth2::{AuthUrl, Client, ClientId, ClientSecret, RedirectUrl, TokenUrl};
use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
}

impl OAuthService {
    pub(super) async fn provider(&self, name: &str) -> AuthResult<Provider> {
        let source = self
            .sources
            .get(name)
            .ok_or(AuthError::NotFound("provider"))?;
        let (name, display_name, issuer, client_id, client_secret, scopes, redirect_uri) =
            match source {
                Source::Static(p) => return Ok(p.clone()),
                Source::Discovery {
                    name,
                    display_name,
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                    redirect_uri,
                } => (
                    name,
                    display_name,
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                    redirect_uri,
                ),
            };
        if let Some((at, p)) = self
            .discovered
            .lock()
            .map_err(AuthError::internal)?
            .get(name)
            && at.elapsed() < Duration::from_secs(3600)
        {
            return Ok(p.clone());
        }
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| upstream("discovery", e))?
            .bytes()
            .await
            .map_err(|e| upstream("discovery document", e))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| upstream("discovery document", e))
            })?;
        if doc.issuer.trim_end_matches('/') != issuer {
            return Err(AuthError::Upstream(format!(
                "discovery names issuer {} instead of {issuer}",
                doc.issuer
            )));
        }
        let p = Provider {
            name: name.clone(),
            display_name: display_name.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            authorization_url: doc.authorization_endpoint,
            token_url: doc.token_endpoint,
            userinfo_url: doc.userinfo_endpoint,
            jwks_url: doc.jwks_uri,
            issuer: doc.issuer,
            scopes: scopes.clone(),
            redirect_uri: redirect_uri.clone(),
            kind: Kind::Oidc,
        };
        self.discovered
            .lock()
            .map_err(AuthError::internal)?
            .insert(name.clone(), (Instant::now(), p.clone()));
        Ok(p)
    }

    pub(super) fn client(p: &Provider, redirect_uri: &str) -> AuthResult<OidcClient> {
        let bad = |what: &str| AuthError::internal(format!("provider {}: bad {what} URL", p.name));
        let mut client = Client::new(ClientId::new(p.client_id.clone()))
            .set_auth_uri(
                AuthUrl::new(p.authorization_url.clone()).map_err(|_| bad("authorization"))?,
            )
            .set_token_uri(TokenUrl::new(p.token_url.clone()).map_err(|_| bad("token"))?)
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_string()).map_err(|_| bad("redirect"))?,
            );
        if let Some(secret) = &p.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
        }
        if matches!(p.kind, Kind::GitHub { .. }) {
            // GitHub documents client_id and client_secret as parameters
            // of the token request, not HTTP Basic.
            client = client.set_auth_type(oauth2::AuthType::RequestBody);
        }
        Ok(client)
    }
}
