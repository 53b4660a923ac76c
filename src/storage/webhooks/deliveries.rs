//! The `webhook_deliveries` queue: the head of each endpoint's queue, claims,
//! attempts, "send again", purging and the figures the console and
//! `/metrics` show.

use super::WROTE;
use crate::storage::ExecCached as _;
use crate::storage::params;
use crate::storage::{Conn, StorageResult, optional};

/// One attempt's worth of work: the delivery, its event and its endpoint.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub endpoint_id: String,
    pub url: String,
    pub secret_sealed: String,
    pub msg_id: String,
    pub payload: String,
    pub attempts: i64,
    pub created_ms: i64,
}

/// `(endpoint id, when its oldest open delivery is due)` of every endpoint
/// with one pending (a delivery being sent holds its endpoint back).
pub fn heads(conn: &Conn) -> StorageResult<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.endpoint_id, d.next_attempt_ms FROM webhook_endpoints e
         JOIN webhook_deliveries d ON d.id = (
             SELECT id FROM webhook_deliveries
             WHERE endpoint_id = e.id AND status IN ('pending', 'sending') ORDER BY id LIMIT 1)
         WHERE d.status = 'pending'",
    )?;
    let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<Result<_, _>>()
}

/// An endpoint's oldest open delivery.
pub(crate) const HEAD_SQL: &str =
    "SELECT d.id, d.status, d.next_attempt_ms FROM webhook_deliveries d
     WHERE d.endpoint_id = ?1 AND d.status IN ('pending', 'sending') ORDER BY d.id LIMIT 1";

/// Claims the endpoint's oldest open delivery when it is due: marks it
/// `sending` and counts the attempt before anything is sent, so a crash
/// mid-send leaves a visible trace and a redelivery.
pub fn claim_head(conn: &Conn, endpoint_id: &str, now_ms: i64) -> StorageResult<Option<Claimed>> {
    let head = optional(
        conn.prepare_cached(HEAD_SQL)?
            .query_row([endpoint_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            }),
    )?;
    let Some((id, status, due)) = head else {
        return Ok(None);
    };
    if status != "pending" || due > now_ms {
        return Ok(None);
    }
    conn.exec(
        "UPDATE webhook_deliveries SET status = 'sending', attempts = attempts + 1, last_attempt_ms = ?2
         WHERE id = ?1",
        params![id, now_ms],
    )?;
    optional(conn.query_row(
        "SELECT d.id, d.endpoint_id, e.url, e.secret_sealed, ev.msg_id, ev.payload, d.attempts, ev.created_ms
         FROM webhook_deliveries d
         JOIN webhook_endpoints e ON e.id = d.endpoint_id
         JOIN webhook_events ev ON ev.id = d.event_id
         WHERE d.id = ?1",
        [id],
        |r| {
            Ok(Claimed {
                delivery_id: r.get(0)?,
                endpoint_id: r.get(1)?,
                url: r.get(2)?,
                secret_sealed: r.get(3)?,
                msg_id: r.get(4)?,
                payload: r.get(5)?,
                attempts: r.get(6)?,
                created_ms: r.get(7)?,
            })
        },
    ))
}

/// What one attempt got back.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub status: Option<u16>,
    pub excerpt: Option<String>,
    pub error: Option<String>,
}

pub fn mark_delivered(conn: &Conn, c: &Claimed, a: &Attempt, now_ms: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE webhook_deliveries SET status = 'delivered', delivered_ms = ?2, response_status = ?3,
                response_excerpt = ?4, last_error = NULL WHERE id = ?1",
        params![c.delivery_id, now_ms, a.status, a.excerpt],
    )?;
    conn.exec(
        "UPDATE webhook_endpoints SET consecutive_failures = 0, last_success_ms = ?2,
                failing_since_ms = NULL WHERE id = ?1",
        params![c.endpoint_id, now_ms],
    )?;
    Ok(())
}

/// A failed attempt: retried at `retry_at_ms`, or (`None`) given up, which
/// marks the endpoint failing.
pub fn mark_failed_attempt(
    conn: &Conn,
    c: &Claimed,
    a: &Attempt,
    retry_at_ms: Option<i64>,
    now_ms: i64,
) -> StorageResult<()> {
    let (status, next) = match retry_at_ms {
        Some(at) => ("pending", at),
        None => ("failed", now_ms),
    };
    conn.exec(
        "UPDATE webhook_deliveries SET status = ?2, next_attempt_ms = ?3, response_status = ?4,
                response_excerpt = ?5, last_error = ?6 WHERE id = ?1",
        params![c.delivery_id, status, next, a.status, a.excerpt, a.error],
    )?;
    conn.exec(
        "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1,
                last_failure_ms = ?2,
                failing_since_ms = CASE WHEN ?3 THEN COALESCE(failing_since_ms, ?2) ELSE failing_since_ms END
         WHERE id = ?1",
        params![c.endpoint_id, now_ms, retry_at_ms.is_none()],
    )?;
    Ok(())
}

