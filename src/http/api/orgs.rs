//! `/api/v1/orgs` and `/api/v1/invitations/accept`.
//!
//! Lists answer with a JSON array; when there is more, the opaque cursor of
//! the next page is in the `X-Next-Cursor` header (and a `Link: rel="next"`).

use crate::domain::Email;
use crate::error::AuthError;
use crate::http::error::ApiError;
use crate::http::extract::{Admin, ApiJson, ClientMeta, CurrentSession, Member, OrgMember};
use crate::http::openapi::Errors;
use crate::services::orgs::{Actor, MAX_PAGE, MemberRef, Page};
use crate::services::orgs::{InvitationView, MemberView, OrgView, OrgWithRole};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("").post(create_org).get(list_orgs))
        .service(
            web::resource("/{org}")
                .get(get_org)
                .patch(update_org)
                .delete(delete_org),
        )
        .service(
            web::resource("/{org}/members")
                .get(list_members)
                .post(add_member),
        )
        .service(
            web::resource("/{org}/members/{user_id}")
                .patch(change_role)
                .delete(remove_member),
        )
        .service(
            web::resource("/{org}/invitations")
                .get(list_invitations)
                .post(invite),
        )
        .service(web::resource("/{org}/invitations/{invitation_id}").delete(revoke_invitation));
}

pub fn invitation_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/accept").post(accept_invitation));
}

fn actor(session: &crate::auth::SessionInfo, meta: &crate::auth::RequestMeta) -> Actor {
    Actor {
        user_id: session.user_id.clone(),
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        admin: false,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
    }

    pub fn limit(&self) -> std::result::Result<i64, AuthError> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(_) => Err(AuthError::field(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            )),
        }
    }
}

fn paged<T: Serialize>(req: &HttpRequest, page: Page<T>) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    if let Some(next) = &page.next_cursor {
        res.insert_header(("X-Next-Cursor", next.as_str()));
        res.insert_header((
            "Link",
            format!("<{}?cursor={next}>; rel=\"next\"", req.path()),
        ));
    }
    res.json(page.items)
}

#[derive(Debug, Deserialize, ToSchema)]
struct CreateOrgBody {
    name: String,
    slug: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/orgs",
    tag = "orgs",
    request_body = CreateOrgBody,
    responses((status = 201, description = "Created; the caller is its owner", body = OrgView), Errors),
    security(("bearer" = []))
)]
async fn create_org(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<CreateOrgBody>,
) -> Result<HttpResponse> {
    let email = state.backend.get_user(&session).await?.email;
    let org = state
        .orgs
        .create(
            actor(&session, &meta),
            (session.user_id.clone(), email),
            &body.name,
            &body.slug,
        )
        .await?;
    Ok(HttpResponse::Created().json(org))
}

#[utoipa::path(
    get,
    path = "/api/v1/orgs",
    tag = "orgs",
    params(PageQuery),
    responses((status = 200, description = "The caller's orgs with their role", body = Vec<OrgWithRole>, headers(("X-Next-Cursor" = String, description = "The cursor of the next page, when there is one"), ("Link" = String, description = "rel=\"next\": the next page's URL"))), Errors),
    security(("bearer" = []))
)]
async fn list_orgs(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let page = state
        .orgs
        .list_for_user(&session.user_id, query.cursor.as_deref(), query.limit()?)
        .await?;
    Ok(paged(&req, page))
}

#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug")),
    responses((status = 200, description = "The org (members only)", body = OrgView), Errors),
    security(("bearer" = []))
)]
async fn get_org(member: OrgMember<Member>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(member.org))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateOrgBody {
    name: Option<String>,
    slug: Option<String>,
    /// Owners only: making the org active then needs a second factor.
    require_mfa: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/orgs/{org}",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug")),
    request_body = UpdateOrgBody,
    responses((status = 200, description = "The updated org (admins; `require_mfa` owners)", body = OrgView), Errors),
    security(("bearer" = []))
)]
async fn update_org(
    state: web::Data<AppState>,
    member: OrgMember<Admin>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<UpdateOrgBody>,
) -> Result<HttpResponse> {
    let org = state
        .orgs
        .update(
            actor(&member.session, &meta),
            &member.org.id,
            body.name.as_deref(),
            body.slug.as_deref(),
            body.require_mfa,
        )
        .await?;
    Ok(HttpResponse::Ok().json(org))
}

#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug")),
    responses((status = 204, description = "Deleted (owners)"), Errors),
    security(("bearer" = []))
)]
/// Owner only: the service checks the role inside its transaction.
async fn delete_org(
    state: web::Data<AppState>,
    member: OrgMember<Member>,
    ClientMeta(meta): ClientMeta,
) -> Result<HttpResponse> {
    state
        .orgs
        .delete(actor(&member.session, &meta), &member.org.id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/members",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug"), PageQuery),
    responses((status = 200, description = "The members", body = Vec<MemberView>, headers(("X-Next-Cursor" = String, description = "The cursor of the next page, when there is one"), ("Link" = String, description = "rel=\"next\": the next page's URL"))), Errors),
    security(("bearer" = []))
)]
async fn list_members(
    req: HttpRequest,
    state: web::Data<AppState>,
    member: OrgMember<Member>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    let page = state
        .orgs
        .members(
            &member.org.id,
            &actor(&member.session, &Default::default()),
            query.cursor.as_deref(),
            query.limit()?,
        )
        .await?;
    Ok(paged(&req, page))
}

