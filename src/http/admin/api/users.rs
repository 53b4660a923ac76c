//! `/api/v1/admin/users`: list, create, read, change and delete users, sign
//! them out, remove their second factors, and send them mail.

use super::{AdminCaller, Result};
use crate::domain::User;
use crate::domain::{Email, Role};
use crate::error::AuthError;
use crate::http::api::orgs::PageQuery;
use crate::http::extract::ApiJson;
use crate::http::openapi::{self as doc, Errors};
use crate::services::accounts::AccountMail;
use crate::services::admin::{NewUserRequest, UserChange};
use crate::services::admin::{UserDetail, UserPage};
use crate::services::orgs::Actor;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UserQuery {
    /// Search in emails (users) or names and slugs (orgs).
    q: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

impl UserQuery {
    /// The search text; control characters (a NUL ends SQLite's LIKE
    /// pattern early, so `q=%00` would match everyone) are a 400 naming `q`.
    pub(super) fn q(&self) -> std::result::Result<&str, AuthError> {
        let q = self.q.as_deref().unwrap_or_default();
        if q.chars().any(char::is_control) {
            return Err(AuthError::field("q", "must not contain control characters"));
        }
        Ok(q)
    }

    pub(super) fn page(&self) -> PageQuery {
        PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    operation_id = "admin_list_users",
    params(UserQuery),
    responses((status = 200, description = "A page of users", body = UserPage), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn list_users(
    state: web::Data<AppState>,
    _: AdminCaller,
    query: web::Query<UserQuery>,
) -> Result<HttpResponse> {
    let p = query.page();
    let page = state
        .admin
        .list_users(query.q()?, p.cursor(), p.limit()?)
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

pub(super) fn parse_role(raw: Option<&str>) -> std::result::Result<Option<Role>, AuthError> {
    raw.map(|r| {
        Role::parse(r).ok_or_else(|| AuthError::field("role", "must be \"default\" or \"admin\""))
    })
    .transpose()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUserBody {
    email: String,
    password: Option<String>,
    role: Option<String>,
    email_confirmed: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users",
    tag = "admin",
    operation_id = "admin_create_user",
    request_body = CreateUserBody,
    responses((status = 201, description = "Created", body = User), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn create_user(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    ApiJson(body): ApiJson<CreateUserBody>,
) -> Result<HttpResponse> {
    let req = NewUserRequest {
        email: Email::parse(&body.email).map_err(|p| AuthError::field("email", p))?,
        password: body.password,
        role: parse_role(body.role.as_deref())?,
        email_confirmed: body.email_confirmed.unwrap_or(false),
    };
    Ok(HttpResponse::Created().json(state.admin.create_user(actor, req).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    operation_id = "admin_get_user",
    params(("id" = String, Path, description = "The user's id")),
    responses((status = 200, description = "The user with sessions, orgs, identities and recent events", body = UserDetail), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn get_user(
    state: web::Data<AppState>,
    _: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.admin.get_user(&path).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUserBody {
    role: Option<String>,
    disabled: Option<bool>,
    email_confirmed: Option<bool>,
    data: Option<serde_json::Value>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    operation_id = "admin_update_user",
    params(("id" = String, Path, description = "The user's id")),
    request_body = UpdateUserBody,
    responses((status = 200, description = "The updated user", body = User), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn update_user(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<UpdateUserBody>,
) -> Result<HttpResponse> {
    let change = UserChange {
        role: parse_role(body.role.as_deref())?,
        disabled: body.disabled,
        email_confirmed: body.email_confirmed,
        data: body.data,
    };
    Ok(HttpResponse::Ok().json(state.admin.update_user(actor, &path, change).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeleteQuery {
    delete_owned_orgs: Option<bool>,
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    operation_id = "admin_delete_user",
    params(("id" = String, Path, description = "The user's id"), DeleteQuery),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn delete_user(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse> {
    state
        .admin
        .delete_user(actor, &path, query.delete_owned_orgs.unwrap_or(false))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}/mfa",
    tag = "admin",
    operation_id = "admin_reset_user_mfa",
    params(("id" = String, Path, description = "The user's id")),
    responses((status = 204, description = "Every second factor and recovery code of the user is removed (audited as `mfa.removed`; the user gets a mail)"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn reset_user_mfa(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    state.admin.reset_mfa(actor, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/sign-out",
    tag = "admin",
    operation_id = "admin_sign_out_user",
    params(("id" = String, Path, description = "The user's id")),
    responses((status = 204, description = "Every session of the user is revoked"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn sign_out_user(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    state.admin.sign_out_user(actor, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sends through the backend's own flow (same mail, same rules).
pub async fn send_mail_for(
    state: &AppState,
    actor: Actor,
    id: &str,
    recovery: bool,
) -> std::result::Result<(), AuthError> {
    let action = if recovery {
        "admin.user.recovery_sent"
    } else {
        "admin.user.confirmation_sent"
    };
    let meta = crate::auth::RequestMeta {
        ip: actor.ip.clone(),
        user_agent: actor.user_agent.clone(),
        ..Default::default()
    };
    let user = state.admin.get_user(id).await?.user;
    let email = Email::from_stored(user.email);
    let mail = if recovery {
        AccountMail::Recovery
    } else {
        AccountMail::Confirmation
    };
    state.accounts.send_account_mail(email, mail, &meta).await?;
    // Recorded once the backend took it (a backend that refuses, like
    // Clerk's, leaves no event for a mail never sent).
    state.admin.note_mail(actor, id, action).await.map(|_| ())
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/send-confirmation",
    tag = "admin",
    operation_id = "admin_send_confirmation",
    params(("id" = String, Path, description = "The user's id")),
    responses((status = 202, description = "Queued", body = doc::Accepted), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn send_confirmation(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    send_mail_for(&state, actor, &path, false).await?;
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted"})))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/send-recovery",
    tag = "admin",
    operation_id = "admin_send_recovery",
    params(("id" = String, Path, description = "The user's id")),
    responses((status = 202, description = "Queued", body = doc::Accepted), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn send_recovery(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    send_mail_for(&state, actor, &path, true).await?;
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted"})))
}
