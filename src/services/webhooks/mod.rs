//! Webhook endpoints as the admin console, the admin API and `derp.toml`
//! manage them, and the views of their health and deliveries. Delivery
//! itself is [`deliver`].
//!
//! Endpoints from `[webhooks.<name>]` are written to the database at start
//! (and at a configuration reload), marked `config`: the console shows them
//! but changes them only through the file. Secrets are sealed under
//! `secrets.key`, like the other secrets at rest.

pub mod deliver;

use crate::auth::sealer::Sealer;
use crate::clock::{Clock, from_unix};
use crate::config::{WebhookEndpointConfig, check_webhook_url, valid_webhook_name};
use crate::domain::webhook::{EventFilter, WebhookSecret};
use crate::error::{AuthError, AuthResult};
use crate::services::orgs::Actor;
use crate::services::paging;
use crate::storage::audit::{self, AuditEvent};
use crate::storage::webhooks::{self as store, DeliveryRow, DeliveryStats, EndpointRow};
use crate::storage::{Conn, Db, StorageError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

const SEAL_INFO: &str = "webhook-secret";

pub fn seal_secret(sealer: &Sealer, endpoint_id: &str, s: &WebhookSecret) -> AuthResult<String> {
    sealer.seal(SEAL_INFO, endpoint_id, s.expose().as_bytes())
}

pub fn open_secret(sealer: &Sealer, endpoint_id: &str, sealed: &str) -> AuthResult<WebhookSecret> {
    let bytes = sealer.open(SEAL_INFO, endpoint_id, sealed)?;
    let text = String::from_utf8(bytes).map_err(AuthError::internal)?;
    WebhookSecret::parse(&text).map_err(AuthError::internal)
}

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

/// A new endpoint, or a new secret: the secret is shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WithSecret {
    pub endpoint: EndpointView,
    /// `whsec_…`: configure it in the receiver; derp shows it only now.
    pub secret: String,
}

/// A change to an admin-made endpoint; what is absent stays.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
}

pub struct WebhookService {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub sealer: Sealer,
}

fn audit_change(
    conn: &Conn,
    now: i64,
    actor: &Actor,
    action: &str,
    endpoint: &str,
    detail: serde_json::Value,
) -> AuthResult<()> {
    audit::record(
        conn,
        now,
        &AuditEvent {
            action,
            actor_id: Some(&actor.user_id),
            target: Some(endpoint),
            ip: actor.ip.as_deref(),
            user_agent: actor.user_agent.as_deref(),
            detail,
            ..Default::default()
        },
    )?;
    Ok(())
}

fn endpoint_or_404(conn: &Conn, id: &str) -> AuthResult<EndpointRow> {
    store::endpoint(conn, id)?.ok_or(AuthError::NotFound("webhook endpoint"))
}

fn admin_managed(e: &EndpointRow) -> AuthResult<()> {
    if e.source == "config" {
        return Err(AuthError::Forbidden(format!(
            "the endpoint `{}` comes from derp.toml ([webhooks.{}]): change it there",
            e.name, e.name
        )));
    }
    Ok(())
}

fn check_events(events: &[String]) -> AuthResult<()> {
    EventFilter::parse(events)
        .map(|_| ())
        .map_err(|e| AuthError::field("events", e))
}

fn view(conn: &Conn, e: EndpointRow) -> AuthResult<EndpointView> {
    let stats = store::stats(conn, Some(&e.id))?;
    Ok(EndpointView::new(e, stats))
}

