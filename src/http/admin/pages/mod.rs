//! `/admin`: server-rendered admin UI on the hosted pages' machinery (page
//! session, CSRF, flash). A visitor who is not signed in is sent to `/login`
//! and back; a signed-in user who is not an admin is told so (403).
//! Every destructive action shows a confirmation step first (see
//! `ui::Confirm`); deletions also ask for the name to be typed.
//! (About 480 lines: the routes and the read-only pages (overview, config,
//! audit, outbox) and the first-admin setup; users and orgs are below.)

use super::{admin_actor, is_admin};
use crate::auth::SessionInfo;
use crate::auth::secrets::hash_token;
use crate::domain::Email;
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm};
use crate::services::admin::{AdminService, AuditLine, ConfigSection, DayCount, Overview};
use crate::services::orgs::Actor;
use crate::storage::audit::AuditQuery as AuditRange;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

mod orgs;
pub mod ui;
mod users;

pub use orgs::slug_from;
use orgs::{create_org_submit, member_action, org_delete, org_page, orgs_page};
use users::{create_user_submit, user_action, user_page, users_page};

type PageResult = Result<HttpResponse, PageError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin").get(overview_page))
        .service(
            web::resource("/admin/setup")
                .get(setup_page)
                .post(setup_submit),
        )
        .service(
            web::resource("/admin/users")
                .get(users_page)
                .post(create_user_submit),
        )
        .service(web::resource("/admin/users/{id}").get(user_page))
        .service(web::resource("/admin/users/{id}/{action}").post(user_action))
        .service(
            web::resource("/admin/orgs")
                .get(orgs_page)
                .post(create_org_submit),
        )
        .service(web::resource("/admin/orgs/{id}").get(org_page))
        .service(web::resource("/admin/orgs/{id}/delete").post(org_delete))
        .service(web::resource("/admin/orgs/{id}/members/{user_id}/{action}").post(member_action))
        .service(web::resource("/admin/audit").get(audit_page))
        .service(web::resource("/admin/outbox").get(outbox_page))
        .service(web::resource("/admin/config").get(config_page));
}

/// The page context of a signed-in admin, or a redirect to `/login`.
pub(super) async fn admin_ctx(
    mut ctx: Ctx,
    req: &HttpRequest,
) -> Result<(Ctx, SessionInfo, Actor), PageError> {
    let me = match &ctx.user {
        Some(u) if is_admin(&ctx.state, u).await => u.clone(),
        Some(u) => {
            // Signed in, but not as an admin: say so, rather than ask for a sign-in.
            let who = u.email.clone().unwrap_or_else(|| "This account".into());
            return Err(PageError::Forbidden(format!(
                "{who} is not an admin of {}. Sign out and sign in with an admin account, or ask an admin to make this one an admin.",
                ctx.state.hosted().product_name
            )));
        }
        None => {
            ctx.web.set_flash(
                "info",
                "The admin pages need an admin account: please sign in.",
            );
            let to = sign_in_location(&ctx, req);
            return Err(PageError::Redirect(Box::new(ctx.redirect(&to))));
        }
    };
    let actor = admin_actor(&me, &ctx.meta);
    Ok((ctx, me, actor))
}

/// Where a browser that is not a signed-in admin goes: derp's `/login`, or
/// with Clerk its sign-in URL (Clerk signs browsers in on its own pages),
/// asked to come back to this admin page.
fn sign_in_location(ctx: &Ctx, req: &HttpRequest) -> String {
    match ctx
        .state
        .config
        .auth
        .clerk
        .as_ref()
        .and_then(|c| c.sign_in_url.clone())
    {
        Some(url) => {
            let back = format!("{}{}", ctx.state.config.public_url(), req.path());
            crate::domain::redirect::with_query(&url, &[("redirect_url", back.as_str())])
        }
        // Back to this admin page after signing in.
        None => {
            let back = format!(
                "{}{}",
                ctx.state.config.public_url(),
                req.uri()
                    .path_and_query()
                    .map_or(req.path(), |p| p.as_str())
            );
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("redirect_to", &back)
                .finish();
            format!("/login?{query}")
        }
    }
}

