//! `/account/security`: second factors on the hosted pages. Lists the
//! factors, enrolls TOTP (QR code rendered here as SVG, the secret as text
//! too), verifies the first code, shows the ten recovery codes once,
//! removes a factor and replaces the recovery codes; adds a passkey
//! (`static/passkeys.js` runs the browser's prompt). Native users only.

use super::{Chrome, Confirmed, Ctx, FormErrors, NoFields, PageError, PageForm};
use crate::auth::native::NativeBackend;
use crate::auth::native::mfa::FactorView;
use crate::error::AuthError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use std::sync::Arc;

type PageResult = Result<HttpResponse, PageError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/account/security").get(security_page))
        .service(web::resource("/account/security/totp").post(enroll_submit))
        .service(web::resource("/account/security/totp/verify").post(verify_submit))
        .service(web::resource("/account/security/recovery-codes").post(codes_submit))
        .service(web::resource("/account/security/passkeys").post(passkey_submit))
        .service(web::resource("/account/security/passkeys/options").post(passkey_options))
        .service(web::resource("/account/security/factors/{id}/remove").post(remove_submit));
}

const REAUTH: &str = "security.reauth";

fn native(ctx: &Ctx) -> Result<Arc<NativeBackend>, PageError> {
    ctx.state.native.clone().ok_or(PageError::NotFound)
}

pub struct FactorRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    /// `<time>` HTML.
    pub created: String,
    /// `<time>` HTML; `None` before the first use.
    pub last_used: Option<String>,
}

