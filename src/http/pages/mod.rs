//! Server-rendered hosted pages (askama): sign-in, sign-up, links from mail,
//! the account and organizations. They call the same backend and services as
//! the JSON API; no rule is implemented twice. Every form carries the CSRF
//! token of the page session, every POST answers with a redirect
//! (Post/Redirect/Get) or re-renders the form with the error beside the field.
//! (About 960 lines: the page context, guards, errors and their wording that
//! every page shares, with unit tests; each page lives in a module below.)

pub mod account;
mod assets;
mod auth;
pub(crate) mod oauth;
mod oauth_cognito;
mod oidc;
mod orgs;
pub(crate) mod security;
pub mod session;

use crate::auth::{AuthOutcome, CodeGrant, SessionInfo};
use crate::domain::i18n::{self, Tr};
use crate::error::AuthError;
use crate::http::error::status_and_code;
use crate::state::AppState;
use actix_web::cookie::Key;
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use session::{Flash, WebSession};
use std::collections::BTreeMap;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(assets::routes)
        .configure(auth::routes)
        .configure(account::routes)
        .configure(security::routes)
        .configure(oidc::routes)
        .configure(orgs::routes);
}

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub product_name: String,
    pub logo_url: Option<String>,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub signed_in: Option<String>,
    /// The header links to the admin console (authorization is checked there).
    pub admin: bool,
    pub title: String,
    /// The page's language.
    pub tr: Tr,
    /// `[hosted] custom_css` is set: link `/static/custom.css`.
    pub custom_css: bool,
    /// `[auth.native.password]`, for new-password fields.
    pub password: PasswordRules,
}

/// The password policy as a new-password field shows it before anything is
/// submitted: `minlength`/`maxlength` and a hint under the field.
#[derive(Debug, Clone)]
pub struct PasswordRules {
    pub min: usize,
    pub max: usize,
    /// "At least 12 characters. Include an uppercase letter and a digit."
    pub hint: String,
}

impl PasswordRules {
    pub fn new(p: &crate::domain::password::PasswordConfig, tr: Tr) -> Self {
        let mut hint = tr.f("common.password_help", &[("n", &p.min_length.to_string())]);
        let classes: Vec<&str> = [
            (p.require_uppercase, "password.uppercase"),
            (p.require_lowercase, "password.lowercase"),
            (p.require_digit, "password.digit"),
            (p.require_special, "password.special"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, key)| tr.t(key))
        .collect();
        if let Some((last, rest)) = classes.split_last() {
            let list = if rest.is_empty() {
                last.to_string()
            } else {
                format!("{} {} {last}", rest.join(", "), tr.t("password.and"))
            };
            hint.push(' ');
            hint.push_str(&tr.f("password.classes", &[("list", &list)]));
        }
        Self {
            min: p.min_length,
            max: p.max_length,
            hint,
        }
    }
}

impl Chrome {
    /// The text of `key` in the page's language.
    pub fn t(&self, key: &'static str) -> &'static str {
        self.tr.t(key)
    }

    /// The text of `key` with `{name}` filled by `value`.
    pub fn f1(&self, key: &'static str, name: &str, value: impl std::fmt::Display) -> String {
        self.tr.f(key, &[(name, &value.to_string())])
    }

    /// The text of `key` with two placeholders filled.
    pub fn f2(
        &self,
        key: &'static str,
        n1: &str,
        v1: impl std::fmt::Display,
        n2: &str,
        v2: impl std::fmt::Display,
    ) -> String {
        self.tr
            .f(key, &[(n1, &v1.to_string()), (n2, &v2.to_string())])
    }

    /// The text of `key` with three placeholders filled.
    #[allow(clippy::too_many_arguments)]
    pub fn f3(
        &self,
        key: &'static str,
        n1: &str,
        v1: impl std::fmt::Display,
        n2: &str,
        v2: impl std::fmt::Display,
        n3: &str,
        v3: impl std::fmt::Display,
    ) -> String {
        self.tr.f(
            key,
            &[
                (n1, &v1.to_string()),
                (n2, &v2.to_string()),
                (n3, &v3.to_string()),
            ],
        )
    }

    /// The `one` or `other` form of `key` for `n`.
    pub fn plural(&self, key: &'static str, n: impl TryInto<u64>) -> String {
        self.tr.plural(key, n.try_into().unwrap_or(0))
    }

    /// An org role's name.
    pub fn role(&self, role: &str) -> &'static str {
        match role {
            "owner" => self.tr.t("role.owner"),
            "admin" => self.tr.t("role.admin"),
            _ => self.tr.t("role.member"),
        }
    }

