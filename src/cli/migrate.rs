//! `derp validate-config` and `derp migrate [--dry-run]`.

use crate::config::Config;
use crate::storage::{Db, migrations};

pub(super) fn validate_config(config: Config) -> Result<(), String> {
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    println!(
        "configuration OK: backend {:?}, bind {}, algorithm {}",
        config.backend(),
        config.server.bind,
        config.native().jwt.effective_algorithm().as_str()
    );
    Ok(())
}

pub(super) fn migrate(config: Config, dry_run: bool) -> Result<(), String> {
    let postgres = config.storage.postgres_url();
    let db = match postgres {
        Some(url) => Db::open_postgres_without_migrating(url),
        None => Db::open_without_migrating(&config.server.data_dir),
    }
    .map_err(|e| e.to_string())?;
    let pending = db
        .write_sync(migrations::pending)
        .map_err(|e| e.to_string())?;
    if dry_run {
        if pending.is_empty() {
            println!("no pending migrations");
        }
        for name in pending {
            println!("pending: {name}");
        }
        return Ok(());
    }
    drop(db);
    let copy = if let Some(url) = postgres {
        Db::open_postgres(url).map_err(|e| e.to_string())?;
        None
    } else {
        let (db, copy) =
            Db::open_reporting_backup(&config.server.data_dir).map_err(|e| e.to_string())?;
        drop(db);
        copy
    };
    if let Some(copy) = copy {
        println!(
            "backed up the database to {} before migrating",
            copy.path.display()
        );
    }
    if pending.is_empty() {
        println!("no pending migrations");
    }
    for name in pending {
        println!("applied: {name}");
    }
    Ok(())
}
