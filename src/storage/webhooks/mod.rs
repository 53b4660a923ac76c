//! Webhook endpoints, events and deliveries.
//!
//! Events are written by the storage functions that make the change they
//! report (`users::insert`, `orgs::add_member`, `sessions::revoke`, …), so an
//! event exists exactly when its change committed: both are in the caller's
//! transaction. An event gets one delivery row per endpoint whose filter
//! takes it; when none does, nothing is written.
//!
//! Within one transaction an object gets one event per kind of change: a
//! second change of a user just created (an admin creating a confirmed
//! user, say) updates the `user.created` event's data instead of adding a
//! `user.updated`, so the receiver sees the state the transaction left.
//!
//! Delivery order per endpoint is the order of the delivery rows' ids, which
//! is commit order (writes are serialized by `BEGIN IMMEDIATE`).

mod deliveries;
mod endpoints;

pub use deliveries::*;
pub use endpoints::*;

use super::orgs::{InvitationRow, MemberRow, OrgRow};
use super::sessions::SessionRow;
use super::{Conn, Engine, StorageResult};
use crate::domain::org::{InvitationView, MemberView, OrgView};
use crate::domain::webhook::{EventFilter, TEST_EVENT};
use crate::domain::{OrgRole, User};
use crate::storage::params;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Woken after a transaction that wrote events commits.
pub static EVENTS_WRITTEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

thread_local! {
    /// Whether the running transaction wrote an event.
    static WROTE: Cell<bool> = const { Cell::new(false) };
    /// Events written by the running transaction, by object: `(object key)
    /// -> event row id`, to fold later changes of the same object in.
    static IN_TX: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// Called by [`super::Db`] before each write of a transaction: events fold
/// within one write, never across the writes that share a commit.
pub(super) fn begin_write() {
    IN_TX.with(|m| m.borrow_mut().clear());
}

/// Called by [`super::Db`] after each write transaction ends.
pub(super) fn settle(committed: bool) {
    IN_TX.with(|m| m.borrow_mut().clear());
    if WROTE.with(|w| w.replace(false)) && committed {
        EVENTS_WRITTEN.notify_waiters();
    }
}

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn payload(event_type: &str, at_ms: i64, data: &serde_json::Value) -> String {
    serde_json::json!({
        "type": event_type,
        "timestamp": rfc3339_ms(at_ms),
        "data": data,
    })
    .to_string()
}

/// `(id, filter)` of every endpoint.
fn endpoint_filters(conn: &Conn) -> StorageResult<Vec<(String, EventFilter)>> {
    let mut stmt = conn.prepare_cached("SELECT id, events FROM webhook_endpoints")?;
    let rows = stmt.query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, events) = row?;
        let patterns: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
        out.push((id, EventFilter::from_stored(patterns)));
    }
    Ok(out)
}

fn insert_event(
    conn: &Conn,
    event_type: &str,
    data: &serde_json::Value,
    at: i64,
    endpoints: &[String],
) -> StorageResult<i64> {
    let at_ms = at.saturating_mul(1000);
    let msg_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let event_id: i64 = conn.query_row(
        "INSERT INTO webhook_events (msg_id, type, payload, created_ms) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        params![msg_id, event_type, payload(event_type, at_ms, data), at_ms],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, created_ms, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?3)",
    )?;
    for endpoint in endpoints {
        stmt.execute(params![event_id, endpoint, at_ms])?;
    }
    WROTE.with(|w| w.set(true));
    Ok(event_id)
}

/// Writes `event_type` with the data `data()` makes for every endpoint that
/// takes it, inside the caller's transaction; `data` is not called when none
/// does, or when it returns `None` (the object is gone). `object` names the
/// object (`user:<id>`…): a later change of it in the same transaction folds
/// into this event.
fn emit(
    conn: &Conn,
    event_type: &str,
    object: &str,
    at: i64,
    data: impl FnOnce() -> StorageResult<Option<serde_json::Value>>,
) -> StorageResult<()> {
    let folds = event_type.ends_with(".updated") || event_type.ends_with(".role_changed");
    let earlier = IN_TX.with(|m| m.borrow().get(object).copied());
    if folds && let Some(event_id) = earlier {
        let Some(data) = data()? else {
            return Ok(());
        };
        // Keep the earlier event's type and time; give it the new state.
        let changed = conn
            .prepare_cached(match conn.engine() {
                Engine::Sqlite => {
                    "UPDATE webhook_events
                     SET payload = json_set(payload, '$.data', json(?2)) WHERE id = ?1"
                }
                Engine::Postgres => {
                    "UPDATE webhook_events
                     SET payload = jsonb_set(payload::jsonb, '{data}', CAST(?2 AS jsonb))::text
                     WHERE id = ?1"
                }
            })?
            .execute(params![event_id, data.to_string()])?;
        if changed == 1 {
            return Ok(());
        }
        return write_event(
            conn,
            event_type,
            object,
            at,
            &data,
            &takers(conn, event_type)?,
        );
    }
    let endpoints = takers(conn, event_type)?;
    if endpoints.is_empty() {
        return Ok(());
    }
    match data()? {
        Some(data) => write_event(conn, event_type, object, at, &data, &endpoints),
        None => Ok(()),
    }
}

