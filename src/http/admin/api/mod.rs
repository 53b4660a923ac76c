//! `/api/v1/admin`: the JSON admin API.

use super::{admin_actor, is_admin, service_key_id};
use crate::error::AuthError;
use crate::http::api::orgs::PageQuery;
use crate::http::error::ApiError;
use crate::http::extract::{bearer_token, request_meta};
use crate::http::openapi::{self as doc, Errors};
use crate::services::admin::{AuditPage, Overview};
use crate::services::orgs::Actor;
use crate::state::AppState;
use crate::storage::audit::AuditFilter;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

mod clients;
mod orgs;
mod users;

pub(crate) use clients::*;
pub(crate) use orgs::*;
pub use users::*;

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/overview").get(overview))
        .service(
            web::resource("/clients")
                .get(list_clients)
                .post(create_client),
        )
        .service(web::resource("/clients/{id}").delete(delete_client))
        .service(web::resource("/clients/{id}/secret").post(rotate_client_secret))
        .service(web::resource("/users").get(list_users).post(create_user))
        .service(
            web::resource("/users/{id}")
                .get(get_user)
                .patch(update_user)
                .delete(delete_user),
        )
        .service(web::resource("/users/{id}/sign-out").post(sign_out_user))
        .service(web::resource("/users/{id}/mfa").delete(reset_user_mfa))
        .service(web::resource("/users/{id}/send-confirmation").post(send_confirmation))
        .service(web::resource("/users/{id}/send-recovery").post(send_recovery))
        .service(web::resource("/orgs").get(list_orgs).post(create_org))
        .service(
            web::resource("/orgs/{org}")
                .get(get_org)
                .patch(update_org)
                .delete(delete_org),
        )
        .service(
            web::resource("/orgs/{org}/members")
                .get(list_members)
                .post(add_member),
        )
        .service(
            web::resource("/orgs/{org}/members/{user_id}")
                .patch(change_role)
                .delete(remove_member),
        )
        .service(
            web::resource("/orgs/{org}/invitations")
                .get(list_invitations)
                .post(invite),
        )
        .service(web::resource("/orgs/{org}/invitations/{id}").delete(revoke_invitation))
        .service(web::resource("/audit").get(audit))
        .service(web::resource("/outbox").get(outbox));
}

fn forbidden() -> ApiError {
    AuthError::Forbidden("admins only: an admin's access token or a service key is needed".into())
        .into()
}

/// An admin user's bearer token or a service key; anyone else gets 403.
pub struct AdminCaller(pub Actor);

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, std::result::Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        let meta = request_meta(req);
        Box::pin(async move {
            let state = state.ok_or_else(forbidden)?;
            let token = token.ok_or_else(forbidden)?;
            if let Some(id) = service_key_id(&state, &token) {
                return Ok(AdminCaller(Actor {
                    user_id: id,
                    ip: meta.ip,
                    user_agent: meta.user_agent,
                    admin: true,
                }));
            }
            let session = state
                .backend
                .authenticate(&token)
                .await
                .map_err(|_| forbidden())?;
            if !is_admin(&state, &session).await {
                return Err(forbidden());
            }
            Ok(AdminCaller(admin_actor(&session, &meta)))
        })
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/overview",
    tag = "admin",
    operation_id = "admin_overview",
    responses((status = 200, description = "Counts", body = Overview), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn overview(state: web::Data<AppState>, _: AdminCaller) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.admin.overview().await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    user_id: Option<String>,
    org_id: Option<String>,
    action: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "admin",
    operation_id = "admin_audit",
    params(AuditQuery),
    responses((status = 200, description = "A page of audit events, newest first", body = AuditPage), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn audit(
    state: web::Data<AppState>,
    _: AdminCaller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse> {
    let q = query.into_inner();
    let filter = AuditFilter {
        user_id: q.user_id.filter(|s| !s.is_empty()),
        org_id: q.org_id.filter(|s| !s.is_empty()),
        action: q.action.filter(|s| !s.is_empty()),
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(HttpResponse::Ok().json(
        state
            .admin
            .audit(filter, page.cursor(), page.limit()?)
            .await?,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/outbox",
    tag = "admin",
    operation_id = "admin_outbox",
    responses((status = 200, description = "The mail queue", body = doc::Outbox), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn outbox(state: web::Data<AppState>, _: AdminCaller) -> Result<HttpResponse> {
    let (queue, messages) = state.admin.outbox(100).await?;
    let recent_mail = state.mailer.recent();
    Ok(HttpResponse::build(StatusCode::OK)
        .json(json!({"queue": queue, "messages": messages, "recent_mail": recent_mail})))
}