    /// `<html lang>`.
    pub fn lang(&self) -> &'static str {
        self.tr.locale()
    }
}

/// Field errors shown beside the inputs, and the top-of-form message.
#[derive(Debug, Clone, Default)]
pub struct FormErrors {
    pub fields: BTreeMap<String, String>,
    pub form: Option<String>,
}

impl FormErrors {
    pub fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }

    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// Puts a use-case error beside its field, or on top of the form, in
    /// the use case's own English words (the admin console, which is not
    /// translated and tells operators the exact rule).
    pub fn from_auth(e: &AuthError) -> Self {
        match e {
            AuthError::InvalidRequest { fields, .. } if !fields.is_empty() => Self {
                fields: fields
                    .iter()
                    .map(|(k, v)| (k.clone(), capitalise(v)))
                    .collect(),
                form: None,
            },
            AuthError::WeakPassword(_) => Self::from_auth_in(e, Tr::default()),
            other => Self {
                fields: BTreeMap::new(),
                form: Some(english_detail(other)),
            },
        }
    }

    /// As `from_auth`, in the page's language: a field's problem is told
    /// in words of that language (see [`field_text`]), a taken email or
    /// slug beside its field, any other refusal on top of the form.
    pub fn from_auth_in(e: &AuthError, tr: Tr) -> Self {
        let one = |field: &str, text: &str| Self {
            fields: BTreeMap::from([(field.to_string(), text.to_string())]),
            form: None,
        };
        match e {
            AuthError::InvalidRequest { fields, .. } if !fields.is_empty() => Self {
                fields: fields
                    .iter()
                    .map(|(k, v)| (k.clone(), field_text(k, v, tr)))
                    .collect(),
                form: None,
            },
            AuthError::WeakPassword(reasons) => {
                let text = reasons
                    .iter()
                    .map(|r| reason_text(r, tr))
                    .collect::<Vec<_>>()
                    .join(" ");
                one("password", &text)
            }
            AuthError::EmailExists => one("email", tr.t("error.email_exists")),
            AuthError::OrgExists => one("slug", tr.t("orgs.slug_taken")),
            AuthError::MemberExists => one("email", tr.t("error.member_exists")),
            other => Self {
                fields: BTreeMap::new(),
                form: Some(human_error(other, tr)),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.form.is_none()
    }
}

/// A refusal as a person reads it, with what to do next, in `tr`'s
/// language (the API keeps its codes and terse English messages).
pub fn human_error(e: &AuthError, tr: Tr) -> String {
    match e {
        AuthError::InvalidCredentials => tr.t("error.credentials").into(),
        AuthError::EmailNotConfirmed => tr.t("error.not_confirmed").into(),
        AuthError::AccountDisabled => tr.t("error.disabled").into(),
        AuthError::PasskeyRejected => tr.t("error.passkey_rejected").into(),
        AuthError::InvalidMfaCode => tr.t("error.mfa_code").into(),
        AuthError::RateLimited { retry_after } => tr.f(
            "error.rate_limited",
            &[("wait", &wait_text(*retry_after, tr))],
        ),
        AuthError::EmailExists => tr.t("error.email_exists").into(),
        AuthError::OrgExists => tr.t("error.org_exists").into(),
        AuthError::MemberExists => tr.t("error.member_exists").into(),
        AuthError::LastOwner => tr.t("error.last_owner").into(),
        AuthError::SoleOwner(slugs) => tr.f("error.sole_owner", &[("orgs", &slugs.join(", "))]),
        AuthError::SignupDisabled => tr.t("error.signup_disabled").into(),
        AuthError::ReauthenticationRequired => tr.t("error.reauthenticate").into(),
        AuthError::MfaRequired => tr.t("error.mfa_required").into(),
        AuthError::MfaEnrollmentRequired { .. } => tr.t("error.mfa_enrollment").into(),
        AuthError::InvalidToken => tr.t("error.invalid_token").into(),
        AuthError::Unauthenticated => tr.t("error.unauthenticated").into(),
        AuthError::NotFound(_) => tr.t("error.gone").into(),
        // The use case's reason is free English text ("this is your only
        // way to sign in: set a password first"): English pages show it,
        // others a general sentence with the next step.
        AuthError::Forbidden(reason) if tr.locale() == i18n::REFERENCE => capitalise(reason),
        AuthError::Forbidden(_) => tr.t("error.forbidden_text").into(),
        AuthError::FeatureDisabled(_) => tr.t("error.feature_disabled").into(),
        AuthError::NotSupportedByBackend(_)
        | AuthError::NotConfigured(_)
        | AuthError::PasskeysUnavailable(_) => tr.t("error.unavailable").into(),
        AuthError::WeakPassword(reasons) => reasons
            .iter()
            .map(|r| reason_text(r, tr))
            .collect::<Vec<_>>()
            .join(" "),
        AuthError::InvalidRequest { fields, message } => match fields.iter().next() {
            Some((field, problem)) if field_key(field).is_some() => field_text(field, problem, tr),
            // A field no hosted form has (a provider's `state`): its name
            // and the English problem say more than a general sentence.
            Some(_) => capitalise(message),
            None => tr.t("error.invalid_request").into(),
        },
        AuthError::Upstream(_) => tr.t("error.bad_gateway_text").into(),
        AuthError::Internal(_) => tr.t("error.internal_text").into(),
    }
}

/// A use case's problem with a form field, in `tr`'s language. The use
/// cases name problems in English (the API's field messages); a page
/// tells, for each field its forms have, what the field takes: a missing
/// value is "fill in this field", anything else the field's rule. A field
/// no hosted form has keeps the English text.
pub fn field_text(field: &str, problem: &str, tr: Tr) -> String {
    if problem == "is required" || problem == "must not be empty" {
        return tr.t("field.required").into();
    }
    match field_key(field) {
        Some(key) => tr.t(key).into(),
        None => capitalise(problem),
    }
}

/// The catalogue key that says what a hosted form's field takes.
fn field_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "email" | "owner" => "field.email",
        "name" => "field.name",
        "slug" => "field.slug",
        "code" => "field.code",
        "role" => "field.role",
        "current_password" => "field.current_password",
        "confirm" => "field.confirm",
        "state" => "field.state",
        _ => return None,
    })
}

