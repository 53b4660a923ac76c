//! `derp keys rotate`.

use crate::auth::jwt;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::AuthError;
use crate::storage::Db;

pub(super) fn rotate(config: Config) -> Result<(), String> {
    let db = Db::open_store(config.storage.postgres_url(), &config.server.data_dir)
        .map_err(|e| e.to_string())?;
    let alg = config.native().jwt.effective_algorithm();
    let now = SystemClock.unix();
    let sealer = crate::auth::sealer::Sealer::load_or_create(&config.server.data_dir)?;
    let extra = config
        .oidc_provider
        .as_ref()
        .map(|p| p.id_token_algs())
        .unwrap_or_default();
    let kids = db
        .write_sync(|conn| -> Result<Vec<String>, AuthError> {
            // Keys an older derp left in plaintext are sealed too.
            jwt::seal_plaintext_keys(conn, &sealer)?;
            jwt::rotate(conn, alg, &extra, &sealer, now)
        })
        .map_err(|e| e.to_string())?;
    println!(
        "new signing key(s) {}; a running server picks them up within a minute, and old keys keep verifying until their tokens expire",
        kids.join(", ")
    );
    Ok(())
}