/// The ids of the endpoints whose filter takes `event_type`.
fn takers(conn: &Conn, event_type: &str) -> StorageResult<Vec<String>> {
    Ok(endpoint_filters(conn)?
        .into_iter()
        .filter(|(_, f)| f.matches(event_type))
        .map(|(id, _)| id)
        .collect())
}

fn write_event(
    conn: &Conn,
    event_type: &str,
    object: &str,
    at: i64,
    data: &serde_json::Value,
    endpoints: &[String],
) -> StorageResult<()> {
    if endpoints.is_empty() {
        return Ok(());
    }
    let event_id = insert_event(conn, event_type, data, at, endpoints)?;
    if !event_type.ends_with(".deleted") && !event_type.ends_with(".removed") {
        IN_TX.with(|m| m.borrow_mut().insert(object.to_string(), event_id));
    }
    Ok(())
}

fn value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// `user.*` with the user as it is now in this transaction.
pub(super) fn user_event(conn: &Conn, event_type: &str, id: &str, at: i64) -> StorageResult<()> {
    emit(conn, event_type, &format!("user:{id}"), at, || {
        Ok(super::users::by_id(conn, id)?.map(|u| value(&u.user)))
    })
}

/// `user.deleted` with the user as it was.
pub(super) fn user_deleted(conn: &Conn, user: &User, at: i64) -> StorageResult<()> {
    emit(
        conn,
        "user.deleted",
        &format!("user:{}", user.id),
        at,
        || Ok(Some(value(user))),
    )
}

/// `org.*` with the org as it is now (or, `org.deleted`, as it was).
pub(super) fn org_event(conn: &Conn, event_type: &str, org: &OrgRow, at: i64) -> StorageResult<()> {
    emit(conn, event_type, &format!("org:{}", org.id), at, || {
        Ok(Some(value(&OrgView::from(org.clone()))))
    })
}

/// `org.member.*`: the membership with its `org_id`, and `previous_role`
/// for a role change.
pub(super) fn member_event(
    conn: &Conn,
    event_type: &str,
    member: &MemberRow,
    previous_role: Option<OrgRole>,
    at: i64,
) -> StorageResult<()> {
    let object = format!("member:{}:{}", member.org_id, member.user_id);
    emit(conn, event_type, &object, at, || {
        let mut v = value(&MemberView::from(member.clone()));
        v["org_id"] = member.org_id.clone().into();
        if let Some(role) = previous_role {
            v["previous_role"] = role.as_str().into();
        }
        Ok(Some(v))
    })
}

pub(super) fn invitation_event(
    conn: &Conn,
    event_type: &str,
    inv: &InvitationRow,
    at: i64,
) -> StorageResult<()> {
    emit(
        conn,
        event_type,
        &format!("invitation:{}", inv.id),
        at,
        || Ok(Some(value(&InvitationView::from(inv.clone())))),
    )
}

/// `session.*`: the session without any token material.
pub(super) fn session_event(
    conn: &Conn,
    event_type: &str,
    s: &SessionRow,
    reason: Option<&str>,
    at: i64,
) -> StorageResult<()> {
    emit(conn, event_type, &format!("session:{}", s.id), at, || {
        let mut v = serde_json::json!({
            "id": s.id,
            "user_id": s.user_id,
            "created_at": rfc3339_ms(s.created_at.saturating_mul(1000)),
            "expires_at": rfc3339_ms(s.expires_at.saturating_mul(1000)),
            "ip": s.ip,
            "user_agent": s.user_agent,
            "amr": s.amr,
        });
        if let Some(reason) = reason {
            v["revoked_at"] = rfc3339_ms(at.saturating_mul(1000)).into();
            v["reason"] = reason.into();
        }
        Ok(Some(v))
    })
}