/// A refusal for the admin console: the use case's exact English words,
/// or the hosted pages' text where that says more (a lock's end).
pub fn english_detail(e: &AuthError) -> String {
    match e {
        AuthError::InvalidCredentials
        | AuthError::EmailNotConfirmed
        | AuthError::AccountDisabled
        | AuthError::PasskeyRejected
        | AuthError::InvalidMfaCode
        | AuthError::RateLimited { .. } => human_error(e, Tr::default()),
        other => capitalise(&other.to_string()),
    }
}

/// `retry_after` seconds as "12 seconds", "1 minute", "15 minutes".
fn wait_text(seconds: u64, tr: Tr) -> String {
    match seconds {
        0..=1 => tr.t("time.a_second").into(),
        2..=59 => tr.f("time.seconds", &[("n", &seconds.to_string())]),
        60..=119 => tr.t("time.a_minute").into(),
        _ => tr.f("time.minutes", &[("n", &seconds.div_ceil(60).to_string())]),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn reason_text(code: &str, tr: Tr) -> &'static str {
    match code {
        "too_short" => tr.t("error.too_short"),
        "too_long" => tr.t("error.too_long"),
        "missing_uppercase" => tr.t("error.missing_uppercase"),
        "missing_lowercase" => tr.t("error.missing_lowercase"),
        "missing_digit" => tr.t("error.missing_digit"),
        "missing_special" => tr.t("error.missing_special"),
        _ => tr.t("error.weak"),
    }
}

/// The cookie that keeps a language picked with `?lang=`.
pub const LANG_COOKIE: &str = "derp_lang";

/// The request's page context: state, page session and who is signed in.
pub struct Ctx {
    pub state: web::Data<AppState>,
    pub web: WebSession,
    pub user: Option<SessionInfo>,
    pub meta: crate::auth::RequestMeta,
    /// The page's language: `?lang=`, else the `derp_lang` cookie, else
    /// `Accept-Language`, else `[hosted] default_locale`.
    pub tr: Tr,
    /// A language picked with `?lang=` now, kept in a cookie.
    picked_lang: Option<&'static str>,
    key: Key,
}

/// A page handler's context, as an extractor. Only safe methods (GET,
/// HEAD) get one this way: a handler of a POST takes [`PageForm`], which
/// checks the form's CSRF token first, so a form handler cannot skip it.
impl FromRequest for Ctx {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                tracing::error!(
                    path = req.path(),
                    "a form handler took Ctx instead of PageForm"
                );
                return Err(PageError::Csrf);
            }
            Ctx::load(&req).await
        })
    }
}

