//! Health, readiness, metrics, and the public key documents.

use crate::error::AuthError;
use crate::http::error::ApiError;
use crate::http::openapi::{self as doc, Errors};
use crate::services::metrics::{CONTENT_TYPE, Metrics};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::net::IpAddr;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").get(healthz))
        .service(web::resource("/readyz").get(readyz))
        .service(web::resource("/openapi.json").get(openapi))
        .service(web::resource("/metrics").get(metrics))
        .service(web::resource("/.well-known/jwks.json").get(jwks))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(openid_configuration),
        );
}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process answers", body = doc::Status)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "The database answers", body = doc::Status),
    (status = 503, description = "The database does not answer", body = doc::Status),
))]
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.db.ping().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::error!(error = %e, "database not ready");
            Ok(HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"})))
        }
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        Errors,
    ),
    security((), ("service_key" = []))
)]
/// Prometheus text. Open to loopback callers that did not come through a
/// proxy; anyone else needs `Authorization: Bearer <[admin] service key>`.
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let peer = req.peer_addr().map(|a| a.ip());
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    let key = crate::http::extract::bearer_token(&req)
        .is_some_and(|t| crate::http::admin::service_key_id(&state, &t).is_some());
    if !may_scrape(peer, forwarded, key) {
        let why = if state.config.admin.service_keys.is_empty() {
            "/metrics answers loopback only; set [admin] service_keys to scrape it from elsewhere"
        } else {
            "/metrics from elsewhere than loopback needs Authorization: Bearer <service key>"
        };
        return Err(AuthError::Forbidden(why.into()).into());
    }
    let snapshot = Metrics::snapshot(&state.db, state.clock.unix_ms())
        .await
        .map_err(AuthError::from)?;
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header(("Cache-Control", "no-store"))
        .body(state.metrics.render(&snapshot)))
}

/// A direct loopback caller (no proxy header: a local reverse proxy forwards
/// the internet from loopback) may scrape; anyone else with a service key.
fn may_scrape(peer: Option<IpAddr>, forwarded: bool, has_service_key: bool) -> bool {
    let loopback = peer.is_some_and(|ip| ip.to_canonical().is_loopback());
    (loopback && !forwarded) || has_service_key
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "ops", responses((status = 200, description = "The keys that verify derp's tokens", body = doc::Jwks)))]
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.backend.jwks())
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "ops", responses((status = 200, description = "OpenID Connect discovery: only what derp implements", body = Object)))]
/// Discovery lists only what is there: the issuer and the key set that
/// verifies derp's tokens and, with `[oidc_provider]`, the provider's
/// endpoints and exactly what they implement. derp's own redirect-back flow
/// (`/login` and `POST /api/v1/auth/token`) is not OAuth 2.0, so it is never
/// advertised as an authorization or token endpoint.
async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let base = state.config.public_url();
    let mut doc = json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
    });
    if let Some(oidc) = &state.oidc {
        let algs: Vec<&str> = oidc.id_token_algs().iter().map(|a| a.as_str()).collect();
        let extra = json!({
            "authorization_endpoint": format!("{base}/oauth2/authorize"),
            "token_endpoint": format!("{base}/oauth2/token"),
            "userinfo_endpoint": format!("{base}/oauth2/userinfo"),
            "revocation_endpoint": format!("{base}/oauth2/revoke"),
            "introspection_endpoint": format!("{base}/oauth2/introspect"),
            "end_session_endpoint": format!("{base}/oauth2/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "scopes_supported": crate::config::OIDC_SCOPES,
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash",
                "sid", "azp", "email", "email_verified", "name", "preferred_username",
                "picture", "orgs", "org_id",
            ],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
        });
        if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
    }
    HttpResponse::Ok().json(doc)
}

#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "This document", body = Object)))]
/// The OpenAPI 3.1 document of the JSON API, generated from the handlers
/// ([`crate::http::openapi`]).
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::http::openapi::document())
}

#[cfg(test)]
mod tests {
    use super::may_scrape;

    #[test]
    fn metrics_access() {
        let local: Option<std::net::IpAddr> = Some("127.0.0.1".parse().unwrap());
        let mapped = Some("::ffff:127.0.0.1".parse().unwrap());
        let remote = Some("203.0.113.7".parse().unwrap());
        assert!(may_scrape(local, false, false));
        assert!(may_scrape(mapped, false, false));
        assert!(may_scrape(Some("::1".parse().unwrap()), false, false));
        assert!(!may_scrape(local, true, false), "through a local proxy");
        assert!(!may_scrape(remote, false, false));
        assert!(!may_scrape(None, false, false));
        assert!(may_scrape(remote, false, true));
        assert!(may_scrape(local, true, true));
    }
}
