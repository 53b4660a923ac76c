//! Signing in with a password at `/login`, signing out at `/logout`, and
//! starting a provider sign-in at `/oauth/{provider}`.

use super::{
    CredentialsForm, PageResult, ReturnParams, finish_sign_in, form_failure, parse_email,
    providers, signed_in_or_second_step,
};
use crate::domain::redirect::with_query;
use crate::error::AuthError;
use crate::http::oauth_flow;
use crate::http::pages::{Chrome, Ctx, FormErrors, NoFields, PageError, PageForm};
use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;

#[derive(Template)]
#[template(path = "pages/login.html")]
pub(super) struct LoginPage {
    c: Chrome,
    providers: Vec<(String, String)>,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
    magic_link: bool,
    signup: bool,
    /// The code page, after a sign-in refused for an unconfirmed email
    /// with a backend that mails codes.
    confirm_url: Option<String>,
    /// A sign-in refused for an unconfirmed email (links): offer a new one.
    resend: bool,
    /// "Sign in with a passkey" (needs a relying party: a domain name).
    passkeys: bool,
    /// The app the user signs in to, when known ("Sign in to <App>").
    app_name: Option<String>,
}

pub(super) fn login_view(
    ctx: &mut Ctx,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
) -> LoginPage {
    let native = ctx.state.config.native();
    LoginPage {
        c: ctx.chrome_t("login.title"),
        providers: providers(ctx),
        email,
        errors,
        qs: ret.query(),
        ret,
        magic_link: native.enable_magic_link && ctx.state.backend.magic_links().is_some(),
        signup: native.enable_signup,
        confirm_url: None,
        resend: false,
        passkeys: ctx
            .state
            .native
            .as_ref()
            .is_some_and(|n| n.passkeys_offered()),
        app_name: None,
    }
}

/// `login_hint` (from an OpenID Connect authorization request) prefills
/// the address.
#[derive(Debug, serde::Deserialize)]
pub(super) struct LoginHint {
    login_hint: Option<String>,
}

pub(super) async fn login_page(
    mut ctx: Ctx,
    query: web::Query<ReturnParams>,
    hint: web::Query<LoginHint>,
) -> PageResult {
    let ret = query.validate(&ctx)?;
    if let Some(clerk) = &ctx.state.config.auth.clerk {
        // Clerk keeps sign-in to its own pages.
        let target = clerk.sign_in_url.clone().ok_or(PageError::NotFound)?;
        let target = match &ret.redirect_to {
            Some(back) => with_query(&target, &[("redirect_url", back)]),
            None => target,
        };
        return Ok(ctx.redirect(&target));
    }
    if let Some(grant) = ctx.code_grant() {
        // Already signed in here: straight back to the app.
        return finish_sign_in(&ctx, grant, &ret).await;
    }
    let email = hint.into_inner().login_hint.unwrap_or_default();
    let app_name = app_name(&ctx, &ret).await;
    let mut page = login_view(&mut ctx, email, FormErrors::default(), ret);
    page.app_name = app_name;
    ctx.render(StatusCode::OK, &page)
}

/// The app a sign-in goes back to, by name: the OpenID Connect client
/// whose authorization request the sign-in returns to.
async fn app_name(ctx: &Ctx, ret: &ReturnParams) -> Option<String> {
    let back = ret.redirect_to.as_deref()?;
    let authorize = format!("{}/oauth2/authorize?", ctx.state.config.public_url());
    let query = back.strip_prefix(&authorize)?;
    let client_id = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "client_id")?
        .1
        .into_owned();
    let oidc = ctx.state.oidc.clone()?;
    oidc.client(&client_id).await.ok().flatten().map(|c| c.name)
}

pub(super) async fn login_submit(
    PageForm { mut ctx, form }: PageForm<CredentialsForm>,
) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let email_raw = form.email.clone().unwrap_or_default();
    let attempt = async {
        let email = parse_email(&form.email)?;
        let password = form.password.clone().unwrap_or_default();
        ctx.state
            .accounts
            .sign_in_with_password(email, password, &ctx.meta)
            .await
    };
    match attempt.await {
        Ok(step) => signed_in_or_second_step(&mut ctx, step, &ret, None).await,
        Err(e) => {
            let (status, errors) = form_failure(&e, ctx.tr);
            let confirm_url = (matches!(e, AuthError::EmailNotConfirmed)
                && ctx.state.backend.emailed_codes().is_some())
            .then(|| format!("/confirm{}", ret.query_with(&[("email", &email_raw)])));
            let resend = matches!(e, AuthError::EmailNotConfirmed) && confirm_url.is_none();
            let mut page = login_view(&mut ctx, email_raw, errors, ret);
            page.confirm_url = confirm_url;
            page.resend = resend;
            ctx.render(status, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "pages/logout.html")]
pub(super) struct LogoutPage {
    c: Chrome,
}

/// GET only asks: signing out is a POST with the CSRF token.
pub(super) async fn logout_page(mut ctx: Ctx) -> PageResult {
    if ctx.user.is_none() {
        return Ok(ctx.redirect("/login"));
    }
    let page = LogoutPage {
        c: ctx.chrome_t("logout.title"),
    };
    ctx.render(StatusCode::OK, &page)
}

pub(super) async fn logout_submit(PageForm { mut ctx, .. }: PageForm<NoFields>) -> PageResult {
    if let Some(user) = ctx.user.clone() {
        ctx.state.backend.sign_out(&user, false, &ctx.meta).await?;
    }
    Ok(ctx.sign_out())
}

/// `/oauth/{provider}`: starts a provider sign-in from the hosted pages,
/// keeping the app's return address.
pub(super) async fn oauth_start(
    ctx: Ctx,
    path: web::Path<String>,
    query: web::Query<ReturnParams>,
) -> PageResult {
    let ret = query.validate(&ctx)?;
    if let Some(cognito) = oauth_flow::hosted_ui(&ctx.state, &path) {
        let (url, cookie) = oauth_flow::start_hosted_ui(
            &ctx.state,
            &cognito,
            ret.redirect_to,
            ret.state,
            ret.code_challenge,
        )
        .map_err(|e| match e {
            AuthError::InvalidRequest { .. } => PageError::BadRequest(
                "Signing in with Cognito needs the application to return to: start from the application.".into(),
            ),
            other => other.into(),
        })?;
        let mut res = ctx.redirect(&url);
        let _ = res.add_cookie(&cookie);
        return Ok(res);
    }
    let oauth = oauth_flow::provider_service(&ctx.state, &path)?;
    let (url, flow) = oauth
        .start(&path, ret.redirect_to, ret.state, ret.code_challenge, None)
        .await?;
    let mut res = ctx.redirect(&url);
    let _ = res.add_cookie(&oauth_flow::flow_cookie(&ctx.state, &flow));
    Ok(res)
}
