//! Embedded static assets with content types, ETags and cache headers, and
//! the theme stylesheet made from `[hosted] primary_color`.

use crate::domain::color::{Rgb, Theme};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/static/theme.css").get(theme))
        .service(web::resource("/static/custom.css").get(custom_css))
        .service(web::resource("/favicon.ico").get(favicon))
        .service(web::resource("/static/{path:.*}").get(asset));
}

async fn asset(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(file) = Assets::get(&path) else {
        return HttpResponse::NotFound()
            .content_type("text/plain")
            .body("not found");
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"));
    if fresh {
        return res.finish();
    }
    res.content_type(file.metadata.mimetype())
        .body(file.data.into_owned())
}

/// The brand colour with the text and link colours that keep it readable
/// (validated at config load: `#rgb` or `#rrggbb`).
async fn theme(state: web::Data<AppState>) -> HttpResponse {
    let color = state.hosted().primary_color;
    let css = Rgb::parse(&color)
        .map(|c| Theme::from_primary(c).css())
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(css)
}

/// `[hosted] custom_css`, as read at start or at the last SIGHUP (empty
/// when none is set).
async fn custom_css(state: web::Data<AppState>) -> HttpResponse {
    let css = state.hosted().custom_css_text.unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(css)
}

/// Browsers ask for `/favicon.ico` by themselves; the icon is an SVG.
async fn favicon() -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, "/static/favicon.svg"))
        .finish()
}
