//! Extractors: a JSON body that names the faulty field, the caller's IP and
//! user agent, and the signed-in session behind a bearer token.

use super::error::ApiError;
use crate::auth::{RequestMeta, SessionInfo};
use crate::domain::OrgRole;
use crate::error::AuthError;
use crate::services::orgs::OrgView;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::net::IpAddr;

/// The largest body accepted anywhere.
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON body; a bad one is a 400 that names the field at fault. The body
/// must be declared `application/json` (parameters such as `charset` and
/// `application/*+json` types are fine): anything else is a 415, so that a
/// web page cannot make a browser send one without a CORS preflight
/// (`text/plain`, forms and multipart are "simple" requests).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Whether a `Content-Type` value names JSON: `application/json` or
/// `application/<anything>+json`, any case, with or without parameters.
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application")
        && (subtype == "json" || (subtype.len() > 5 && subtype.ends_with("+json")))
}

/// `Err(415)` unless the request declares a JSON body; a request with no
/// `Content-Type` and no body passes (the body check then names it).
fn check_json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    use actix_web::http::header;
    let headers = req.headers();
    let declared = match headers.get(header::CONTENT_TYPE) {
        Some(v) => v.to_str().is_ok_and(is_json_content_type),
        None => {
            headers
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0")
                && !headers.contains_key(header::TRANSFER_ENCODING)
        }
    };
    if declared {
        return Ok(());
    }
    Err(ApiError::http(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "content-type: must be application/json (or application/*+json)",
    ))
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if let Err(e) = check_json_content_type(req) {
            return Box::pin(std::future::ready(Err(e)));
        }
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::http(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the body is larger than 64 KiB",
                    )
                } else {
                    AuthError::field("body", "could not be read").into()
                }
            })?;
            // Serde would take `[…]` for a struct too: ask for an object.
            if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                let problem = if bytes.iter().all(u8::is_ascii_whitespace) {
                    "a JSON object is required"
                } else {
                    "must be a JSON object"
                };
                return Err(AuthError::field("body", problem).into());
            }
            let de = &mut serde_json::Deserializer::from_slice(&bytes);
            serde_path_to_error::deserialize(de)
                .map(ApiJson)
                .map_err(|e| json_error(&e).into())
        })
    }
}

fn json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> AuthError {
    let inner = e.inner();
    if inner.is_syntax() || inner.is_eof() {
        return AuthError::field("body", "is not valid JSON");
    }
    let text = inner.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text).to_string();
    let path = e.path().to_string();
    let quoted = text.split('`').nth(1).map(str::to_string);
    let join = |name: &str| {
        if path == "." {
            name.to_string()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            path.clone()
        } else {
            format!("{path}.{name}")
        }
    };
    if text.starts_with("missing field")
        && let Some(name) = quoted
    {
        return AuthError::field(&join(&name), "is required");
    }
    if text.starts_with("unknown field")
        && let Some(name) = quoted
    {
        return AuthError::field(&join(&name), "is not an accepted field");
    }
    if path == "." {
        return AuthError::field("body", text);
    }
    AuthError::field(&path, text)
}

/// The client's IP (X-Forwarded-For only from trusted proxies) and user agent.
#[derive(Debug, Clone)]
pub struct ClientMeta(pub RequestMeta);

impl FromRequest for ClientMeta {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(ClientMeta(request_meta(req))))
    }
}

pub fn request_meta(req: &HttpRequest) -> RequestMeta {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.trusted_proxies.clone())
        .unwrap_or_default();
    let peer = req.peer_addr().map(|a| a.ip());
    let ip = client_ip(
        peer,
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
        &trusted,
    );
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect());
    RequestMeta {
        ip: ip.map(|i| i.to_string()),
        user_agent,
        locale: request_locale(req).to_string(),
    }
}

/// The shipped language the request's `Accept-Language` asks for, else
/// `[hosted] default_locale`.
pub fn request_locale(req: &HttpRequest) -> &'static str {
    let default = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| crate::domain::i18n::shipped(&s.hosted().default_locale))
        .unwrap_or(crate::domain::i18n::REFERENCE);
    crate::domain::i18n::negotiate(
        req.headers()
            .get(actix_web::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
        default,
    )
}

