//! One org's page: its members, its settings (active org, required second
//! factor, delete), leaving, and members' roles.

use super::{PageResult, actor};
use crate::auth::SessionInfo;
use crate::domain::OrgRole;
use crate::error::AuthError;
use crate::http::pages::account::time_tag;
use crate::http::pages::{Chrome, Confirmed, Ctx, FormErrors, NoFields, PageError, PageForm};
use crate::services::orgs::{MAX_PAGE, OrgView};
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: OrgRole,
    pub joined: String,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: OrgRole,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "pages/org.html")]
struct OrgPage {
    c: Chrome,
    org: OrgView,
    role: OrgRole,
    role_is_owner: bool,
    /// The caller is the org's only owner: leaving would orphan it, so the
    /// page says what to do instead of offering "Leave".
    sole_owner: bool,
    can_manage: bool,
    active: bool,
    me: String,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    errors: FormErrors,
    invite_email: String,
    /// `[orgs] roles`, offered next to the built-in ones.
    custom_roles: Vec<String>,
}

pub(super) async fn render_org(
    mut ctx: Ctx,
    slug: &str,
    errors: FormErrors,
    invite_email: String,
) -> PageResult {
    let me = ctx.require_user()?;
    let (org, role) = ctx
        .state
        .orgs
        .access(slug, &me.user_id, OrgRole::Member)
        .await?;
    let members: Vec<MemberRow> = ctx
        .state
        .orgs
        .members(&org.id, &actor(&ctx, &me), None, MAX_PAGE)
        .await?
        .items
        .into_iter()
        .map(|m| MemberRow {
            user_id: m.user_id,
            email: m.email,
            role: m.role,
            joined: time_tag(m.joined_at),
        })
        .collect();
    let can_manage = role.at_least(&OrgRole::Admin);
    // Known only when the whole member list is on the page.
    let sole_owner = role == OrgRole::Owner
        && (members.len() as i64) < MAX_PAGE
        && members.iter().filter(|m| m.role == OrgRole::Owner).count() == 1;
    let invitations = if can_manage {
        ctx.state
            .orgs
            .invitations(&org.id, &actor(&ctx, &me))
            .await?
            .into_iter()
            .map(|i| InvitationRow {
                id: i.id,
                email: i.email,
                role: i.role,
                expires: time_tag(i.expires_at),
            })
            .collect()
    } else {
        Vec::new()
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let page = OrgPage {
        c: ctx.chrome(&org.name),
        active: me.org_id.as_deref() == Some(org.id.as_str()),
        role_is_owner: role == OrgRole::Owner,
        custom_roles: ctx.state.orgs.roles.custom().to_vec(),
        sole_owner,
        can_manage,
        role,
        me: me.user_id.clone(),
        org,
        members,
        invitations,
        errors,
        invite_email,
    };
    ctx.render(status, &page)
}

pub(super) async fn org_page(ctx: Ctx, path: web::Path<String>) -> PageResult {
    render_org(ctx, &path, FormErrors::default(), String::new()).await
}

/// Runs an org action from a form, then back to the org page with a flash;
/// a refused action is shown on the page instead.
/// Runs `act` on the org `slug`; on success the flash is the text of
/// `ok_key`.
pub(super) async fn org_action<F, Fut>(
    mut ctx: Ctx,
    slug: &str,
    ok_key: &'static str,
    act: F,
) -> PageResult
where
    F: FnOnce(Ctx, SessionInfo, OrgView) -> Fut,
    Fut: std::future::Future<Output = (Ctx, Result<Option<String>, AuthError>)>,
{
    let me = ctx.require_user()?;
    let (org, _) = ctx
        .state
        .orgs
        .access(slug, &me.user_id, OrgRole::Member)
        .await?;
    let slug = org.slug.clone();
    let (mut ctx, result) = act(ctx, me, org).await;
    match result {
        Ok(target) => {
            let ok = ctx.tr.t(ok_key);
            ctx.web.set_flash("ok", ok);
            Ok(ctx.redirect(&target.unwrap_or_else(|| format!("/orgs/{slug}"))))
        }
        Err(
            e @ (AuthError::Forbidden(_)
            | AuthError::LastOwner
            | AuthError::MemberExists
            | AuthError::NotFound(_)
            | AuthError::InvalidRequest { .. }
            | AuthError::RateLimited { .. }),
        ) => {
            let errors = FormErrors::from_auth_in(&e, ctx.tr);
            render_org(ctx, &slug, errors, String::new()).await
        }
        Err(AuthError::MfaRequired) => {
            // The org requires a second factor this sign-in did not show:
            // enrolling one from this session counts (its next tokens say
            // `mfa`), so the way on is the security page.
            ctx.web.set_flash("error", ctx.tr.t("orgs.mfa_needed"));
            Ok(ctx.redirect("/account/security"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct RequireMfaForm {
    /// A checkbox: present ("on") to require, absent to stop requiring.
    require_mfa: Option<String>,
}

/// Owners: whether making the org active needs a second factor.
pub(super) async fn require_mfa_submit(
    path: web::Path<String>,
    PageForm { ctx, form }: PageForm<RequireMfaForm>,
) -> PageResult {
    let on = form.require_mfa.is_some();
    let text = if on {
        ctx.tr.t("orgs.mfa_on")
    } else {
        ctx.tr.t("orgs.mfa_off")
    };
    org_action(ctx, &path, text, |ctx, me, org| async move {
        let r = ctx
            .state
            .orgs
            .update(actor(&ctx, &me), &org.id, None, None, Some(on))
            .await
            .map(|_| None);
        (ctx, r)
    })
    .await
}

pub(super) async fn activate_submit(
    path: web::Path<String>,
    PageForm { ctx, .. }: PageForm<NoFields>,
) -> PageResult {
    org_action(ctx, &path, "orgs.now_active", |ctx, me, org| async move {
        let backend = &ctx.state.backend;
        let r = match ctx.web.sid.as_deref() {
            Some(sid) => backend.set_web_session_org(&me, sid, Some(org.id)).await,
            None => backend.set_active_org(&me, Some(org.id)).await.map(|_| ()),
        }
        .map(|_| None);
        (ctx, r)
    })
    .await
}

pub(super) async fn leave_submit(
    path: web::Path<String>,
    PageForm { mut ctx, form }: PageForm<Confirmed>,
) -> PageResult {
    ctx.require_user()?;
    let back = format!("/orgs/{}", enc(&path));
    let question = ctx.tr.f(
        "orgs.confirm_leave",
        &[("org", &org_name(&ctx, &path).await?)],
    );
    if let Some(ask) = ctx.confirm_first(&form, &format!("{back}/leave"), question, &back) {
        return ask;
    }
    org_action(ctx, &path, "orgs.left", |ctx, me, org| async move {
        let r = ctx
            .state
            .orgs
            .remove_member(actor(&ctx, &me), &org.id, &me.user_id)
            .await
            .map(|_| Some("/orgs".to_string()));
        (ctx, r)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteForm {
    confirm: Option<String>,
}

pub(super) async fn delete_submit(
    path: web::Path<String>,
    PageForm { ctx, form }: PageForm<DeleteForm>,
) -> PageResult {
    let confirm = form.confirm.clone().unwrap_or_default();
    org_action(ctx, &path, "orgs.deleted", |ctx, me, org| async move {
        if confirm.trim() != org.slug {
            return (
                ctx,
                Err(AuthError::field("confirm", "type the slug to confirm")),
            );
        }
        let r = ctx
            .state
            .orgs
            .delete(actor(&ctx, &me), &org.id)
            .await
            .map(|_| Some("/orgs".to_string()));
        (ctx, r)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct RoleForm {
    role: Option<String>,
}

pub(super) async fn role_submit(
    path: web::Path<(String, String)>,
    PageForm { ctx, form }: PageForm<RoleForm>,
) -> PageResult {
    let (slug, user_id) = path.into_inner();
    let role = form.role.clone();
    org_action(ctx, &slug, "orgs.role_changed", |ctx, me, org| async move {
        let r = match ctx
            .state
            .orgs
            .parse_role(Some(role.as_deref().unwrap_or_default()))
        {
            Ok(role) => ctx
                .state
                .orgs
                .change_role(actor(&ctx, &me), &org.id, &user_id, role)
                .await
                .map(|_| None),
            Err(e) => Err(e),
        };
        (ctx, r)
    })
    .await
}

pub(super) async fn remove_submit(
    path: web::Path<(String, String)>,
    PageForm { mut ctx, form }: PageForm<Confirmed>,
) -> PageResult {
    let (slug, user_id) = path.into_inner();
    ctx.require_user()?;
    let back = format!("/orgs/{}", enc(&slug));
    let email = member_email(&ctx, &slug, &user_id).await?;
    let question = ctx.tr.f(
        "orgs.confirm_remove",
        &[("email", &email), ("org", &org_name(&ctx, &slug).await?)],
    );
    let action = format!("{back}/members/{}/remove", enc(&user_id));
    if let Some(ask) = ctx.confirm_first(&form, &action, question, &back) {
        return ask;
    }
    org_action(
        ctx,
        &slug,
        "orgs.member_removed",
        |ctx, me, org| async move {
            let r = ctx
                .state
                .orgs
                .remove_member(actor(&ctx, &me), &org.id, &user_id)
                .await
                .map(|_| None);
            (ctx, r)
        },
    )
    .await
}

pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The name of the org `slug` the signed-in user belongs to (for the
/// confirmation question).
pub(super) async fn org_name(ctx: &Ctx, slug: &str) -> Result<String, PageError> {
    let me = ctx.user.clone().ok_or(PageError::NotFound)?;
    let (org, _) = ctx
        .state
        .orgs
        .access(slug, &me.user_id, OrgRole::Member)
        .await?;
    Ok(org.name)
}

/// A member's email by user id, for the confirmation question.
pub(super) async fn member_email(
    ctx: &Ctx,
    slug: &str,
    user_id: &str,
) -> Result<String, PageError> {
    let me = ctx.user.clone().ok_or(PageError::NotFound)?;
    let (org, _) = ctx
        .state
        .orgs
        .access(slug, &me.user_id, OrgRole::Member)
        .await?;
    Ok(ctx
        .state
        .orgs
        .members(&org.id, &actor(ctx, &me), None, MAX_PAGE)
        .await?
        .items
        .into_iter()
        .find(|m| m.user_id == user_id)
        .map(|m| m.email)
        .unwrap_or_else(|| user_id.to_string()))
}
