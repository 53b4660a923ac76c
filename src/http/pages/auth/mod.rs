//! Sign-in, sign-up, the links from mail, sign-out, and the redirect back to
//! the app with an authorization code: the routes and what the forms share
//! here, one module per flow below.

mod magic_link;
mod mfa;
mod passkey;
mod password;
mod sign_in;
mod sign_up;

use magic_link::{magic_link_page, magic_link_submit, magic_link_verify};
pub(crate) use passkey::options_error as passkey_options_error;
use password::{forgot_page, forgot_submit, reset_page, reset_submit};
use sign_in::{login_page, login_submit, logout_page, logout_submit, oauth_start};
use sign_up::{confirm_page, confirm_submit, resend_submit, signup_page, signup_submit};

use super::{Chrome, Ctx, FormErrors, PageError, non_empty};
use crate::auth::native::valid_challenge;
use crate::auth::{CodeGrant, SignInStep};
use crate::domain::Email;
use crate::domain::i18n::Tr;
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
        )
        .service(
            web::resource("/mfa")
                .get(mfa::mfa_page)
                .post(mfa::mfa_submit),
        )
        .service(web::resource("/login/passkey").post(passkey::login_finish))
        .service(web::resource("/login/passkey/options").post(passkey::login_options))
        .service(web::resource("/mfa/passkey").post(passkey::mfa_finish))
        .service(web::resource("/mfa/passkey/options").post(passkey::mfa_options))
        .service(web::resource("/mfa/enroll/passkey").post(passkey::enroll_finish))
        .service(web::resource("/mfa/enroll/passkey/options").post(passkey::enroll_options))
        .service(
            web::resource("/mfa/enroll")
                .get(mfa::enroll_page)
                .post(mfa::enroll_submit),
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
        .accounts
        .issue_code(grant, target, ret.code_challenge.clone())
        .await?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &ret.state {
        pairs.push(("state", s.as_str()));
    }
    Ok(ctx.redirect(&with_query(target, &pairs)))
}

/// What a way in gave, on the pages: signed in (the page session starts,
/// `flash` is kept when the browser stays here, then on to the app or the
/// account), or the second step at `/mfa`.
async fn signed_in_or_second_step(
    ctx: &mut Ctx,
    step: SignInStep,
    ret: &ReturnParams,
    flash_key: Option<&'static str>,
) -> PageResult {
    if let Some(key) = flash_key
        && ret.redirect_to.is_none()
    {
        let text = ctx.tr.t(key);
        ctx.web.set_flash("ok", text);
    }
    match step {
        SignInStep::Session(outcome) => {
            ctx.sign_in(&outcome).await?;
            finish_sign_in(ctx, CodeGrant::SignIn(&outcome), ret).await
        }
        SignInStep::MfaRequired(challenge) => {
            Ok(ctx.second_step(&challenge.mfa_token, &ret.query()))
        }
        SignInStep::MfaEnrollmentRequired { enrollment_token } => {
            Ok(ctx.enrollment_step(&enrollment_token, &ret.query()))
        }
    }
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
fn form_failure(e: &AuthError, tr: Tr) -> (StatusCode, FormErrors) {
    let status = crate::http::error::status_and_code(e).0;
    if status.is_server_error() {
        tracing::error!(error = ?e, "form submission failed");
        let errors = FormErrors {
            form: Some(tr.t("error.internal_text").into()),
            ..Default::default()
        };
        return (status, errors);
    }
    (status, FormErrors::from_auth_in(e, tr))
}

#[derive(Template)]
#[template(path = "pages/message.html")]
pub struct MessagePage {
    pub c: Chrome,
    pub heading: String,
    pub text: String,
    pub link: Option<(String, String)>,
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

#[derive(Debug, Deserialize)]
struct TokenForm {
    token: Option<String>,
    /// `email` and `code` instead of `token` with a backend that mails codes.
    email: Option<String>,
    code: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
}

/// A failed code form: a wrong, used or expired code goes beside `code`.
fn code_failure(e: &AuthError, tr: Tr) -> (StatusCode, FormErrors) {
    if matches!(e, AuthError::InvalidToken) {
        let errors = FormErrors {
            fields: [("code".to_string(), tr.t("link.code_wrong").to_string())].into(),
            form: None,
        };
        return (StatusCode::BAD_REQUEST, errors);
    }
    form_failure(e, tr)
}

/// An expired or used link; `what_key` says what to ask for instead.
fn link_failed(ctx: &mut Ctx, e: AuthError, what_key: &'static str) -> PageResult {
    match e {
        AuthError::InvalidToken => {
            let page = MessagePage {
                c: ctx.chrome_t("link.expired_title"),
                heading: ctx.tr.t("link.expired_heading").into(),
                text: ctx.tr.t(what_key).into(),
                link: Some(("/login".into(), ctx.tr.t("common.go_to_sign_in").into())),
            };
            ctx.render(StatusCode::BAD_REQUEST, &page)
        }
        other => Err(other.into()),
    }
}

#[derive(Debug, Deserialize)]
struct EmailForm {
    email: Option<String>,
    #[serde(flatten)]
    ret: ReturnParams,
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

/// The "check your email" page, its text the text of `key`.
fn check_your_email(ctx: &mut Ctx, ret: &ReturnParams, key: &'static str) -> PageResult {
    let text = ctx.tr.t(key);
    let page = MessagePage {
        c: ctx.chrome_t("signup.check_email"),
        heading: ctx.tr.t("signup.check_email").into(),
        text: text.into(),
        link: Some((
            format!("/login{}", ret.query()),
            ctx.tr.t("common.back_to_sign_in").into(),
        )),
    };
    ctx.render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_form_errors_name_their_field() {
        // A wrong, used or expired code (CodeMismatch, ExpiredCode, …).
        let (status, errors) = code_failure(&AuthError::InvalidToken, Tr::default());
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(errors.has("code") && errors.form.is_none());
        // A malformed code.
        let (_, errors) = code_failure(
            &AuthError::field("code", "is not a confirmation code"),
            Tr::default(),
        );
        assert!(errors.has("code"));
        // The pool's password policy (InvalidPasswordException).
        let (status, errors) =
            code_failure(&AuthError::WeakPassword(vec!["pool_policy"]), Tr::default());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(errors.has("password") && !errors.has("code"));
        // A bad email.
        let (_, errors) = code_failure(
            &AuthError::field("email", "is not an email address"),
            Tr::default(),
        );
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
