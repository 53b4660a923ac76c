//! The OpenID Connect provider's back channel: the token endpoint, userinfo,
//! revocation (RFC 7009) and introspection (RFC 7662). Errors are OAuth's
//! own bodies (`{"error": "invalid_grant", "error_description": …}`, RFC
//! 6749 5.2), not derp's error shape.

use crate::auth::RequestMeta;
use crate::error::AuthError;
use crate::http::extract::{ClientMeta, bearer_token};
use crate::services::oidc::{Client, ClientCredentials, OidcProvider};
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/oauth2/token").post(token))
        .service(
            web::resource("/oauth2/userinfo")
                .get(userinfo_get)
                .post(userinfo_post),
        )
        .service(web::resource("/oauth2/revoke").post(revoke))
        .service(web::resource("/oauth2/introspect").post(introspect));
}

/// An OAuth error answer (RFC 6749 5.2), never cached.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"derp\""));
    }
    res.json(json!({"error": error, "error_description": description}))
}

fn bad_request(error: &str, description: &str) -> HttpResponse {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

fn server_error(e: AuthError) -> HttpResponse {
    tracing::error!(error = ?e, "oauth2 endpoint failed");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the server could not answer",
    )
}

fn provider(state: &AppState) -> Option<Arc<OidcProvider>> {
    state.oidc.clone()
}

fn not_configured() -> HttpResponse {
    oauth_error(
        StatusCode::NOT_FOUND,
        "invalid_request",
        "this server is not configured as an OpenID Connect provider ([oidc_provider])",
    )
}

/// The form body of a back-channel request: a repeated parameter is
/// refused (RFC 6749 3.2).
fn form(body: &[u8]) -> Result<Vec<(String, String)>, Box<HttpResponse>> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(other, _)| other == k) {
            return Err(Box::new(bad_request(
                "invalid_request",
                &format!("parameter `{k}` is repeated"),
            )));
        }
    }
    Ok(pairs)
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `client_secret_basic` (RFC 6749 2.3.1: both parts form-urlencoded) or
/// `client_secret_post`, or a public client naming itself; never both
/// ways at once.
fn credentials(
    req: &HttpRequest,
    pairs: &[(String, String)],
) -> Result<ClientCredentials, Box<HttpResponse>> {
    let body_id = param(pairs, "client_id").map(str::to_string);
    let body_secret = param(pairs, "client_secret").map(str::to_string);
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim().to_string());
    let Some(encoded) = basic else {
        return Ok(ClientCredentials {
            client_id: body_id,
            secret: body_secret,
            basic: false,
        });
    };
    let invalid = || {
        Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the Basic credentials could not be read",
        ))
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = text.split_once(':').ok_or_else(invalid)?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if body_secret.is_some() {
        return Err(Box::new(bad_request(
            "invalid_request",
            "the client authenticated twice (Basic and client_secret)",
        )));
    }
    if body_id.as_deref().is_some_and(|b| b != id) {
        return Err(Box::new(bad_request(
            "invalid_request",
            "client_id differs from the Basic credentials",
        )));
    }
    Ok(ClientCredentials {
        client_id: Some(id),
        secret: Some(secret),
        basic: true,
    })
}

/// The authenticated client, or the `invalid_client` answer.
/// The start of every client endpoint (token, revocation, introspection):
/// the provider, the form body and the authenticated client, or the answer
/// that ends the request.
async fn client_request(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Arc<OidcProvider>, Vec<(String, String)>, Client), Box<HttpResponse>> {
    let oidc = provider(state).ok_or_else(|| Box::new(not_configured()))?;
    let pairs = form(body)?;
    let client = client(&oidc, req, &pairs).await?;
    Ok((oidc, pairs, client))
}

async fn client(
    oidc: &OidcProvider,
    req: &HttpRequest,
    pairs: &[(String, String)],
) -> Result<Client, Box<HttpResponse>> {
    let creds = credentials(req, pairs)?;
    match oidc.authenticate(&creds).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        ))),
        Err(e) => Err(Box::new(server_error(e))),
    }
}

fn no_store(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "oidc",
    description = "OAuth 2.0 token endpoint (form body, `application/x-www-form-urlencoded`): \
        `grant_type=authorization_code` (`code`, `redirect_uri`, `code_verifier`) or \
        `grant_type=refresh_token` (`refresh_token`). Client authentication: \
        `client_secret_basic`, `client_secret_post`, or `client_id` alone for a public client. \
        Errors are RFC 6749 5.2 bodies.",
    responses(
        (status = 200, description = "`access_token`, `token_type`, `expires_in`, `scope`; `refresh_token` with `offline_access`; `id_token` with `openid`", body = Object),
        (status = 400, description = "`{error, error_description}`: `invalid_request`, `invalid_grant`, `unsupported_grant_type`", body = Object),
        (status = 401, description = "`invalid_client`", body = Object),
    )
)]
/// `POST /oauth2/token`: `authorization_code` and `refresh_token`.
async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    body: web::Bytes,
) -> HttpResponse {
    let (oidc, pairs, client) = match client_request(&state, &req, &body).await {
        Ok(parts) => parts,
        Err(res) => return *res,
    };
    match param(&pairs, "grant_type") {
        Some("authorization_code") => code_grant(&oidc, &client, &pairs, &meta).await,
        Some("refresh_token") => refresh_grant(&oidc, &client, &pairs, &meta).await,
        Some(other) => bad_request(
            "unsupported_grant_type",
            &format!("grant_type `{other}` is not supported (authorization_code, refresh_token)"),
        ),
        None => bad_request("invalid_request", "grant_type is missing"),
    }
}

