//! Sign-in, sign-up, the links from mail, sign-out, and the redirect back to
//! the app with an authorization code.

use super::{Chrome, Ctx, FormErrors, NoFields, PageError, PageForm, non_empty};
use crate::auth::native::valid_challenge;
use crate::auth::{CodeGrant, ConfirmOutcome, SignUpOutcome, SignUpRequest};
use crate::domain::Email;
use crate::domain::redirect::with_query;
use crate::error::AuthError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

type PageResult = Result<HttpResponse, PageError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").get(login_page).post(login_submit))
        .service(web::resource("/oauth/{provider}").get(oauth_start))
        .service(
            web::resource("/signup")
                .get(signup_page)
                .post(signup_submit),
        )
        .service(
            web::resource("/confirm")
                .get(confirm_page)
                .post(confirm_submit),
        )
        .service(web::resource("/confirm/resend").post(resend_submit))
        .service(
            web::resource("/magic-link")
                .get(magic_link_page)
                .post(magic_link_submit),
        )
        .service(web::resource("/magic-link/verify").post(magic_link_verify))
        .service(
            web::resource("/forgot-password")
                .get(forgot_page)
                .post(forgot_submit),
        )
        .service(
            web::resource("/reset-password")
                .get(reset_page)
                .post(reset_submit),
        )
        .service(
            web::resource("/logout")
                .get(logout_page)
                .post(logout_submit),
        );
}

/// Where to send the browser after sign-in: an app (with a code) or one of
/// derp's own pages. Carried through the forms as hidden fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReturnParams {
    pub redirect_to: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

impl ReturnParams {
    fn cleaned(&self) -> Self {
        Self {
            redirect_to: non_empty(&self.redirect_to),
            state: non_empty(&self.state),
            code_challenge: non_empty(&self.code_challenge),
            code_challenge_method: non_empty(&self.code_challenge_method),
        }
    }

    /// Refuses (with a page, never a redirect) anything not allow-listed.
    pub fn validate(&self, ctx: &Ctx) -> Result<Self, PageError> {
        let r = self.cleaned();
        if let Some(url) = &r.redirect_to
            && !ctx.state.allowed.is_allowed(url)
        {
            return Err(PageError::BadRequest(
                "This application's return address is not allowed here (see [hosted] allowed_redirect_urls).".into(),
            ));
        }
        if r.redirect_to.is_none() && (r.state.is_some() || r.code_challenge.is_some()) {
            return Err(PageError::BadRequest(
                "state and code_challenge need a redirect_to.".into(),
            ));
        }
        if let Some(m) = &r.code_challenge_method
            && m != "S256"
        {
            return Err(PageError::BadRequest(
                "Only the S256 code challenge method is supported.".into(),
            ));
        }
        if let Some(c) = &r.code_challenge
            && !valid_challenge(c)
        {
            return Err(PageError::BadRequest(
                "The code challenge is not a valid S256 challenge.".into(),
            ));
        }
        Ok(r)
    }

    /// `?redirect_to=…&state=…` to carry between pages (empty when none).
    pub fn query(&self) -> String {
        self.query_with(&[])
    }

    /// [`Self::query`] with `extra` pairs first.
    pub fn query_with(&self, extra: &[(&str, &str)]) -> String {
        let pairs: Vec<(&str, &str)> = extra
            .iter()
            .copied()
            .chain(
                [
                    ("redirect_to", &self.redirect_to),
                    ("state", &self.state),
                    ("code_challenge", &self.code_challenge),
                    ("code_challenge_method", &self.code_challenge_method),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.as_deref().map(|v| (k, v))),
            )
            .collect();
        if pairs.is_empty() {
            return String::new();
        }
        let mut s = url::form_urlencoded::Serializer::new(String::from("?"));
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish().replacen("?&", "?", 1)
    }
}