/// A page form, read only after its `csrf_token` matched the page
/// session's: the one way a handler gets a form and the context of a POST.
/// No body, an empty one, or one without the token is 403 like a wrong token.
pub struct PageForm<T> {
    pub ctx: Ctx,
    pub form: T,
}

/// The form of a POST that is only a button (its CSRF token is all it has).
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// The form of a destructive button: `confirmed=yes` once the person said
/// so on the page [`Ctx::confirm_first`] shows.
#[derive(Debug, Deserialize)]
pub struct Confirmed {
    confirmed: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/confirm.html")]
struct ConfirmPage {
    c: Chrome,
    question: String,
    action: String,
    back: String,
}

#[derive(Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for PageForm<T> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let ctx = Ctx::load(&req).await?;
            let bytes = body
                .await
                .map_err(|e| PageError::BadRequest(format!("The form could not be read: {e}")))?;
            let form = read_form(&bytes, &ctx.web)?;
            Ok(PageForm { ctx, form })
        })
    }
}

/// A form body, read only once its `csrf_token` matched `web`'s: 403
/// (`PageError::Csrf`) without it, 400 when the fields do not fit `T`.
pub fn read_form<T: DeserializeOwned>(bytes: &[u8], web: &WebSession) -> Result<T, PageError> {
    let submitted = serde_urlencoded::from_bytes::<CsrfField>(bytes)
        .ok()
        .and_then(|f| f.csrf_token);
    if !web.csrf_ok(submitted.as_deref()) {
        return Err(PageError::Csrf);
    }
    serde_urlencoded::from_bytes::<T>(bytes)
        .map_err(|e| PageError::BadRequest(format!("The form could not be read: {e}")))
}

