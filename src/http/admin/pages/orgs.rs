//! The organizations pages: list, one org with its members and
//! invitations, deleting it, and member actions.

use super::ui::{Confirm, ListState, Pager, confirm_page, confirmed};
use super::{ActionForm, ListQuery, PageResult, admin_ctx, svc};
use crate::domain::Email;
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm};
use crate::services::admin::{AuditLine, OrgListItem};
use crate::services::orgs::{Actor, InvitationView, MemberView, OrgView};
use crate::storage::audit::AuditFilter;
use crate::storage::orgs::OrgSort;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "admin/orgs.html")]
struct OrgsPage {
    c: Chrome,
    list: ListState,
    orgs: Vec<OrgListItem>,
    pager: Pager,
    form: CreateOrgForm,
    errors: FormErrors,
}

fn org_sort(raw: Option<&str>) -> (&'static str, OrgSort) {
    match raw {
        Some("name") => ("name", OrgSort::Name),
        Some("members") => ("members", OrgSort::Members),
        _ => ("created", OrgSort::Created),
    }
}

async fn render_orgs(
    mut ctx: Ctx,
    query: &ListQuery,
    form: CreateOrgForm,
    errors: FormErrors,
) -> PageResult {
    let q = query.q.clone().unwrap_or_default();
    let (sort_key, sort) = org_sort(query.sort.as_deref());
    let desc = query.dir.as_deref() != Some("asc");
    let list = ListState {
        path: "/admin/orgs",
        q: q.clone(),
        sort: sort_key,
        desc,
        page: query.page(),
        extra: Vec::new(),
    };
    let page = svc(&ctx).orgs_console(&q, sort, desc, query.page()).await?;
    let pager = list.pager(&page);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let view = OrgsPage {
        c: ctx.chrome("Organizations"),
        list,
        orgs: page.items,
        pager,
        form,
        errors,
    };
    ctx.render(status, &view)
}

pub(super) async fn orgs_page(
    ctx: Ctx,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    render_orgs(ctx, &query, CreateOrgForm::default(), FormErrors::default()).await
}

/// The new-organization form (kept as typed when it is refused).
#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateOrgForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    /// The owner's email.
    #[serde(default)]
    owner: String,
}

/// A slug made from a name: lowercase ASCII letters and digits, other runs
/// of characters as one `-` (empty when nothing is left).
pub fn slug_from(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

pub(super) async fn create_org_submit(
    req: HttpRequest,
    PageForm { ctx, form }: PageForm<CreateOrgForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let slug = if form.slug.trim().is_empty() {
        slug_from(&form.name)
    } else {
        form.slug.trim().to_string()
    };
    let attempt = async {
        let email = Email::parse(&form.owner).map_err(|p| AuthError::field("owner", p))?;
        let owner_id = svc(&ctx)
            .user_id_by_email(email.as_str())
            .await?
            .ok_or_else(|| AuthError::field("owner", "is not the email of a user here"))?;
        let owner = svc(&ctx).owner(&owner_id).await?;
        ctx.state.orgs.create(actor, owner, &form.name, &slug).await
    };
    match attempt.await {
        Ok(org) => {
            ctx.web.set_flash("ok", format!("{} is created.", org.name));
            Ok(ctx.redirect(&format!("/admin/orgs/{}", org.id)))
        }
        Err(e @ (AuthError::InvalidRequest { .. } | AuthError::OrgExists)) => {
            let errors = match e {
                AuthError::OrgExists => FormErrors {
                    fields: [(
                        "slug".into(),
                        format!("The slug {slug} is taken: choose another."),
                    )]
                    .into(),
                    form: None,
                },
                other => FormErrors::from_auth(&other),
            };
            let query = ListQuery::default();
            render_orgs(ctx, &query, form, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/org.html")]
struct OrgPage {
    c: Chrome,
    org: OrgView,
    members: Vec<MemberView>,
    invitations: Vec<InvitationView>,
    events: Vec<AuditLine>,
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
    let events = svc(&ctx).name_events(events).await?;
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
    if !confirmed(&form.confirmed)
        || form.confirm.as_deref().map(str::trim) != Some(org.slug.as_str())
    {
        let members = ctx
            .state
            .orgs
            .members(&org.id, &actor, None, 100)
            .await?
            .items
            .len();
        let k = Confirm {
            title: format!("Delete {}?", org.name),
            consequences: vec![
                format!(
                    "Its {members} member{} lose access to it; their accounts stay.",
                    if members == 1 { "" } else { "s" }
                ),
                "Its pending invitations stop working.".into(),
                "Sessions with it active continue without an active organization.".into(),
            ],
            action: format!("/admin/orgs/{}/delete", org.id),
            button: "Delete organization".into(),
            cancel: format!("/admin/orgs/{}", org.id),
            type_to_confirm: Some(org.slug.clone()),
            error: (confirmed(&form.confirmed) && form.confirm.is_some())
                .then(|| format!("Type {} exactly to delete this organization.", org.slug)),
            ..Default::default()
        };
        return confirm_page(ctx, k);
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
    if action == "remove" && !confirmed(&form.confirmed) {
        let org = ctx.state.orgs.get_any(&org_id).await?;
        let email = ctx
            .state
            .orgs
            .members(&org.id, &actor, None, 100)
            .await?
            .items
            .into_iter()
            .find(|m| m.user_id == user_id)
            .map(|m| m.email)
            .ok_or(PageError::NotFound)?;
        let k = Confirm {
            title: format!("Remove {email} from {}?", org.name),
            consequences: vec![
                format!("{email} loses access to {} and its data in apps.", org.name),
                "Their account stays; they can be invited again.".into(),
            ],
            action: format!("/admin/orgs/{}/members/{user_id}/remove", org.id),
            button: "Remove member".into(),
            cancel: format!("/admin/orgs/{}", org.id),
            ..Default::default()
        };
        return confirm_page(ctx, k);
    }
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
