//! The page context (`Ctx`: state, page session, who is signed in) and
//! `PageForm`, the extractor that checks a POST's CSRF token before a
//! handler sees its fields.

use super::session::WebSession;
use super::{Chrome, PageError, PasswordRules, page_locale};
use crate::auth::{AuthOutcome, CodeGrant, SessionInfo};
use crate::domain::i18n::{self, Tr};
use crate::state::AppState;
use actix_web::cookie::Key;
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

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
