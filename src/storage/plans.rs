//! `EXPLAIN QUERY PLAN` of the hot queries, with the SQL the storage
//! functions run: for the scale bench (`examples/query_plans.rs`) and for the
//! test that keeps them off full scans.

use super::audit::{self, AuditFilter};
use super::{Conn, StorageResult, orgs, sessions, users, webhooks};

/// One query's plan: the `detail` lines of `EXPLAIN QUERY PLAN`, indented two
/// spaces per level, or the error that kept SQLite from preparing it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: &'static str,
    pub lines: Result<Vec<String>, String>,
}

impl Plan {
    /// Lines that read a whole table or index: `SCAN t`, unless `t` is a
    /// virtual table answering a MATCH (its own index) or a bounded subquery.
    pub fn full_scans(&self) -> Vec<&str> {
        let Ok(lines) = &self.lines else {
            return Vec::new();
        };
        // A subquery in FROM runs as a co-routine (`CO-ROUTINE probe`),
        // whose rows are then read (`SCAN probe`): not a table scan.
        let coroutines: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.trim_start().strip_prefix("CO-ROUTINE "))
            .collect();
        lines
            .iter()
            .map(|l| l.trim_start())
            .filter(|l| {
                let Some(what) = l.strip_prefix("SCAN ") else {
                    return false;
                };
                let read_elsewhere = what.starts_with("(subquery")
                    || coroutines.contains(&what)
                    || (l.contains("VIRTUAL TABLE INDEX") && l.contains(":M"));
                !read_elsewhere
            })
            .collect()
    }

    /// Whether SQLite sorts the rows itself rather than reading them in order
    /// from an index.
    pub fn sorts(&self) -> bool {
        matches!(&self.lines, Ok(lines) if lines.iter().any(|l| l.contains("USE TEMP B-TREE")))
    }
}

/// The hot queries by name, with their SQL.
pub fn hot_queries() -> Vec<(&'static str, String)> {
    let user = AuditFilter {
        user_id: Some(String::new()),
        ..Default::default()
    };
    let org = AuditFilter {
        org_id: Some(String::new()),
        ..Default::default()
    };
    let action = AuditFilter {
        action: Some(String::new()),
        ..Default::default()
    };
    vec![
        ("sign-in: user by email", users::by_email_sql()),
        ("session by id", sessions::get_sql()),
        ("admin search: first pass", users::search_probe_sql()),
        (
            "admin search: end of the first pass",
            users::search_probe_end_sql().to_string(),
        ),
        ("admin search: trigram index", users::search_fts_sql()),
        ("admin search: short query", users::search_scan_sql()),
        ("org members (any page)", orgs::members_sql()),
        ("audit log by user", audit::list_sql(&user, 0)),
        ("audit log by user, next page", audit::list_sql(&user, 1)),
        ("audit log by org", audit::list_sql(&org, 0)),
        ("audit log by org, next page", audit::list_sql(&org, 1)),
        ("audit log by action", audit::list_sql(&action, 0)),
        (
            "audit log by action, next page",
            audit::list_sql(&action, 1),
        ),
        ("webhook queue head", webhooks::HEAD_SQL.to_string()),
        (
            "webhook deliveries page",
            webhooks::DELIVERIES_SQL.to_string(),
        ),
    ]
}

/// Every hot query's plan on `conn`.
pub fn explain_hot_queries(conn: &Conn) -> StorageResult<Vec<Plan>> {
    Ok(hot_queries()
        .into_iter()
        .map(|(name, sql)| Plan {
            name,
            lines: explain(conn, &sql),
        })
        .collect())
}

fn explain(conn: &Conn, sql: &str) -> Result<Vec<String>, String> {
    let Some(conn) = conn.sqlite() else {
        return Err("query plans are shown for SQLite only".into());
    };
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .map_err(|e| e.to_string())?;
    // Parameters stay unbound (NULL): the plan does not depend on them.
    let mut rows = stmt.raw_query();
    let mut depth: Vec<(i64, usize)> = Vec::new(); // (node id, level)
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let id: i64 = row.get(0).map_err(|e| e.to_string())?;
        let parent: i64 = row.get(1).map_err(|e| e.to_string())?;
        let detail: String = row.get(3).map_err(|e| e.to_string())?;
        let level = depth
            .iter()
            .find(|(node, _)| *node == parent)
            .map_or(0, |(_, l)| l + 1);
        depth.push((id, level));
        out.push(format!("{}{detail}", "  ".repeat(level)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::migrations;

    #[test]
    fn hot_queries_use_indexes() {
        let c = Conn::open_in_memory().expect("open");
        migrations::apply(&c).expect("migrate");
        let plans = explain_hot_queries(&c).expect("explain");
        for plan in &plans {
            let lines = plan
                .lines
                .as_ref()
                .unwrap_or_else(|e| panic!("{}: {e}", plan.name));
            assert!(
                plan.full_scans().is_empty(),
                "{} scans a whole table: {lines:#?}",
                plan.name
            );
        }
        // Member pages come in `seq` order straight from an index: no sort
        // of the whole org per page.
        let members = plans
            .iter()
            .find(|p| p.name.starts_with("org members"))
            .expect("member plan");
        assert!(!members.sorts(), "{members:#?}");
        for name in ["audit log by org", "audit log by action"] {
            let plan = plans.iter().find(|p| p.name == name).expect(name);
            assert!(!plan.sorts(), "{plan:#?}");
        }
    }

    #[test]
    fn a_scan_is_reported() {
        let c = Conn::open_in_memory().expect("open");
        c.execute_batch("CREATE TABLE t (a TEXT)").expect("table");
        let plan = Plan {
            name: "t",
            lines: explain(&c, "SELECT * FROM t WHERE a = ?1"),
        };
        assert_eq!(plan.full_scans(), vec!["SCAN t"]);
    }
}
