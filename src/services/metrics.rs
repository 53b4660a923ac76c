//! Prometheus metrics (`GET /metrics`), on the `prometheus` crate.
//!
//! Counters are fed by the HTTP middleware from what it sees of every
//! answered request: the matched route *pattern* (never the raw path, which
//! may hold tokens and ids), the method and the status. Sign-ins and their
//! failures are told apart by route and status; rate-limit refusals are the
//! 429s. Everything kept in the database (outbox, detected refresh-token
//! reuse) and the pool and process figures are read when scraped, so they
//! survive restarts and are never stale.

use crate::storage::outbox::OutboxStats;
use crate::storage::{Db, StorageError};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// `text/plain; version=0.0.4`.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// The route label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The JSON API's and the hosted page's sign-in routes.
const API_SIGN_IN: &str = "/api/v1/auth/sign-in";
const PAGE_SIGN_IN: &str = "/login";

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    sign_ins: IntCounterVec,
    rate_limited: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What is read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub outbox: OutboxStats,
    pub refresh_reuse_detected: i64,
    /// Webhook deliveries by status, over every endpoint.
    pub webhooks: crate::storage::webhooks::DeliveryStats,
    /// Age of the oldest delivery not yet made (0 when none waits).
    pub webhook_oldest_pending_seconds: i64,
    /// Tokens issued to OpenID Connect clients, by grant type.
    pub oauth_grants: Vec<(String, i64)>,
    /// Provider codes presented a second time.
    pub oauth_code_reused: i64,
    pub pool_idle: u32,
    pub pool_in_use: u32,
    pub process: ProcessStats,
}

/// From `/proc/self` (Linux); `None` where it cannot be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    pub resident_bytes: Option<i64>,
    pub threads: Option<i64>,
    pub open_fds: Option<i64>,
}

impl Metrics {
    pub fn new() -> Self {
        // Names and labels are constants: registration cannot fail.
        fn must<T>(r: prometheus::Result<T>) -> T {
            r.expect("valid metric definition")
        }
        let registry = Registry::new();
        let requests = must(IntCounterVec::new(
            Opts::new(
                "derp_http_requests_total",
                "HTTP requests answered, by method, route pattern and status.",
            ),
            &["method", "route", "status"],
        ));
        let duration = must(HistogramVec::new(
            HistogramOpts::new(
                "derp_http_request_duration_seconds",
                "Time to answer an HTTP request, by method and route pattern.",
            ),
            &["method", "route"],
        ));
        let sign_ins = must(IntCounterVec::new(
            Opts::new(
                "derp_sign_ins_total",
                "Password sign-ins (JSON API and /login page) by result.",
            ),
            &["result"],
        ));
        let rate_limited = must(IntCounterVec::new(
            Opts::new(
                "derp_rate_limited_total",
                "Requests refused with 429 by a rate limit, by route pattern.",
            ),
            &["route"],
        ));
        for c in [&requests, &sign_ins, &rate_limited] {
            must(registry.register(Box::new(c.clone())));
        }
        must(registry.register(Box::new(duration.clone())));
        // Both results exist from the start, so rates work from the first scrape.
        for result in ["success", "failure"] {
            sign_ins.with_label_values(&[result]);
        }
        Self {
            registry,
            requests,
            duration,
            sign_ins,
            rate_limited,
        }
    }

    /// Records one answered request. `route` is the matched route pattern
    /// (`None`: no route matched).
    pub fn observe_request(&self, method: &str, route: Option<&str>, status: u16, seconds: f64) {
        let method = method_label(method);
        let route = route.unwrap_or(UNMATCHED);
        let code = status.to_string();
        self.requests
            .with_label_values(&[method, route, code.as_str()])
            .inc();
        self.duration
            .with_label_values(&[method, route])
            .observe(seconds);
        if status == 429 {
            self.rate_limited.with_label_values(&[route]).inc();
        }
        if let Some(result) = sign_in_result(method, route, status) {
            self.sign_ins.with_label_values(&[result]).inc();
        }
    }

