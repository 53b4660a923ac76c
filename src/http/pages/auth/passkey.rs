//! Passkeys on the sign-in pages: "Sign in with a passkey" on `/login`,
//! the passkey option of the second step at `/mfa`, and "Add a passkey"
//! when a sign-in must enroll its first second factor (`/mfa/enroll`).
//! `static/passkeys.js` asks `…/options` for the WebAuthn options (a
//! CSRF-checked form post answered with JSON), runs the browser's prompt,
//! and submits the answer with the form; the sign-in then goes on like any
//! other.

use super::sign_in::login_view;
use super::{PageResult, ReturnParams, form_failure, signed_in_or_second_step};
use crate::domain::i18n::Tr;
use crate::error::AuthError;
use crate::http::pages::{FormErrors, PageForm, human_error};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::json;

/// What `…/options` answers when it cannot start: the status and a
/// sentence for the page.
pub(crate) fn options_error(e: &AuthError, tr: Tr) -> HttpResponse {
    let (status, _) = form_failure(e, tr);
    let text = match e {
        AuthError::InvalidToken => tr.t("passkey.sign_in_expired").to_string(),
        e if status.is_server_error() && !matches!(e, AuthError::PasskeysUnavailable(_)) => {
            tr.t("passkey.server_error").to_string()
        }
        e => human_error(e, tr),
    };
    HttpResponse::build(status).json(json!({ "error": text }))
}

#[derive(Debug, Deserialize)]
pub(super) struct OptionsForm {
    #[serde(flatten)]
    _ret: ReturnParams,
}

/// `POST /login/passkey/options`: options for a discoverable sign-in.
pub(super) async fn login_options(PageForm { ctx, .. }: PageForm<OptionsForm>) -> PageResult {
    match ctx
        .state
        .accounts
        .passkey_sign_in_start(None, None, &ctx.meta)
        .await
    {
        Ok(start) => Ok(HttpResponse::Ok().json(start)),
        Err(e) => Ok(options_error(&e, ctx.tr)),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct FinishForm {
    flow_id: Option<String>,
    credential: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

impl FinishForm {
    fn parts(&self) -> Result<(String, serde_json::Value), AuthError> {
        let flow_id = self.flow_id.clone().unwrap_or_default();
        let credential = serde_json::from_str(self.credential.as_deref().unwrap_or_default())
            .map_err(|_| AuthError::field("credential", "is not JSON"))?;
        Ok((flow_id, credential))
    }
}

/// `POST /login/passkey`: the browser's answer; signs in like a password
/// would (to the app, or the account).
pub(super) async fn login_finish(PageForm { mut ctx, form }: PageForm<FinishForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let attempt = async {
        let (flow_id, credential) = form.parts()?;
        ctx.state
            .accounts
            .passkey_sign_in_finish(&flow_id, credential, &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(step) => signed_in_or_second_step(&mut ctx, step, &ret, None).await,
        Err(e) => {
            let (status, mut errors) = form_failure(&e, ctx.tr);
            if matches!(e, AuthError::InvalidToken) {
                errors = FormErrors {
                    form: Some(ctx.tr.t("passkey.try_again").into()),
                    ..Default::default()
                };
            }
            let page = login_view(&mut ctx, String::new(), errors, ret);
            ctx.render(status, &page)
        }
    }
}

/// `POST /mfa/passkey/options`: options for the second step waiting in
/// the page session.
pub(super) async fn mfa_options(PageForm { ctx, .. }: PageForm<OptionsForm>) -> PageResult {
    let Some(token) = ctx.web.mfa.clone() else {
        return Ok(options_error(&AuthError::InvalidToken, ctx.tr));
    };
    match ctx
        .state
        .accounts
        .passkey_sign_in_start(None, Some(token), &ctx.meta)
        .await
    {
        Ok(start) => Ok(HttpResponse::Ok().json(start)),
        Err(e) => Ok(options_error(&e, ctx.tr)),
    }
}

/// `POST /mfa/passkey`: the passkey answers the second step.
pub(super) async fn mfa_finish(PageForm { mut ctx, form }: PageForm<FinishForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    if ctx.web.mfa.is_none() {
        return super::mfa::start_again(&mut ctx, &ret, "mfa.sign_in_first");
    }
    let attempt = async {
        let (flow_id, credential) = form.parts()?;
        ctx.state
            .accounts
            .passkey_sign_in_finish(&flow_id, credential, &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(step) => {
            ctx.web.mfa = None;
            signed_in_or_second_step(&mut ctx, step, &ret, None).await
        }
        Err(AuthError::InvalidToken) => super::mfa::start_again(&mut ctx, &ret, "mfa.expired"),
        Err(e) => {
            let (status, errors) = form_failure(&e, ctx.tr);
            super::mfa::render(&mut ctx, status, errors, ret).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct EnrollOptionsForm {
    name: Option<String>,
    #[serde(flatten)]
    _ret: ReturnParams,
}

/// `POST /mfa/enroll/passkey/options`: creation options for a passkey of
/// the sign-in waiting in the page session for its first second factor.
pub(super) async fn enroll_options(
    PageForm { ctx, form }: PageForm<EnrollOptionsForm>,
) -> PageResult {
    let (Some(token), Some(native)) = (ctx.web.mfa_enroll.clone(), ctx.state.native.clone()) else {
        return Ok(options_error(&AuthError::InvalidToken, ctx.tr));
    };
    match native.passkey_enroll_start(&token, form.name.clone()).await {
        Ok(start) => Ok(HttpResponse::Ok().json(start)),
        Err(e) => Ok(options_error(&e, ctx.tr)),
    }
}

/// `POST /mfa/enroll/passkey`: the browser's new passkey finishes the
/// enrollment and the sign-in, as a first TOTP code would.
pub(super) async fn enroll_finish(PageForm { mut ctx, form }: PageForm<FinishForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let (Some(token), Some(native)) = (ctx.web.mfa_enroll.clone(), ctx.state.native.clone()) else {
        return super::mfa::start_again(&mut ctx, &ret, "mfa.sign_in_first");
    };
    let attempt = async {
        let (flow_id, credential) = form.parts()?;
        native
            .passkey_enroll_finish(&token, &flow_id, credential, &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(v) => super::mfa::enrolled(&mut ctx, v, &ret).await,
        Err(AuthError::InvalidToken) => {
            ctx.web.mfa_enroll = None;
            super::mfa::start_again(&mut ctx, &ret, super::mfa::ENROLL_EXPIRED)
        }
        Err(e @ (AuthError::PasskeyRejected | AuthError::InvalidRequest { .. })) => {
            let text = ctx.tr.f(
                "security.passkey_not_added",
                &[("reason", &human_error(&e, ctx.tr))],
            );
            ctx.web.set_flash("error", &text);
            Ok(ctx.redirect(&format!("/mfa/enroll{}", ret.query())))
        }
        Err(e) => Err(e.into()),
    }
}
