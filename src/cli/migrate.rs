//! `derp validate-config`, `derp migrate [--dry-run]` and `derp
//! migrate-store --from sqlite --to postgres`.

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

/// Copies `<data_dir>/derp.db` into the PostgreSQL database of `[storage]`
/// (migrating both first), all or nothing, and prints what it copied.
pub(super) fn migrate_store(config: Config) -> Result<(), String> {
    let Some(url) = config.storage.postgres_url() else {
        return Err(
            "set [storage] engine = \"postgres\" and url in the configuration: the copy goes there"
                .into(),
        );
    };
    let file = crate::storage::backup::database_file(&config.server.data_dir);
    if !file.exists() {
        return Err(format!("no SQLite database at {}", file.display()));
    }
    let from = Db::open(&config.server.data_dir).map_err(|e| e.to_string())?;
    let to = Db::open_postgres(url).map_err(|e| e.to_string())?;
    let copied =
        crate::storage::transfer::sqlite_to_postgres(&from, &to).map_err(|e| e.to_string())?;
    let total: usize = copied.iter().map(|(_, n)| n).sum();
    for (table, n) in copied {
        println!("{table}: {n}");
    }
    println!(
        "copied {total} rows from {} to PostgreSQL; keep {} in data_dir (it seals the keys)",
        file.display(),
        config.server.data_dir.join("secrets.key").display()
    );
    Ok(())
}
