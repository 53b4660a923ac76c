//! Endpoint management: the file's endpoints written at start, admin-made
//! ones created, changed, rotated and deleted, and deliveries queued by hand.

use super::views::{endpoint_or_404, view};
use super::{DeliveryView, EndpointView};
use super::{EndpointChange, WebhookService, WithSecret, open_secret, seal_secret};
use crate::config::{WebhookEndpointConfig, check_webhook_url, valid_webhook_name};
use crate::domain::webhook::{EventFilter, WebhookSecret};
use crate::error::{AuthError, AuthResult};
use crate::services::orgs::Actor;
use crate::storage::audit::{self, AuditEvent};
use crate::storage::webhooks::{self as store, EndpointRow};
use crate::storage::{Conn, StorageError};
use std::collections::BTreeMap;

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

impl WebhookService {
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
}
