//! `/api/v1/admin/orgs`: orgs, their members and invitations.

use super::users::UserQuery;
use super::{AdminCaller, Result};
use crate::domain::Email;
use crate::error::AuthError;
use crate::http::api::orgs::PageQuery;
use crate::http::extract::ApiJson;
use crate::http::openapi::Errors;
use crate::services::admin::OrgPage;
use crate::services::orgs::MemberRef;
use crate::services::orgs::{InvitationView, MemberView, OrgView};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

#[utoipa::path(
    get,
    path = "/api/v1/admin/orgs",
    tag = "admin",
    operation_id = "admin_list_orgs",
    params(UserQuery),
    responses((status = 200, description = "A page of orgs", body = OrgPage), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
pub(super) async fn list_orgs(
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
pub(super) struct CreateOrgBody {
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
pub(super) async fn create_org(
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
pub(super) async fn get_org(
    state: web::Data<AppState>,
    _: AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.orgs.get_any(&path).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateOrgBody {
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
pub(super) async fn update_org(
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
pub(super) async fn delete_org(
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
pub(super) async fn list_members(
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
pub(super) struct AddMemberBody {
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
pub(super) async fn add_member(
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
pub(super) struct RoleBody {
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
pub(super) async fn change_role(
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
pub(super) async fn remove_member(
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
pub(super) async fn list_invitations(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.orgs.invitations(&path, &actor).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct InviteBody {
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
pub(super) async fn invite(
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
pub(super) async fn revoke_invitation(
    state: web::Data<AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (org, id) = path.into_inner();
    state.orgs.revoke_invitation(actor, &org, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
