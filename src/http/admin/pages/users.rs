//! The users pages: search and list, create, one user's page and its
//! actions (disable, enable, confirm, role, sign-out, mails, delete).

use super::{ActionForm, ListQuery, PageResult, admin_ctx, svc};
use crate::domain::{Email, Role};
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm};
use crate::services::admin::{AuditEventView, NewUserRequest, UserChange, UserDetail};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

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

pub(super) async fn render_users(
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

pub(super) async fn users_page(
    ctx: Ctx,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> PageResult {
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
pub(super) struct CreateUserForm {
    email: Option<String>,
    password: Option<String>,
    role: Option<String>,
    email_confirmed: Option<String>,
}

pub(super) async fn create_user_submit(
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

pub(super) async fn render_user(mut ctx: Ctx, id: &str, errors: FormErrors) -> PageResult {
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

pub(super) async fn user_page(ctx: Ctx, req: HttpRequest, path: web::Path<String>) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    render_user(ctx, &path, FormErrors::default()).await
}

pub(super) async fn user_action(
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
        "reset-mfa" => svc(&ctx)
            .reset_mfa(actor, &id)
            .await
            .map(|_| "Every second factor of this user is removed; they were told by mail."),
        "send-confirmation" => {
            crate::http::admin::api::send_mail_for(&ctx.state, actor, &id, false)
                .await
                .map(|_| "A confirmation mail is on its way.")
        }
        "send-recovery" => crate::http::admin::api::send_mail_for(&ctx.state, actor, &id, true)
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
