//! Runs an SQL script read from stdin in one transaction on a data
//! directory's database (not migrated), with the SQLite derp is built with,
//! so that triggers and the trigram index behave as in the server. Prints the
//! first column of the script's last statement when it returns rows.
//! `bench/scale.sh` seeds 100,000 users with it.
//!
//! Usage: `seed_sql DATA_DIR < script.sql`.

use derp::storage::{Db, StorageError};
use std::io::Read;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: seed_sql DATA_DIR < script.sql");
        std::process::exit(2);
    };
    let mut sql = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut sql) {
        eprintln!("cannot read the script: {e}");
        std::process::exit(2);
    }
    let db = match Db::open_without_migrating(std::path::Path::new(&dir)) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("cannot open {dir}: {e}");
            std::process::exit(2);
        }
    };
    let (script, last) = match sql.trim_end().trim_end_matches(';').rsplit_once(';') {
        Some((head, tail)) if tail.trim_start().to_uppercase().starts_with("SELECT") => {
            (head.to_string(), Some(tail.to_string()))
        }
        _ => (sql.clone(), None),
    };
    let out = db.write_sync(|conn| -> Result<Option<String>, StorageError> {
        conn.execute_batch(&script)?;
        match &last {
            Some(q) => Ok(Some(conn.query_row(q, (), |r| r.get::<_, String>(0))?)),
            None => Ok(None),
        }
    });
    match out {
        Ok(Some(line)) => println!("{line}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("the script failed: {e}");
            std::process::exit(1);
        }
    }
}
