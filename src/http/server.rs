//! Builds the actix-web app and server around an `AppState`.

use super::error::ApiError;
use super::extract::MAX_BODY;
use super::{admin, api, middleware, pages};
use crate::state::AppState;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;

/// The running HTTP server and its handle, so that `startup` needs no actix.
pub type Server = actix_web::dev::Server;
pub type ServerHandle = actix_web::dev::ServerHandle;

pub fn app_config(cfg: &mut web::ServiceConfig) {
    cfg.configure(api::ops::routes)
        .service(web::scope("/api/v1/auth").configure(api::auth::routes))
        .service(web::scope("/api/v1/orgs").configure(api::orgs::routes))
        .service(web::scope("/api/v1/invitations").configure(api::orgs::invitation_routes))
        .service(
            web::scope("/api/v1/admin")
                .configure(admin::api::routes)
                .configure(admin::lockouts::api_routes),
        )
        .configure(admin::pages::routes)
        .configure(admin::lockouts::page_routes)
        .configure(pages::routes);
}

pub fn start(state: AppState, listener: TcpListener, workers: usize) -> std::io::Result<Server> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::from(crate::error::AuthError::field("query", e.to_string())).into()
            }))
            .app_data(
                web::FormConfig::default()
                    .limit(MAX_BODY)
                    .error_handler(|e, _| {
                        pages::PageError::BadRequest(format!("The form could not be read: {e}"))
                            .into()
                    }),
            )
            .configure(app_config)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found())
            }))
            .wrap(from_fn(middleware::security_headers))
            .wrap(from_fn(middleware::request_id))
            .wrap(from_fn(middleware::metrics))
    })
    .workers(workers)
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok(server)
}
