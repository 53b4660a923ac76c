//! `/mfa`: the second step of a sign-in on the hosted pages. The first
//! factor left its `mfa_token` in the (encrypted) page session; this page
//! asks for a TOTP or recovery code (or a passkey, see `super::passkey`)
//! and, once it passes, signs the browser in and goes on to the app like
//! any other sign-in.

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
    /// The user has a passkey (and passkeys are offered): offer it.
    passkey: bool,
}

/// The second-step page, with the passkey option when the waiting user
/// has a passkey.
pub(super) async fn render(
    ctx: &mut Ctx,
    status: StatusCode,
    errors: FormErrors,
    ret: ReturnParams,
) -> PageResult {
    let passkey = match (ctx.state.native.clone(), ctx.web.mfa.clone()) {
        (Some(native), Some(token)) => native.passkey_can_finish(&token).await?,
        _ => false,
    };
    let page = MfaPage {
        c: ctx.chrome_t("mfa.title"),
        errors,
        qs: ret.query(),
        ret,
        passkey,
    };
    ctx.render(status, &page)
}

/// No sign-in waits for a second step: back to `/login`.
pub(super) fn start_again(ctx: &mut Ctx, ret: &ReturnParams, key: &'static str) -> PageResult {
    let text = ctx.tr.t(key);
    ctx.web.mfa = None;
    ctx.web.set_flash("info", text);
    Ok(ctx.redirect(&format!("/login{}", ret.query())))
}

pub(super) async fn mfa_page(mut ctx: Ctx, query: web::Query<ReturnParams>) -> PageResult {
    let ret = query.validate(&ctx)?;
    if ctx.web.mfa.is_none() {
        return start_again(&mut ctx, &ret, "mfa.sign_in_first");
    }
    render(&mut ctx, StatusCode::OK, FormErrors::default(), ret).await
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
        return start_again(&mut ctx, &ret, "mfa.sign_in_first");
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
        Err(AuthError::InvalidToken) => start_again(&mut ctx, &ret, "mfa.expired"),
        Err(AuthError::InvalidMfaCode) => {
            let errors = FormErrors {
                fields: [("code".to_string(), ctx.tr.t("mfa.code_used").to_string())].into(),
                form: None,
            };
            render(&mut ctx, StatusCode::UNAUTHORIZED, errors, ret).await
        }
        Err(e) => {
            let (status, errors) = form_failure(&e, ctx.tr);
            render(&mut ctx, status, errors, ret).await
        }
    }
}

/// `/mfa/enroll`: `[auth.native.mfa] required` and the user has no second
/// factor. The first factor left its `enrollment_token` in the page
/// session; this page sets up an authenticator app (QR code and key), and
/// its first code signs the browser in, after the recovery codes are shown.
/// Where passkeys are offered, "Add a passkey" does the same with a new
/// passkey (`super::passkey::enroll_finish`).
#[derive(Template)]
#[template(path = "pages/mfa_enroll.html")]
struct EnrollPage {
    c: Chrome,
    factor_id: String,
    secret: String,
    otpauth_url: String,
    qr_svg: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
    /// Passkeys are offered: "Add a passkey" beside the app.
    passkey: bool,
}

struct Pending {
    factor_id: String,
    secret: String,
    otpauth_url: String,
}

fn enroll_view(
    ctx: &mut Ctx,
    p: Pending,
    errors: FormErrors,
    ret: ReturnParams,
) -> Result<EnrollPage, crate::http::pages::PageError> {
    Ok(EnrollPage {
        c: ctx.chrome_t("mfa.enroll_title"),
        qr_svg: crate::http::pages::security::qr_svg(&p.otpauth_url)?,
        factor_id: p.factor_id,
        secret: p.secret,
        otpauth_url: p.otpauth_url,
        errors,
        qs: ret.query(),
        ret,
        passkey: ctx
            .state
            .native
            .as_ref()
            .is_some_and(|n| n.passkeys_offered()),
    })
}

