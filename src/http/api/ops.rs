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

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "ops", responses((status = 200, description = "OpenID Connect discovery", body = Object)))]
async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let base = state.config.public_url();
    HttpResponse::Ok().json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/api/v1/auth/token"),
        "authorization_endpoint": format!("{base}/login"),
        "userinfo_endpoint": format!("{base}/api/v1/auth/user"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": [state.algorithm],
        "subject_types_supported": ["public"],
    }))
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
