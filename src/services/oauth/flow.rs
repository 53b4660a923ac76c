//! The authorization URL and its `state`: starting a flow, checking the
//! browser's return against it, and the flows kept for apps that run the
//! browser leg themselves.

use super::{ExternalIdentity, FLOW_TTL, Flow, Kind, MAX_PENDING, OAuthService, Pending, Provider};
use crate::auth::secrets::random_token;
use crate::error::{AuthError, AuthResult};
use oauth2::{CsrfToken, PkceCodeChallenge, Scope};

impl OAuthService {
    /// Whether the provider sends the browser back to the app (its
    /// `redirect_uri` is not derp's): the app then signs in with the code
    /// at `POST /oauth/{provider}/sign-in`.
    fn ends_at_app(&self, p: &Provider) -> bool {
        !p.redirect_uri.starts_with(&format!("{}/", self.public_url))
    }

    /// Starts a flow: the provider URL and what the browser must carry back.
    ///
    /// When the browser leg ends at derp's callback, `state` in the URL is
    /// derp's own and the app's `state` and `code_challenge` are for derp's
    /// code, later. When it ends at the app (the original library's
    /// two-step flow), the code the app gets is the provider's, so the
    /// URL carries the app's `state` (or a new one, in the returned
    /// [`Flow`]), and the app's `code_challenge` when given (the app sends
    /// its verifier to sign-in); without one, derp keeps its own verifier
    /// bound to `(provider, state)` for [`Self::sign_in_with_code`].
    pub async fn start(
        &self,
        name: &str,
        redirect_to: Option<String>,
        app_state: Option<String>,
        app_code_challenge: Option<String>,
        login_hint: Option<String>,
    ) -> AuthResult<(String, Flow)> {
        let p = self.provider(name).await?;
        let client = Self::client(&p, &p.redirect_uri)?;
        let at_app = self.ends_at_app(&p);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = random_token();
        let state = match (at_app, &app_state) {
            (true, Some(s)) if !s.is_empty() => s.clone(),
            _ => random_token(),
        };
        let state_for_url = state.clone();
        let mut req = client.authorize_url(move || CsrfToken::new(state_for_url));
        if p.kind == Kind::Oidc {
            req = req.add_extra_param("nonce", nonce.clone());
        }
        let app_pkce = at_app && app_code_challenge.is_some();
        req = match (&app_code_challenge, app_pkce) {
            (Some(c), true) => req
                .add_extra_param("code_challenge", c.clone())
                .add_extra_param("code_challenge_method", "S256"),
            _ => req.set_pkce_challenge(challenge),
        };
        for scope in &p.scopes {
            req = req.add_scope(Scope::new(scope.clone()));
        }
        if let Some(hint) = &login_hint {
            req = req.add_extra_param("login_hint", hint.clone());
        }
        let (url, _) = req.url();
        if at_app && !app_pkce {
            self.keep_pending(
                &p.name,
                &state,
                Pending {
                    verifier: verifier.secret().clone(),
                    nonce: nonce.clone(),
                    expires_at: self.clock.unix() + FLOW_TTL,
                },
            )?;
        }
        let flow = Flow {
            provider: p.name.clone(),
            state,
            verifier: verifier.secret().clone(),
            nonce,
            expires_at: self.clock.unix() + FLOW_TTL,
            redirect_to,
            app_state,
            app_code_challenge,
        };
        Ok((url.to_string(), flow))
    }

    /// The browser is back: checks the flow, exchanges the code, verifies the
    /// id_token (with the nonce).
    pub async fn finish(
        &self,
        name: &str,
        code: &str,
        state: &str,
        flow: &Flow,
    ) -> AuthResult<ExternalIdentity> {
        flow.check(name, state, self.clock.unix())?;
        let p = self.provider(name).await?;
        self.exchange(
            &p,
            code,
            Some(flow.verifier.clone()),
            &p.redirect_uri,
            Some(&flow.nonce),
        )
        .await
    }

