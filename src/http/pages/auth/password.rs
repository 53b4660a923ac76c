//! Choosing a new password: asking for a reset mail (`/forgot-password`)
//! and the reset form (`/reset-password`), by link or by mailed code.

use super::{
    EmailForm, EmailFormPage, PageResult, ReturnParams, TokenQuery, check_your_email, code_failure,
    form_failure, link_failed, parse_email, signed_in_or_second_step,
};
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm, non_empty};
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

pub(super) fn forgot_form(
    ctx: &mut Ctx,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
) -> EmailFormPage {
    EmailFormPage {
        c: ctx.chrome_t("reset.title"),
        heading: ctx.tr.t("reset.title").into(),
        text: ctx.tr.t("reset.text").into(),
        action: "/forgot-password".into(),
        button: ctx.tr.t("reset.submit").into(),
        email,
        errors,
        qs: ret.query(),
        ret,
    }
}

pub(super) async fn forgot_page(mut ctx: Ctx, query: web::Query<ReturnParams>) -> PageResult {
    let ret = query.validate(&ctx)?;
    let page = forgot_form(&mut ctx, String::new(), FormErrors::default(), ret);
    ctx.render(StatusCode::OK, &page)
}

pub(super) async fn forgot_submit(PageForm { mut ctx, form }: PageForm<EmailForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    // The link brings the user back through the same app (redirect_to, state).
    let link_base = (!ret.query().is_empty()).then(|| {
        format!(
            "{}/reset-password{}",
            ctx.state.config.public_url(),
            ret.query()
        )
    });
    let attempt = async {
        let email = parse_email(&form.email)?;
        ctx.state
            .accounts
            .recover_password(email, link_base, &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(()) if ctx.state.backend.emailed_codes().is_some() => {
            let text = ctx.tr.t(RESET_CODE_TEXT).to_string();
            let page = reset_code_view(
                &mut ctx,
                form.email.clone().unwrap_or_default(),
                text,
                FormErrors::default(),
                ret,
            );
            ctx.render(StatusCode::OK, &page)
        }
        Ok(()) => check_your_email(&mut ctx, &ret, "reset.sent"),
        Err(e) => {
            let (status, errors) = form_failure(&e, ctx.tr);
            let page = forgot_form(
                &mut ctx,
                form.email.clone().unwrap_or_default(),
                errors,
                ret,
            );
            ctx.render(status, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "pages/reset_password.html")]
pub(super) struct ResetPage {
    c: Chrome,
    token: String,
    errors: FormErrors,
    /// Where to go once the password is changed.
    ret: ReturnParams,
}

pub(super) const RESET_CODE_TEXT: &str = "reset.code_text";

#[derive(Template)]
#[template(path = "pages/reset_code.html")]
pub(super) struct ResetCodePage {
    c: Chrome,
    text: String,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
}

/// The password reset form of backends that mail codes (Cognito).
pub(super) fn reset_code_view(
    ctx: &mut Ctx,
    email: String,
    text: String,
    errors: FormErrors,
    ret: ReturnParams,
) -> ResetCodePage {
    ResetCodePage {
        c: ctx.chrome_t("reset.choose"),
        text,
        email,
        errors,
        qs: ret.query(),
        ret,
    }
}

pub(super) async fn reset_page(mut ctx: Ctx, query: web::Query<TokenQuery>) -> PageResult {
    if ctx.state.backend.emailed_codes().is_some() {
        let ret = query.ret.validate(&ctx)?;
        let text = ctx.tr.t(RESET_CODE_TEXT).to_string();
        let page = reset_code_view(
            &mut ctx,
            non_empty(&query.email).unwrap_or_default(),
            text,
            FormErrors::default(),
            ret,
        );
        return ctx.render(StatusCode::OK, &page);
    }
    let token = non_empty(&query.token)
        .ok_or_else(|| PageError::BadRequest(ctx.tr.t("reset.no_token").into()))?;
    let ret = query.ret.validate(&ctx)?;
    let page = ResetPage {
        c: ctx.chrome_t("reset.choose"),
        token,
        errors: FormErrors::default(),
        ret,
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub(super) struct ResetForm {
    token: Option<String>,
    password: Option<String>,
    /// `email` and `code` instead of `token` with a backend that mails codes.
    email: Option<String>,
    code: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

/// `POST /reset-password` with `{email, code, password}`: the backend's
/// ConfirmForgotPassword and a sign-in with the new password.
pub(super) async fn reset_code_submit(mut ctx: Ctx, form: &ResetForm) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let email_raw = form.email.clone().unwrap_or_default();
    let attempt = async {
        let email = parse_email(&form.email)?;
        let code = form.code.clone().unwrap_or_default();
        let password = form.password.clone().unwrap_or_default();
        ctx.state
            .accounts
            .reset_password_code(email, &code, password, &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(step) => signed_in_or_second_step(&mut ctx, step, &ret, Some("reset.changed")).await,
        Err(e) => {
            let (status, errors) = code_failure(&e, ctx.tr);
            let text = ctx.tr.t(RESET_CODE_TEXT).to_string();
            let page = reset_code_view(&mut ctx, email_raw, text, errors, ret);
            ctx.render(status, &page)
        }
    }
}

pub(super) async fn reset_submit(PageForm { mut ctx, form }: PageForm<ResetForm>) -> PageResult {
    if ctx.state.backend.emailed_codes().is_some() {
        return reset_code_submit(ctx, &form).await;
    }
    let token = form.token.clone().unwrap_or_default();
    let password = form.password.clone().unwrap_or_default();
    let ret = form.ret.validate(&ctx)?;
    match ctx
        .state
        .accounts
        .reset_password(&token, password, &ctx.meta)
        .await
    {
        Ok(step) => {
            signed_in_or_second_step(&mut ctx, step, &ret, Some("reset.changed_others")).await
        }
        Err(AuthError::InvalidToken) => {
            link_failed(&mut ctx, AuthError::InvalidToken, "link.expired_reset")
        }
        Err(e) => {
            let (status, errors) = form_failure(&e, ctx.tr);
            let page = ResetPage {
                c: ctx.chrome_t("reset.choose"),
                token,
                errors,
                ret,
            };
            ctx.render(status, &page)
        }
    }
}
