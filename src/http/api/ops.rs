//! Health, readiness, and the public key documents.

use crate::http::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").get(healthz))
        .service(web::resource("/readyz").get(readyz))
        .service(web::resource("/.well-known/jwks.json").get(jwks))
        .route(
            "/.well-known/openid-configuration",
            web::get().to(openid_configuration),
        );
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.db.ping().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::error!(error = %e, "database not ready");
            Ok(HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"})))
        }
    }
}

async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.backend.jwks())
}

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
