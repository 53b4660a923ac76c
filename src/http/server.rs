//! Builds the actix-web app and server around an `AppState`.

use super::error::ApiError;
use super::extract::MAX_BODY;
use super::{admin, api, middleware, pages};
use crate::state::AppState;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::time::Duration;

/// The running HTTP server and its handle, so that `startup` needs no actix.
pub type Server = actix_web::dev::Server;
pub type ServerHandle = actix_web::dev::ServerHandle;

pub fn app_config(cfg: &mut web::ServiceConfig) {
    cfg.configure(api::ops::routes)
        .configure(api::oidc::routes)
        .service(
            web::scope("/api/v1/auth")
                .configure(api::auth::routes)
                .configure(pages::oauth::routes),
        )
        .service(web::scope("/api/v1/orgs").configure(api::orgs::routes))
        .service(web::scope("/api/v1/invitations").configure(api::orgs::invitation_routes))
        .service(
            web::scope("/api/v1/admin")
                .configure(admin::api::routes)
                .configure(admin::lockouts::api_routes)
                .configure(admin::webhooks::api_routes),
        )
        .configure(admin::pages::routes)
        .configure(admin::lockouts::page_routes)
        .configure(admin::webhooks::page_routes)
        .configure(admin::clients::page_routes)
        .configure(pages::routes);
}

/// Descriptors kept back from connections for the database, its WAL, the
/// listener, logs and outgoing SMTP/HTTP calls.
const RESERVED_FILES: u64 = 64;

/// The soft limit on open files (`ulimit -n`), from `/proc/self/limits`
/// (no `unsafe` needed); `None` when unknown or unlimited.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The connections each worker serves at once: `max_connections` shared
/// among the workers, and never more than the open-file limit allows, so
/// that a flood of connections waits in the listen backlog instead of
/// failing every accept (and every other file open) with EMFILE.
pub fn connections_per_worker(max_connections: usize, workers: usize, files: Option<u64>) -> usize {
    let workers = workers.max(1);
    let mut total = max_connections;
    if let Some(files) = files {
        let room = files.saturating_sub(RESERVED_FILES).max(workers as u64);
        total = total.min(usize::try_from(room).unwrap_or(usize::MAX));
    }
    total.div_ceil(workers).max(1)
}

pub fn start(state: AppState, listener: TcpListener, workers: usize) -> std::io::Result<Server> {
    let timeout = Duration::from_secs(state.config.server.request_timeout_seconds);
    let max_connections = state.config.server.max_connections;
    let files = open_files_limit();
    let per_worker = connections_per_worker(max_connections, workers, files);
    if per_worker * workers.max(1) < max_connections {
        tracing::warn!(
            max_connections,
            open_files_limit = files,
            serving = per_worker * workers.max(1),
            "the open-file limit is below server.max_connections: serving fewer connections at once (raise LimitNOFILE / ulimit -n)"
        );
    }
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
            .default_service(web::to(not_found))
            .wrap(from_fn(pages::localised_errors))
            .wrap(from_fn(middleware::body_deadline))
            .wrap(from_fn(middleware::security_headers))
            .wrap(from_fn(middleware::request_id))
            .wrap(from_fn(middleware::metrics))
    })
    .workers(workers)
    // An answer goes out as soon as it is written, never held back by
    // Nagle's algorithm waiting for the client's delayed ACK.
    .tcp_nodelay(true)
    .max_connections(per_worker)
    .client_request_timeout(timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok(server)
}

/// An unknown path: an HTML page for a browser (it asks for `text/html`,
/// outside `/api/`), the JSON error for everything else.
async fn not_found(
    req: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, actix_web::Error> {
    let browser = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser && !req.path().starts_with("/api/") {
        return Err(pages::PageError::NotFound.into());
    }
    Err(ApiError::not_found().into())
}

#[cfg(test)]
mod tests {
    use super::connections_per_worker;

    #[test]
    fn connections_are_shared_among_workers_and_fit_the_file_limit() {
        assert_eq!(connections_per_worker(10_000, 2, None), 5_000);
        assert_eq!(connections_per_worker(10_000, 3, Some(1 << 20)), 3_334);
        // ulimit -n 1024: 960 for connections, 480 a worker.
        assert_eq!(connections_per_worker(10_000, 2, Some(1024)), 480);
        assert_eq!(connections_per_worker(100, 2, Some(1024)), 50);
        assert_eq!(connections_per_worker(1, 4, Some(10)), 1);
    }
}