/// A `webhook.test` event for one endpoint; returns its `webhook-id`.
pub fn emit_test(conn: &Conn, endpoint_id: &str, at: i64) -> StorageResult<String> {
    let data = serde_json::json!({
        "endpoint_id": endpoint_id,
        "message": "a test event sent from the admin console",
    });
    let event_id = insert_event(conn, TEST_EVENT, &data, at, &[endpoint_id.to_string()])?;
    conn.query_row(
        "SELECT msg_id FROM webhook_events WHERE id = ?1",
        [event_id],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Conn {
        let c = Conn::open_in_memory().unwrap();
        crate::storage::migrations::apply(&c).unwrap();
        c
    }

    fn endpoint(c: &Conn, id: &str, events: &[&str]) {
        let events: Vec<String> = events.iter().map(|s| s.to_string()).collect();
        insert_endpoint(
            c,
            &NewEndpoint {
                id,
                name: id,
                url: "http://127.0.0.1:9/",
                secret_sealed: "x",
                events: &events,
                source: "admin",
            },
            1,
        )
        .unwrap();
    }

    #[test]
    fn events_fan_out_by_filter_and_nothing_is_written_without_a_taker() {
        let c = db();
        emit(&c, "user.created", "user:1", 10, || {
            Ok(Some(serde_json::json!({})))
        })
        .unwrap();
        settle(true);
        let events: i64 = c
            .query_row("SELECT COUNT(*) FROM webhook_events", (), |r| r.get(0))
            .unwrap();
        assert_eq!(events, 0, "no endpoint: no event");
        endpoint(&c, "a", &["user.*"]);
        endpoint(&c, "b", &["org.created"]);
        emit(&c, "user.created", "user:1", 10, || {
            Ok(Some(serde_json::json!({"id": "1"})))
        })
        .unwrap();
        emit(&c, "org.created", "org:1", 10, || {
            Ok(Some(serde_json::json!({"id": "o"})))
        })
        .unwrap();
        emit(&c, "session.created", "session:1", 10, || {
            Ok(Some(serde_json::json!({})))
        })
        .unwrap();
        settle(true);
        assert_eq!(stats(&c, Some("a")).unwrap().pending, 1);
        assert_eq!(stats(&c, Some("b")).unwrap().pending, 1);
        assert_eq!(stats(&c, None).unwrap().pending, 2);
    }

    #[test]
    fn a_later_change_in_the_same_transaction_folds_into_the_first_event() {
        let c = db();
        endpoint(&c, "a", &["*"]);
        emit(&c, "user.created", "user:1", 10, || {
            Ok(Some(serde_json::json!({"v": 1})))
        })
        .unwrap();
        emit(&c, "user.updated", "user:1", 10, || {
            Ok(Some(serde_json::json!({"v": 2})))
        })
        .unwrap();
        settle(true);
        emit(&c, "user.updated", "user:1", 11, || {
            Ok(Some(serde_json::json!({"v": 3})))
        })
        .unwrap();
        settle(true);
        let rows: Vec<(String, String)> = c
            .prepare("SELECT type, payload FROM webhook_events ORDER BY id")
            .unwrap()
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, "user.created");
        let first: serde_json::Value = serde_json::from_str(&rows[0].1).unwrap();
        assert_eq!(
            first["data"]["v"], 2,
            "the created event carries the final state"
        );
        assert_eq!(rows[1].0, "user.updated", "a new transaction, a new event");
    }

    #[test]
    fn the_head_holds_its_endpoint_in_order_and_interrupted_sends_come_back() {
        let c = db();
        endpoint(&c, "a", &["*"]);
        for i in 0..3 {
            emit(&c, "org.created", &format!("org:{i}"), 10, || {
                Ok(Some(serde_json::json!({})))
            })
            .unwrap();
            settle(true);
        }
        let first = claim_head(&c, "a", 10_000).unwrap().unwrap();
        assert!(
            claim_head(&c, "a", 10_000).unwrap().is_none(),
            "one at a time per endpoint"
        );
        let failure = Attempt {
            status: Some(500),
            ..Default::default()
        };
        mark_failed_attempt(&c, &first, &failure, Some(20_000), 10_001).unwrap();
        assert!(
            claim_head(&c, "a", 15_000).unwrap().is_none(),
            "the failed head waits for its retry; the next does not overtake it"
        );
        assert_eq!(heads(&c).unwrap(), vec![("a".to_string(), 20_000)]);
        let again = claim_head(&c, "a", 20_000).unwrap().unwrap();
        assert_eq!(again.delivery_id, first.delivery_id);
        assert_eq!(again.attempts, 2);
        assert_eq!(requeue_interrupted(&c, 21_000).unwrap(), 1);
        let third = claim_head(&c, "a", 21_000).unwrap().unwrap();
        assert_eq!(third.msg_id, first.msg_id, "the same webhook-id");
        mark_delivered(&c, &third, &Attempt::default(), 21_001).unwrap();
        let next = claim_head(&c, "a", 21_002).unwrap().unwrap();
        assert!(next.delivery_id > first.delivery_id);
        mark_failed_attempt(&c, &next, &failure, None, 21_003).unwrap();
        let e = super::endpoint(&c, "a").unwrap().unwrap();
        assert_eq!(e.failing_since_ms, Some(21_003), "given up: failing");
        assert!(
            redeliver(&c, "a", next.delivery_id, 21_004)
                .unwrap()
                .is_some()
        );
        assert!(
            redeliver(&c, "b", next.delivery_id, 21_004)
                .unwrap()
                .is_none(),
            "another endpoint's delivery"
        );
    }
}
