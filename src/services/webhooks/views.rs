//! What the console and the admin API show of an endpoint: its health and
//! delivery counts, and its deliveries.

use super::WebhookService;
use crate::clock::from_unix;
use crate::error::{AuthError, AuthResult};
use crate::services::paging;
use crate::storage::Conn;
use crate::storage::webhooks::{self as store, DeliveryRow, DeliveryStats, EndpointRow};
use serde::Serialize;
use time::OffsetDateTime;

/// How an endpoint is doing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Nothing has failed since the last success.
    Healthy,
    /// The last attempts failed; they are being retried.
    Retrying,
    /// A delivery was given up after three days; cleared by the next success.
    Failing,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// `config` (from derp.toml) or `admin`.
    pub source: String,
    pub health: Health,
    pub consecutive_failures: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_failure_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    pub deliveries: DeliveryStats,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl EndpointView {
    fn new(e: EndpointRow, deliveries: DeliveryStats) -> Self {
        let health = if e.failing_since_ms.is_some() {
            Health::Failing
        } else if e.consecutive_failures > 0 {
            Health::Retrying
        } else {
            Health::Healthy
        };
        Self {
            id: e.id,
            name: e.name,
            url: e.url,
            events: e.events,
            source: e.source,
            health,
            consecutive_failures: e.consecutive_failures,
            last_success_at: e.last_success_ms.map(from_ms),
            last_failure_at: e.last_failure_ms.map(from_ms),
            failing_since: e.failing_since_ms.map(from_ms),
            deliveries,
            created_at: from_unix(e.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    /// The `webhook-id` header: the same on every attempt of one event.
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub response_status: Option<u16>,
    /// The start of the receiver's answer (at most 512 characters).
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When the next attempt is due (pending deliveries).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id,
            webhook_id: d.msg_id,
            event_type: d.event_type,
            next_attempt_at: (d.status == "pending").then(|| from_ms(d.next_attempt_ms)),
            status: d.status,
            attempts: d.attempts,
            response_status: d.response_status,
            response_excerpt: d.response_excerpt,
            error: d.last_error,
            created_at: from_ms(d.created_ms),
            last_attempt_at: d.last_attempt_ms.map(from_ms),
            delivered_at: d.delivered_ms.map(from_ms),
        }
    }
}

pub(super) fn view(conn: &Conn, e: EndpointRow) -> AuthResult<EndpointView> {
    let stats = store::stats(conn, Some(&e.id))?;
    Ok(EndpointView::new(e, stats))
}

pub(super) fn endpoint_or_404(conn: &Conn, id: &str) -> AuthResult<EndpointRow> {
    store::endpoint(conn, id)?.ok_or(AuthError::NotFound("webhook endpoint"))
}

impl WebhookService {
    pub async fn list(&self) -> AuthResult<Vec<EndpointView>> {
        self.db
            .read(|conn| -> AuthResult<Vec<EndpointView>> {
                store::endpoints(conn)?
                    .into_iter()
                    .map(|e| view(conn, e))
                    .collect()
            })
            .await
    }

    pub async fn get(&self, id: &str) -> AuthResult<EndpointView> {
        let id = id.to_string();
        self.db
            .read(move |conn| view(conn, endpoint_or_404(conn, &id)?))
            .await
    }

    /// An endpoint's deliveries, newest first, a page at a time.
    pub async fn deliveries(
        &self,
        id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> AuthResult<(Vec<DeliveryView>, Option<String>)> {
        let before = paging::decode_number(cursor)?;
        let id = id.to_string();
        self.db
            .read(
                move |conn| -> AuthResult<(Vec<DeliveryView>, Option<String>)> {
                    let e = endpoint_or_404(conn, &id)?;
                    let rows = store::deliveries(conn, &e.id, before, limit)?;
                    let next = paging::next_cursor(&rows, limit, |d| d.id.to_string());
                    Ok((rows.into_iter().map(DeliveryView::from).collect(), next))
                },
            )
            .await
    }

    /// Counts over every endpoint, for `/metrics`.
    pub async fn stats(&self) -> AuthResult<DeliveryStats> {
        self.db
            .read(|conn| store::stats(conn, None).map_err(AuthError::from))
            .await
    }
}