impl Ctx {
    async fn load(req: &HttpRequest) -> Result<Self, PageError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or(PageError::Internal)?;
        let key = Key::from(&state.cookie_key);
        let mut web = WebSession::load(req, &key);
        let mut user = match &web.sid {
            Some(sid) => state.backend.web_session(sid).await.ok(),
            None => None,
        };
        if web.sid.is_some() && user.is_none() {
            // Signed out elsewhere or expired: forget it, keep the flash.
            web = WebSession {
                flash: web.flash.take(),
                ..WebSession::anonymous()
            };
        }
        if user.is_none()
            && let Some(token) = crate::http::extract::session_cookie(req)
        {
            // Clerk signs browsers in on its own pages; its session token
            // comes in the `__session` cookie, verified like a bearer token.
            user = state.backend.authenticate(&token).await.ok();
        }
        let mut meta = crate::http::extract::request_meta(req);
        let picked_lang = web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("lang").and_then(|l| i18n::shipped(l)));
        let locale = picked_lang.unwrap_or_else(|| page_locale(req));
        meta.locale = locale.to_string();
        Ok(Self {
            state,
            web,
            user,
            meta,
            tr: Tr::new(locale),
            picked_lang,
            key,
        })
    }

    /// The signed-in user, or a redirect to `/login`.
    pub fn require_user(&mut self) -> Result<SessionInfo, PageError> {
        match &self.user {
            Some(u) => Ok(u.clone()),
            None => {
                self.web.set_flash("info", self.tr.t("mfa.sign_in_first"));
                Err(PageError::Redirect(Box::new(self.redirect("/login"))))
            }
        }
    }

    fn secure(&self) -> bool {
        self.state.config.public_url().starts_with("https://")
    }

    /// The surroundings of an English-only page (the admin console).
    pub fn chrome(&mut self, title: &str) -> Chrome {
        let mut c = self.chrome_t("nav.account");
        c.title = title.to_string();
        c.tr = Tr::default();
        c
    }

    /// A hosted page's surroundings in the request's language, its title
    /// the text of `title_key`.
    pub fn chrome_t(&mut self, title_key: &'static str) -> Chrome {
        let hosted = self.state.hosted();
        Chrome {
            product_name: hosted.product_name.clone(),
            logo_url: hosted.logo_url.clone(),
            csrf: self.web.csrf.clone(),
            flash: self.web.take_flash(),
            signed_in: self.user.as_ref().and_then(|u| u.email.clone()),
            admin: self.user.as_ref().is_some_and(|u| u.role == "admin"),
            title: self.tr.t(title_key).to_string(),
            tr: self.tr,
            custom_css: hosted.custom_css_text.is_some(),
            password: PasswordRules::new(&self.state.config.native().password, self.tr),
        }
    }

    /// Renders a page with `status`, saving the page session.
    pub fn render(
        &self,
        status: StatusCode,
        page: &impl Template,
    ) -> Result<HttpResponse, PageError> {
        let html = page.render().map_err(|e| {
            tracing::error!(error = %e, "page template failed");
            PageError::Internal
        })?;
        let mut res = HttpResponse::build(status);
        self.lang_cookie(&mut res);
        Ok(res
            .cookie(self.web.cookie(&self.key, self.secure()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(html))
    }

    /// 303 See Other to `location`, saving the page session.
    pub fn redirect(&self, location: &str) -> HttpResponse {
        let mut res = HttpResponse::SeeOther();
        self.lang_cookie(&mut res);
        res.cookie(self.web.cookie(&self.key, self.secure()))
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    }

    /// The one pattern for destructive actions (leave, remove a member,
    /// sign a session out, sign out everywhere, remove a factor): a POST
    /// without `confirmed=yes` changes nothing and answers a page asking
    /// `question`, whose button posts to `action` again, confirmed; Cancel
    /// goes to `back`. `None` once confirmed.
    pub fn confirm_first(
        &mut self,
        form: &Confirmed,
        action: &str,
        question: String,
        back: &str,
    ) -> Option<Result<HttpResponse, PageError>> {
        if form.confirmed.as_deref() == Some("yes") {
            return None;
        }
        let page = ConfirmPage {
            c: self.chrome_t("common.confirm_title"),
            question,
            action: action.to_string(),
            back: back.to_string(),
        };
        Some(self.render(StatusCode::OK, &page))
    }

    /// Keeps a language picked with `?lang=` for the next pages (a year).
    fn lang_cookie(&self, res: &mut actix_web::HttpResponseBuilder) {
        if let Some(lang) = self.picked_lang {
            res.cookie(
                actix_web::cookie::Cookie::build(LANG_COOKIE, lang)
                    .path("/")
                    .http_only(true)
                    .secure(self.secure())
                    .same_site(actix_web::cookie::SameSite::Lax)
                    .max_age(actix_web::cookie::time::Duration::days(365))
                    .finish(),
            );
        }
    }

    /// Replaces the page session with a new one for a sign-in that just
    /// happened (a fresh id and CSRF token at every sign-in); the id is the
    /// one the backend gives the page session.
    pub async fn sign_in(&mut self, outcome: &AuthOutcome) -> Result<(), PageError> {
        let sid = self.state.backend.start_web_session(outcome).await?;
        let flash = self.web.take_flash();
        self.web = WebSession::signed_in(sid, flash);
        Ok(())
    }

    /// A first factor asked for the second: keep its `mfa_token` in the
    /// page session and go to `/mfa` (with the app's return query).
    pub fn second_step(&mut self, mfa_token: &str, return_query: &str) -> HttpResponse {
        self.web.mfa = Some(mfa_token.to_string());
        self.redirect(&format!("/mfa{return_query}"))
    }

    /// A first factor of a user who must enroll a second one first: keep
    /// its `enrollment_token` in the page session and go to `/mfa/enroll`.
    pub fn enrollment_step(&mut self, enrollment_token: &str, return_query: &str) -> HttpResponse {
        self.web.mfa_enroll = Some(enrollment_token.to_string());
        self.redirect(&format!("/mfa/enroll{return_query}"))
    }

    /// What an authorization code for the signed-in browser is issued on:
    /// its page session.
    pub fn code_grant(&self) -> Option<CodeGrant<'_>> {
        match (&self.user, &self.web.sid) {
            (Some(session), Some(sid)) => Some(CodeGrant::WebSession {
                session,
                web_session_id: sid,
            }),
            _ => None,
        }
    }

    pub fn sign_out(&mut self) -> HttpResponse {
        self.web = WebSession::anonymous();
        self.web.set_flash("ok", self.tr.t("logout.done"));
        HttpResponse::SeeOther()
            .cookie(self.web.cookie(&self.key, self.secure()))
            .insert_header((header::LOCATION, "/login"))
            .finish()
    }
}

