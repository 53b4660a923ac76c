//! `/orgs`, `/orgs/new`, `/orgs/{slug}` and `/invitations/{token}`.
//!
//! `org`: one org's page, its settings and members; `invitations`: sending,
//! revoking and answering them. The org list and creation live here.

mod invitations;
mod org;

use invitations::{invitation_page, invitation_submit, invite_submit, revoke_invitation_submit};
use org::{
    activate_submit, delete_submit, leave_submit, org_page, remove_submit, require_mfa_submit,
    role_submit,
};

use crate::auth::SessionInfo;
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm};
use crate::services::orgs::{Actor, MAX_PAGE, OrgWithRole};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub(super) type PageResult = Result<HttpResponse, PageError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/orgs").get(orgs_page))
        .service(
            web::resource("/orgs/new")
                .get(new_org_page)
                .post(new_org_submit),
        )
        .service(web::resource("/orgs/{slug}").get(org_page))
        .service(web::resource("/orgs/{slug}/activate").post(activate_submit))
        .service(web::resource("/orgs/{slug}/leave").post(leave_submit))
        .service(web::resource("/orgs/{slug}/require-mfa").post(require_mfa_submit))
        .service(web::resource("/orgs/{slug}/delete").post(delete_submit))
        .service(web::resource("/orgs/{slug}/invitations").post(invite_submit))
        .service(
            web::resource("/orgs/{slug}/invitations/{id}/revoke").post(revoke_invitation_submit),
        )
        .service(web::resource("/orgs/{slug}/members/{user_id}/role").post(role_submit))
        .service(web::resource("/orgs/{slug}/members/{user_id}/remove").post(remove_submit))
        .service(
            web::resource("/invitations/{token}")
                .get(invitation_page)
                .post(invitation_submit),
        );
}
fn actor(ctx: &Ctx, me: &SessionInfo) -> Actor {
    Actor {
        user_id: me.user_id.clone(),
        ip: ctx.meta.ip.clone(),
        user_agent: ctx.meta.user_agent.clone(),
        admin: false,
    }
}

#[derive(Template)]
#[template(path = "pages/orgs.html")]
struct OrgsPage {
    c: Chrome,
    orgs: Vec<OrgWithRole>,
    active: Option<String>,
}

async fn orgs_page(mut ctx: Ctx) -> PageResult {
    let me = ctx.require_user()?;
    let orgs = ctx
        .state
        .orgs
        .list_for_user(&me.user_id, None, MAX_PAGE)
        .await?
        .items;
    let page = OrgsPage {
        c: ctx.chrome_t("orgs.title"),
        orgs,
        active: me.org_id.clone(),
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "pages/org_new.html")]
struct NewOrgPage {
    c: Chrome,
    name: String,
    slug: String,
    errors: FormErrors,
}

async fn new_org_page(mut ctx: Ctx) -> PageResult {
    ctx.require_user()?;
    let page = NewOrgPage {
        c: ctx.chrome_t("orgs.new"),
        name: String::new(),
        slug: String::new(),
        errors: FormErrors::default(),
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct NewOrgForm {
    name: Option<String>,
    slug: Option<String>,
}

async fn new_org_submit(PageForm { mut ctx, form }: PageForm<NewOrgForm>) -> PageResult {
    let me = ctx.require_user()?;
    let name = form.name.clone().unwrap_or_default();
    // A blank slug is made from the name.
    let slug = match form.slug.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => crate::domain::Slug::suggest(&name),
    };
    let email = me.email.clone().unwrap_or_default();
    match ctx
        .state
        .orgs
        .create(actor(&ctx, &me), (me.user_id.clone(), email), &name, &slug)
        .await
    {
        Ok(org) => {
            let text = ctx.tr.f("orgs.created", &[("org", &org.name)]);
            ctx.web.set_flash("ok", text);
            Ok(ctx.redirect(&format!("/orgs/{}", org.slug)))
        }
        Err(e @ (AuthError::InvalidRequest { .. } | AuthError::OrgExists)) => {
            let mut errors = FormErrors::from_auth_in(&e, ctx.tr);
            if matches!(e, AuthError::OrgExists) {
                errors = FormErrors {
                    fields: [("slug".to_string(), ctx.tr.t("orgs.slug_taken").to_string())].into(),
                    form: None,
                };
            }
            let status = if matches!(e, AuthError::OrgExists) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            let page = NewOrgPage {
                c: ctx.chrome_t("orgs.new"),
                name,
                slug,
                errors,
            };
            ctx.render(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}
