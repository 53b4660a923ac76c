//! The mail outbox table.

use super::ExecCached as _;
use super::{Conn, StorageResult};
use crate::storage::params;

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub message_id: String,
    pub kind: String,
    pub to_addr: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

pub struct NewMessage<'a> {
    pub message_id: &'a str,
    pub kind: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
}

const COLUMNS: &str = "id, message_id, kind, to_addr, subject, text_body, html_body, status, attempts, next_attempt_at, last_error, created_at, sent_at";

fn from_row(r: &crate::storage::Row<'_>) -> crate::storage::StorageResult<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        message_id: r.get(1)?,
        kind: r.get(2)?,
        to_addr: r.get(3)?,
        subject: r.get(4)?,
        text_body: r.get(5)?,
        html_body: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        next_attempt_at: r.get(9)?,
        last_error: r.get(10)?,
        created_at: r.get(11)?,
        sent_at: r.get(12)?,
    })
}

pub fn enqueue(conn: &Conn, m: &NewMessage<'_>, now: i64) -> StorageResult<i64> {
    conn.query_row(
        "INSERT INTO outbox (message_id, kind, to_addr, subject, text_body, html_body, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
        params![m.message_id, m.kind, m.to, m.subject, m.text, m.html, now],
        |r| r.get(0),
    )
}

/// Claims up to `limit` due messages: marks them `sending` and counts the
/// attempt before anything is sent, so a crash mid-send is visible.
pub fn claim_due(conn: &Conn, now: i64, limit: i64) -> StorageResult<Vec<OutboxRow>> {
    let sql = format!(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1
         WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?1
                      ORDER BY next_attempt_at, id LIMIT ?2)
         RETURNING {COLUMNS}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![now, limit], from_row)?;
    let mut out: Vec<OutboxRow> = rows.collect::<Result<_, _>>()?;
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub fn mark_sent(conn: &Conn, id: i64, now: i64) -> StorageResult<()> {
    conn.exec(
        "UPDATE outbox SET status = 'sent', sent_at = ?2, last_error = NULL WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

pub fn mark_retry(conn: &Conn, id: i64, next_attempt_at: i64, error: &str) -> StorageResult<()> {
    conn.exec(
        "UPDATE outbox SET status = 'queued', next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
        params![id, next_attempt_at, error],
    )?;
    Ok(())
}

pub fn mark_failed(conn: &Conn, id: i64, error: &str) -> StorageResult<()> {
    conn.exec(
        "UPDATE outbox SET status = 'failed', last_error = ?2 WHERE id = ?1",
        params![id, error],
    )?;
    Ok(())
}

/// At start: messages left `sending` by a crash go back to the queue. The
/// send may or may not have happened; their Message-ID stays the same, so a
/// second delivery is recognisable as a duplicate.
pub fn requeue_interrupted(conn: &Conn, now: i64) -> StorageResult<usize> {
    conn.exec(
        "UPDATE outbox SET status = 'queued', next_attempt_at = ?1,
                last_error = COALESCE(last_error, 'interrupted while sending')
         WHERE status = 'sending'",
        [now],
    )
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize, utoipa::ToSchema)]
pub struct OutboxStats {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
}

pub fn stats(conn: &Conn) -> StorageResult<OutboxStats> {
    let mut s = OutboxStats::default();
    let mut stmt = conn.prepare("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
    let rows = stmt.query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (status, n) = row?;
        match status.as_str() {
            "queued" => s.queued = n,
            "sending" => s.sending = n,
            "sent" => s.sent = n,
            "failed" => s.failed = n,
            _ => {}
        }
    }
    Ok(s)
}

/// The newest messages, for the admin outbox view.
pub fn recent(conn: &Conn, limit: i64) -> StorageResult<Vec<OutboxRow>> {
    let sql = format!("SELECT {COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?1");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([limit], from_row)?;
    rows.collect::<Result<_, _>>()
}

/// The earliest `next_attempt_at` of queued mail, to sleep until then.
pub fn next_due(conn: &Conn) -> StorageResult<Option<i64>> {
    conn.query_row(
        "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'queued'",
        (),
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_is_exclusive_and_interrupted_sends_are_requeued() {
        let c = Conn::open_in_memory().unwrap();
        crate::storage::migrations::apply(&c).unwrap();
        let m = NewMessage {
            message_id: "<1@x>",
            kind: "confirm",
            to: "a@x.io",
            subject: "s",
            text: "t",
            html: None,
        };
        enqueue(&c, &m, 10).unwrap();
        enqueue(
            &c,
            &NewMessage {
                message_id: "<2@x>",
                ..m
            },
            20,
        )
        .unwrap();
        let claimed = claim_due(&c, 15, 10).unwrap();
        assert_eq!(claimed.len(), 1, "only the due one");
        assert_eq!(claimed[0].attempts, 1);
        assert!(
            claim_due(&c, 15, 10).unwrap().is_empty(),
            "claimed rows are not claimed again"
        );
        assert_eq!(stats(&c).unwrap().sending, 1);
        assert_eq!(requeue_interrupted(&c, 30).unwrap(), 1);
        let again = claim_due(&c, 30, 10).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].attempts, 2, "attempts are recorded");
        mark_sent(&c, again[0].id, 31).unwrap();
        mark_failed(&c, again[1].id, "550 no such user").unwrap();
        let s = stats(&c).unwrap();
        assert_eq!((s.sent, s.failed, s.queued), (1, 1, 0));
    }
}