fn svc(ctx: &Ctx) -> &AdminService {
    &ctx.state.admin
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    c: Chrome,
    o: Overview,
    /// Addresses locked now (sign-in lockout).
    locked: i64,
    sign_ins_24h: i64,
    days: Vec<DayCount>,
    chart: String,
}

async fn overview_page(ctx: Ctx, req: HttpRequest) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let o = svc(&ctx).overview().await?;
    let locked = svc(&ctx).locked_count().await?;
    let sign_ins_24h = svc(&ctx).count_recent("sign_in", 86_400).await?;
    let days = svc(&ctx).activity(30).await?;
    let chart = ui::activity_svg(&days);
    let page = OverviewPage {
        c: ctx.chrome("Admin"),
        o,
        locked,
        sign_ins_24h,
        days,
        chart,
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "admin/config.html")]
struct ConfigPage {
    c: Chrome,
    sections: Vec<ConfigSection>,
}

async fn config_page(ctx: Ctx, req: HttpRequest) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let sections = crate::services::admin::config_summary(&ctx.state.config);
    let page = ConfigPage {
        c: ctx.chrome("Configuration"),
        sections,
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
}

impl ListQuery {
    /// The 1-based page asked for; anything else is the first.
    fn page(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|p| (1..=1_000_000).contains(p))
            .unwrap_or(1)
    }
}

/// The fields of the admin's action forms (each uses some of them).
#[derive(Debug, Deserialize)]
struct ActionForm {
    role: Option<String>,
    confirm: Option<String>,
    delete_owned_orgs: Option<String>,
    /// `yes` once the confirmation step was shown.
    confirmed: Option<String>,
}

/// The form of a destructive button: `confirmed=yes` comes from the
/// confirmation step.
#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    pub confirmed: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    /// An email, or a user id.
    user: Option<String>,
    user_id: Option<String>,
    /// A name, slug or id.
    org: Option<String>,
    org_id: Option<String>,
    action: Option<String>,
    /// `YYYY-MM-DD`, UTC.
    from: Option<String>,
    to: Option<String>,
    page: Option<String>,
}

/// The audit filter as typed, to show it again.
#[derive(Debug, Default)]
struct AuditFilterForm {
    user: String,
    org: String,
    action: String,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    c: Chrome,
    f: AuditFilterForm,
    actions: Vec<String>,
    events: Vec<AuditLine>,
    pager: ui::Pager,
    errors: FormErrors,
}

/// `YYYY-MM-DD` as the unix time of that UTC midnight.
fn parse_day(raw: &str) -> Option<i64> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &f)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

async fn audit_page(ctx: Ctx, req: HttpRequest, query: web::Query<AuditQuery>) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let q = query.into_inner();
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).unwrap_or_default();
    let f = AuditFilterForm {
        user: match clean(q.user) {
            u if u.is_empty() => clean(q.user_id),
            u => u,
        },
        org: match clean(q.org) {
            o if o.is_empty() => clean(q.org_id),
            o => o,
        },
        action: clean(q.action),
        from: clean(q.from),
        to: clean(q.to),
    };
    let mut errors = FormErrors::default();
    let mut range = AuditRange::default();
    // A filter that names nobody shows no events, with the reason beside it.
    let mut nothing = false;
    if !f.user.is_empty() {
        if f.user.contains('@') {
            match svc(&ctx).user_id_by_email(&f.user).await? {
                Some(id) => range.filter.user_id = Some(id),
                None => {
                    errors
                        .fields
                        .insert("user".into(), "No user has this email.".into());
                    nothing = true;
                }
            }
        } else {
            range.filter.user_id = Some(f.user.clone());
        }
    }
    if !f.org.is_empty() {
        match svc(&ctx).org_by_name(&f.org).await? {
            Some((id, _)) => range.filter.org_id = Some(id),
            None => {
                errors.fields.insert(
                    "org".into(),
                    "No organization has this name or slug.".into(),
                );
                nothing = true;
            }
        }
    }
    if !f.action.is_empty() {
        range.filter.action = Some(f.action.clone());
    }
    for (field, raw, slot, shift) in [
        ("from", &f.from, &mut range.from, 0),
        ("to", &f.to, &mut range.until, 86_400),
    ] {
        if raw.is_empty() {
            continue;
        }
        match parse_day(raw) {
            Some(t) => *slot = Some(t + shift),
            None => {
                errors
                    .fields
                    .insert(field.into(), "Use a date such as 2026-11-30.".into());
                nothing = true;
            }
        }
    }
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1);
    let listed = if nothing {
        crate::services::admin::Paged {
            items: Vec::new(),
            total: 0,
            page: 1,
            per_page: crate::services::admin::PER_PAGE,
        }
    } else {
        svc(&ctx).audit_console(range, page).await?
    };
    let list = ui::ListState {
        path: "/admin/audit",
        q: String::new(),
        sort: "newest",
        desc: true,
        page,
        extra: vec![
            ("user", f.user.clone()),
            ("org", f.org.clone()),
            ("action", f.action.clone()),
            ("from", f.from.clone()),
            ("to", f.to.clone()),
        ],
    };
    let pager = list.pager(&listed);
    let actions = svc(&ctx).known_actions().await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let view = AuditPage {
        c: ctx.chrome("Audit log"),
        f,
        actions,
        events: listed.items,
        pager,
        errors,
    };
    ctx.render(status, &view)
}

