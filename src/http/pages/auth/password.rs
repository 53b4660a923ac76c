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
        c: ctx.chrome("Reset your password"),
        heading: "Reset your password".into(),
        text: "Enter your email and we will send you a link to choose a new password.".into(),
        action: "/forgot-password".into(),
        button: "Send reset link".into(),
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
        Ok(()) if ctx.state.backend.mails_codes() => {
            let page = reset_code_view(
                &mut ctx,
                form.email.clone().unwrap_or_default(),
                RESET_CODE_TEXT.into(),
                FormErrors::default(),
                ret,
            );
            ctx.render(StatusCode::OK, &page)
        }
        Ok(()) => check_your_email(
            &mut ctx,
            &ret,
            "If an account uses this address, a link to reset its password is on its way.",
        ),
        Err(e) => {
            let (status, errors) = form_failure(&e);
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
    min_length: usize,
    /// Where to go once the password is changed.
    ret: ReturnParams,
}

pub(super) const RESET_CODE_TEXT: &str = "If an account uses this address, we emailed it a code. Enter the code and choose a new password.";

#[derive(Template)]
#[template(path = "pages/reset_code.html")]
pub(super) struct ResetCodePage {
    c: Chrome,
    text: String,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
    min_length: usize,
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
        c: ctx.chrome("Choose a new password"),
        text,
        email,
        errors,
        qs: ret.query(),
        ret,
        min_length: ctx.state.config.native().password.min_length,
    }
}

pub(super) async fn reset_page(mut ctx: Ctx, query: web::Query<TokenQuery>) -> PageResult {
    if ctx.state.backend.mails_codes() {
        let ret = query.ret.validate(&ctx)?;
        let page = reset_code_view(
            &mut ctx,
            non_empty(&query.email).unwrap_or_default(),
            RESET_CODE_TEXT.into(),
            FormErrors::default(),
            ret,
        );
        return ctx.render(StatusCode::OK, &page);
    }
    let token = non_empty(&query.token)
        .ok_or_else(|| PageError::BadRequest("This link has no token.".into()))?;
    let ret = query.ret.validate(&ctx)?;
    let page = ResetPage {
        c: ctx.chrome("Choose a new password"),
        token,
        errors: FormErrors::default(),
        min_length: ctx.state.config.native().password.min_length,
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
        Ok(step) => {
            signed_in_or_second_step(&mut ctx, step, &ret, Some("Your password is changed.")).await
        }
        Err(e) => {
            let (status, errors) = code_failure(&e);
            let page = reset_code_view(&mut ctx, email_raw, RESET_CODE_TEXT.into(), errors, ret);
            ctx.render(status, &page)
        }
    }
}

pub(super) async fn reset_submit(PageForm { mut ctx, form }: PageForm<ResetForm>) -> PageResult {
    if ctx.state.backend.mails_codes() {
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
            signed_in_or_second_step(
                &mut ctx,
                step,
                &ret,
                Some("Your password is changed. Every other session was signed out."),
            )
            .await
        }
        Err(AuthError::InvalidToken) => {
            link_failed(&mut ctx, AuthError::InvalidToken, "password reset email")
        }
        Err(e) => {
            let (status, errors) = form_failure(&e);
            let page = ResetPage {
                c: ctx.chrome("Choose a new password"),
                token,
                errors,
                min_length: ctx.state.config.native().password.min_length,
                ret,
            };
            ctx.render(status, &page)
        }
    }
}
