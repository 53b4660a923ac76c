//! The users pages: search and list, create, one user's page and its
//! actions (disable, enable, confirm, role, sign-out, mails, delete).

use super::ui::{Confirm, ListState, Pager, confirm_page, confirmed};
use super::{ActionForm, ListQuery, PageResult, admin_ctx, svc};
use crate::domain::{Email, Role};
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, PageError, PageForm};
use crate::services::admin::{AuditLine, NewUserRequest, UserChange, UserDetail};
use crate::storage::users::UserSort;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    c: Chrome,
    list: ListState,
    users: Vec<crate::domain::User>,
    /// Native users: totals and pages both ways.
    pager: Option<Pager>,
    /// Upstream users: the store's cursor to the next page.
    next: Option<String>,
    form: CreateUserValues,
    errors: FormErrors,
    /// The upstream user store, when users do not live in derp.
    upstream: Option<&'static str>,
    can_create: bool,
}

/// The new-user form as typed (the password is never shown again).
#[derive(Debug, Default)]
pub(super) struct CreateUserValues {
    email: String,
    role: String,
    email_confirmed: bool,
}

fn user_sort(raw: Option<&str>) -> (&'static str, UserSort) {
    match raw {
        Some("email") => ("email", UserSort::Email),
        Some("last_sign_in") => ("last_sign_in", UserSort::LastSignIn),
        _ => ("created", UserSort::Created),
    }
}

pub(super) async fn render_users(
    mut ctx: Ctx,
    query: &ListQuery,
    form: CreateUserValues,
    errors: FormErrors,
) -> PageResult {
    let mut errors = errors;
    let q = query.q.clone().unwrap_or_default();
    let (sort_key, sort) = user_sort(query.sort.as_deref());
    // Newest first unless asked otherwise.
    let desc = query.dir.as_deref() != Some("asc");
    let list = ListState {
        path: "/admin/users",
        q: q.clone(),
        sort: sort_key,
        desc,
        page: query.page(),
        extra: Vec::new(),
    };
    let (users, pager, next) = if svc(&ctx).upstream().is_none() {
        let page = svc(&ctx)
            .users_console(&q, sort, desc, query.page())
            .await?;
        let pager = list.pager(&page);
        (page.items, Some(pager), None)
    } else {
        let cursor = query.cursor.clone().filter(|c| !c.is_empty());
        match svc(&ctx).list_users(&q, cursor.as_deref(), 50).await {
            Ok(page) => (page.users, None, page.next_cursor),
            // The upstream store cannot list users as configured: say why.
            Err(e @ (AuthError::NotSupportedByBackend(_) | AuthError::NotConfigured(_))) => {
                errors.form = Some(e.to_string());
                (Vec::new(), None, None)
            }
            Err(e) => return Err(e.into()),
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let view = UsersPage {
        c: ctx.chrome("Users"),
        list,
        users,
        pager,
        next,
        form,
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
    render_users(
        ctx,
        &query,
        CreateUserValues::default(),
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
            let kept = CreateUserValues {
                email: form.email.clone().unwrap_or_default(),
                role: form.role.clone().unwrap_or_default(),
                email_confirmed: form.email_confirmed.is_some(),
            };
            let query = ListQuery::default();
            render_users(ctx, &query, kept, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    c: Chrome,
    u: UserDetail,
    events: Vec<AuditLine>,
    /// The sign-in lock on the user's address, while it lasts.
    lockout: Option<crate::services::lockouts::LockoutView>,
    errors: FormErrors,
    /// The upstream user store: role, mail and sessions are its own.
    upstream: Option<&'static str>,
}

pub(super) async fn render_user(mut ctx: Ctx, id: &str, errors: FormErrors) -> PageResult {
    let u = svc(&ctx).get_user(id).await?;
    let events = svc(&ctx).name_events(u.recent_events.clone()).await?;
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
    if matches!(
        action.as_str(),
        "disable" | "sign-out" | "reset-mfa" | "delete"
    ) && !(confirmed(&form.confirmed) && (action != "delete" || form.confirm.is_some()))
    {
        let u = svc(&ctx).get_user(&id).await?;
        return confirm_page(ctx, user_confirmation(&u, &action, &form));
    }
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
                let mut k = user_confirmation(&user, "delete", &form);
                k.error = Some(format!(
                    "Type {} exactly to delete this user.",
                    user.user.email
                ));
                return confirm_page(ctx, k);
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

/// The confirmation step of a destructive action on a user: what it does.
fn user_confirmation(u: &UserDetail, action: &str, form: &ActionForm) -> Confirm {
    let email = &u.user.email;
    let sessions = u.sessions.len();
    let cancel = format!("/admin/users/{}", u.user.id);
    let post = format!("/admin/users/{}/{action}", u.user.id);
    let ended = if sessions == 1 {
        "Their active session ends at once; apps using its tokens lose access.".to_string()
    } else {
        format!(
            "Their {sessions} active sessions end at once; apps using their tokens lose access."
        )
    };
    match action {
        "disable" => Confirm {
            title: format!("Disable {email}?"),
            consequences: vec![
                format!("{email} can no longer sign in until enabled again."),
                ended,
            ],
            action: post,
            button: "Disable user".into(),
            cancel,
            ..Default::default()
        },
        "sign-out" => Confirm {
            title: format!("Sign {email} out everywhere?"),
            consequences: vec![ended, "They can sign in again at once.".into()],
            action: post,
            button: "Sign out everywhere".into(),
            cancel,
            ..Default::default()
        },
        "reset-mfa" => Confirm {
            title: format!("Remove every second factor of {email}?"),
            consequences: vec![
                format!(
                    "Their {} second factor{} stop working; signing in needs only the password until they add one.",
                    u.factors.len(),
                    if u.factors.len() == 1 { "" } else { "s" }
                ),
                "They are told by mail.".into(),
            ],
            action: post,
            button: "Remove second factors".into(),
            cancel,
            ..Default::default()
        },
        _ => {
            let also = form.delete_owned_orgs.is_some();
            let owned: Vec<String> = u
                .orgs
                .iter()
                .filter(|o| o.role.as_str() == "owner")
                .map(|o| o.org.name.clone())
                .collect();
            let mut consequences = vec![
                format!("{email} and their profile are deleted; this cannot be undone."),
                ended,
                format!(
                    "They leave their {} organization{}.",
                    u.orgs.len(),
                    if u.orgs.len() == 1 { "" } else { "s" }
                ),
            ];
            if !owned.is_empty() {
                consequences.push(if also {
                    format!(
                        "Organizations they alone own are deleted too (they own: {}).",
                        owned.join(", ")
                    )
                } else {
                    format!(
                        "If they are the only owner of an organization ({}), the deletion is refused.",
                        owned.join(", ")
                    )
                });
            }
            Confirm {
                title: format!("Delete {email}?"),
                consequences,
                action: post,
                fields: if also {
                    vec![("delete_owned_orgs".into(), "true".into())]
                } else {
                    Vec::new()
                },
                button: "Delete user".into(),
                cancel,
                type_to_confirm: Some(email.clone()),
                error: None,
            }
        }
    }
}