/// After a successful sign-in: to the app with a fresh code, to one of our
/// own pages, or to the account.
pub async fn finish_sign_in(ctx: &Ctx, grant: CodeGrant<'_>, ret: &ReturnParams) -> PageResult {
    let Some(target) = &ret.redirect_to else {
        return Ok(ctx.redirect("/account"));
    };
    let own = target.starts_with(&format!("{}/", ctx.state.config.public_url()));
    if own && ret.code_challenge.is_none() && ret.state.is_none() {
        return Ok(ctx.redirect(target));
    }
    let code = ctx
        .state
        .backend
        .issue_code(grant, target, ret.code_challenge.clone())
        .await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &ret.state {
        pairs.push(("state", s.as_str()));
    }
    Ok(ctx.redirect(&with_query(target, &pairs)))
}

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage {
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
}

fn login_view(ctx: &mut Ctx, email: String, errors: FormErrors, ret: ReturnParams) -> LoginPage {
    let native = ctx.state.config.native();
    LoginPage {
        c: ctx.chrome("Sign in"),
        providers: providers(ctx),
        email,
        errors,
        qs: ret.query(),
        ret,
        magic_link: native.enable_magic_link,
        signup: native.enable_signup,
        confirm_url: None,
    }
}

async fn login_page(mut ctx: Ctx, query: web::Query<ReturnParams>) -> PageResult {
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
    let page = login_view(&mut ctx, String::new(), FormErrors::default(), ret);
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct CredentialsForm {
    email: Option<String>,
    password: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

fn parse_email(raw: &Option<String>) -> Result<Email, AuthError> {
    Email::parse(raw.as_deref().unwrap_or_default()).map_err(|p| AuthError::field("email", p))
}

/// A failed form: its status, and the errors beside the fields.
fn form_failure(e: &AuthError) -> (StatusCode, FormErrors) {
    let status = crate::http::error::status_and_code(e).0;
    if status.is_server_error() {
        tracing::error!(error = ?e, "form submission failed");
        let errors = FormErrors {
            form: Some("Something went wrong on our side. Please try again.".into()),
            ..Default::default()
        };
        return (status, errors);
    }
    (status, FormErrors::from_auth(e))
}

async fn login_submit(PageForm { mut ctx, form }: PageForm<CredentialsForm>) -> PageResult {
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
        Ok(outcome) => {
            ctx.sign_in(&outcome).await?;
            finish_sign_in(&ctx, CodeGrant::SignIn(&outcome), &ret).await
        }
        Err(e) => {
            let (status, errors) = form_failure(&e);
            let confirm_url = (matches!(e, AuthError::EmailNotConfirmed)
                && ctx.state.backend.mails_codes())
            .then(|| format!("/confirm{}", ret.query_with(&[("email", &email_raw)])));
            let mut page = login_view(&mut ctx, email_raw, errors, ret);
            page.confirm_url = confirm_url;
            ctx.render(status, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "pages/signup.html")]
struct SignupPage {
    c: Chrome,
    providers: Vec<(String, String)>,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
    min_length: usize,
}

fn signup_view(ctx: &mut Ctx, email: String, errors: FormErrors, ret: ReturnParams) -> SignupPage {
    SignupPage {
        c: ctx.chrome("Create your account"),
        providers: providers(ctx),
        email,
        errors,
        qs: ret.query(),
        ret,
        min_length: ctx.state.config.native().password.min_length,
    }
}

async fn signup_page(mut ctx: Ctx, query: web::Query<ReturnParams>) -> PageResult {
    let ret = query.validate(&ctx)?;
    if !ctx.state.config.native().enable_signup {
        return Err(PageError::Forbidden("Sign-up is disabled.".into()));
    }
    let page = signup_view(&mut ctx, String::new(), FormErrors::default(), ret);
    ctx.render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "pages/message.html")]
pub struct MessagePage {
    pub c: Chrome,
    pub heading: String,
    pub text: String,
    pub link: Option<(String, String)>,
}

async fn signup_submit(PageForm { mut ctx, form }: PageForm<CredentialsForm>) -> PageResult {
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
                ctx.web.set_flash("ok", "Welcome! Your account is ready.");
            }
            finish_sign_in(&ctx, CodeGrant::SignIn(&outcome), &ret).await
        }
        Ok(SignUpOutcome::ConfirmationRequired { email }) if ctx.state.backend.mails_codes() => {
            let text = format!(
                "We sent a code to {email}. Enter it to confirm your address and finish signing up."
            );
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
                c: ctx.chrome("Check your email"),
                heading: "Check your email".into(),
                text: format!(
                    "We sent a link to {email}. Open it to confirm your address and finish signing up."
                ),
                link: Some((format!("/login{}", ret.query()), "Back to sign in".into())),
            };
            ctx.render(StatusCode::OK, &page)
        }
        Err(e) => {
            let (status, errors) = form_failure(&e);
            let page = signup_view(&mut ctx, email_raw, errors, ret);
            ctx.render(status, &page)
        }
    }
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
    /// Prefills the code pages (backends that mail codes).
    email: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

