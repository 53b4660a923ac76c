//! Middleware: request id + access log + JSON bodies for bare error
//! responses, security headers (HSTS on https), a deadline for request
//! bodies, and Prometheus request metrics.

use super::error::{ApiError, REQUEST_ID, body_for_status};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpResponse, ResponseError};
use futures_util::stream::Stream;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Gives every request an id (`X-Request-Id`), logs it without its query
/// string (which may carry tokens), and turns any error response that is not
/// JSON yet (404 for unknown routes, 405, 413…) into the standard error body.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let method = req.method().clone();
    let path = req.path().to_string();
    let started = Instant::now();
    let res = REQUEST_ID
        .scope(id.clone(), async move {
            let res = match next.call(req).await {
                Ok(res) => res.map_into_boxed_body(),
                Err(e) => {
                    return Err(e);
                }
            };
            Ok(normalize_error(res))
        })
        .await;
    let mut res = match res {
        Ok(res) => res,
        Err(e) => {
            // An error that escaped every handler: still answer in JSON.
            let status = e.as_response_error().status_code();
            let body = REQUEST_ID.sync_scope(id.clone(), || body_for_status(status));
            return Err(actix_web::error::InternalError::from_response(
                e,
                HttpResponse::build(status).json(body),
            )
            .into());
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    let status = res.status().as_u16();
    // Milliseconds, two decimals, as a number (JSON logs keep it numeric).
    let ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    tracing::info!(request_id = %id, %method, %path, status, ms, "request");
    Ok(res)
}

/// Counts every answered request for `/metrics` by method, matched route
/// *pattern* (`/api/v1/admin/users/{id}`, never the raw path, which may hold
/// tokens and ids; `unmatched` when no route matched) and status, and times
/// it. The outermost middleware, so it sees the final status.
pub async fn metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| s.metrics.clone());
    // Resolved from the app's route table before routing, so it is known
    // even when an error escapes with the request inside it.
    let route = req.match_pattern();
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &res {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        metrics.observe_request(
            method.as_str(),
            route.as_deref(),
            status.as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    res
}

fn normalize_error(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    // Pages and handlers answer with a body of their own; only bare
    // responses from the router (404, 405, 413…) get the JSON error body.
    if res.headers().contains_key(header::CONTENT_TYPE) {
        return res;
    }
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status).json(body_for_status(status));
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, new)
}

/// Headers for every response; API answers are never cached; HTML pages get
/// a Content-Security-Policy without inline script, whose `form-action`
/// admits the allow-listed app origins (browsers check a form's redirect
/// target against it).
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let api = req.path().starts_with("/api/");
    let state = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .cloned();
    let hsts = state.as_ref().and_then(|s| {
        strict_transport_security(&s.config.public_url(), s.config.server.hsts_max_age_seconds)
    });
    let mut res = next.call(req).await?;
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let csp = match (&state, is_html) {
        (Some(s), true) => {
            let mut allowed = s.hosted().allowed_redirect_urls;
            // A sign-in or consent form ends in a redirect to an OpenID
            // Connect client, which form-action must admit too.
            if let Some(oidc) = &s.oidc {
                allowed.extend(oidc.redirect_uris().await.unwrap_or_default());
            }
            Some(content_security_policy(&allowed))
        }
        _ => None,
    };
    let h = res.headers_mut();
    if let Some(csp) = csp.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Some(hsts) = hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// `max-age=N` when the public URL is https and N > 0; browsers ignore the
/// header over http, and sending it there would only mislead.
fn strict_transport_security(public_url: &str, max_age: u64) -> Option<HeaderValue> {
    let https = public_url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    (https && max_age > 0)
        .then(|| HeaderValue::from_str(&format!("max-age={max_age}")).ok())
        .flatten()
}

fn content_security_policy(allowed: &[String]) -> String {
    let mut form_action = vec!["'self'".to_string()];
    for url in allowed {
        if let Ok(u) = url::Url::parse(url) {
            let origin = u.origin().ascii_serialization();
            if !form_action.contains(&origin) {
                form_action.push(origin);
            }
        }
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
         form-action {}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        form_action.join(" ")
    )
}

/// Gives a request's body `[server] request_timeout_seconds` to arrive,
/// counted from the end of its head (whose own deadline is the server's
/// `client_request_timeout`). A body still incomplete then fails its reader;
/// the answer becomes 408 and the connection is closed, whatever the handler
/// made of the failed read. Without it, a client that sends `Content-Length:
/// 100` and 10 bytes holds a connection (and a file descriptor) forever.
pub async fn body_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let seconds = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| s.config.server.request_timeout_seconds);
    let (http_req, payload) = req.into_parts();
    let (Some(seconds), false) = (seconds, matches!(payload, Payload::None)) else {
        let req = ServiceRequest::from_parts(http_req, payload);
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let shared = Rc::new(Expiry::default());
    let stream = DeadlineStream {
        inner: Some(payload),
        sleep: Box::pin(tokio::time::sleep(Duration::from_secs(seconds))),
        shared: shared.clone(),
    };
    let req = ServiceRequest::from_parts(
        http_req,
        Payload::Stream {
            payload: Box::pin(stream),
        },
    );
    let res = next.call(req).await;
    if !shared.expired.get() {
        return res.map(ServiceResponse::map_into_boxed_body);
    }
    let mut answer = ApiError::http(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!("the request body did not arrive within {seconds} s"),
    )
    .error_response();
    answer
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    // Keeping the unfinished body alive until the answer is written makes
    // the server close the connection rather than drain a chunked body that
    // may never end (actix drains a dropped chunked body).
    if let Some(held) = shared.body.take() {
        let (res, body) = answer.into_parts();
        answer = res.set_body(BoxBody::new(HoldingBody { body, _held: held }));
    }
    match res {
        Ok(res) => {
            let (req, _) = res.into_parts();
            Ok(ServiceResponse::new(req, answer))
        }
        Err(e) => Err(actix_web::error::InternalError::from_response(e, answer).into()),
    }
}

#[derive(Default)]
struct Expiry {
    expired: Cell<bool>,
    body: Cell<Option<Payload>>,
}

/// An answer's body that also owns the request's unfinished body.
struct HoldingBody {
    body: BoxBody,
    _held: Payload,
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The request body, failing with `TimedOut` once the deadline passes.
struct DeadlineStream {
    inner: Option<Payload>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    shared: Rc<Expiry>,
}

impl Stream for DeadlineStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.inner = None;
                return Poll::Ready(None);
            }
            Poll::Ready(item) => return Poll::Ready(item),
            Poll::Pending => {}
        }
        if this.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.shared.expired.set(true);
        this.shared.body.set(this.inner.take());
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive in time",
        )))))
    }
}
