//! `/admin/webhooks`: the console's list, one endpoint's page and its forms.

use super::delivery_id;
use crate::error::AuthError;
use crate::http::admin::pages::admin_ctx;
use crate::http::admin::pages::ui::{Confirm, confirm_page, confirmed};
use crate::http::pages::{Chrome, Ctx, FormErrors, NoFields, PageError, PageForm};
use crate::services::webhooks::{DeliveryView, EndpointChange, EndpointView, WithSecret};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

type PageResult = Result<HttpResponse, PageError>;

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/webhooks")
            .get(list_page)
            .post(create_submit),
    )
    .service(web::resource("/admin/webhooks/{id}").get(endpoint_page))
    .service(web::resource("/admin/webhooks/{id}/edit").post(edit_submit))
    .service(web::resource("/admin/webhooks/{id}/rotate").post(rotate_submit))
    .service(web::resource("/admin/webhooks/{id}/delete").post(delete_submit))
    .service(web::resource("/admin/webhooks/{id}/test").post(test_submit))
    .service(
        web::resource("/admin/webhooks/{id}/deliveries/{delivery}/retry").post(redeliver_submit),
    );
}

/// Event patterns typed in one box: separated by commas or spaces.
fn patterns(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct ListPage {
    c: Chrome,
    endpoints: Vec<EndpointView>,
    name: String,
    url: String,
    events: String,
    errors: FormErrors,
}

async fn render_list(mut ctx: Ctx, form: Option<&CreateForm>, errors: FormErrors) -> PageResult {
    let endpoints = ctx.state.webhooks.list().await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let view = ListPage {
        c: ctx.chrome("Webhooks"),
        endpoints,
        name: form.map(|f| f.name.clone()).unwrap_or_default(),
        url: form.map(|f| f.url.clone()).unwrap_or_default(),
        events: form.map_or_else(|| "*".to_string(), |f| f.events.clone()),
        errors,
    };
    ctx.render(status, &view)
}

async fn list_page(ctx: Ctx, req: HttpRequest) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    render_list(ctx, None, FormErrors::default()).await
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    name: String,
    url: String,
    events: String,
}

#[derive(Template)]
#[template(path = "admin/webhook.html")]
struct EndpointPage {
    c: Chrome,
    e: EndpointView,
    deliveries: Vec<DeliveryView>,
    /// A secret just made: shown this once.
    secret: Option<String>,
    events: String,
    errors: FormErrors,
}

async fn render_endpoint(
    mut ctx: Ctx,
    id: &str,
    secret: Option<String>,
    errors: FormErrors,
) -> PageResult {
    let e = ctx.state.webhooks.get(id).await?;
    let (deliveries, _) = ctx.state.webhooks.deliveries(&e.id, None, 50).await?;
    let status = match (&secret, errors.is_empty()) {
        (Some(_), _) => StatusCode::CREATED,
        (None, true) => StatusCode::OK,
        (None, false) => StatusCode::BAD_REQUEST,
    };
    let view = EndpointPage {
        c: ctx.chrome(&format!("Webhook {}", e.name)),
        events: e.events.join(", "),
        e,
        deliveries,
        secret,
        errors,
    };
    ctx.render(status, &view)
}

async fn create_submit(
    req: HttpRequest,
    PageForm { ctx, form }: PageForm<CreateForm>,
) -> PageResult {
    let (ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let events = patterns(&form.events);
    let made = ctx
        .state
        .webhooks
        .create(
            actor,
            form.name.clone(),
            form.url.trim().to_string(),
            Some(events),
        )
        .await;
    match made {
        Ok(WithSecret { endpoint, secret }) => {
            render_endpoint(ctx, &endpoint.id, Some(secret), FormErrors::default()).await
        }
        Err(e @ AuthError::InvalidRequest { .. }) => {
            render_list(ctx, Some(&form), FormErrors::from_auth(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn endpoint_page(ctx: Ctx, req: HttpRequest, path: web::Path<String>) -> PageResult {
    let (ctx, _, _) = admin_ctx(ctx, &req).await?;
    render_endpoint(ctx, &path, None, FormErrors::default()).await
}

#[derive(Debug, Deserialize)]
struct EditForm {
    url: String,
    events: String,
}

async fn edit_submit(
    req: HttpRequest,
    path: web::Path<String>,
    PageForm { ctx, form }: PageForm<EditForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let change = EndpointChange {
        url: Some(form.url.trim().to_string()),
        events: Some(patterns(&form.events)),
    };
    match ctx.state.webhooks.update(actor, &path, change).await {
        Ok(e) => {
            ctx.web.set_flash("ok", "Endpoint saved.");
            Ok(ctx.redirect(&format!("/admin/webhooks/{}", e.id)))
        }
        Err(e @ (AuthError::InvalidRequest { .. } | AuthError::Forbidden(_))) => {
            render_endpoint(ctx, &path, None, FormErrors::from_auth(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn rotate_submit(
    req: HttpRequest,
    path: web::Path<String>,
    PageForm { ctx, .. }: PageForm<NoFields>,
) -> PageResult {
    let (ctx, _, actor) = admin_ctx(ctx, &req).await?;
    match ctx.state.webhooks.rotate_secret(actor, &path).await {
        Ok(WithSecret { endpoint, secret }) => {
            render_endpoint(ctx, &endpoint.id, Some(secret), FormErrors::default()).await
        }
        Err(e @ AuthError::Forbidden(_)) => {
            render_endpoint(ctx, &path, None, FormErrors::from_auth(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_submit(
    req: HttpRequest,
    path: web::Path<String>,
    PageForm { ctx, form }: PageForm<crate::http::admin::pages::ConfirmForm>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    if !confirmed(&form.confirmed) {
        let e = ctx.state.webhooks.get(&path).await?;
        let k = Confirm {
            title: format!("Delete the webhook {}?", e.name),
            consequences: vec![
                format!("{} stops receiving events.", e.url),
                format!(
                    "Its {} pending deliveries are dropped; its delivery history goes with it.",
                    e.deliveries.pending
                ),
            ],
            action: format!("/admin/webhooks/{}/delete", e.id),
            button: "Delete endpoint".into(),
            cancel: format!("/admin/webhooks/{}", e.id),
            ..Default::default()
        };
        return confirm_page(ctx, k);
    }
    match ctx.state.webhooks.delete(actor, &path).await {
        Ok(()) => {
            ctx.web.set_flash("ok", "Endpoint deleted.");
            Ok(ctx.redirect("/admin/webhooks"))
        }
        Err(e @ AuthError::Forbidden(_)) => {
            render_endpoint(ctx, &path, None, FormErrors::from_auth(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn test_submit(
    req: HttpRequest,
    path: web::Path<String>,
    PageForm { ctx, .. }: PageForm<NoFields>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let id = ctx.state.webhooks.send_test(actor, &path).await?;
    ctx.web
        .set_flash("ok", format!("A test event ({id}) is on its way."));
    Ok(ctx.redirect(&format!("/admin/webhooks/{}", path.as_str())))
}

async fn redeliver_submit(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    PageForm { ctx, .. }: PageForm<NoFields>,
) -> PageResult {
    let (mut ctx, _, actor) = admin_ctx(ctx, &req).await?;
    let (id, delivery) = path.into_inner();
    let delivery = delivery_id(&delivery)?;
    let queued = ctx.state.webhooks.redeliver(actor, &id, delivery).await?;
    ctx.web.set_flash(
        "ok",
        format!("Queued again ({}, same webhook-id).", queued.webhook_id),
    );
    Ok(ctx.redirect(&format!("/admin/webhooks/{id}")))
}
