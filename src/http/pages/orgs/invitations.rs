//! Invitations: sent and revoked from the org's page, previewed and
//! accepted by the invitee at `/invitations/{token}`.

use super::org::org_action;
use super::{PageResult, actor};
use crate::domain::Email;
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, NoFields, PageError, PageForm};
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(super) struct InviteForm {
    email: Option<String>,
    role: Option<String>,
}

pub(super) async fn invite_submit(
    path: web::Path<String>,
    PageForm { ctx, form }: PageForm<InviteForm>,
) -> PageResult {
    let email_raw = form.email.clone().unwrap_or_default();
    let role = form.role.clone();
    org_action(ctx, &path, "orgs.invite_sent", |ctx, me, org| async move {
        let r = async {
            let email = Email::parse(&email_raw).map_err(|p| AuthError::field("email", p))?;
            let role = ctx.state.orgs.parse_role(role.as_deref())?;
            ctx.state.limits.check(
                crate::services::rate_limit::Action::Email,
                ctx.meta.ip.as_deref(),
                Some(email.as_str()),
            )?;
            ctx.state
                .orgs
                .invite(actor(&ctx, &me), &org.id, email, role, None)
                .await
                .map(|_| None)
        }
        .await;
        (ctx, r)
    })
    .await
}

pub(super) async fn revoke_invitation_submit(
    path: web::Path<(String, String)>,
    PageForm { ctx, .. }: PageForm<NoFields>,
) -> PageResult {
    let (slug, id) = path.into_inner();
    org_action(
        ctx,
        &slug,
        "orgs.invite_revoked",
        |ctx, me, org| async move {
            let r = ctx
                .state
                .orgs
                .revoke_invitation(actor(&ctx, &me), &org.id, &id)
                .await
                .map(|_| None);
            (ctx, r)
        },
    )
    .await
}

#[derive(Template)]
#[template(path = "pages/invitation.html")]
struct InvitationPage {
    c: Chrome,
    org_name: String,
    role: String,
    email: String,
    token: String,
    signed_in: bool,
    return_to: String,
}

pub(super) async fn invitation_page(mut ctx: Ctx, path: web::Path<String>) -> PageResult {
    let token = path.into_inner();
    let Some(preview) = ctx.state.orgs.preview(&token).await? else {
        let page = crate::http::pages::auth::MessagePage {
            c: ctx.chrome_t("invitation.title"),
            heading: ctx.tr.t("invitation.invalid").into(),
            text: ctx.tr.t("invitation.invalid_text").into(),
            link: Some(("/login".into(), ctx.tr.t("common.go_to_sign_in").into())),
        };
        return ctx.render(StatusCode::BAD_REQUEST, &page);
    };
    let page = InvitationPage {
        c: ctx.chrome_t("invitation.title"),
        org_name: preview.org_name,
        role: preview.role.as_str().to_string(),
        email: preview.email,
        signed_in: ctx.user.is_some(),
        return_to: format!("{}/invitations/{token}", ctx.state.config.public_url()),
        token,
    };
    ctx.render(StatusCode::OK, &page)
}

pub(super) async fn invitation_submit(
    path: web::Path<String>,
    PageForm { mut ctx, .. }: PageForm<NoFields>,
) -> PageResult {
    let me = ctx.require_user()?;
    match ctx.state.orgs.accept(actor(&ctx, &me), &path).await {
        Ok((_, org)) => {
            let text = ctx.tr.f("invitation.welcome", &[("org", &org.name)]);
            ctx.web.set_flash("ok", text);
            Ok(ctx.redirect(&format!("/orgs/{}", org.slug)))
        }
        Err(AuthError::InvalidToken) => {
            Err(PageError::BadRequest(ctx.tr.t("invitation.used").into()))
        }
        Err(AuthError::Forbidden(m)) => Err(PageError::Forbidden(format!(
            "{m}. Sign in with the invited address."
        ))),
        Err(e) => Err(e.into()),
    }
}
