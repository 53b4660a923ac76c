//! `/api/v1/admin/webhooks`: endpoints, their deliveries, "send again" and
//! "send a test event" as JSON.

use super::delivery_id;
use crate::http::admin::api::AdminCaller;
use crate::http::api::orgs::PageQuery;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::openapi::Errors;
use crate::services::webhooks::{DeliveryView, EndpointChange, EndpointView, WithSecret};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

type ApiResult = Result<HttpResponse, ApiError>;

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
