//! Errors as pages show them: field errors beside inputs, refusals in the
//! page's language with the next step, and `PageError` (an error page or a
//! redirect). About 500 lines: a fifth of them are unit tests.

use super::LANG_COOKIE;
use crate::domain::i18n::{self, Tr};
use crate::error::AuthError;
use crate::http::error::status_and_code;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use std::collections::BTreeMap;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::pages::PasswordRules;

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
