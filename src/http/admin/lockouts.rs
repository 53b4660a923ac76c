//! Sign-in lockouts: `GET /api/v1/admin/lockouts`, `DELETE
//! /api/v1/admin/lockouts/{email}`, and the `/admin/lockouts` page.

use super::api::AdminCaller;
use super::pages::admin_ctx;
use crate::error::AuthError;
use crate::http::error::ApiError;
use crate::http::openapi::Errors;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm};
use crate::services::lockouts::LockoutView;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/lockouts").get(list))
        .service(web::resource("/lockouts/{email}").delete(clear));
}

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/lockouts").get(page))
        .service(web::resource("/admin/lockouts/clear").post(clear_submit));
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/lockouts",
    tag = "admin",
    operation_id = "admin_list_lockouts",
    responses((status = 200, description = "Locks on password sign-in: per address and source, and per address for every source", body = crate::http::openapi::LockoutList), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn list(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let lockouts = state.admin.lockouts().await?;
    Ok(HttpResponse::Ok().json(json!({ "lockouts": lockouts })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/lockouts/{email}",
    tag = "admin",
    operation_id = "admin_clear_lockout",
    params(("email" = String, Path, description = "The locked address")),
    responses((status = 204, description = "The address can sign in again from every source"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn clear(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.admin.clear_lockout(actor, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Template)]
#[template(path = "admin/lockouts.html")]
struct LockoutsPage {
    c: Chrome,
    lockouts: Vec<LockoutView>,
    after: i64,
    address_after: i64,
    minutes: i64,
    errors: FormErrors,
}

async fn page(ctx: Ctx, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let lockouts = ctx.state.admin.lockouts().await?;
    let view = LockoutsPage {
        c: ctx.chrome("Locked sign-ins"),
        lockouts,
        // The live policy (a SIGHUP reload may have changed it).
        after: ctx.state.lockout.threshold(),
        address_after: ctx.state.lockout.limits().map_or(0, |l| l.per_address),
        minutes: ctx.state.lockout.lock_secs() / 60,
        errors: FormErrors::default(),
    };
    ctx.render(StatusCode::OK, &view)
}

#[derive(Debug, Deserialize)]
struct ClearForm {
    email: String,
    /// Where to go back to (`/admin/users/{id}` from a user's page).
    back: Option<String>,
}

async fn clear_submit(
    req: HttpRequest,
    PageForm { ctx, form }: PageForm<ClearForm>,
) -> Result<HttpResponse, PageError> {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let back = match form.back.as_deref() {
        Some(b) if b.starts_with("/admin/users/") && !b.contains("//") => b.to_string(),
        _ => "/admin/lockouts".to_string(),
    };
    match ctx.state.admin.clear_lockout(actor, &form.email).await {
        Ok(()) => ctx
            .web
            .set_flash("ok", format!("{} can sign in again.", form.email.trim())),
        Err(AuthError::NotFound(_)) => ctx
            .web
            .set_flash("info", format!("{} was not locked.", form.email.trim())),
        Err(e) => return Err(e.into()),
    }
    Ok(ctx.redirect(&back))
}