    fn keep_pending(&self, provider: &str, state: &str, flow: Pending) -> AuthResult<()> {
        let now = self.clock.unix();
        let mut pending = self.pending.lock().map_err(AuthError::internal)?;
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, f| f.expires_at >= now);
        }
        if pending.len() >= MAX_PENDING {
            return Err(AuthError::RateLimited { retry_after: 60 });
        }
        pending.insert((provider.to_string(), state.to_string()), flow);
        Ok(())
    }

    /// The flow derp started for `(provider, state)`, once.
    fn take_pending(&self, provider: &str, state: &str) -> AuthResult<Option<Pending>> {
        let now = self.clock.unix();
        let mut pending = self.pending.lock().map_err(AuthError::internal)?;
        Ok(pending
            .remove(&(provider.to_string(), state.to_string()))
            .filter(|f| f.expires_at >= now))
    }

    /// For apps that run the browser leg themselves (`POST /oauth/{p}/sign-in`):
    /// with the app's own `code_verifier`, or with the `state` of a flow
    /// that derp started (`/oauth/{p}/url`), whose verifier and nonce derp
    /// kept.
    pub async fn sign_in_with_code(
        &self,
        name: &str,
        code: &str,
        state: Option<&str>,
        code_verifier: Option<String>,
        redirect_uri: Option<String>,
    ) -> AuthResult<ExternalIdentity> {
        let p = self.provider(name).await?;
        let redirect = redirect_uri.unwrap_or_else(|| p.redirect_uri.clone());
        let kept = match state.filter(|s| !s.is_empty()) {
            Some(s) => self.take_pending(&p.name, s)?,
            None => None,
        };
        match (kept, code_verifier) {
            (Some(f), None) => {
                self.exchange(&p, code, Some(f.verifier), &redirect, Some(&f.nonce))
                    .await
            }
            (None, None) if state.is_some_and(|s| !s.is_empty()) => Err(AuthError::field(
                "state",
                "no sign-in was started with this state, or it expired (ten minutes) or was used",
            )),
            (_, verifier) => self.exchange(&p, code, verifier, &redirect, None).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::config::GoogleOAuthConfig;
    use crate::config::{NativeConfig, Secret};
    use std::collections::HashMap;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_authorization_url_carries_state_pkce_nonce_and_encoded_scopes() {
        let cfg = NativeConfig {
            google_oauth: Some(GoogleOAuthConfig {
                client_id: "client id&x".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let svc =
            OAuthService::new(&cfg, "https://auth.example.com", Arc::new(SystemClock)).unwrap();
        let (url, flow) = svc
            .start("google", None, None, None, Some("a b@x.io".into()))
            .await
            .unwrap();
        let u = url::Url::parse(&url).unwrap();
        assert_eq!(u.host_str(), Some("accounts.google.com"));
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "client id&x");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "openid email profile");
        assert_eq!(q["state"], flow.state);
        assert_eq!(q["nonce"], flow.nonce);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["login_hint"], "a b@x.io");
        assert_eq!(
            q["redirect_uri"],
            "https://auth.example.com/api/v1/auth/oauth/google/callback"
        );
        assert!(
            url.contains("client+id%26x") || url.contains("client%20id%26x"),
            "encoded: {url}"
        );
        assert!(
            !url.contains(&flow.verifier),
            "the verifier never leaves the server"
        );
        assert!(svc.start("gitlab", None, None, None, None).await.is_err());
    }

    #[tokio::test]
    async fn the_github_url_asks_for_the_email_scope_with_pkce_and_no_nonce() {
        let cfg = NativeConfig {
            github_oauth: Some(crate::config::GitHubOAuthConfig {
                client_id: "gh-client".into(),
                client_secret: Some(Secret::new("gh-secret")),
                ..Default::default()
            }),
            ..Default::default()
        };
        let svc =
            OAuthService::new(&cfg, "https://auth.example.com", Arc::new(SystemClock)).unwrap();
        assert_eq!(svc.providers(), [("github".into(), "GitHub".into())]);
        let (url, flow) = svc.start("github", None, None, None, None).await.unwrap();
        let u = url::Url::parse(&url).unwrap();
        assert_eq!(u.host_str(), Some("github.com"));
        assert_eq!(u.path(), "/login/oauth/authorize");
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "gh-client");
        assert_eq!(q["scope"], "user:email");
        assert_eq!(q["state"], flow.state);
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!q.contains_key("nonce"), "GitHub is no OpenID provider");
        assert_eq!(
            q["redirect_uri"],
            "https://auth.example.com/api/v1/auth/oauth/github/callback"
        );
    }
}