    /// Reads the scrape-time figures: the pool first (so the scrape's own
    /// connection is not counted), then the database, then `/proc`.
    pub async fn snapshot(db: &Db, now_ms: i64) -> Result<Snapshot, StorageError> {
        let (pool_idle, pool_in_use) = db.pool_state();
        let (outbox, refresh_reuse_detected, webhooks, (oauth_grants, oauth_code_reused)) = db
            .read(|c| {
                Ok::<_, StorageError>((
                    crate::storage::outbox::stats(c)?,
                    crate::storage::metrics::refresh_reuse_detected(c)?,
                    crate::storage::webhooks::stats(c, None)?,
                    crate::storage::metrics::oauth_grants(c)?,
                ))
            })
            .await?;
        let webhook_oldest_pending_seconds = webhooks
            .oldest_pending_ms
            .map_or(0, |t| (now_ms - t).max(0) / 1000);
        let process = tokio::task::spawn_blocking(ProcessStats::read)
            .await
            .unwrap_or_default();
        Ok(Snapshot {
            outbox,
            refresh_reuse_detected,
            webhooks,
            webhook_oldest_pending_seconds,
            oauth_grants,
            oauth_code_reused,
            pool_idle,
            pool_in_use,
            process,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self, snap: &Snapshot) -> String {
        let mut families = self.registry.gather();
        families.extend(scraped_families(snap));
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Methods outside the usual set are one label value, so that made-up
/// methods cannot grow the label set.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// A password sign-in's result, from its route and status: the API answers
/// 200 to a success, the page a 303 redirect; 401 (wrong credentials) and 403
/// (disabled, unconfirmed, or a page form without its CSRF token) are failures.
/// Rate-limit refusals (429) and malformed input (400) are neither.
pub fn sign_in_result(method: &str, route: &str, status: u16) -> Option<&'static str> {
    let success = match (method, route) {
        ("POST", API_SIGN_IN) => 200,
        ("POST", PAGE_SIGN_IN) => 303,
        _ => return None,
    };
    match status {
        s if s == success => Some("success"),
        401 | 403 => Some("failure"),
        _ => None,
    }
}

fn scraped_families(s: &Snapshot) -> Vec<prometheus::proto::MetricFamily> {
    let registry = Registry::new();
    let result = (|| -> prometheus::Result<()> {
        let outbox = IntGaugeVec::new(
            Opts::new(
                "derp_outbox_messages",
                "Mail in the outbox by status: queued and sending are the depth, failed gave up.",
            ),
            &["status"],
        )?;
        for (status, n) in [
            ("queued", s.outbox.queued),
            ("sending", s.outbox.sending),
            ("sent", s.outbox.sent),
            ("failed", s.outbox.failed),
        ] {
            outbox.with_label_values(&[status]).set(n);
        }
        registry.register(Box::new(outbox))?;

        let reuse = IntCounter::new(
            "derp_refresh_reuse_detected_total",
            "Refresh tokens used again after the grace window (the session was revoked).",
        )?;
        reuse.inc_by(s.refresh_reuse_detected.max(0) as u64);
        registry.register(Box::new(reuse))?;

        let deliveries = IntGaugeVec::new(
            Opts::new(
                "derp_webhook_deliveries",
                "Webhook deliveries by status: pending is the queue, failed gave up after three days.",
            ),
            &["status"],
        )?;
        for (status, n) in [
            ("pending", s.webhooks.pending),
            ("delivered", s.webhooks.delivered),
            ("failed", s.webhooks.failed),
        ] {
            deliveries.with_label_values(&[status]).set(n);
        }
        registry.register(Box::new(deliveries))?;
        let oldest = prometheus::IntGauge::new(
            "derp_webhook_oldest_pending_seconds",
            "Age of the oldest webhook delivery not yet made (0 when the queue is empty).",
        )?;
        oldest.set(s.webhook_oldest_pending_seconds);
        registry.register(Box::new(oldest))?;
        let grants = IntCounterVec::new(
            Opts::new(
                "derp_oauth_tokens_issued_total",
                "Tokens issued to OpenID Connect clients, by grant type.",
            ),
            &["grant_type"],
        )?;
        for grant in ["authorization_code", "refresh_token"] {
            grants.with_label_values(&[grant]);
        }
        for (grant, n) in &s.oauth_grants {
            grants
                .with_label_values(&[grant.as_str()])
                .inc_by((*n).max(0) as u64);
        }
        registry.register(Box::new(grants))?;
        let code_reused = IntCounter::new(
            "derp_oauth_code_reused_total",
            "Provider authorization codes presented again (what the first use issued was revoked).",
        )?;
        code_reused.inc_by(s.oauth_code_reused.max(0) as u64);
        registry.register(Box::new(code_reused))?;

        let pool = IntGaugeVec::new(
            Opts::new(
                "derp_db_pool_connections",
                "SQLite pool connections by state.",
            ),
            &["state"],
        )?;
        pool.with_label_values(&["idle"]).set(s.pool_idle.into());
        pool.with_label_values(&["in_use"])
            .set(s.pool_in_use.into());
        registry.register(Box::new(pool))?;

        let build = IntGaugeVec::new(
            Opts::new("derp_build_info", "The running derp's version."),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build))?;

        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.process.resident_bytes,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                s.process.threads,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.process.open_fds,
            ),
        ] {
            if let Some(v) = value {
                let g = IntGauge::new(name, help)?;
                g.set(v);
                registry.register(Box::new(g))?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot build scrape-time metrics");
    }
    registry.gather()
}

impl ProcessStats {
    fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> Option<i64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        };
        Self {
            resident_bytes: field("VmRSS:").map(|kb| kb * 1024),
            threads: field("Threads:"),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_are_told_by_route_and_status() {
        assert_eq!(
            sign_in_result("POST", "/api/v1/auth/sign-in", 200),
            Some("success")
        );
        assert_eq!(
            sign_in_result("POST", "/api/v1/auth/sign-in", 401),
            Some("failure")
        );
        assert_eq!(
            sign_in_result("POST", "/api/v1/auth/sign-in", 403),
            Some("failure")
        );
        assert_eq!(sign_in_result("POST", "/api/v1/auth/sign-in", 429), None);
        assert_eq!(sign_in_result("POST", "/api/v1/auth/sign-in", 400), None);
        assert_eq!(sign_in_result("POST", "/login", 303), Some("success"));
        assert_eq!(sign_in_result("POST", "/login", 401), Some("failure"));
        assert_eq!(sign_in_result("GET", "/login", 200), None);
        assert_eq!(sign_in_result("POST", "/api/v1/auth/sign-up", 200), None);
    }

    #[test]
    fn renders_counters_and_scraped_gauges() {
        let m = Metrics::new();
        m.observe_request("POST", Some("/api/v1/auth/sign-in"), 429, 0.01);
        m.observe_request("BREW", None, 404, 0.001);
        let text = m.render(&Snapshot {
            refresh_reuse_detected: 3,
            oauth_grants: vec![("authorization_code".into(), 2)],
            pool_idle: 2,
            pool_in_use: 1,
            ..Default::default()
        });
        for line in [
            "derp_rate_limited_total{route=\"/api/v1/auth/sign-in\"} 1",
            "derp_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1",
            "derp_sign_ins_total{result=\"success\"} 0",
            "derp_refresh_reuse_detected_total 3",
            "derp_oauth_tokens_issued_total{grant_type=\"authorization_code\"} 2",
            "derp_oauth_tokens_issued_total{grant_type=\"refresh_token\"} 0",
            "derp_oauth_code_reused_total 0",
            "derp_db_pool_connections{state=\"in_use\"} 1",
            "derp_webhook_deliveries{status=\"pending\"} 0",
            "derp_webhook_oldest_pending_seconds 0",
            "# TYPE derp_http_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