#[derive(Template)]
#[template(path = "pages/token_action.html")]
struct TokenActionPage {
    c: Chrome,
    heading: String,
    text: String,
    action: String,
    button: String,
    token: String,
    ret: ReturnParams,
}

/// Mail links open a page with a button: a GET never spends a token (mail
/// scanners prefetch links), the POST does.
async fn confirm_page(mut ctx: Ctx, query: web::Query<TokenQuery>) -> PageResult {
    let ret = query.ret.validate(&ctx)?;
    if ctx.state.backend.mails_codes() {
        let page = confirm_code_view(
            &mut ctx,
            non_empty(&query.email).unwrap_or_default(),
            CONFIRM_CODE_TEXT.into(),
            FormErrors::default(),
            ret,
        );
        return ctx.render(StatusCode::OK, &page);
    }
    let token = non_empty(&query.token)
        .ok_or_else(|| PageError::BadRequest("This link has no token.".into()))?;
    let page = TokenActionPage {
        c: ctx.chrome("Confirm your email"),
        heading: "Confirm your email".into(),
        text: "One click and your address is confirmed.".into(),
        action: "/confirm".into(),
        button: "Confirm my email".into(),
        token,
        ret,
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    token: Option<String>,
    /// `email` and `code` instead of `token` with a backend that mails codes.
    email: Option<String>,
    code: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

const CONFIRM_CODE_TEXT: &str =
    "Enter the code we emailed you to confirm your address and finish signing up.";

#[derive(Template)]
#[template(path = "pages/confirm_code.html")]
struct ConfirmCodePage {
    c: Chrome,
    text: String,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
}

/// The sign-up code form of backends that mail codes (Cognito).
fn confirm_code_view(
    ctx: &mut Ctx,
    email: String,
    text: String,
    errors: FormErrors,
    ret: ReturnParams,
) -> ConfirmCodePage {
    ConfirmCodePage {
        c: ctx.chrome("Confirm your email"),
        text,
        email,
        errors,
        qs: ret.query(),
        ret,
    }
}

/// A failed code form: a wrong, used or expired code goes beside `code`.
fn code_failure(e: &AuthError) -> (StatusCode, FormErrors) {
    if matches!(e, AuthError::InvalidToken) {
        let errors = FormErrors {
            fields: [(
                "code".to_string(),
                "This code is wrong or has expired. Check the newest email, or ask for a new code."
                    .to_string(),
            )]
            .into(),
            form: None,
        };
        return (StatusCode::BAD_REQUEST, errors);
    }
    form_failure(e)
}

fn link_failed(ctx: &mut Ctx, e: AuthError, what: &str) -> PageResult {
    match e {
        AuthError::InvalidToken => {
            let page = MessagePage {
                c: ctx.chrome("Link expired"),
                heading: "This link has expired or was already used".into(),
                text: format!("Ask for a new {what} and use the newest link."),
                link: Some(("/login".into(), "Go to sign in".into())),
            };
            ctx.render(StatusCode::BAD_REQUEST, &page)
        }
        other => Err(other.into()),
    }
}

async fn confirm_submit(PageForm { mut ctx, form }: PageForm<TokenForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    if ctx.state.backend.mails_codes() {
        return confirm_code_submit(ctx, &form, ret).await;
    }
    let token = form.token.clone().unwrap_or_default();
    match ctx.state.accounts.confirm(&token, &ctx.meta).await {
        Ok(outcome) => {
            ctx.sign_in(&outcome).await?;
            if ret.redirect_to.is_none() {
                ctx.web.set_flash("ok", "Your email address is confirmed.");
            }
            finish_sign_in(&ctx, CodeGrant::SignIn(&outcome), &ret).await
        }
        Err(e) => link_failed(&mut ctx, e, "confirmation email"),
    }
}

/// `POST /confirm` with `{email, code}`: the backend's ConfirmSignUp. It may
/// sign the user in; else to `/login` (the app's return kept) with a flash.
async fn confirm_code_submit(mut ctx: Ctx, form: &TokenForm, ret: ReturnParams) -> PageResult {
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
                ctx.web.set_flash("ok", "Your email address is confirmed.");
            }
            finish_sign_in(&ctx, CodeGrant::SignIn(&outcome), &ret).await
        }
        Ok(ConfirmOutcome::Confirmed { .. }) => {
            ctx.web.set_flash(
                "ok",
                "Your email address is confirmed. Sign in to continue.",
            );
            Ok(ctx.redirect(&format!("/login{}", ret.query())))
        }
        Err(e) => {
            let (status, errors) = code_failure(&e);
            let page =
                confirm_code_view(&mut ctx, email_raw, CONFIRM_CODE_TEXT.into(), errors, ret);
            ctx.render(status, &page)
        }
    }
}

