//! Signing up at `/signup`, and confirming the address: the mailed link
//! (`/confirm?token=`) or, with backends that mail codes, the code form.

use super::{
    CredentialsForm, EmailForm, MessagePage, PageResult, ReturnParams, TokenActionPage, TokenForm,
    TokenQuery, code_failure, finish_sign_in, form_failure, link_failed, parse_email, providers,
    signed_in_or_second_step,
};
use crate::auth::{CodeGrant, ConfirmOutcome, SignUpOutcome, SignUpRequest};
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm, non_empty};
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;

#[derive(Template)]
#[template(path = "pages/signup.html")]
pub(super) struct SignupPage {
    c: Chrome,
    providers: Vec<(String, String)>,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
}

pub(super) fn signup_view(
    ctx: &mut Ctx,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
) -> SignupPage {
    SignupPage {
        c: ctx.chrome_t("signup.title"),
        providers: providers(ctx),
        email,
        errors,
        qs: ret.query(),
        ret,
    }
}

pub(super) async fn signup_page(mut ctx: Ctx, query: web::Query<ReturnParams>) -> PageResult {
    let ret = query.validate(&ctx)?;
    if !ctx.state.config.native().enable_signup {
        return Err(PageError::Forbidden(ctx.tr.t("signup.disabled").into()));
    }
    let page = signup_view(&mut ctx, String::new(), FormErrors::default(), ret);
    ctx.render(StatusCode::OK, &page)
}

pub(super) async fn signup_submit(
    PageForm { mut ctx, form }: PageForm<CredentialsForm>,
) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let email_raw = form.email.clone().unwrap_or_default();
    // The confirmation link comes back to our /confirm with the app's return.
    let confirmation_url = format!("{}/confirm{}", ctx.state.config.public_url(), ret.query());
    let attempt = async {
        let email = parse_email(&form.email)?;
        let req = SignUpRequest {
            email,
            password: form.password.clone().unwrap_or_default(),
            confirmation_url: Some(confirmation_url),
            data: serde_json::json!({}),
        };
        ctx.state.accounts.sign_up(req, &ctx.meta).await
    };
    match attempt.await {
        Ok(SignUpOutcome::SignedIn(outcome)) => {
            ctx.sign_in(&outcome).await?;
            if ret.redirect_to.is_none() {
                ctx.web.set_flash("ok", ctx.tr.t("signup.welcome"));
            }
            finish_sign_in(&ctx, CodeGrant::SignIn(&outcome), &ret).await
        }
        Ok(SignUpOutcome::MfaEnrollmentRequired {
            enrollment_token, ..
        }) => Ok(ctx.enrollment_step(&enrollment_token, &ret.query())),
        Ok(SignUpOutcome::ConfirmationRequired { email })
            if ctx.state.backend.emailed_codes().is_some() =>
        {
            let text = ctx.tr.f("signup.code_sent", &[("email", email.as_str())]);
            let page = confirm_code_view(
                &mut ctx,
                email.as_str().to_string(),
                text,
                FormErrors::default(),
                ret,
            );
            ctx.render(StatusCode::OK, &page)
        }
        Ok(SignUpOutcome::ConfirmationRequired { email }) => {
            let page = MessagePage {
                c: ctx.chrome_t("signup.check_email"),
                heading: ctx.tr.t("signup.check_email").into(),
                text: ctx.tr.f("signup.link_sent", &[("email", email.as_str())]),
                link: Some((
                    format!("/login{}", ret.query()),
                    ctx.tr.t("common.back_to_sign_in").into(),
                )),
            };
            ctx.render(StatusCode::OK, &page)
        }
        Err(e) => {
            let (status, errors) = form_failure(&e, ctx.tr);
            let page = signup_view(&mut ctx, email_raw, errors, ret);
            ctx.render(status, &page)
        }
    }
}

