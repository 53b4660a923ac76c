//! `/api/v1/admin`: the JSON admin API. (About 870 lines: one short handler
//! per admin route with its OpenAPI annotation; the rules are in
//! `services::admin`.)

use super::{admin_actor, is_admin, service_key_id};
use crate::domain::User;
use crate::domain::{Email, Role};
use crate::error::AuthError;
use crate::http::api::orgs::PageQuery;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, bearer_token, request_meta};
use crate::http::openapi::{self as doc, Errors};
use crate::services::accounts::AccountMail;
use crate::services::admin::{AuditPage, OrgPage, Overview, UserDetail, UserPage};
use crate::services::admin::{NewUserRequest, UserChange};
use crate::services::orgs::{Actor, MemberRef};
use crate::services::orgs::{InvitationView, MemberView, OrgView};
use crate::state::AppState;
use crate::storage::audit::AuditFilter;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

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
struct UserQuery {
    /// Search in emails (users) or names and slugs (orgs).
    q: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    cursor: Option<String>,
}

impl UserQuery {
    /// The search text; control characters (a NUL ends SQLite's LIKE
    /// pattern early, so `q=%00` would match everyone) are a 400 naming `q`.
    fn q(&self) -> std::result::Result<&str, AuthError> {
        let q = self.q.as_deref().unwrap_or_default();
        if q.chars().any(char::is_control) {
            return Err(AuthError::field("q", "must not contain control characters"));
        }
        Ok(q)
    }

