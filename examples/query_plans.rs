//! Prints `EXPLAIN QUERY PLAN` of derp's hot queries (sign-in, session, admin
//! user search, org members, audit log filters) against a data directory's
//! database, as `bench/scale.sh` shows them. The database is not migrated.
//!
//! Usage: `cargo run --release --example query_plans -- DATA_DIR`.
//! Exits 1 when a query reads a whole table.

use derp::storage::{Db, plans};

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: query_plans DATA_DIR");
        std::process::exit(2);
    };
    let db = match Db::open_without_migrating(std::path::Path::new(&dir)) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("cannot open {dir}: {e}");
            std::process::exit(2);
        }
    };
    let found = db.write_sync(plans::explain_hot_queries);
    let plans = match found {
        Ok(p) => p,
        Err(e) => {
            eprintln!("explain failed: {e}");
            std::process::exit(2);
        }
    };
    let mut scans = 0;
    for plan in &plans {
        println!("{}", plan.name);
        match &plan.lines {
            Ok(lines) => {
                for l in lines {
                    println!("    {l}");
                }
            }
            Err(e) => println!("    (cannot prepare: {e})"),
        }
        if !plan.full_scans().is_empty() {
            scans += 1;
            println!("    ^ full scan");
        }
    }
    if scans > 0 {
        std::process::exit(1);
    }
}
