//! Authorization codes: issued after sign-in (and consent), exchanged at
//! the token endpoint through the sign-in pipeline.

use super::{CODE_TTL, ClientTokens, CodeGrant, GrantRefusal, at_hash, has, user_claims};
use crate::auth::native::NativeBackend;
use crate::auth::native::pipeline::Proof;
use crate::auth::native::record;
use crate::auth::secrets::{hash_token, random_token};
use crate::auth::{RequestMeta, SignInStep};
use crate::config::JwtAlgorithm;
use crate::error::{AuthError, AuthResult};
use crate::storage::oauth_provider as store;
use crate::storage::{sessions, users};
use serde_json::{Value, json};

impl NativeBackend {
    /// When the user of login session `sid` signed in, if it is live.
    pub async fn provider_auth_time(&self, sid: &str) -> AuthResult<i64> {
        let sid = sid.to_string();
        let now = self.now();
        self.db
            .read(move |conn| -> AuthResult<i64> {
                sessions::get(conn, &sid)?
                    .filter(|s| s.is_live(now))
                    .map(|s| s.created_at)
                    .ok_or(AuthError::Unauthenticated)
            })
            .await
    }

    /// Stores a code for `grant` and returns it (for the redirect only).
    pub async fn provider_issue_code(&self, grant: CodeGrant) -> AuthResult<String> {
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<String> {
                let code = random_token();
                let payload = serde_json::to_value(&grant).map_err(AuthError::internal)?;
                store::insert_code(
                    conn,
                    &hash_token(&code),
                    &grant.client_id,
                    &grant.user_id,
                    &payload,
                    now,
                    now + CODE_TTL,
                )?;
                Ok(code)
            })
            .await
    }

    /// The `authorization_code` grant for an authenticated `client_id`.
    /// `id_token_alg` signs the id_token.
    pub async fn provider_exchange_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<String>,
        id_token_alg: JwtAlgorithm,
        meta: &RequestMeta,
    ) -> AuthResult<Result<ClientTokens, GrantRefusal>> {
        let hash = hash_token(code);
        let client_id = client_id.to_string();
        let redirect_uri = redirect_uri.map(str::to_string);
        let pipeline = self.sign_in_pipeline();
        let minter = self.minter();
        let keys = self.keys.clone();
        let meta = meta.clone();
        let now = self.now();
        // The inner result is the answer; the transaction commits either way,
        // so a failed check still spends the code and a stolen code cannot be
        // tried against many verifiers, and a reuse's revocation sticks.
        self.db
            .write(move |conn| -> AuthResult<Result<ClientTokens, GrantRefusal>> {
                use GrantRefusal::InvalidGrant;
                let Some(row) = store::code(conn, &hash)? else {
                    return Ok(Err(InvalidGrant("unknown authorization code")));
                };
                if row.client_id != client_id {
                    return Ok(Err(InvalidGrant("the code was issued to another client")));
                }
                if !store::use_code(conn, &hash, now)? {
                    // A second use: whoever holds the code is not alone.
                    if let Some(sid) = &row.session_id {
                        sessions::revoke(conn, sid, now, "authorization_code_reuse")?;
                    }
                    record(
                        conn,
                        now,
                        &meta,
                        "oauth.code.reused",
                        Some(&row.user_id),
                        json!({"client_id": client_id, "session_id": row.session_id}),
                    )?;
                    tracing::warn!(client_id = %client_id, "authorization code reused: its tokens revoked");
                    return Ok(Err(InvalidGrant("the authorization code was already used")));
                }
                if now >= row.expires_at {
                    return Ok(Err(InvalidGrant("the authorization code expired")));
                }
                let grant: CodeGrant = match serde_json::from_value(row.payload.clone()) {
                    Ok(g) => g,
                    Err(_) => return Ok(Err(InvalidGrant("unknown authorization code"))),
                };
                if redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
                    return Ok(Err(InvalidGrant(
                        "redirect_uri differs from the authorization request's",
                    )));
                }
                if !crate::auth::native::pkce_holds(grant.code_challenge.as_deref(), code_verifier.as_deref()) {
                    return Ok(Err(InvalidGrant(
                        "code_verifier does not match the code_challenge",
                    )));
                }
                let user = match users::by_id(conn, &grant.user_id)? {
                    Some(u) if !u.user.disabled => u.user,
                    _ => return Ok(Err(InvalidGrant("the user is not available"))),
                };
                let proof = Proof::AuthorizationCode {
                    amr: grant.amr.clone(),
                };
                let outcome = match pipeline.complete(conn, &user, &proof, &meta, now) {
                    Ok(SignInStep::Session(o)) => o,
                    Ok(SignInStep::MfaRequired(_) | SignInStep::MfaEnrollmentRequired { .. }) => {
                        return Ok(Err(InvalidGrant("the sign-in lacks its second factor")));
                    }
                    Err(AuthError::AccountDisabled | AuthError::EmailNotConfirmed) => {
                        return Ok(Err(InvalidGrant("the user may not sign in")));
                    }
                    Err(e) => return Err(e),
                };
                let scope = grant.scopes.join(" ");
                sessions::set_client(conn, &outcome.session_id, &client_id, &scope)?;
                store::set_code_session(conn, &hash, &outcome.session_id)?;
                let session = sessions::get(conn, &outcome.session_id)?
                    .ok_or_else(|| AuthError::internal("session just minted is gone"))?;
                let pair = minter.with_refresh(
                    &user,
                    &session,
                    outcome.tokens.refresh_token.clone(),
                    None,
                    now,
                )?;
                let id_token = if has(&grant.scopes, "openid") {
                    let mut claims = user_claims(conn, &user, &grant.scopes, None, &minter.org_roles)?;
                    claims.insert("iss".into(), json!(keys.issuer()));
                    claims.insert("aud".into(), json!(client_id));
                    claims.insert("azp".into(), json!(client_id));
                    claims.insert("iat".into(), json!(now));
                    claims.insert("exp".into(), json!(now + pair.expires_in));
                    claims.insert("auth_time".into(), json!(grant.auth_time));
                    claims.insert("amr".into(), json!(grant.amr));
                    claims.insert("sid".into(), json!(grant.sid));
                    claims.insert("at_hash".into(), json!(at_hash(&pair.access_token)));
                    if let Some(n) = &grant.nonce {
                        claims.insert("nonce".into(), json!(n));
                    }
                    Some(keys.sign_id_token(id_token_alg, &Value::Object(claims))?)
                } else {
                    None
                };
                record(
                    conn,
                    now,
                    &meta,
                    "oauth.token.issued",
                    Some(&user.id),
                    json!({"client_id": client_id, "grant_type": "authorization_code", "scope": scope, "session_id": session.id}),
                )?;
                Ok(Ok(ClientTokens {
                    access_token: pair.access_token,
                    expires_in: pair.expires_in,
                    refresh_token: has(&grant.scopes, "offline_access").then_some(pair.refresh_token),
                    id_token,
                    scope,
                }))
            })
            .await
    }
}