#[derive(Template)]
#[template(path = "admin/outbox.html")]
struct OutboxPage {
    c: Chrome,
    stats: crate::storage::outbox::OutboxStats,
    messages: Vec<crate::services::admin::OutboxMessage>,
    dev: bool,
    recent: Vec<crate::mail::Mail>,
}

async fn outbox_page(ctx: Ctx, req: HttpRequest) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let (stats, messages) = svc(&ctx).outbox(100).await?;
    let mut recent = ctx.state.mailer.recent();
    recent.reverse();
    let page = OutboxPage {
        c: ctx.chrome("Mail"),
        stats,
        messages,
        dev: ctx.state.config.email.is_none(),
        recent,
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct SetupQuery {
    token: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/setup.html")]
struct SetupPage {
    c: Chrome,
    token: String,
    email: String,
    errors: FormErrors,
}

async fn setup_page(mut ctx: Ctx, query: web::Query<SetupQuery>) -> PageResult {
    let token = query.token.clone().unwrap_or_default();
    if !svc(&ctx).setup_token_valid(&hash_token(&token)).await? {
        return Err(PageError::BadRequest("This setup link was used or has expired. Run `derp admin create --email …` on the server.".into()));
    }
    let page = SetupPage {
        c: ctx.chrome("Create the first admin"),
        token,
        email: String::new(),
        errors: FormErrors::default(),
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct SetupForm {
    token: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

async fn setup_submit(PageForm { mut ctx, form }: PageForm<SetupForm>) -> PageResult {
    let token = form.token.clone().unwrap_or_default();
    let email_raw = form.email.clone().unwrap_or_default();
    let attempt = async {
        let email = Email::parse(&email_raw).map_err(|p| AuthError::field("email", p))?;
        svc(&ctx)
            .complete_setup(
                &hash_token(&token),
                email,
                form.password.clone().unwrap_or_default(),
            )
            .await
    };
    match attempt.await {
        Ok(_) => {
            let email = Email::parse(&email_raw).map_err(|_| PageError::Internal)?;
            let step = ctx
                .state
                .accounts
                .sign_in_first_admin(email, form.password.clone().unwrap_or_default(), &ctx.meta)
                .await?;
            // The new admin has no second factor yet; were one asked for,
            // the sign-in goes through /login like any other.
            let crate::auth::SignInStep::Session(outcome) = step else {
                return Ok(ctx.redirect("/login"));
            };
            ctx.sign_in(&outcome).await?;
            ctx.web
                .set_flash("ok", "Welcome! You are derp's first admin.");
            Ok(ctx.redirect("/admin"))
        }
        Err(AuthError::InvalidToken) => Err(PageError::BadRequest(
            "This setup link was used or has expired.".into(),
        )),
        Err(e) => {
            let errors = match &e {
                AuthError::EmailExists => FormErrors { fields: [("email".into(), "A user with this email exists: use `derp admin create --email` to promote it.".into())].into(), form: None },
                other => FormErrors::from_auth(other),
            };
            let page = SetupPage {
                c: ctx.chrome("Create the first admin"),
                token,
                email: email_raw,
                errors,
            };
            ctx.render(StatusCode::BAD_REQUEST, &page)
        }
    }
}
