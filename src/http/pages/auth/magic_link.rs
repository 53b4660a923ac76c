//! Signing in with a link mailed to the address (`/magic-link`).

use super::{
    EmailForm, EmailFormPage, PageResult, ReturnParams, TokenActionPage, TokenForm, TokenQuery,
    check_your_email, form_failure, link_failed, parse_email, signed_in_or_second_step,
};
use crate::http::pages::{Ctx, FormErrors, PageError, PageForm, non_empty};
use actix_web::http::StatusCode;
use actix_web::web;

pub(super) fn magic_form(
    ctx: &mut Ctx,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
) -> EmailFormPage {
    EmailFormPage {
        c: ctx.chrome_t("magic.title"),
        heading: ctx.tr.t("magic.title").into(),
        text: ctx.tr.t("magic.text").into(),
        action: "/magic-link".into(),
        button: ctx.tr.t("magic.submit").into(),
        email,
        errors,
        qs: ret.query(),
        ret,
    }
}

pub(super) async fn magic_link_page(mut ctx: Ctx, query: web::Query<TokenQuery>) -> PageResult {
    if !ctx.state.config.native().enable_magic_link {
        return Err(PageError::NotFound);
    }
    let ret = query.ret.validate(&ctx)?;
    if let Some(token) = non_empty(&query.token) {
        let page = TokenActionPage {
            c: ctx.chrome_t("login.title"),
            heading: ctx.tr.t("login.title").into(),
            text: ctx.tr.t("magic.use_text").into(),
            action: "/magic-link/verify".into(),
            button: ctx.tr.t("magic.use_submit").into(),
            token,
            ret,
        };
        return ctx.render(StatusCode::OK, &page);
    }
    let page = magic_form(&mut ctx, String::new(), FormErrors::default(), ret);
    ctx.render(StatusCode::OK, &page)
}

pub(super) async fn magic_link_submit(
    PageForm { mut ctx, form }: PageForm<EmailForm>,
) -> PageResult {
    if !ctx.state.config.native().enable_magic_link {
        return Err(PageError::NotFound);
    }
    let ret = form.ret.validate(&ctx)?;
    let link_base = format!(
        "{}/magic-link{}",
        ctx.state.config.public_url(),
        ret.query()
    );
    let attempt = async {
        let email = parse_email(&form.email)?;
        ctx.state
            .accounts
            .send_magic_link(email, Some(link_base), &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(()) => check_your_email(&mut ctx, &ret, "magic.sent"),
        Err(e) => {
            let (status, errors) = form_failure(&e, ctx.tr);
            let page = magic_form(
                &mut ctx,
                form.email.clone().unwrap_or_default(),
                errors,
                ret,
            );
            ctx.render(status, &page)
        }
    }
}

pub(super) async fn magic_link_verify(
    PageForm { mut ctx, form }: PageForm<TokenForm>,
) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let token = form.token.clone().unwrap_or_default();
    match ctx
        .state
        .accounts
        .verify_magic_link(&token, &ctx.meta)
        .await
    {
        Ok(step) => signed_in_or_second_step(&mut ctx, step, &ret, None).await,
        Err(e) => link_failed(&mut ctx, e, "link.expired_magic"),
    }
}
