//! `/api/v1/admin/clients`: the OpenID Connect provider's registered clients.

use super::{AdminCaller, Result};
use crate::error::AuthError;
use crate::http::extract::ApiJson;
use crate::http::openapi::Errors;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// `[oidc_provider]` must be configured for the client routes.
pub(super) fn oidc(
    state: &AppState,
) -> Result<std::sync::Arc<crate::services::oidc::OidcProvider>> {
    state.oidc.clone().ok_or_else(|| {
        AuthError::NotFound("OpenID Connect provider ([oidc_provider] is not configured)").into()
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/clients",
    tag = "admin",
    operation_id = "admin_list_clients",
    responses((status = 200, description = "derp.toml's clients (read-only) and the stored ones", body = Vec<crate::services::oidc::ClientView>), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn list_clients(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(oidc(&state)?.list_clients().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct NewClientBody {
    name: String,
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// [openid, email, profile]
    scopes: Option<Vec<String>>,
    /// No secret: PKCE required.
    #[serde(default)]
    public: bool,
    /// Skips the consent page.
    #[serde(default)]
    first_party: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/clients",
    tag = "admin",
    operation_id = "admin_create_client",
    request_body = NewClientBody,
    responses((status = 201, description = "The client and, this once, its `client_secret` (none for a public client)", body = Object), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn create_client(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    ApiJson(body): ApiJson<NewClientBody>,
) -> Result<HttpResponse> {
    let (view, secret) = oidc(&state)?
        .create_client(crate::services::oidc::NewClient {
            name: body.name,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris,
            scopes: body.scopes,
            public: body.public,
            first_party: body.first_party,
        })
        .await?;
    let mut out = serde_json::to_value(&view).map_err(AuthError::internal)?;
    if let Some(s) = secret {
        out["client_secret"] = json!(s);
    }
    Ok(HttpResponse::Created().json(out))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/clients/{id}/secret",
    tag = "admin",
    operation_id = "admin_rotate_client_secret",
    params(("id" = String, Path, description = "The client_id")),
    responses((status = 200, description = "`{client_id, client_secret}`: the new secret, this once; the old one stops working", body = Object), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn rotate_client_secret(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let secret = oidc(&state)?.rotate_secret(&path).await?;
    Ok(HttpResponse::Ok().json(json!({"client_id": path.as_str(), "client_secret": secret})))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/clients/{id}",
    tag = "admin",
    operation_id = "admin_delete_client",
    params(("id" = String, Path, description = "The client_id")),
    responses((status = 204, description = "Deleted; the sessions minted for it ended"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn delete_client(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    oidc(&state)?.delete_client(&path).await?;
    Ok(HttpResponse::NoContent().finish())
}