/// A first factor enrolled at sign-in (`v`, with the completed sign-in):
/// signs the browser in and shows the recovery codes once; "Done" goes on
/// to the app through `/login`, which issues its code from this page
/// session.
pub(super) async fn enrolled(
    ctx: &mut Ctx,
    v: crate::auth::native::mfa::Verified,
    ret: &ReturnParams,
) -> PageResult {
    ctx.web.mfa_enroll = None;
    let Some(crate::auth::SignInStep::Session(outcome)) = v.step else {
        return start_again(ctx, ret, ENROLL_EXPIRED);
    };
    ctx.sign_in(&outcome).await?;
    let next = if ret.redirect_to.is_some() {
        format!("/login{}", ret.query())
    } else {
        "/account".to_string()
    };
    let page = crate::http::pages::security::CodesPage {
        c: ctx.chrome_t("mfa.codes_title"),
        codes: v.recovery_codes,
        next,
    };
    ctx.render(StatusCode::OK, &page)
}

pub(super) const ENROLL_EXPIRED: &str = "mfa.expired";

pub(super) async fn enroll_page(mut ctx: Ctx, query: web::Query<ReturnParams>) -> PageResult {
    let ret = query.validate(&ctx)?;
    let (Some(token), Some(native)) = (ctx.web.mfa_enroll.clone(), ctx.state.native.clone()) else {
        return start_again(&mut ctx, &ret, "mfa.sign_in_first");
    };
    match native.mfa_totp_enroll_with_token(&token, None).await {
        Ok(e) => {
            let pending = Pending {
                factor_id: e.factor_id,
                secret: e.secret,
                otpauth_url: e.otpauth_url,
            };
            let page = enroll_view(&mut ctx, pending, FormErrors::default(), ret)?;
            ctx.render(StatusCode::OK, &page)
        }
        Err(AuthError::InvalidToken) => {
            ctx.web.mfa_enroll = None;
            start_again(&mut ctx, &ret, ENROLL_EXPIRED)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct EnrollForm {
    factor_id: Option<String>,
    code: Option<String>,
    /// Echoed back to show the page again after a wrong code; only
    /// displayed, the stored secret is what the code is checked against.
    secret: Option<String>,
    otpauth_url: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

pub(super) async fn enroll_submit(PageForm { mut ctx, form }: PageForm<EnrollForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let (Some(token), Some(native)) = (ctx.web.mfa_enroll.clone(), ctx.state.native.clone()) else {
        return start_again(&mut ctx, &ret, "mfa.sign_in_first");
    };
    let factor_id = form.factor_id.clone().unwrap_or_default();
    let code = form.code.clone().unwrap_or_default();
    match native
        .mfa_totp_verify_with_token(&token, &factor_id, &code, &ctx.meta)
        .await
    {
        Ok(v) => enrolled(&mut ctx, v, &ret).await,
        Err(e @ AuthError::InvalidRequest { .. }) => {
            let url = form
                .otpauth_url
                .clone()
                .filter(|u| u.starts_with("otpauth://totp/"))
                .unwrap_or_default();
            if url.is_empty() {
                return Ok(ctx.redirect(&format!("/mfa/enroll{}", ret.query())));
            }
            let pending = Pending {
                factor_id,
                secret: form.secret.clone().unwrap_or_default(),
                otpauth_url: url,
            };
            let errors = FormErrors::from_auth_in(&e, ctx.tr);
            let page = enroll_view(&mut ctx, pending, errors, ret)?;
            ctx.render(StatusCode::BAD_REQUEST, &page)
        }
        Err(AuthError::NotFound(_)) => Ok(ctx.redirect(&format!("/mfa/enroll{}", ret.query()))),
        Err(AuthError::InvalidToken) => {
            ctx.web.mfa_enroll = None;
            start_again(&mut ctx, &ret, ENROLL_EXPIRED)
        }
        Err(e) => Err(e.into()),
    }
}
