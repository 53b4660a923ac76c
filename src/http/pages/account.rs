//! `/account`: profile, password, sessions.

use super::{Chrome, Confirmed, Ctx, FormErrors, NoFields, PageError, PageForm};
use crate::auth::UserUpdate;
use crate::domain::User;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

type PageResult = Result<HttpResponse, PageError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/account").get(account_page))
        .service(web::resource("/account/password").post(password_submit))
        .service(web::resource("/account/sessions/{id}/revoke").post(revoke_submit))
        .service(web::resource("/account/sign-out-all").post(sign_out_all_submit))
        .service(web::resource("/account/identities/{provider}/unlink").post(unlink_submit));
}

pub struct SessionRow {
    pub id: String,
    /// `<time>` HTML ([`time_tag`]).
    pub created: String,
    /// `<time>` HTML ([`time_tag`]).
    pub last_used: String,
    pub user_agent: String,
    /// "Chrome on macOS", from the User-Agent.
    pub device: String,
    pub ip: String,
    pub current: bool,
}

/// `2026-11-27 14:03 UTC`
pub fn show_time(t: impl std::borrow::Borrow<time::OffsetDateTime>) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.borrow().format(&f).unwrap_or_default()
}

/// `t` as RFC 3339 (`2026-11-27T14:03:05Z`), for `<time datetime>`.
pub fn rfc3339(t: &time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `<time datetime="2026-11-27T14:03:05Z">2026-11-27 14:03 UTC</time>`
/// (HTML, for `|safe`): the UTC text reads without JavaScript;
/// `static/local-time.js` shows it in the browser's time zone, in the
/// page's language.
pub fn time_tag(t: impl std::borrow::Borrow<time::OffsetDateTime>) -> String {
    let t = t.borrow();
    format!(r#"<time datetime="{}">{}</time>"#, rfc3339(t), show_time(t))
}

#[derive(Template)]
#[template(path = "pages/account.html")]
struct AccountPage {
    c: Chrome,
    user: User,
    identities: Vec<(String, Option<String>)>,
    sessions: Vec<SessionRow>,
    errors: FormErrors,
    /// Second factors (`/account/security`): native users only.
    security: bool,
    /// Connected apps (OpenID Connect clients the user consented to):
    /// `(client_id, name, scopes)`.
    apps: Vec<(String, String, String)>,
}

async fn render_account(mut ctx: Ctx, errors: FormErrors) -> PageResult {
    let me = ctx.require_user()?;
    let user = ctx.state.backend.get_user(&me).await?;
    // Stores without a session list (Cognito): the list is empty.
    let sessions = if ctx.state.backend.session_list().is_some() {
        ctx.state.accounts.list_sessions(&me).await?
    } else {
        Vec::new()
    };
    let tr = ctx.tr;
    let sessions = sessions
        .into_iter()
        .map(|s| SessionRow {
            device: device_name(s.user_agent.as_deref(), tr),
            id: s.id,
            created: time_tag(s.created_at),
            last_used: time_tag(s.last_used_at),
            user_agent: s.user_agent.unwrap_or_default().chars().take(80).collect(),
            ip: s.ip.unwrap_or_default(),
            current: s.current,
        })
        .collect();
    let identities = match &ctx.state.native {
        Some(n) => n.identities(&me).await?,
        None => Vec::new(),
    };
    let mut apps = Vec::new();
    if let (Some(native), Some(oidc)) = (&ctx.state.native, &ctx.state.oidc) {
        for (client_id, scopes, _) in native.provider_consents(&me.user_id).await? {
            let name = match oidc.client(&client_id).await? {
                Some(c) => c.name,
                None => client_id.clone(),
            };
            apps.push((client_id, name, scopes));
        }
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let page = AccountPage {
        c: ctx.chrome_t("account.title"),
        user,
        identities,
        sessions,
        errors,
        security: ctx.state.native.is_some(),
        apps,
    };
    ctx.render(status, &page)
}

async fn account_page(ctx: Ctx) -> PageResult {
    render_account(ctx, FormErrors::default()).await
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    current_password: Option<String>,
    password: Option<String>,
}

async fn password_submit(PageForm { mut ctx, form }: PageForm<PasswordForm>) -> PageResult {
    let me = ctx.require_user()?;
    let update = UserUpdate {
        data: None,
        password: Some(form.password.clone().unwrap_or_default()),
        current_password: form.current_password.clone().filter(|p| !p.is_empty()),
    };
    match ctx.state.accounts.update_user(&me, update, &ctx.meta).await {
        Ok(_) => {
            ctx.web
                .set_flash("ok", ctx.tr.t("account.password_changed"));
            Ok(ctx.redirect("/account"))
        }
        Err(e) if !crate::http::error::status_and_code(&e).0.is_server_error() => {
            {
                let errors = FormErrors::from_auth_in(&e, ctx.tr);
                render_account(ctx, errors)
            }
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke_submit(
    path: web::Path<String>,
    PageForm { mut ctx, form }: PageForm<Confirmed>,
) -> PageResult {
    let me = ctx.require_user()?;
    let question = ctx.tr.t("orgs.confirm_revoke_session").to_string();
    let action = format!("/account/sessions/{}/revoke", urlencode(&path));
    if let Some(ask) = ctx.confirm_first(&form, &action, question, "/account") {
        return ask;
    }
    ctx.state
        .accounts
        .revoke_session(&me, &path, &ctx.meta)
        .await?;
    ctx.web.set_flash("ok", ctx.tr.t("account.session_revoked"));
    Ok(ctx.redirect("/account"))
}

async fn sign_out_all_submit(PageForm { mut ctx, form }: PageForm<Confirmed>) -> PageResult {
    let me = ctx.require_user()?;
    let question = ctx.tr.t("orgs.confirm_sign_out_all").to_string();
    if let Some(ask) = ctx.confirm_first(&form, "/account/sign-out-all", question, "/account") {
        return ask;
    }
    ctx.state.backend.sign_out(&me, true, &ctx.meta).await?;
    Ok(ctx.sign_out())
}

async fn unlink_submit(
    path: web::Path<String>,
    PageForm { mut ctx, .. }: PageForm<NoFields>,
) -> PageResult {
    let me = ctx.require_user()?;
    let native = ctx.state.native.clone().ok_or(PageError::NotFound)?;
    match native.unlink(&me, &path, &ctx.meta).await {
        Ok(()) => {
            ctx.web.set_flash("ok", ctx.tr.t("account.unlinked"));
            Ok(ctx.redirect("/account"))
        }
        Err(e @ crate::error::AuthError::Forbidden(_)) => {
            {
                let errors = FormErrors::from_auth_in(&e, ctx.tr);
                render_account(ctx, errors)
            }
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// A session's device for people: "Chrome on macOS", "Firefox",
/// "Unknown device".
fn device_name(user_agent: Option<&str>, tr: crate::domain::i18n::Tr) -> String {
    match crate::domain::device::describe(user_agent.unwrap_or("")) {
        (Some(b), Some(os)) => tr.f("account.device_on", &[("browser", b), ("os", os)]),
        (Some(name), None) | (None, Some(name)) => name.to_string(),
        (None, None) => tr.t("account.unknown_device").to_string(),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