    fn page(&self) -> PageQuery {
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
async fn list_users(
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

fn parse_role(raw: Option<&str>) -> std::result::Result<Option<Role>, AuthError> {
    raw.map(|r| {
        Role::parse(r).ok_or_else(|| AuthError::field("role", "must be \"default\" or \"admin\""))
    })
    .transpose()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
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
async fn create_user(
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
async fn get_user(
    state: web::Data<AppState>,
    _: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.admin.get_user(&path).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserBody {
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
async fn update_user(
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
struct DeleteQuery {
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
async fn delete_user(
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
async fn reset_user_mfa(
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
async fn sign_out_user(
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
async fn send_confirmation(
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
async fn send_recovery(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    send_mail_for(&state, actor, &path, true).await?;
    Ok(HttpResponse::Accepted().json(json!({"status": "accepted"})))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/orgs",
    tag = "admin",
    operation_id = "admin_list_orgs",
    params(UserQuery),
    responses((status = 200, description = "A page of orgs", body = OrgPage), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn list_orgs(
    state: web::Data<AppState>,
    _: AdminCaller,
    query: web::Query<UserQuery>,
) -> Result<HttpResponse> {
    let p = query.page();
    let page = state
        .admin
        .list_orgs(query.q()?, p.cursor(), p.limit()?)
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, ToSchema)]
struct CreateOrgBody {
    name: String,
    slug: String,
    owner_id: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/orgs",
    tag = "admin",
    operation_id = "admin_create_org",
    request_body = CreateOrgBody,
    responses((status = 201, description = "Created with `owner_id` as its owner", body = OrgView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn create_org(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    ApiJson(body): ApiJson<CreateOrgBody>,
) -> Result<HttpResponse> {
    let owner = state.admin.owner(&body.owner_id).await?;
    let org = state
        .orgs
        .create(actor, owner, &body.name, &body.slug)
        .await?;
    Ok(HttpResponse::Created().json(org))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/orgs/{org}",
    tag = "admin",
    operation_id = "admin_get_org",
    params(("org" = String, Path, description = "The org's id or slug")),
    responses((status = 200, description = "The org", body = OrgView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn get_org(
    state: web::Data<AppState>,
    _: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.orgs.get_any(&path).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateOrgBody {
    name: Option<String>,
    slug: Option<String>,
    require_mfa: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/admin/orgs/{org}",
    tag = "admin",
    operation_id = "admin_update_org",
    params(("org" = String, Path, description = "The org's id or slug")),
    request_body = UpdateOrgBody,
    responses((status = 200, description = "The updated org", body = OrgView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn update_org(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<UpdateOrgBody>,
) -> Result<HttpResponse> {
    let org = state
        .orgs
        .update(
            actor,
            &path,
            body.name.as_deref(),
            body.slug.as_deref(),
            body.require_mfa,
        )
        .await?;
    Ok(HttpResponse::Ok().json(org))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/orgs/{org}",
    tag = "admin",
    operation_id = "admin_delete_org",
    params(("org" = String, Path, description = "The org's id or slug")),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn delete_org(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    state.orgs.delete(actor, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/orgs/{org}/members",
    tag = "admin",
    operation_id = "admin_list_members",
    params(("org" = String, Path, description = "The org's id or slug"), PageQuery),
    responses((status = 200, description = "The members", body = Vec<MemberView>, headers(("X-Next-Cursor" = String, description = "The cursor of the next page, when there is one"))), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn list_members(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let page = state
        .orgs
        .members(&path, &actor, query.cursor(), query.limit()?)
        .await?;
    let mut res = HttpResponse::Ok();
    if let Some(next) = &page.next_cursor {
        res.insert_header(("X-Next-Cursor", next.as_str()));
    }
    Ok(res.json(page.items))
}

#[derive(Debug, Deserialize, ToSchema)]
struct AddMemberBody {
    user_id: Option<String>,
    email: Option<String>,
    role: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/orgs/{org}/members",
    tag = "admin",
    operation_id = "admin_add_member",
    params(("org" = String, Path, description = "The org's id or slug")),
    request_body = AddMemberBody,
    responses((status = 201, description = "Added", body = MemberView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn add_member(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<AddMemberBody>,
) -> Result<HttpResponse> {
    let who = match (body.user_id, body.email) {
        (Some(id), None) => MemberRef::Id(id),
        (None, Some(e)) => {
            MemberRef::Email(Email::parse(&e).map_err(|p| AuthError::field("email", p))?)
        }
        _ => {
            return Err(AuthError::field("user_id", "give exactly one of user_id or email").into());
        }
    };
    let member = state
        .orgs
        .add_member(
            actor,
            &path,
            who,
            state.orgs.parse_role(body.role.as_deref())?,
        )
        .await?;
    Ok(HttpResponse::Created().json(member))
}

#[derive(Debug, Deserialize, ToSchema)]
struct RoleBody {
    role: String,
}

#[utoipa::path(
    patch,
    path = "/api/v1/admin/orgs/{org}/members/{user_id}",
    tag = "admin",
    operation_id = "admin_change_role",
    params(("org" = String, Path, description = "The org's id or slug"), ("user_id" = String, Path, description = "The member's user id")),
    request_body = RoleBody,
    responses((status = 200, description = "The member with the new role", body = MemberView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn change_role(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<HttpResponse> {
    let (org, user) = path.into_inner();
    let member = state
        .orgs
        .change_role(actor, &org, &user, state.orgs.parse_role(Some(&body.role))?)
        .await?;
    Ok(HttpResponse::Ok().json(member))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/orgs/{org}/members/{user_id}",
    tag = "admin",
    operation_id = "admin_remove_member",
    params(("org" = String, Path, description = "The org's id or slug"), ("user_id" = String, Path, description = "The member's user id")),
    responses((status = 204, description = "Removed"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn remove_member(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (org, user) = path.into_inner();
    state.orgs.remove_member(actor, &org, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/orgs/{org}/invitations",
    tag = "admin",
    operation_id = "admin_list_invitations",
    params(("org" = String, Path, description = "The org's id or slug")),
    responses((status = 200, description = "Pending invitations", body = Vec<InvitationView>), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn list_invitations(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.orgs.invitations(&path, &actor).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
struct InviteBody {
    email: String,
    role: Option<String>,
    accept_url: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/orgs/{org}/invitations",
    tag = "admin",
    operation_id = "admin_invite",
    params(("org" = String, Path, description = "The org's id or slug")),
    request_body = InviteBody,
    responses((status = 201, description = "Invited", body = InvitationView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn invite(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<HttpResponse> {
    let email = Email::parse(&body.email).map_err(|p| AuthError::field("email", p))?;
    let inv = state
        .orgs
        .invite(
            actor,
            &path,
            email,
            state.orgs.parse_role(body.role.as_deref())?,
            body.accept_url,
        )
        .await?;
    Ok(HttpResponse::Created().json(inv))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/orgs/{org}/invitations/{id}",
    tag = "admin",
    operation_id = "admin_revoke_invitation",
    params(("org" = String, Path, description = "The org's id or slug"), ("id" = String, Path, description = "The invitation's id")),
    responses((status = 204, description = "Revoked"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn revoke_invitation(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (org, id) = path.into_inner();
    state.orgs.revoke_invitation(actor, &org, &id).await?;
    Ok(HttpResponse::NoContent().finish())
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

/// `[oidc_provider]` must be configured for the client routes.
fn oidc(state: &AppState) -> Result<std::sync::Arc<crate::services::oidc::OidcProvider>> {
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
async fn list_clients(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(oidc(&state)?.list_clients().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
struct NewClientBody {
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
async fn create_client(
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
async fn rotate_client_secret(
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
async fn delete_client(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    oidc(&state)?.delete_client(&path).await?;
    Ok(HttpResponse::NoContent().finish())
}
