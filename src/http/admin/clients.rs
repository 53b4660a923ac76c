//! `/admin/clients`: the apps that sign in through derp as an OpenID
//! Connect provider. List, register (the secret is shown once), rotate a
//! secret, delete; clients from `derp.toml` are shown and changed there.

use super::pages::admin_ctx;
use crate::error::AuthError;
use crate::http::pages::{Chrome, Ctx, FormErrors, NoFields, PageError, PageForm};
use crate::services::oidc::{ClientView, NewClient};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

type PageResult = Result<HttpResponse, PageError>;

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/clients")
            .get(list_page)
            .post(create_submit),
    )
    .service(web::resource("/admin/clients/{id}/rotate").post(rotate_submit))
    .service(web::resource("/admin/clients/{id}/delete").post(delete_submit));
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ClientsPage {
    c: Chrome,
    /// Whether `[oidc_provider]` is configured.
    enabled: bool,
    clients: Vec<ClientView>,
    /// A client just made or given a new secret, with that secret.
    made: Option<(String, Option<String>)>,
    form: ClientForm,
    errors: FormErrors,
}

#[derive(Debug, Default, Deserialize)]
struct ClientForm {
    #[serde(default)]
    name: String,
    /// One URI a line.
    #[serde(default)]
    redirect_uris: String,
    public: Option<String>,
    first_party: Option<String>,
}

fn lines(raw: &str) -> Vec<String> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

async fn render(
    mut ctx: Ctx,
    made: Option<(String, Option<String>)>,
    form: ClientForm,
    errors: FormErrors,
) -> PageResult {
    let (enabled, clients) = match &ctx.state.oidc {
        Some(oidc) => (true, oidc.list_clients().await?),
        None => (false, Vec::new()),
    };
    let status = match (&made, errors.is_empty()) {
        (Some(_), _) => StatusCode::CREATED,
        (None, true) => StatusCode::OK,
        (None, false) => StatusCode::BAD_REQUEST,
    };
    let view = ClientsPage {
        c: ctx.chrome("Apps (OpenID Connect)"),
        enabled,
        clients,
        made,
        form,
        errors,
    };
    ctx.render(status, &view)
}

async fn list_page(ctx: Ctx, req: HttpRequest) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    render(ctx, None, ClientForm::default(), FormErrors::default()).await
}

fn provider(ctx: &Ctx) -> Result<std::sync::Arc<crate::services::oidc::OidcProvider>, PageError> {
    ctx.state.oidc.clone().ok_or(PageError::NotFound)
}

async fn create_submit(
    req: HttpRequest,
    PageForm { ctx, form }: PageForm<ClientForm>,
) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    let oidc = provider(&ctx)?;
    let made = oidc
        .create_client(NewClient {
            name: form.name.trim().to_string(),
            redirect_uris: lines(&form.redirect_uris),
            post_logout_redirect_uris: Vec::new(),
            scopes: None,
            public: form.public.is_some(),
            first_party: form.first_party.is_some(),
        })
        .await;
    match made {
        Ok((view, secret)) => {
            render(
                ctx,
                Some((view.client_id, secret)),
                ClientForm::default(),
                FormErrors::default(),
            )
            .await
        }
        Err(e @ AuthError::InvalidRequest { .. }) => {
            render(ctx, None, form, FormErrors::from_auth(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn rotate_submit(
    req: HttpRequest,
    path: web::Path<String>,
    PageForm { ctx, .. }: PageForm<NoFields>,
) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    let secret = provider(&ctx)?.rotate_secret(&path).await?;
    render(
        ctx,
        Some((path.into_inner(), Some(secret))),
        ClientForm::default(),
        FormErrors::default(),
    )
    .await
}

async fn delete_submit(
    req: HttpRequest,
    path: web::Path<String>,
    PageForm { ctx, form }: PageForm<super::pages::ConfirmForm>,
) -> PageResult {
    let (mut ctx, _, _) = admin_ctx(ctx, &req).await?;
    if !super::pages::ui::confirmed(&form.confirmed) {
        let k = super::pages::ui::Confirm {
            title: format!("Delete the app {}?", path.as_str()),
            consequences: vec![
                "Users can no longer sign in to this app through derp.".into(),
                "Every session signed in through it ends, and its tokens stop working.".into(),
            ],
            action: format!("/admin/clients/{}/delete", path.as_str()),
            button: "Delete app".into(),
            cancel: "/admin/clients".into(),
            ..Default::default()
        };
        return super::pages::ui::confirm_page(ctx, k);
    }
    provider(&ctx)?.delete_client(&path).await?;
    ctx.web.set_flash(
        "ok",
        format!("{} is deleted; its sessions ended.", path.as_str()),
    );
    Ok(ctx.redirect("/admin/clients"))
}