/// Mail links open a page with a button: a GET never spends a token (mail
/// scanners prefetch links), the POST does.
pub(super) async fn confirm_page(mut ctx: Ctx, query: web::Query<TokenQuery>) -> PageResult {
    let ret = query.ret.validate(&ctx)?;
    if ctx.state.backend.emailed_codes().is_some() {
        let text = ctx.tr.t(CONFIRM_CODE_TEXT).to_string();
        let page = confirm_code_view(
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
    let page = TokenActionPage {
        c: ctx.chrome_t("confirm.title"),
        heading: ctx.tr.t("confirm.title").into(),
        text: ctx.tr.t("confirm.one_click").into(),
        action: "/confirm".into(),
        button: ctx.tr.t("confirm.submit").into(),
        token,
        ret,
    };
    ctx.render(StatusCode::OK, &page)
}

pub(super) const CONFIRM_CODE_TEXT: &str = "confirm.code_text";

#[derive(Template)]
#[template(path = "pages/confirm_code.html")]
pub(super) struct ConfirmCodePage {
    c: Chrome,
    text: String,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
}

/// The sign-up code form of backends that mail codes (Cognito).
pub(super) fn confirm_code_view(
    ctx: &mut Ctx,
    email: String,
    text: String,
    errors: FormErrors,
    ret: ReturnParams,
) -> ConfirmCodePage {
    ConfirmCodePage {
        c: ctx.chrome_t("confirm.title"),
        text,
        email,
        errors,
        qs: ret.query(),
        ret,
    }
}

pub(super) async fn confirm_submit(PageForm { mut ctx, form }: PageForm<TokenForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    if ctx.state.backend.emailed_codes().is_some() {
        return confirm_code_submit(ctx, &form, ret).await;
    }
    let token = form.token.clone().unwrap_or_default();
    match ctx.state.accounts.confirm(&token, &ctx.meta).await {
        Ok(step) => {
            let flash = Some(ctx.tr.t("confirm.done"));
            signed_in_or_second_step(&mut ctx, step, &ret, flash).await
        }
        Err(e) => link_failed(&mut ctx, e, "link.expired_confirm"),
    }
}

/// `POST /confirm` with `{email, code}`: the backend's ConfirmSignUp. It may
/// sign the user in; else to `/login` (the app's return kept) with a flash.
pub(super) async fn confirm_code_submit(
    mut ctx: Ctx,
    form: &TokenForm,
    ret: ReturnParams,
) -> PageResult {
    let email_raw = form.email.clone().unwrap_or_default();
    let attempt = async {
        let email = parse_email(&form.email)?;
        let code = form.code.clone().unwrap_or_default();
        ctx.state
            .accounts
            .confirm_code(email, &code, &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(ConfirmOutcome::SignedIn(outcome)) => {
            ctx.sign_in(&outcome).await?;
            if ret.redirect_to.is_none() {
                ctx.web.set_flash("ok", ctx.tr.t("confirm.done"));
            }
            finish_sign_in(&ctx, CodeGrant::SignIn(&outcome), &ret).await
        }
        Ok(ConfirmOutcome::Confirmed { .. }) => {
            ctx.web.set_flash("ok", ctx.tr.t("confirm.done_sign_in"));
            Ok(ctx.redirect(&format!("/login{}", ret.query())))
        }
        Err(e) => {
            let (status, errors) = code_failure(&e, ctx.tr);
            let text = ctx.tr.t(CONFIRM_CODE_TEXT).to_string();
            let page = confirm_code_view(&mut ctx, email_raw, text, errors, ret);
            ctx.render(status, &page)
        }
    }
}

/// `POST /confirm/resend`: a new code (from the code page, backends that
/// mail codes) or a new link (from the sign-in page, refused for an
/// unconfirmed email); the same answer whether or not the email waits.
pub(super) async fn resend_submit(PageForm { mut ctx, form }: PageForm<EmailForm>) -> PageResult {
    if ctx.state.backend.emailed_codes().is_none() {
        return resend_link(ctx, form).await;
    }
    let ret = form.ret.validate(&ctx)?;
    let email_raw = form.email.clone().unwrap_or_default();
    let attempt = async {
        let email = parse_email(&form.email)?;
        ctx.state
            .accounts
            .resend_confirmation(email, None, &ctx.meta)
            .await
    };
    let (status, errors) = match attempt.await {
        Ok(()) => {
            ctx.web.set_flash("ok", ctx.tr.t("confirm.resent_code"));
            (StatusCode::OK, FormErrors::default())
        }
        Err(e) => form_failure(&e, ctx.tr),
    };
    let text = ctx.tr.t(CONFIRM_CODE_TEXT).to_string();
    let page = confirm_code_view(&mut ctx, email_raw, text, errors, ret);
    ctx.render(status, &page)
}

/// A new confirmation link, carrying the app the user came from.
async fn resend_link(mut ctx: Ctx, form: EmailForm) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let link_base = format!("{}/confirm{}", ctx.state.config.public_url(), ret.query());
    let attempt = async {
        let email = parse_email(&form.email)?;
        ctx.state
            .accounts
            .resend_confirmation(email, Some(link_base), &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(()) => super::check_your_email(&mut ctx, &ret, "confirm.resent_link"),
        Err(e) => {
            let (status, errors) = form_failure(&e, ctx.tr);
            let page = super::sign_in::login_view(
                &mut ctx,
                form.email.clone().unwrap_or_default(),
                errors,
                ret,
            );
            ctx.render(status, &page)
        }
    }
}