/// Errors of page handlers: an error page, or a redirect.
#[derive(Debug)]
pub enum PageError {
    Redirect(Box<HttpResponse>),
    Csrf,
    NotFound,
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    BadGateway,
    Internal,
    /// A use case said no (4xx): the page tells why in the request's
    /// language with the next step ([`human_error`]); the admin console
    /// shows the use case's English words.
    Refused(Box<AuthError>),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redirect(_) => f.write_str("redirect"),
            Self::Csrf => f.write_str("the form expired or was not sent from this site"),
            Self::NotFound => f.write_str("page not found"),
            Self::BadRequest(m) | Self::Forbidden(m) | Self::Unauthorized(m) => f.write_str(m),
            Self::BadGateway => {
                f.write_str("the sign-in provider did not answer; try again in a moment")
            }
            Self::Internal => f.write_str("something went wrong on our side"),
            Self::Refused(e) => write!(f, "{e}"),
        }
    }
}

impl From<AuthError> for PageError {
    fn from(e: AuthError) -> Self {
        match status_and_code(&e).0 {
            StatusCode::BAD_GATEWAY => Self::BadGateway,
            // The backend cannot do it: say so, it is no server fault.
            StatusCode::NOT_IMPLEMENTED => Self::Refused(Box::new(e)),
            s if s.is_server_error() => {
                tracing::error!(error = ?e, "page request failed");
                Self::Internal
            }
            _ => Self::Refused(Box::new(e)),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    status: u16,
    heading: &'a str,
    message: String,
    product_name: &'a str,
    logo_url: Option<&'a str>,
    custom_css: bool,
    tr: Tr,
}

impl PageError {
    /// The error page in `tr`'s language with the site's branding; `admin`
    /// for the console's paths (a refusal in the use case's words).
    fn page(&self, tr: Tr, hosted: &crate::config::HostedConfig, admin: bool) -> String {
        let status = self.status_code();
        let heading = tr.t(match self {
            Self::Refused(_) => match status {
                StatusCode::NOT_FOUND => "error.not_found",
                StatusCode::FORBIDDEN => "error.forbidden",
                StatusCode::UNAUTHORIZED => "error.unauthorized",
                _ => "error.bad_request",
            },
            Self::Csrf => "error.csrf",
            Self::NotFound => "error.not_found",
            Self::Forbidden(_) => "error.forbidden",
            Self::BadRequest(_) => "error.bad_request",
            Self::Unauthorized(_) => "error.unauthorized",
            Self::BadGateway => "error.bad_gateway",
            _ => "error.internal",
        });
        let message = match self {
            Self::Csrf => tr.t("error.csrf_text").to_string(),
            Self::NotFound => tr.t("error.not_found_text").to_string(),
            Self::BadGateway => tr.t("error.bad_gateway_text").to_string(),
            Self::Internal | Self::Redirect(_) => tr.t("error.internal_text").to_string(),
            Self::Refused(e) if admin => english_detail(e),
            Self::Refused(e) => human_error(e, tr),
            other => other.to_string(),
        };
        ErrorPage {
            status: status.as_u16(),
            heading,
            message,
            product_name: &hosted.product_name,
            logo_url: hosted.logo_url.as_deref(),
            custom_css: hosted.custom_css_text.is_some(),
            tr,
        }
        .render()
        .unwrap_or_else(|_| heading.to_string())
    }
}

/// The language of a page from its request, without a `?lang=` pick: the
/// `derp_lang` cookie, else `Accept-Language`, else the default.
pub fn page_locale(req: &HttpRequest) -> &'static str {
    req.cookie(LANG_COOKIE)
        .and_then(|c| i18n::shipped(c.value()))
        .unwrap_or_else(|| crate::http::extract::request_locale(req))
}

/// Middleware: an error page of a page handler, drawn again in the
/// request's language with the site's name and logo (`error_response`
/// has no request to ask).
pub async fn localised_errors(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let body = match res
        .response()
        .error()
        .and_then(|e| e.as_error::<PageError>())
    {
        Some(PageError::Redirect(_)) | None => None,
        Some(e) => {
            let req = res.request();
            let tr = Tr::new(page_locale(req));
            let hosted = req
                .app_data::<web::Data<AppState>>()
                .map(|s| s.hosted())
                .unwrap_or_default();
            let admin = req.path() == "/admin" || req.path().starts_with("/admin/");
            Some(e.page(tr, &hosted, admin))
        }
    };
    Ok(match body {
        None => res.map_into_boxed_body(),
        Some(body) => {
            let (req, mut response) = res.into_parts();
            response.headers_mut().insert(
                header::CONTENT_LANGUAGE,
                header::HeaderValue::from_static(page_locale(&req)),
            );
            let response = response.set_body(actix_web::body::BoxBody::new(body));
            actix_web::dev::ServiceResponse::new(req, response)
        }
    })
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Redirect(_) => StatusCode::SEE_OTHER,
            Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Refused(e) => match status_and_code(e).0 {
                s if s.is_client_error() => s,
                _ => StatusCode::BAD_REQUEST,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Redirect(r) = self {
            let mut out = HttpResponse::build(r.status());
            for (k, v) in r.headers() {
                out.append_header((k.clone(), v.clone()));
            }
            return out.finish();
        }
        let status = self.status_code();
        // English here; `localised_errors` draws it again for the request.
        let body = self.page(
            Tr::default(),
            &crate::config::HostedConfig::default(),
            false,
        );
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body)
    }
}