impl From<FactorView> for FactorRow {
    fn from(f: FactorView) -> Self {
        Self {
            id: f.id,
            kind: f.kind,
            name: f.name,
            created: super::account::time_tag(f.created_at),
            last_used: f.last_used_at.map(super::account::time_tag),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/security.html")]
struct SecurityPage {
    c: Chrome,
    factors: Vec<FactorRow>,
    codes_left: i64,
    totp_offered: bool,
    /// "Add a passkey" (needs a relying party: a domain name).
    passkeys: bool,
}

async fn security_page(mut ctx: Ctx) -> PageResult {
    let me = ctx.require_user()?;
    let native = native(&ctx)?;
    let factors = native
        .mfa_factors(&me)
        .await?
        .into_iter()
        .map(FactorRow::from)
        .collect();
    let codes_left = native.mfa_recovery_codes_left(&me).await?;
    let page = SecurityPage {
        c: ctx.chrome_t("security.title"),
        factors,
        codes_left,
        totp_offered: ctx.state.config.native().mfa.totp,
        passkeys: native.passkeys_offered(),
    };
    ctx.render(StatusCode::OK, &page)
}

/// Back to the security page with a message.
/// Back to the security page with the text of `key` as flash.
fn back(ctx: &mut Ctx, kind: &str, key: &'static str) -> PageResult {
    let text = ctx.tr.t(key);
    ctx.web.set_flash(kind, text);
    Ok(ctx.redirect("/account/security"))
}

#[derive(Template)]
#[template(path = "pages/security_totp.html")]
struct EnrollPage {
    c: Chrome,
    factor_id: String,
    secret: String,
    otpauth_url: String,
    qr_svg: String,
    errors: FormErrors,
}

/// The otpauth URL as an inline SVG QR code (no image service, no script).
pub(crate) fn qr_svg(url: &str) -> Result<String, PageError> {
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| {
        tracing::error!(error = %e, "QR code failed");
        PageError::Internal
    })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(svg
        .trim_start_matches(r#"<?xml version="1.0" standalone="yes"?>"#)
        .replacen(
            "<svg ",
            r#"<svg role="img" aria-label="QR code for your authenticator app" "#,
            1,
        ))
}

fn enroll_view(
    ctx: &mut Ctx,
    factor_id: String,
    secret: String,
    otpauth_url: String,
    errors: FormErrors,
) -> Result<EnrollPage, PageError> {
    Ok(EnrollPage {
        c: ctx.chrome_t("security.totp_setup"),
        qr_svg: qr_svg(&otpauth_url)?,
        factor_id,
        secret,
        otpauth_url,
        errors,
    })
}

#[derive(Debug, Deserialize)]
struct EnrollForm {
    name: Option<String>,
}

async fn enroll_submit(PageForm { mut ctx, form }: PageForm<EnrollForm>) -> PageResult {
    let me = ctx.require_user()?;
    match native(&ctx)?.mfa_totp_enroll(&me, form.name.clone()).await {
        Ok(e) => {
            let page = enroll_view(
                &mut ctx,
                e.factor_id,
                e.secret,
                e.otpauth_url,
                FormErrors::default(),
            )?;
            ctx.render(StatusCode::OK, &page)
        }
        Err(AuthError::ReauthenticationRequired) => back(&mut ctx, "error", REAUTH),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct VerifyForm {
    factor_id: Option<String>,
    code: Option<String>,
    /// Echoed back from the enrollment page to show it again after a wrong
    /// code; only displayed, the stored secret is what the code is checked
    /// against.
    secret: Option<String>,
    otpauth_url: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/recovery_codes.html")]
pub(crate) struct CodesPage {
    pub c: Chrome,
    pub codes: Vec<String>,
    /// Where "Done" goes.
    pub next: String,
}

async fn verify_submit(PageForm { mut ctx, form }: PageForm<VerifyForm>) -> PageResult {
    let me = ctx.require_user()?;
    let factor_id = form.factor_id.clone().unwrap_or_default();
    let code = form.code.clone().unwrap_or_default();
    match native(&ctx)?
        .mfa_totp_verify(&me, &factor_id, &code, &ctx.meta)
        .await
    {
        Ok((_, codes)) => {
            ctx.web.set_flash("ok", ctx.tr.t("security.totp_done"));
            let page = CodesPage {
                c: ctx.chrome_t("mfa.codes_title"),
                codes,
                next: "/account/security".into(),
            };
            ctx.render(StatusCode::OK, &page)
        }
        Err(e @ AuthError::InvalidRequest { .. }) => {
            let url = form
                .otpauth_url
                .clone()
                .filter(|u| u.starts_with("otpauth://totp/"))
                .unwrap_or_default();
            if url.is_empty() {
                return back(&mut ctx, "error", "security.code_wrong");
            }
            let errors = FormErrors::from_auth_in(&e, ctx.tr);
            let page = enroll_view(
                &mut ctx,
                factor_id,
                form.secret.clone().unwrap_or_default(),
                url,
                errors,
            )?;
            ctx.render(StatusCode::BAD_REQUEST, &page)
        }
        Err(AuthError::NotFound(_)) => back(&mut ctx, "error", "security.setup_expired"),
        Err(e) => Err(e.into()),
    }
}

async fn codes_submit(PageForm { mut ctx, .. }: PageForm<NoFields>) -> PageResult {
    let me = ctx.require_user()?;
    match native(&ctx)?.mfa_new_recovery_codes(&me, &ctx.meta).await {
        Ok(codes) => {
            let page = CodesPage {
                c: ctx.chrome_t("mfa.codes_title"),
                codes,
                next: "/account/security".into(),
            };
            ctx.render(StatusCode::OK, &page)
        }
        Err(AuthError::ReauthenticationRequired) => back(&mut ctx, "error", REAUTH),
        Err(AuthError::NotFound(_)) => back(&mut ctx, "error", "security.factor_first"),
        Err(e) => Err(e.into()),
    }
}

async fn remove_submit(
    path: web::Path<String>,
    PageForm { mut ctx, form }: PageForm<Confirmed>,
) -> PageResult {
    let me = ctx.require_user()?;
    let question = ctx.tr.t("orgs.confirm_remove_factor").to_string();
    let action = format!(
        "/account/security/factors/{}/remove",
        url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
    );
    if let Some(ask) = ctx.confirm_first(&form, &action, question, "/account/security") {
        return ask;
    }
    match native(&ctx)?.mfa_remove(&me, &path, &ctx.meta).await {
        Ok(()) => back(&mut ctx, "ok", "security.factor_removed"),
        Err(AuthError::ReauthenticationRequired) => back(&mut ctx, "error", REAUTH),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct PasskeyOptionsForm {
    name: Option<String>,
}

/// `POST /account/security/passkeys/options`: creation options for a new
/// passkey, as JSON for `static/passkeys.js`.
async fn passkey_options(PageForm { mut ctx, form }: PageForm<PasskeyOptionsForm>) -> PageResult {
    let me = ctx.require_user()?;
    let started = native(&ctx)?
        .passkey_register_start(&me, form.name.clone())
        .await;
    Ok(match started {
        Ok(start) => HttpResponse::Ok().json(start),
        Err(AuthError::ReauthenticationRequired) => {
            HttpResponse::Unauthorized().json(serde_json::json!({ "error": REAUTH }))
        }
        Err(e) => crate::http::pages::auth::passkey_options_error(&e, ctx.tr),
    })
}

#[derive(Debug, Deserialize)]
struct PasskeyForm {
    flow_id: Option<String>,
    credential: Option<String>,
    /// Sent along by the options step; the flow keeps the name.
    #[serde(rename = "name")]
    _name: Option<String>,
}

/// `POST /account/security/passkeys`: the browser's new credential. The
/// first factor also shows its recovery codes.
async fn passkey_submit(PageForm { mut ctx, form }: PageForm<PasskeyForm>) -> PageResult {
    let me = ctx.require_user()?;
    let Ok(credential) = serde_json::from_str(form.credential.as_deref().unwrap_or_default())
    else {
        return back(&mut ctx, "error", "security.passkey_missing");
    };
    let flow_id = form.flow_id.clone().unwrap_or_default();
    match native(&ctx)?
        .passkey_register_finish(&me, &flow_id, credential, &ctx.meta)
        .await
    {
        Ok(done) => match done.recovery_codes {
            Some(codes) => {
                let added = ctx.tr.t("security.passkey_added");
                ctx.web.set_flash("ok", added);
                let page = CodesPage {
                    c: ctx.chrome_t("mfa.codes_title"),
                    codes,
                    next: "/account/security".into(),
                };
                ctx.render(StatusCode::OK, &page)
            }
            None => back(&mut ctx, "ok", "security.passkey_added"),
        },
        Err(AuthError::InvalidToken) => back(&mut ctx, "error", "security.passkey_expired"),
        Err(e @ (AuthError::PasskeyRejected | AuthError::InvalidRequest { .. })) => {
            let text = ctx.tr.f(
                "security.passkey_not_added",
                &[("reason", &crate::http::pages::human_error(&e, ctx.tr))],
            );
            ctx.web.set_flash("error", &text);
            Ok(ctx.redirect("/account/security"))
        }
        Err(e) => Err(e.into()),
    }
}