/// `POST /confirm/resend` from the code page: a new code (backends that
/// mail codes); the same answer whether or not the email waits for one.
async fn resend_submit(PageForm { mut ctx, form }: PageForm<EmailForm>) -> PageResult {
    if !ctx.state.backend.mails_codes() {
        return Err(PageError::NotFound);
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
            ctx.web.set_flash(
                "ok",
                "If this address is waiting for confirmation, a new code is on its way.",
            );
            (StatusCode::OK, FormErrors::default())
        }
        Err(e) => form_failure(&e),
    };
    let page = confirm_code_view(&mut ctx, email_raw, CONFIRM_CODE_TEXT.into(), errors, ret);
    ctx.render(status, &page)
}

#[derive(Template)]
#[template(path = "pages/email_form.html")]
struct EmailFormPage {
    c: Chrome,
    heading: String,
    text: String,
    action: String,
    button: String,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
}

fn magic_form(
    ctx: &mut Ctx,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
) -> EmailFormPage {
    EmailFormPage {
        c: ctx.chrome("Sign in with a link"),
        heading: "Sign in with a link".into(),
        text: "We will email you a link that signs you in.".into(),
        action: "/magic-link".into(),
        button: "Email me a link".into(),
        email,
        errors,
        qs: ret.query(),
        ret,
    }
}