impl WebhookService {
    fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// Writes the `[webhooks.*]` endpoints to the database: new ones are
    /// added, changed ones updated, and `config` endpoints no longer in the
    /// file deleted with their queue. An admin-made endpoint of the same
    /// name becomes the file's.
    pub async fn sync_config(
        &self,
        endpoints: &BTreeMap<String, WebhookEndpointConfig>,
    ) -> AuthResult<()> {
        let wanted: Vec<(String, WebhookEndpointConfig)> = endpoints
            .iter()
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        let sealer = self.sealer.clone();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                for (name, cfg) in &wanted {
                    let secret = cfg
                        .secret()
                        .ok_or_else(|| AuthError::internal("an unchecked webhook secret"))?;
                    match store::endpoint(conn, name)? {
                        Some(e) => {
                            store::update_endpoint(
                                conn,
                                &e.id,
                                &cfg.url,
                                &cfg.events,
                                "config",
                                now,
                            )?;
                            let same = open_secret(&sealer, &e.id, &e.secret_sealed)
                                .is_ok_and(|old| old == secret);
                            if !same {
                                store::set_secret(
                                    conn,
                                    &e.id,
                                    &seal_secret(&sealer, &e.id, &secret)?,
                                    now,
                                )?;
                            }
                        }
                        None => {
                            let id = uuid::Uuid::now_v7().to_string();
                            store::insert_endpoint(
                                conn,
                                &store::NewEndpoint {
                                    id: &id,
                                    name,
                                    url: &cfg.url,
                                    secret_sealed: &seal_secret(&sealer, &id, &secret)?,
                                    events: &cfg.events,
                                    source: "config",
                                },
                                now,
                            )?;
                        }
                    }
                }
                for e in store::endpoints(conn)? {
                    if e.source == "config" && !wanted.iter().any(|(n, _)| *n == e.name) {
                        store::delete_endpoint(conn, &e.id)?;
                    }
                }
                Ok(())
            })
            .await
    }

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

    pub async fn create(
        &self,
        actor: Actor,
        name: String,
        url: String,
        events: Option<Vec<String>>,
    ) -> AuthResult<WithSecret> {
        let name = name.trim().to_string();
        if !valid_webhook_name(&name) {
            return Err(AuthError::field(
                "name",
                "must be 1 to 63 of a-z, 0-9, `-` and `_`, starting with a letter or digit",
            ));
        }
        check_webhook_url(&url).map_err(|e| AuthError::field("url", e))?;
        let events = events.unwrap_or_else(|| EventFilter::all().patterns().to_vec());
        check_events(&events)?;
        let secret = WebhookSecret::generate();
        let id = uuid::Uuid::now_v7().to_string();
        let sealed = seal_secret(&self.sealer, &id, &secret)?;
        let now = self.now();
        let endpoint = self
            .db
            .write(move |conn| -> AuthResult<EndpointView> {
                let new = store::NewEndpoint {
                    id: &id,
                    name: &name,
                    url: &url,
                    secret_sealed: &sealed,
                    events: &events,
                    source: "admin",
                };
                match store::insert_endpoint(conn, &new, now) {
                    Err(StorageError::Conflict(_)) => {
                        return Err(AuthError::field("name", "an endpoint of this name exists"));
                    }
                    other => other?,
                }
                audit_change(
                    conn,
                    now,
                    &actor,
                    "admin.webhook.created",
                    &id,
                    serde_json::json!({"name": name, "url": url, "events": events}),
                )?;
                view(conn, endpoint_or_404(conn, &id)?)
            })
            .await?;
        Ok(WithSecret {
            endpoint,
            secret: secret.expose().to_string(),
        })
    }

    pub async fn update(
        &self,
        actor: Actor,
        id: &str,
        change: EndpointChange,
    ) -> AuthResult<EndpointView> {
        if let Some(url) = &change.url {
            check_webhook_url(url).map_err(|e| AuthError::field("url", e))?;
        }
        if let Some(events) = &change.events {
            check_events(events)?;
        }
        let id = id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<EndpointView> {
                let e = endpoint_or_404(conn, &id)?;
                admin_managed(&e)?;
                let url = change.url.unwrap_or(e.url);
                let events = change.events.unwrap_or(e.events);
                store::update_endpoint(conn, &e.id, &url, &events, "admin", now)?;
                audit_change(
                    conn,
                    now,
                    &actor,
                    "admin.webhook.updated",
                    &e.id,
                    serde_json::json!({"name": e.name, "url": url, "events": events}),
                )?;
                view(conn, endpoint_or_404(conn, &e.id)?)
            })
            .await
    }

    pub async fn delete(&self, actor: Actor, id: &str) -> AuthResult<()> {
        let id = id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<()> {
                let e = endpoint_or_404(conn, &id)?;
                admin_managed(&e)?;
                store::delete_endpoint(conn, &e.id)?;
                audit_change(
                    conn,
                    now,
                    &actor,
                    "admin.webhook.deleted",
                    &e.id,
                    serde_json::json!({"name": e.name, "url": e.url}),
                )
            })
            .await
    }

    /// A new secret; the old one stops working at once.
    pub async fn rotate_secret(&self, actor: Actor, id: &str) -> AuthResult<WithSecret> {
        let id = id.to_string();
        let now = self.now();
        let secret = WebhookSecret::generate();
        let sealer = self.sealer.clone();
        let text = secret.expose().to_string();
        let endpoint = self
            .db
            .write(move |conn| -> AuthResult<EndpointView> {
                let e = endpoint_or_404(conn, &id)?;
                admin_managed(&e)?;
                store::set_secret(conn, &e.id, &seal_secret(&sealer, &e.id, &secret)?, now)?;
                audit_change(
                    conn,
                    now,
                    &actor,
                    "admin.webhook.secret_rotated",
                    &e.id,
                    serde_json::json!({"name": e.name}),
                )?;
                view(conn, e)
            })
            .await?;
        Ok(WithSecret {
            endpoint,
            secret: text,
        })
    }

    /// Queues a `webhook.test` event for this endpoint only; its `webhook-id`.
    pub async fn send_test(&self, actor: Actor, id: &str) -> AuthResult<String> {
        let id = id.to_string();
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<String> {
                let e = endpoint_or_404(conn, &id)?;
                let msg_id = store::emit_test(conn, &e.id, now)?;
                audit_change(
                    conn,
                    now,
                    &actor,
                    "admin.webhook.test_sent",
                    &e.id,
                    serde_json::json!({"name": e.name, "webhook_id": msg_id}),
                )?;
                Ok(msg_id)
            })
            .await
    }

    /// "Send again": a finished delivery (delivered or failed) is queued
    /// once more, at the end of the endpoint's queue, with its `webhook-id`.
    pub async fn redeliver(
        &self,
        actor: Actor,
        id: &str,
        delivery_id: i64,
    ) -> AuthResult<DeliveryView> {
        let id = id.to_string();
        let now = self.now();
        let now_ms = self.clock.unix_ms();
        self.db
            .write(move |conn| -> AuthResult<DeliveryView> {
                let e = endpoint_or_404(conn, &id)?;
                let new_id = store::redeliver(conn, &e.id, delivery_id, now_ms)?
                    .ok_or(AuthError::NotFound("finished delivery"))?;
                audit_change(
                    conn,
                    now,
                    &actor,
                    "admin.webhook.redelivered",
                    &e.id,
                    serde_json::json!({"name": e.name, "delivery_id": delivery_id}),
                )?;
                store::deliveries(conn, &e.id, new_id + 1, 1)?
                    .into_iter()
                    .next()
                    .map(DeliveryView::from)
                    .ok_or(AuthError::NotFound("delivery"))
            })
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
