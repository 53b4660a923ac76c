//! Webhook endpoints: `/api/v1/admin/webhooks` (JSON) and `/admin/webhooks`
//! (pages): endpoints with their health, recent deliveries, "send again",
//! "send a test event", and for endpoints made here, edit, rotate and delete.

use super::api::AdminCaller;
use super::pages::admin_ctx;
use super::pages::ui::{Confirm, confirm_page, confirmed};
use crate::error::AuthError;
use crate::http::api::orgs::PageQuery;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::openapi::Errors;
use crate::http::pages::{Chrome, Ctx, FormErrors, NoFields, PageError, PageForm};
use crate::services::webhooks::{DeliveryView, EndpointChange, EndpointView, Health, WithSecret};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

type ApiResult = Result<HttpResponse, ApiError>;
type PageResult = Result<HttpResponse, PageError>;

pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/webhooks").get(list).post(create))
        .service(
            web::resource("/webhooks/{id}")
                .get(get)
                .patch(update)
                .delete(delete),
        )
        .service(web::resource("/webhooks/{id}/rotate-secret").post(rotate_secret))
        .service(web::resource("/webhooks/{id}/test").post(send_test))
        .service(web::resource("/webhooks/{id}/deliveries").get(deliveries))
        .service(web::resource("/webhooks/{id}/deliveries/{delivery}/retry").post(redeliver));
}

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

// ------------------------------------------------------------------- JSON

#[derive(ToSchema)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

#[derive(ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

#[derive(ToSchema)]
pub struct TestSent {
    /// The `webhook-id` of the test event.
    pub webhook_id: String,
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks",
    tag = "admin",
    operation_id = "admin_list_webhooks",
    responses((status = 200, description = "Every endpoint with its health and delivery counts", body = EndpointList), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn list(state: web::Data<crate::state::AppState>, _: AdminCaller) -> ApiResult {
    let endpoints = state.webhooks.list().await?;
    Ok(HttpResponse::Ok().json(json!({ "endpoints": endpoints })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// 1 to 63 of a-z, 0-9, `-` and `_`.
    name: String,
    /// `http://` or `https://`.
    url: String,
    /// Event patterns (`*`, `user.*`, `org.member.added`…) [`["*"]`].
    events: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks",
    tag = "admin",
    operation_id = "admin_create_webhook",
    request_body = CreateBody,
    responses((status = 201, description = "Created; the secret is shown this once", body = WithSecret), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn create(
    state: web::Data<crate::state::AppState>,
    AdminCaller(actor): AdminCaller,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult {
    let made = state
        .webhooks
        .create(actor, body.name, body.url, body.events)
        .await?;
    Ok(HttpResponse::Created().json(made))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks/{id}",
    tag = "admin",
    operation_id = "admin_get_webhook",
    params(("id" = String, Path, description = "Endpoint id or name")),
    responses((status = 200, description = "The endpoint", body = EndpointView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn get(
    state: web::Data<crate::state::AppState>,
    _: AdminCaller,
    path: web::Path<String>,
) -> ApiResult {
    Ok(HttpResponse::Ok().json(state.webhooks.get(&path).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    url: Option<String>,
    events: Option<Vec<String>>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/admin/webhooks/{id}",
    tag = "admin",
    operation_id = "admin_update_webhook",
    params(("id" = String, Path, description = "Endpoint id or name")),
    request_body = UpdateBody,
    responses((status = 200, description = "Changed (endpoints from derp.toml: 403)", body = EndpointView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn update(
    state: web::Data<crate::state::AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ApiResult {
    let change = EndpointChange {
        url: body.url,
        events: body.events,
    };
    Ok(HttpResponse::Ok().json(state.webhooks.update(actor, &path, change).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin/webhooks/{id}",
    tag = "admin",
    operation_id = "admin_delete_webhook",
    params(("id" = String, Path, description = "Endpoint id or name")),
    responses((status = 204, description = "Deleted with its queue (endpoints from derp.toml: 403)"), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn delete(
    state: web::Data<crate::state::AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> ApiResult {
    state.webhooks.delete(actor, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks/{id}/rotate-secret",
    tag = "admin",
    operation_id = "admin_rotate_webhook_secret",
    params(("id" = String, Path, description = "Endpoint id or name")),
    responses((status = 200, description = "A new secret, shown this once; the old one stops at once", body = WithSecret), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn rotate_secret(
    state: web::Data<crate::state::AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> ApiResult {
    Ok(HttpResponse::Ok().json(state.webhooks.rotate_secret(actor, &path).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks/{id}/test",
    tag = "admin",
    operation_id = "admin_test_webhook",
    params(("id" = String, Path, description = "Endpoint id or name")),
    responses((status = 202, description = "A `webhook.test` event is queued for this endpoint", body = TestSent), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn send_test(
    state: web::Data<crate::state::AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<String>,
) -> ApiResult {
    let id = state.webhooks.send_test(actor, &path).await?;
    Ok(HttpResponse::Accepted().json(json!({ "webhook_id": id })))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks/{id}/deliveries",
    tag = "admin",
    operation_id = "admin_list_webhook_deliveries",
    params(("id" = String, Path, description = "Endpoint id or name"), PageQuery),
    responses((status = 200, description = "Deliveries, newest first", body = DeliveryPage), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn deliveries(
    state: web::Data<crate::state::AppState>,
    _: AdminCaller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult {
    let (deliveries, next_cursor) = state
        .webhooks
        .deliveries(&path, query.cursor(), query.limit()?)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "deliveries": deliveries, "next_cursor": next_cursor })))
}

fn delivery_id(raw: &str) -> Result<i64, AuthError> {
    raw.parse()
        .map_err(|_| AuthError::field("delivery", "must be a delivery id (a number)"))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks/{id}/deliveries/{delivery}/retry",
    tag = "admin",
    operation_id = "admin_redeliver_webhook",
    params(
        ("id" = String, Path, description = "Endpoint id or name"),
        ("delivery" = i64, Path, description = "A delivered or failed delivery"),
    ),
    responses((status = 202, description = "Queued again with the same webhook-id", body = DeliveryView), Errors),
    security(("bearer" = []), ("service_key" = []))
)]
async fn redeliver(
    state: web::Data<crate::state::AppState>,
    AdminCaller(actor): AdminCaller,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (id, delivery) = path.into_inner();
    let delivery = delivery_id(&delivery)?;
    let queued = state.webhooks.redeliver(actor, &id, delivery).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

// ------------------------------------------------------------------- pages

/// Event patterns typed in one box: separated by commas or spaces.
fn patterns(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn health_label(h: &Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Retrying => "retrying",
        Health::Failing => "failing",
    }
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
    PageForm { ctx, form }: PageForm<super::pages::ConfirmForm>,
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