async fn code_grant(
    oidc: &OidcProvider,
    client: &Client,
    pairs: &[(String, String)],
    meta: &RequestMeta,
) -> HttpResponse {
    let Some(code) = param(pairs, "code") else {
        return bad_request("invalid_request", "code is missing");
    };
    let answer = oidc
        .native
        .provider_exchange_code(
            code,
            &client.id,
            param(pairs, "redirect_uri"),
            param(pairs, "code_verifier").map(str::to_string),
            client.id_token_alg,
            meta,
        )
        .await;
    match answer {
        Ok(Ok(t)) => {
            let mut body = json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "scope": t.scope,
            });
            if let Some(r) = t.refresh_token {
                body["refresh_token"] = json!(r);
            }
            if let Some(id) = t.id_token {
                body["id_token"] = json!(id);
            }
            no_store(body)
        }
        Ok(Err(crate::auth::native::provider::GrantRefusal::InvalidGrant(why))) => {
            bad_request("invalid_grant", why)
        }
        Err(e) => server_error(e),
    }
}

async fn refresh_grant(
    oidc: &OidcProvider,
    client: &Client,
    pairs: &[(String, String)],
    meta: &RequestMeta,
) -> HttpResponse {
    let Some(refresh) = param(pairs, "refresh_token") else {
        return bad_request("invalid_request", "refresh_token is missing");
    };
    match oidc
        .native
        .provider_refresh(refresh, &client.id, meta)
        .await
    {
        Ok(Some((pair, scope))) => no_store(json!({
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
            "refresh_token": pair.refresh_token,
            "scope": scope,
        })),
        Ok(None) => bad_request(
            "invalid_grant",
            "the refresh token is unknown, expired, used, revoked or another client's",
        ),
        Err(e) => server_error(e),
    }
}

#[utoipa::path(
    get,
    path = "/oauth2/userinfo",
    tag = "oidc",
    responses(
        (status = 200, description = "The claims the client's scopes release", body = Object),
        (status = 401, description = "`invalid_token`", body = Object),
    ),
    security(("bearer" = []))
)]
async fn userinfo_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    userinfo(req, state).await
}

#[utoipa::path(
    post,
    path = "/oauth2/userinfo",
    tag = "oidc",
    responses(
        (status = 200, description = "The claims the client's scopes release", body = Object),
        (status = 401, description = "`invalid_token`", body = Object),
    ),
    security(("bearer" = []))
)]
async fn userinfo_post(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    userinfo(req, state).await
}

/// `GET/POST /oauth2/userinfo`: the claims the client's scopes release
/// (OpenID Connect Core 5.3), for a bearer access token issued to a client.
async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(oidc) = provider(&state) else {
        return not_configured();
    };
    let Some(token) = bearer_token(&req) else {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"derp\""))
            .json(json!({"error": "invalid_request", "error_description": "Authorization: Bearer <access token> is missing"}));
    };
    match oidc.native.provider_userinfo(&token).await {
        Ok(claims) => no_store(claims),
        Err(AuthError::Unauthenticated | AuthError::InvalidToken) => HttpResponse::Unauthorized()
            .insert_header((
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"derp\", error=\"invalid_token\"",
            ))
            .json(json!({"error": "invalid_token", "error_description": "the access token is invalid, expired or revoked"})),
        Err(e) => server_error(e),
    }
}

#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "oidc",
    description = "RFC 7009 (form body: `token`; client authentication as at the token endpoint).",
    responses(
        (status = 200, description = "Revoked, or not a live token of this client (the same answer)", body = String, content_type = "text/plain"),
        (status = 401, description = "`invalid_client`", body = Object),
    )
)]
/// `POST /oauth2/revoke` (RFC 7009): 200 whatever the token was.
async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    ClientMeta(meta): ClientMeta,
    body: web::Bytes,
) -> HttpResponse {
    let (oidc, pairs, client) = match client_request(&state, &req, &body).await {
        Ok(parts) => parts,
        Err(res) => return *res,
    };
    let Some(token) = param(&pairs, "token") else {
        return bad_request("invalid_request", "token is missing");
    };
    match oidc.native.provider_revoke(token, &client.id, &meta).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => server_error(e),
    }
}

#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "oidc",
    description = "RFC 7662 (form body: `token`; client authentication as at the token endpoint).",
    responses(
        (status = 200, description = "`{active, …}`", body = Object),
        (status = 401, description = "`invalid_client`", body = Object),
    )
)]
/// `POST /oauth2/introspect` (RFC 7662), for an authenticated client about
/// its own tokens.
async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let (oidc, pairs, client) = match client_request(&state, &req, &body).await {
        Ok(parts) => parts,
        Err(res) => return *res,
    };
    let Some(token) = param(&pairs, "token") else {
        return bad_request("invalid_request", "token is missing");
    };
    match oidc.native.provider_introspect(token, &client.id).await {
        Ok(i) => no_store(i.claims),
        Err(e) => server_error(e),
    }
}