/// Walks X-Forwarded-For from the right while the hop is a trusted proxy.
pub fn client_ip(
    peer: Option<IpAddr>,
    xff: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let mut current = peer?;
    if !is_trusted(&current) {
        return Some(current);
    }
    if let Some(xff) = xff {
        for hop in xff.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    current = ip;
                    if !is_trusted(&ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    Some(current)
}

/// The signed-in caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone)]
pub struct CurrentSession(pub SessionInfo);

impl FromRequest for CurrentSession {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req).or_else(|| session_cookie(req));
        let org_context = req
            .headers()
            .get("x-org-context")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::from(AuthError::internal("no app state")))?;
            let token = token.ok_or(AuthError::Unauthenticated)?;
            let session = state
                .backend
                .authenticate_with_org(&token, org_context.as_deref())
                .await
                .map_err(|e| match e {
                    AuthError::Internal(_) => e,
                    _ => AuthError::Unauthenticated,
                })?;
            Ok(CurrentSession(session))
        })
    }
}

/// Clerk's front end keeps the session token in the `__session` cookie.
pub fn session_cookie(req: &HttpRequest) -> Option<String> {
    let state = req.app_data::<web::Data<AppState>>()?;
    if state.backend.name() != "clerk" {
        return None;
    }
    req.cookie("__session")
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_content_types_are_json() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            " application/json ",
            "application/merge-patch+json",
            "application/vnd.api+json; charset=utf-8",
        ] {
            assert!(is_json_content_type(ok), "{ok}");
        }
        for refused in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/+json",
            "application/jsonp",
            "text/json",
            "json",
            "",
        ] {
            assert!(!is_json_content_type(refused), "{refused}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            client_ip(Some(stranger), Some("1.2.3.4"), &trusted),
            Some(stranger)
        );
        assert_eq!(
            client_ip(Some(proxy), Some("1.2.3.4, 10.2.2.2"), &trusted),
            Some("1.2.3.4".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some(proxy), Some("6.6.6.6, 1.2.3.4"), &trusted),
            Some("1.2.3.4".parse().unwrap()),
            "a spoofed left-most entry is ignored"
        );
        assert_eq!(client_ip(Some(proxy), None, &trusted), Some(proxy));
    }
}

/// The least org role a handler needs; see [`OrgMember`].
pub trait MinRole {
    const ROLE: OrgRole;
}

#[derive(Debug)]
pub struct Member;
#[derive(Debug)]
pub struct Admin;
#[derive(Debug)]
pub struct Owner;

impl MinRole for Member {
    const ROLE: OrgRole = OrgRole::Member;
}
impl MinRole for Admin {
    const ROLE: OrgRole = OrgRole::Admin;
}
impl MinRole for Owner {
    const ROLE: OrgRole = OrgRole::Owner;
}

/// The signed-in caller as a member of the org named by the `{org}` path
/// segment (id or slug), with at least role `R`: non-members get 404, lesser
/// roles 403. Services check again inside their transactions.
#[derive(Debug)]
pub struct OrgMember<R: MinRole> {
    pub session: SessionInfo,
    pub org: OrgView,
    pub role: OrgRole,
    _role: PhantomData<R>,
}

impl<R: MinRole + 'static> FromRequest for OrgMember<R> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = CurrentSession::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let key = req.match_info().get("org").map(str::to_string);
        Box::pin(async move {
            let CurrentSession(session) = session.await?;
            let state = state.ok_or_else(|| ApiError::from(AuthError::internal("no app state")))?;
            let key = key.ok_or_else(|| ApiError::from(AuthError::NotFound("organization")))?;
            let (org, role) = state.orgs.access(&key, &session.user_id, R::ROLE).await?;
            Ok(OrgMember {
                session,
                org,
                role,
                _role: PhantomData,
            })
        })
    }
}
