//! The organizations pages: list, one org with its members and
//! invitations, deleting it, and member actions.

use super::{ActionForm, ListQuery, PageResult, admin_ctx, svc};
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm};
use crate::services::admin::AuditEventView;
use crate::services::orgs::{Actor, InvitationView, MemberView, OrgView};
use crate::storage::audit::AuditFilter;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;

#[derive(Template)]
#[template(path = "admin/orgs.html")]
struct OrgsPage {
    c: Chrome,
    q: String,
    orgs: Vec<OrgView>,
    next: Option<String>,
}

pub(super) async fn orgs_page(
    ctx: Ctx,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let q = query.q.clone().unwrap_or_default();
    let page = svc(&ctx)
        .list_orgs(&q, query.cursor.as_deref().filter(|c| !c.is_empty()), 50)
        .await?;
    let view = OrgsPage {
        c: ctx.chrome("Organizations"),
        q,
        orgs: page.orgs,
        next: page.next_cursor,
    };
    ctx.render(StatusCode::OK, &view)
}

#[derive(Template)]
#[template(path = "admin/org.html")]
struct OrgPage {
    c: Chrome,
    org: OrgView,
    members: Vec<MemberView>,
    invitations: Vec<InvitationView>,
    events: Vec<AuditEventView>,
    errors: FormErrors,
    /// `[orgs] roles`, offered next to the built-in ones.
    custom_roles: Vec<String>,
}

pub(super) async fn render_org(
    mut ctx: Ctx,
    actor: &Actor,
    id: &str,
    errors: FormErrors,
) -> PageResult {
    let org = ctx.state.orgs.get_any(id).await?;
    let members = ctx
        .state
        .orgs
        .members(&org.id, actor, None, 100)
        .await?
        .items;
    let invitations = ctx.state.orgs.invitations(&org.id, actor).await?;
    let filter = AuditFilter {
        org_id: Some(org.id.clone()),
        ..Default::default()
    };
    let events = svc(&ctx).audit(filter, None, 20).await?.events;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let page = OrgPage {
        c: ctx.chrome(&org.name.clone()),
        org,
        members,
        invitations,
        events,
        errors,
        custom_roles: ctx.state.orgs.roles.custom().to_vec(),
    };
    ctx.render(status, &page)
}

pub(super) async fn org_page(ctx: Ctx, req: HttpRequest, path: web::Path<String>) -> PageResult {
    let (ctx, _, actor) = admin_ctx(ctx, &req).await?;
    render_org(ctx, &actor, &path, FormErrors::default()).await
}

pub(super) async fn org_delete(
    req: HttpRequest,
    path: web::Path<String>,
    PageForm { ctx, form }: PageForm<ActionForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let org = ctx.state.orgs.get_any(&path).await?;
    if form.confirm.as_deref().map(str::trim) != Some(org.slug.as_str()) {
        let errors = FormErrors {
            form: Some("Type the slug to confirm.".into()),
            ..Default::default()
        };
        return render_org(ctx, &actor, &org.id, errors).await;
    }
    ctx.state.orgs.delete(actor, &org.id).await?;
    ctx.web.set_flash("ok", format!("{} is deleted.", org.name));
    Ok(ctx.redirect("/admin/orgs"))
}

pub(super) async fn member_action(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    PageForm { ctx, form }: PageForm<ActionForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let (org_id, user_id, action) = path.into_inner();
    let result = match action.as_str() {
        "role" => match ctx
            .state
            .orgs
            .parse_role(Some(form.role.as_deref().unwrap_or_default()))
        {
            Ok(role) => ctx
                .state
                .orgs
                .change_role(actor.clone(), &org_id, &user_id, role)
                .await
                .map(|_| "Role changed."),
            Err(e) => Err(e),
        },
        "remove" => ctx
            .state
            .orgs
            .remove_member(actor.clone(), &org_id, &user_id)
            .await
            .map(|_| "Member removed."),
        _ => return Err(PageError::NotFound),
    };
    match result {
        Ok(message) => {
            ctx.web.set_flash("ok", message);
            Ok(ctx.redirect(&format!("/admin/orgs/{org_id}")))
        }
        Err(
            e @ (AuthError::LastOwner
            | AuthError::InvalidRequest { .. }
            | AuthError::NotFound("member")),
        ) => {
            render_org(
                ctx,
                &actor,
                &org_id,
                FormErrors {
                    form: Some(e.to_string()),
                    ..Default::default()
                },
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