/// At start and stop: deliveries left `sending` go back to `pending`. The
/// request may have arrived; its `webhook-id` is the same, so the receiver
/// can tell the second one for a duplicate.
pub fn requeue_interrupted(conn: &Conn, now_ms: i64) -> StorageResult<usize> {
    conn.exec(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_ms = ?1,
                last_error = COALESCE(last_error, 'interrupted while sending')
         WHERE status = 'sending'",
        [now_ms],
    )
}

/// "Send again": a new delivery of a past event to the same endpoint, at
/// the end of its queue, with the same `webhook-id`.
pub fn redeliver(
    conn: &Conn,
    endpoint_id: &str,
    delivery_id: i64,
    now_ms: i64,
) -> StorageResult<Option<i64>> {
    let id = optional(conn.query_row(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, created_ms, next_attempt_ms)
         SELECT event_id, endpoint_id, ?3, ?3 FROM webhook_deliveries
         WHERE id = ?2 AND endpoint_id = ?1 AND status IN ('delivered', 'failed')
         RETURNING id",
        params![endpoint_id, delivery_id, now_ms],
        |r| r.get(0),
    ))?;
    if id.is_some() {
        WROTE.with(|w| w.set(true));
    }
    Ok(id)
}

#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub msg_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    pub last_attempt_ms: Option<i64>,
    pub response_status: Option<u16>,
    pub response_excerpt: Option<String>,
    pub last_error: Option<String>,
    pub delivered_ms: Option<i64>,
}

pub(crate) const DELIVERIES_SQL: &str = "SELECT d.id, ev.msg_id, ev.type, d.status, d.attempts,
        d.created_ms, d.next_attempt_ms, d.last_attempt_ms, d.response_status, d.response_excerpt,
        d.last_error, d.delivered_ms
     FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
     WHERE d.endpoint_id = ?1 AND d.id < ?2
     ORDER BY d.id DESC LIMIT ?3";

/// An endpoint's deliveries, newest first, before the id `before` (0 = from the newest).
pub fn deliveries(
    conn: &Conn,
    endpoint_id: &str,
    before: i64,
    limit: i64,
) -> StorageResult<Vec<DeliveryRow>> {
    let mut stmt = conn.prepare_cached(DELIVERIES_SQL)?;
    let before = if before == 0 { i64::MAX } else { before };
    let rows = stmt.query_map(params![endpoint_id, before, limit], |r| {
        Ok(DeliveryRow {
            id: r.get(0)?,
            msg_id: r.get(1)?,
            event_type: r.get(2)?,
            status: r.get(3)?,
            attempts: r.get(4)?,
            created_ms: r.get(5)?,
            next_attempt_ms: r.get(6)?,
            last_attempt_ms: r.get(7)?,
            response_status: r.get(8)?,
            response_excerpt: r.get(9)?,
            last_error: r.get(10)?,
            delivered_ms: r.get(11)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
}

/// Finished deliveries (delivered or given up) are kept this long for the
/// console, then purged with the events nothing waits for any more.
pub const KEEP_FINISHED_SECONDS: i64 = 30 * 86_400;

/// Deletes deliveries finished before `before_ms`, and orphaned events.
pub fn purge_finished(conn: &Conn, before_ms: i64) -> StorageResult<usize> {
    let n = conn.exec(
        "DELETE FROM webhook_deliveries
         WHERE status IN ('delivered', 'failed') AND COALESCE(delivered_ms, last_attempt_ms, created_ms) < ?1",
        [before_ms],
    )?;
    if n > 0 {
        conn.exec(
            "DELETE FROM webhook_events WHERE id NOT IN (SELECT event_id FROM webhook_deliveries)",
            (),
        )?;
    }
    Ok(n)
}

/// Delivery counts by status, for one endpoint or (`None`) all.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryStats {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
    /// Creation time (ms) of the oldest delivery not yet made.
    #[serde(skip)]
    pub oldest_pending_ms: Option<i64>,
}

pub fn stats(conn: &Conn, endpoint_id: Option<&str>) -> StorageResult<DeliveryStats> {
    let mut s = DeliveryStats::default();
    // Two statements: a constant `?1 IS NULL OR …` would keep the index out.
    let mut stmt = match endpoint_id {
        Some(_) => conn.prepare_cached(
            "SELECT status, COUNT(*), MIN(created_ms) FROM webhook_deliveries
             WHERE endpoint_id = ?1 GROUP BY status",
        )?,
        None => conn.prepare_cached(
            "SELECT status, COUNT(*), MIN(created_ms) FROM webhook_deliveries
             WHERE ?1 IS NULL GROUP BY status",
        )?,
    };
    let rows = stmt.query_map([endpoint_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<i64>>(2)?,
        ))
    })?;
    for row in rows {
        let (status, n, oldest) = row?;
        match status.as_str() {
            "pending" | "sending" => {
                s.pending += n;
                s.oldest_pending_ms = match (s.oldest_pending_ms, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            "delivered" => s.delivered = n,
            "failed" => s.failed = n,
            _ => {}
        }
    }
    Ok(s)
}