async fn magic_link_page(mut ctx: Ctx, query: web::Query<TokenQuery>) -> PageResult {
    if !ctx.state.config.native().enable_magic_link {
        return Err(PageError::NotFound);
    }
    let ret = query.ret.validate(&ctx)?;
    if let Some(token) = non_empty(&query.token) {
        let page = TokenActionPage {
            c: ctx.chrome("Sign in"),
            heading: "Sign in".into(),
            text: "Use this link to sign in on this browser.".into(),
            action: "/magic-link/verify".into(),
            button: "Sign me in".into(),
            token,
            ret,
        };
        return ctx.render(StatusCode::OK, &page);
    }
    let page = magic_form(&mut ctx, String::new(), FormErrors::default(), ret);
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct EmailForm {
    email: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

fn check_your_email(ctx: &mut Ctx, ret: &ReturnParams, text: &str) -> PageResult {
    let page = MessagePage {
        c: ctx.chrome("Check your email"),
        heading: "Check your email".into(),
        text: text.into(),
        link: Some((format!("/login{}", ret.query()), "Back to sign in".into())),
    };
    ctx.render(StatusCode::OK, &page)
}

async fn magic_link_submit(PageForm { mut ctx, form }: PageForm<EmailForm>) -> PageResult {
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
        Ok(()) => check_your_email(
            &mut ctx,
            &ret,
            "If this address can sign in here, a sign-in link is on its way.",
        ),
        Err(e) => {
            let (status, errors) = form_failure(&e);
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

async fn magic_link_verify(PageForm { mut ctx, form }: PageForm<TokenForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let token = form.token.clone().unwrap_or_default();
    match ctx
        .state
        .accounts
        .verify_magic_link(&token, &ctx.meta)
        .await
    {
        Ok(outcome) => {
            ctx.sign_in(&outcome).await?;
            finish_sign_in(&ctx, CodeGrant::SignIn(&outcome), &ret).await
        }
        Err(e) => link_failed(&mut ctx, e, "sign-in link"),
    }
}

fn forgot_form(
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

async fn forgot_page(mut ctx: Ctx, query: web::Query<ReturnParams>) -> PageResult {
    let ret = query.validate(&ctx)?;
    let page = forgot_form(&mut ctx, String::new(), FormErrors::default(), ret);
    ctx.render(StatusCode::OK, &page)
}

async fn forgot_submit(PageForm { mut ctx, form }: PageForm<EmailForm>) -> PageResult {
    let ret = form.ret.validate(&ctx)?;
    let attempt = async {
        let email = parse_email(&form.email)?;
        ctx.state
            .accounts
            .recover_password(email, None, &ctx.meta)
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
struct ResetPage {
    c: Chrome,
    token: String,
    errors: FormErrors,
    min_length: usize,
}

const RESET_CODE_TEXT: &str = "If an account uses this address, we emailed it a code. Enter the code and choose a new password.";

#[derive(Template)]
#[template(path = "pages/reset_code.html")]
struct ResetCodePage {
    c: Chrome,
    text: String,
    email: String,
    errors: FormErrors,
    ret: ReturnParams,
    qs: String,
    min_length: usize,
}

/// The password reset form of backends that mail codes (Cognito).
fn reset_code_view(
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

async fn reset_page(mut ctx: Ctx, query: web::Query<TokenQuery>) -> PageResult {
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
    let page = ResetPage {
        c: ctx.chrome("Choose a new password"),
        token,
        errors: FormErrors::default(),
        min_length: ctx.state.config.native().password.min_length,
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct ResetForm {
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
async fn reset_code_submit(mut ctx: Ctx, form: &ResetForm) -> PageResult {
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
        Ok(outcome) => {
            ctx.sign_in(&outcome).await?;
            if ret.redirect_to.is_none() {
                ctx.web.set_flash("ok", "Your password is changed.");
            }
            finish_sign_in(&ctx, CodeGrant::SignIn(&outcome), &ret).await
        }
        Err(e) => {
            let (status, errors) = code_failure(&e);
            let page = reset_code_view(&mut ctx, email_raw, RESET_CODE_TEXT.into(), errors, ret);
            ctx.render(status, &page)
        }
    }
}

async fn reset_submit(PageForm { mut ctx, form }: PageForm<ResetForm>) -> PageResult {
    if ctx.state.backend.mails_codes() {
        return reset_code_submit(ctx, &form).await;
    }
    let token = form.token.clone().unwrap_or_default();
    let password = form.password.clone().unwrap_or_default();
    match ctx
        .state
        .accounts
        .reset_password(&token, password, &ctx.meta)
        .await
    {
        Ok(outcome) => {
            ctx.sign_in(&outcome).await?;
            ctx.web.set_flash(
                "ok",
                "Your password is changed. Every other session was signed out.",
            );
            Ok(ctx.redirect("/account"))
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
            };
            ctx.render(status, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "pages/logout.html")]
struct LogoutPage {
    c: Chrome,
}

/// GET only asks: signing out is a POST with the CSRF token.
async fn logout_page(mut ctx: Ctx) -> PageResult {
    if ctx.user.is_none() {
        return Ok(ctx.redirect("/login"));
    }
    let page = LogoutPage {
        c: ctx.chrome("Sign out"),
    };
    ctx.render(StatusCode::OK, &page)
}

async fn logout_submit(PageForm { mut ctx, .. }: PageForm<NoFields>) -> PageResult {
    if let Some(user) = ctx.user.clone() {
        ctx.state.backend.sign_out(&user, false, &ctx.meta).await?;
    }
    Ok(ctx.sign_out())
}

/// `(name, display name)` of the configured sign-in providers (Cognito's
/// hosted UI with the Cognito backend and a `domain`).
fn providers(ctx: &Ctx) -> Vec<(String, String)> {
    let mut list = ctx
        .state
        .oauth
        .as_ref()
        .map(|o| o.providers())
        .unwrap_or_default();
    if ctx
        .state
        .cognito
        .as_ref()
        .is_some_and(|c| c.hosted_ui_enabled())
    {
        list.push((
            crate::auth::cognito::PROVIDER.to_string(),
            crate::auth::cognito::hosted_ui::DISPLAY_NAME.to_string(),
        ));
    }
    list
}

/// `/oauth/{provider}`: starts a provider sign-in from the hosted pages,
/// keeping the app's return address.
async fn oauth_start(
    ctx: Ctx,
    path: web::Path<String>,
    query: web::Query<ReturnParams>,
) -> PageResult {
    let ret = query.validate(&ctx)?;
    if let Some(cognito) = crate::http::api::oauth_cognito::hosted_ui(&ctx.state, &path) {
        let (url, cookie) = crate::http::api::oauth_cognito::start(
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
    let oauth = crate::http::api::oauth::provider_service(&ctx.state, &path)?;
    let (url, flow) = oauth
        .start(&path, ret.redirect_to, ret.state, ret.code_challenge, None)
        .await?;
    let mut res = ctx.redirect(&url);
    let _ = res.add_cookie(&crate::http::api::oauth::flow_cookie(&ctx.state, &flow));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_form_errors_name_their_field() {
        // A wrong, used or expired code (CodeMismatch, ExpiredCode, …).
        let (status, errors) = code_failure(&AuthError::InvalidToken);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(errors.has("code") && errors.form.is_none());
        // A malformed code.
        let (_, errors) = code_failure(&AuthError::field("code", "is not a confirmation code"));
        assert!(errors.has("code"));
        // The pool's password policy (InvalidPasswordException).
        let (status, errors) = code_failure(&AuthError::WeakPassword(vec!["pool_policy"]));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(errors.has("password") && !errors.has("code"));
        // A bad email.
        let (_, errors) = code_failure(&AuthError::field("email", "is not an email address"));
        assert!(errors.has("email"));
    }

    #[test]
    fn the_return_query_takes_extra_pairs_first() {
        let ret = ReturnParams {
            redirect_to: Some("https://app.example.com/cb".into()),
            state: Some("s 1".into()),
            ..Default::default()
        };
        assert_eq!(
            ret.query_with(&[("email", "a@example.com")]),
            "?email=a%40example.com&redirect_to=https%3A%2F%2Fapp.example.com%2Fcb&state=s+1"
        );
        assert_eq!(ReturnParams::default().query(), "");
        assert_eq!(
            ReturnParams::default().query_with(&[("email", "a@example.com")]),
            "?email=a%40example.com"
        );
    }
}
