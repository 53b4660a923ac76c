//! `/admin`: server-rendered admin UI on the hosted pages' machinery (page
//! session, CSRF, flash). Anyone who is not a signed-in admin is sent to
//! `/login`. Destructive actions ask for the name to be typed.

use super::{admin_actor, is_admin};
use crate::auth::SessionInfo;
use crate::auth::secrets::hash_token;
use crate::domain::{Email, OrgRole, Role};
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm};
use crate::services::admin::{
    AdminService, AuditEventView, NewUserRequest, Overview, UserChange, UserDetail,
};
use crate::services::orgs::{Actor, InvitationView, MemberView, OrgView};
use crate::storage::audit::AuditFilter;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

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
        .service(web::resource("/admin/orgs").get(orgs_page))
        .service(web::resource("/admin/orgs/{id}").get(org_page))
        .service(web::resource("/admin/orgs/{id}/delete").post(org_delete))
        .service(web::resource("/admin/orgs/{id}/members/{user_id}/{action}").post(member_action))
        .service(web::resource("/admin/audit").get(audit_page))
        .service(web::resource("/admin/outbox").get(outbox_page));
}

/// The page context of a signed-in admin, or a redirect to `/login`.
pub(super) async fn admin_ctx(
    mut ctx: Ctx,
    req: &HttpRequest,
) -> Result<(Ctx, SessionInfo, Actor), PageError> {
    let me = match &ctx.user {
        Some(u) if is_admin(&ctx.state, u).await => u.clone(),
        _ => {
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
        None => "/login".into(),
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
    config: String,
}

async fn overview_page(ctx: Ctx, req: HttpRequest) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let o = svc(&ctx).overview().await?;
    let locked = svc(&ctx).locked_count().await?;
    // `Secret` prints as "[redacted]": the Debug form is safe to show.
    let config = format!("{:#?}", ctx.state.config);
    let page = OverviewPage {
        c: ctx.chrome("Admin"),
        o,
        locked,
        config,
    };
    ctx.render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    c: Chrome,
    q: String,
    users: Vec<crate::domain::User>,
    next: Option<String>,
    errors: FormErrors,
    /// The upstream user store, when users do not live in derp.
    upstream: Option<&'static str>,
    can_create: bool,
}

async fn render_users(
    mut ctx: Ctx,
    q: String,
    cursor: Option<String>,
    errors: FormErrors,
) -> PageResult {
    let mut errors = errors;
    let page = match svc(&ctx).list_users(&q, cursor.as_deref(), 50).await {
        Ok(page) => page,
        // The upstream store cannot list users as configured: say why.
        Err(e @ (AuthError::NotSupportedByBackend(_) | AuthError::NotConfigured(_))) => {
            errors.form = Some(e.to_string());
            crate::services::admin::UserPage {
                users: Vec::new(),
                next_cursor: None,
            }
        }
        Err(e) => return Err(e.into()),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let view = UsersPage {
        c: ctx.chrome("Users"),
        q,
        users: page.users,
        next: page.next_cursor,
        errors,
        upstream: svc(&ctx).upstream(),
        can_create: svc(&ctx).can_create_users(),
    };
    ctx.render(status, &view)
}

async fn users_page(ctx: Ctx, req: HttpRequest, query: web::Query<ListQuery>) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    let q = query.q.clone().unwrap_or_default();
    render_users(
        ctx,
        q,
        query.cursor.clone().filter(|c| !c.is_empty()),
        FormErrors::default(),
    )
    .await
}

#[derive(Debug, Deserialize)]
struct CreateUserForm {
    email: Option<String>,
    password: Option<String>,
    role: Option<String>,
    email_confirmed: Option<String>,
}

async fn create_user_submit(
    req: HttpRequest,
    PageForm { ctx, form }: PageForm<CreateUserForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let attempt = async {
        let req = NewUserRequest {
            email: Email::parse(form.email.as_deref().unwrap_or_default())
                .map_err(|p| AuthError::field("email", p))?,
            password: form.password.clone().filter(|p| !p.is_empty()),
            role: Role::parse(form.role.as_deref().unwrap_or("default")),
            email_confirmed: form.email_confirmed.is_some(),
        };
        svc(&ctx).create_user(actor, req).await
    };
    match attempt.await {
        Ok(user) => {
            ctx.web
                .set_flash("ok", format!("{} is created.", user.email));
            Ok(ctx.redirect(&format!("/admin/users/{}", user.id)))
        }
        Err(
            e @ (AuthError::InvalidRequest { .. }
            | AuthError::WeakPassword(_)
            | AuthError::EmailExists),
        ) => {
            let errors = match e {
                AuthError::EmailExists => FormErrors {
                    fields: [("email".into(), "A user with this email exists.".into())].into(),
                    form: None,
                },
                other => FormErrors::from_auth(&other),
            };
            render_users(ctx, String::new(), None, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    c: Chrome,
    u: UserDetail,
    events: Vec<AuditEventView>,
    /// The sign-in lock on the user's address, while it lasts.
    lockout: Option<crate::services::lockouts::LockoutView>,
    errors: FormErrors,
    /// The upstream user store: role, mail and sessions are its own.
    upstream: Option<&'static str>,
}

async fn render_user(mut ctx: Ctx, id: &str, errors: FormErrors) -> PageResult {
    let u = svc(&ctx).get_user(id).await?;
    let events = u.recent_events.clone();
    let lockout = svc(&ctx).lockout_of(&u.user.email).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let page = UserPage {
        c: ctx.chrome(&u.user.email.clone()),
        u,
        events,
        lockout,
        errors,
        upstream: svc(&ctx).upstream(),
    };
    ctx.render(status, &page)
}

async fn user_page(ctx: Ctx, req: HttpRequest, path: web::Path<String>) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    render_user(ctx, &path, FormErrors::default()).await
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    role: Option<String>,
    confirm: Option<String>,
    delete_owned_orgs: Option<String>,
}

async fn user_action(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    PageForm { ctx, form }: PageForm<ActionForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let (id, action) = path.into_inner();
    let change = |c: UserChange| c;
    let result: Result<&str, AuthError> = match action.as_str() {
        "disable" => svc(&ctx)
            .update_user(
                actor,
                &id,
                change(UserChange {
                    disabled: Some(true),
                    ..Default::default()
                }),
            )
            .await
            .map(|_| "The user is disabled and signed out everywhere."),
        "enable" => svc(&ctx)
            .update_user(
                actor,
                &id,
                UserChange {
                    disabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .map(|_| "The user is enabled."),
        "confirm" => svc(&ctx)
            .update_user(
                actor,
                &id,
                UserChange {
                    email_confirmed: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map(|_| "The email is marked confirmed."),
        "role" => match Role::parse(form.role.as_deref().unwrap_or_default()) {
            Some(role) => svc(&ctx)
                .update_user(
                    actor,
                    &id,
                    UserChange {
                        role: Some(role),
                        ..Default::default()
                    },
                )
                .await
                .map(|_| "The role is set."),
            None => Err(AuthError::field("role", "is not a role")),
        },
        "sign-out" => svc(&ctx)
            .sign_out_user(actor, &id)
            .await
            .map(|_| "Every session of this user is signed out."),
        "send-confirmation" => super::api::send_mail_for(&ctx.state, actor, &id, false)
            .await
            .map(|_| "A confirmation mail is on its way."),
        "send-recovery" => super::api::send_mail_for(&ctx.state, actor, &id, true)
            .await
            .map(|_| "A password reset mail is on its way."),
        "delete" => {
            let user = svc(&ctx).get_user(&id).await?;
            if form.confirm.as_deref().map(str::trim) != Some(user.user.email.as_str()) {
                Err(AuthError::field(
                    "confirm",
                    "type the user's email to confirm",
                ))
            } else {
                match svc(&ctx)
                    .delete_user(actor, &id, form.delete_owned_orgs.is_some())
                    .await
                {
                    Ok(_) => {
                        ctx.web
                            .set_flash("ok", format!("{} is deleted.", user.user.email));
                        return Ok(ctx.redirect("/admin/users"));
                    }
                    Err(e) => Err(e),
                }
            }
        }
        _ => return Err(PageError::NotFound),
    };
    match result {
        Ok(message) => {
            ctx.web.set_flash("ok", message);
            Ok(ctx.redirect(&format!("/admin/users/{id}")))
        }
        Err(AuthError::NotFound(_)) => Err(PageError::NotFound),
        Err(
            e @ (AuthError::InvalidRequest { .. }
            | AuthError::Forbidden(_)
            | AuthError::SoleOwner(_)
            | AuthError::NotSupportedByBackend(_)
            | AuthError::NotConfigured(_)
            | AuthError::RateLimited { .. }),
        ) => {
            render_user(
                ctx,
                &id,
                FormErrors {
                    form: Some(e.to_string()),
                    ..Default::default()
                },
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/orgs.html")]
struct OrgsPage {
    c: Chrome,
    q: String,
    orgs: Vec<OrgView>,
    next: Option<String>,
}

async fn orgs_page(ctx: Ctx, req: HttpRequest, query: web::Query<ListQuery>) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let q = query.q.clone().unwrap_or_default();
    let page = svc(&ctx)
        .list_orgs(&q, query.cursor.as_deref().filter(|c| !c.is_empty()), 50)
        .await?;
    let view = OrgsPage {
        c: ctx.chrome("Organizations"),
        q,
        orgs: page.orgs,
        next: page.next_cursor,
    };
    ctx.render(StatusCode::OK, &view)
}

#[derive(Template)]
#[template(path = "admin/org.html")]
struct OrgPage {
    c: Chrome,
    org: OrgView,
    members: Vec<MemberView>,
    invitations: Vec<InvitationView>,
    events: Vec<AuditEventView>,
    errors: FormErrors,
}

async fn render_org(mut ctx: Ctx, actor: &Actor, id: &str, errors: FormErrors) -> PageResult {
    let org = ctx.state.orgs.get_any(id).await?;
    let members = ctx
        .state
        .orgs
        .members(&org.id, actor, None, 100)
        .await?
        .items;
    let invitations = ctx.state.orgs.invitations(&org.id, actor).await?;
    let filter = AuditFilter {
        org_id: Some(org.id.clone()),
        ..Default::default()
    };
    let events = svc(&ctx).audit(filter, None, 20).await?.events;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let page = OrgPage {
        c: ctx.chrome(&org.name.clone()),
        org,
        members,
        invitations,
        events,
        errors,
    };
    ctx.render(status, &page)
}

async fn org_page(ctx: Ctx, req: HttpRequest, path: web::Path<String>) -> PageResult {
    let (ctx, _, actor) = admin_ctx(ctx, &req).await?;
    render_org(ctx, &actor, &path, FormErrors::default()).await
}

async fn org_delete(
    req: HttpRequest,
    path: web::Path<String>,
    PageForm { ctx, form }: PageForm<ActionForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let org = ctx.state.orgs.get_any(&path).await?;
    if form.confirm.as_deref().map(str::trim) != Some(org.slug.as_str()) {
        let errors = FormErrors {
            form: Some("Type the slug to confirm.".into()),
            ..Default::default()
        };
        return render_org(ctx, &actor, &org.id, errors).await;
    }
    ctx.state.orgs.delete(actor, &org.id).await?;
    ctx.web.set_flash("ok", format!("{} is deleted.", org.name));
    Ok(ctx.redirect("/admin/orgs"))
}

async fn member_action(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    PageForm { ctx, form }: PageForm<ActionForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let (org_id, user_id, action) = path.into_inner();
    let result = match action.as_str() {
        "role" => match OrgRole::parse(form.role.as_deref().unwrap_or_default()) {
            Some(role) => ctx
                .state
                .orgs
                .change_role(actor.clone(), &org_id, &user_id, role)
                .await
                .map(|_| "Role changed."),
            None => Err(AuthError::field("role", "is not a role")),
        },
        "remove" => ctx
            .state
            .orgs
            .remove_member(actor.clone(), &org_id, &user_id)
            .await
            .map(|_| "Member removed."),
        _ => return Err(PageError::NotFound),
    };
    match result {
        Ok(message) => {
            ctx.web.set_flash("ok", message);
            Ok(ctx.redirect(&format!("/admin/orgs/{org_id}")))
        }
        Err(
            e @ (AuthError::LastOwner
            | AuthError::InvalidRequest { .. }
            | AuthError::NotFound("member")),
        ) => {
            render_org(
                ctx,
                &actor,
                &org_id,
                FormErrors {
                    form: Some(e.to_string()),
                    ..Default::default()
                },
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    user_id: Option<String>,
    org_id: Option<String>,
    action: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    c: Chrome,
    user_id: String,
    org_id: String,
    action: String,
    events: Vec<AuditEventView>,
    next: Option<String>,
}

async fn audit_page(ctx: Ctx, req: HttpRequest, query: web::Query<AuditQuery>) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    let q = query.into_inner();
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let filter = AuditFilter {
        user_id: clean(q.user_id),
        org_id: clean(q.org_id),
        action: clean(q.action),
    };
    let page = svc(&ctx)
        .audit(
            filter.clone(),
            q.cursor.as_deref().filter(|c| !c.is_empty()),
            100,
        )
        .await?;
    let view = AuditPage {
        c: ctx.chrome("Audit log"),
        user_id: filter.user_id.unwrap_or_default(),
        org_id: filter.org_id.unwrap_or_default(),
        action: filter.action.unwrap_or_default(),
        events: page.events,
        next: page.next_cursor,
    };
    ctx.render(StatusCode::OK, &view)
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
                .backend
                .sign_in(email, form.password.clone().unwrap_or_default(), &ctx.meta)
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