/// Query value helper: empty strings count as absent.
pub fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusals() -> Vec<AuthError> {
        vec![
            AuthError::InvalidCredentials,
            AuthError::Unauthenticated,
            AuthError::InvalidToken,
            AuthError::ReauthenticationRequired,
            AuthError::InvalidMfaCode,
            AuthError::MfaRequired,
            AuthError::MfaEnrollmentRequired {
                enrollment_token: "t".into(),
            },
            AuthError::PasskeysUnavailable("public_url is an IP address"),
            AuthError::PasskeyRejected,
            AuthError::EmailNotConfirmed,
            AuthError::AccountDisabled,
            AuthError::Forbidden("only an owner may invite an owner".into()),
            AuthError::NotFound("organization"),
            AuthError::EmailExists,
            AuthError::OrgExists,
            AuthError::MemberExists,
            AuthError::LastOwner,
            AuthError::SoleOwner(vec!["acme".into()]),
            AuthError::WeakPassword(vec!["too_short"]),
            AuthError::SignupDisabled,
            AuthError::FeatureDisabled("magic link sign-in"),
            AuthError::NotSupportedByBackend("cognito"),
            AuthError::NotConfigured("set [auth.cognito] domain"),
            AuthError::RateLimited { retry_after: 900 },
            AuthError::field("slug", "is reserved"),
            AuthError::field("email", "is required"),
            AuthError::InvalidRequest {
                message: "the form is empty".into(),
                fields: BTreeMap::new(),
            },
            AuthError::Upstream("timeout".into()),
            AuthError::Internal("disk".into()),
        ]
    }

    #[test]
    fn every_refusal_a_page_can_show_is_told_in_the_pages_language() {
        for e in refusals() {
            let en = human_error(&e, Tr::new("en"));
            for code in ["de", "fr"] {
                let text = human_error(&e, Tr::new(code));
                assert_ne!(text, en, "{e:?} in {code}");
                assert!(
                    !text.contains(&e.to_string()),
                    "{e:?} in {code} keeps the API's words: {text}"
                );
            }
        }
    }

    #[test]
    fn a_taken_email_slug_or_member_is_shown_beside_its_field() {
        let tr = Tr::new("de");
        for (e, field) in [
            (AuthError::EmailExists, "email"),
            (AuthError::OrgExists, "slug"),
            (AuthError::MemberExists, "email"),
        ] {
            let errors = FormErrors::from_auth_in(&e, tr);
            assert!(errors.has(field) && errors.form.is_none(), "{e:?}");
        }
    }

    #[test]
    fn the_password_hint_lists_the_required_classes() {
        let mut p = crate::domain::password::PasswordConfig::default();
        assert_eq!(
            PasswordRules::new(&p, Tr::new("en")).hint,
            "At least 8 characters."
        );
        p.require_uppercase = true;
        assert_eq!(
            PasswordRules::new(&p, Tr::new("en")).hint,
            "At least 8 characters. Include an uppercase letter."
        );
        p.require_lowercase = true;
        p.require_digit = true;
        p.require_special = true;
        assert_eq!(
            PasswordRules::new(&p, Tr::new("fr")).hint,
            "Au moins 8 caractères. Avec une majuscule, une minuscule, un chiffre et un caractère spécial comme ! ou #."
        );
    }
}
