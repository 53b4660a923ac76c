//! `/mfa`: the second step of a sign-in on the hosted pages. The first
//! factor left its `mfa_token` in the (encrypted) page session; this page
//! asks for a TOTP or recovery code and, once it passes, signs the browser
//! in and goes on to the app like any other sign-in.

use super::{PageResult, ReturnParams, form_failure, signed_in_or_second_step};
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageForm};
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "pages/mfa.html")]
struct MfaPage {
    c: Chrome,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
}

fn view(ctx: &mut Ctx, errors: FormErrors, ret: ReturnParams) -> MfaPage {
    MfaPage {
        c: ctx.chrome("Two-step verification"),
        errors,
        qs: ret.query(),
        ret,
    }
}

/// No sign-in waits for a second step: back to `/login`.
fn start_again(ctx: &mut Ctx, ret: &ReturnParams, text: &str) -> PageResult {
    ctx.web.mfa = None;
    ctx.web.set_flash("info", text);
    Ok(ctx.redirect(&format!("/login{}", ret.query())))
}

pub(super) async fn mfa_page(mut ctx: Ctx, query: web::Query<ReturnParams>) -> PageResult {
    let ret = query.validate(&ctx)?;
    if ctx.web.mfa.is_none() {
        return start_again(&mut ctx, &ret, "Please sign in first.");
    }
    let page = view(&mut ctx, FormErrors::default(), ret);
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
pub(super) struct MfaForm {
    code: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

pub(super) async fn mfa_submit(PageForm { mut ctx, form }: PageForm<MfaForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let Some(token) = ctx.web.mfa.clone() else {
        return start_again(&mut ctx, &ret, "Please sign in first.");
    };
    let code = form.code.clone().unwrap_or_default();
    let result = ctx
        .state
        .accounts
        .mfa_challenge(&token, &code, &ctx.meta)
        .await;
    match result {
        Ok(step) => {
            ctx.web.mfa = None;
            signed_in_or_second_step(&mut ctx, step, &ret, None).await
        }
        Err(AuthError::InvalidToken) => start_again(
            &mut ctx,
            &ret,
            "This sign-in expired or had too many wrong codes. Please sign in again.",
        ),
        Err(AuthError::InvalidMfaCode) => {
            let errors = FormErrors {
                fields: [(
                    "code".to_string(),
                    "This code is wrong or was already used. Try the newest code.".to_string(),
                )]
                .into(),
                form: None,
            };
            let page = view(&mut ctx, errors, ret);
            ctx.render(StatusCode::UNAUTHORIZED, &page)
        }
        Err(e) => {
            let (status, errors) = form_failure(&e);
            let page = view(&mut ctx, errors, ret);
            ctx.render(status, &page)
        }
    }
}