#[derive(Debug, Deserialize, ToSchema)]
struct AddMemberBody {
    user_id: Option<String>,
    email: Option<String>,
    role: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/members",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug")),
    request_body = AddMemberBody,
    responses((status = 201, description = "Added", body = MemberView), Errors),
    security(("bearer" = []))
)]
async fn add_member(
    state: web::Data<AppState>,
    member: OrgMember<Admin>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<AddMemberBody>,
) -> Result<HttpResponse> {
    let who = match (body.user_id, body.email) {
        (Some(id), None) => MemberRef::Id(id),
        (None, Some(email)) => {
            MemberRef::Email(Email::parse(&email).map_err(|p| AuthError::field("email", p))?)
        }
        _ => {
            return Err(AuthError::field("user_id", "give exactly one of user_id or email").into());
        }
    };
    let role = state.orgs.parse_role(body.role.as_deref())?;
    let added = state
        .orgs
        .add_member(actor(&member.session, &meta), &member.org.id, who, role)
        .await?;
    Ok(HttpResponse::Created().json(added))
}

#[derive(Debug, Deserialize, ToSchema)]
struct RoleBody {
    role: String,
}

#[utoipa::path(
    patch,
    path = "/api/v1/orgs/{org}/members/{user_id}",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug"), ("user_id" = String, Path, description = "The member's user id")),
    request_body = RoleBody,
    responses((status = 200, description = "The member with the new role", body = MemberView), Errors),
    security(("bearer" = []))
)]
async fn change_role(
    state: web::Data<AppState>,
    member: OrgMember<Admin>,
    ClientMeta(meta): ClientMeta,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<HttpResponse> {
    let role = state.orgs.parse_role(Some(&body.role))?;
    let changed = state
        .orgs
        .change_role(actor(&member.session, &meta), &member.org.id, &path.1, role)
        .await?;
    Ok(HttpResponse::Ok().json(changed))
}

#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/members/{user_id}",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug"), ("user_id" = String, Path, description = "The member's user id")),
    responses((status = 204, description = "Removed (or left)"), Errors),
    security(("bearer" = []))
)]
/// Admins remove others; any member may remove themself (leave).
async fn remove_member(
    state: web::Data<AppState>,
    member: OrgMember<Member>,
    ClientMeta(meta): ClientMeta,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    state
        .orgs
        .remove_member(actor(&member.session, &meta), &member.org.id, &path.1)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
struct InviteBody {
    email: String,
    role: Option<String>,
    accept_url: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/invitations",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug")),
    request_body = InviteBody,
    responses((status = 201, description = "Invited (the mail is queued)", body = InvitationView), Errors),
    security(("bearer" = []))
)]
async fn invite(
    state: web::Data<AppState>,
    member: OrgMember<Admin>,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<HttpResponse> {
    let email = Email::parse(&body.email).map_err(|p| AuthError::field("email", p))?;
    state.limits.check(
        crate::services::rate_limit::Action::Email,
        meta.ip.as_deref(),
        Some(email.as_str()),
    )?;
    let role = state.orgs.parse_role(body.role.as_deref())?;
    let inv = state
        .orgs
        .invite(
            actor(&member.session, &meta),
            &member.org.id,
            email,
            role,
            body.accept_url,
        )
        .await?;
    Ok(HttpResponse::Created().json(inv))
}

#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/invitations",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug")),
    responses((status = 200, description = "Pending invitations", body = Vec<InvitationView>), Errors),
    security(("bearer" = []))
)]
async fn list_invitations(
    state: web::Data<AppState>,
    member: OrgMember<Admin>,
) -> Result<HttpResponse> {
    let list = state
        .orgs
        .invitations(&member.org.id, &actor(&member.session, &Default::default()))
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/invitations/{invitation_id}",
    tag = "orgs",
    params(("org" = String, Path, description = "The org's id or slug"), ("invitation_id" = String, Path, description = "The invitation's id")),
    responses((status = 204, description = "Revoked"), Errors),
    security(("bearer" = []))
)]
async fn revoke_invitation(
    state: web::Data<AppState>,
    member: OrgMember<Admin>,
    ClientMeta(meta): ClientMeta,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    state
        .orgs
        .revoke_invitation(actor(&member.session, &meta), &member.org.id, &path.1)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
struct AcceptBody {
    token: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/invitations/accept",
    tag = "orgs",
    request_body = AcceptBody,
    responses((status = 200, description = "The caller is now a member", body = MemberView), Errors),
    security(("bearer" = []))
)]
async fn accept_invitation(
    state: web::Data<AppState>,
    CurrentSession(session): CurrentSession,
    ClientMeta(meta): ClientMeta,
    ApiJson(body): ApiJson<AcceptBody>,
) -> Result<HttpResponse> {
    let (member, _org) = state
        .orgs
        .accept(actor(&session, &meta), &body.token)
        .await?;
    Ok(HttpResponse::Ok().json(member))
}
