//! `derp clients create | list | rotate-secret | delete`: the OpenID
//! Connect clients kept in the database.

use super::{ClientsCommand, load};
use crate::clock::{Clock, SystemClock};
use crate::error::AuthError;
use crate::storage::Db;
use std::path::PathBuf;

pub(super) fn clients_command(
    config: Option<&PathBuf>,
    command: ClientsCommand,
) -> Result<(), String> {
    use crate::services::oidc;
    let config = load(config)?;
    let config_ids: Vec<String> = config
        .oidc_provider
        .as_ref()
        .map(|p| p.clients.keys().cloned().collect())
        .unwrap_or_default();
    let db = Db::open_store(config.storage.postgres_url(), &config.server.data_dir)
        .map_err(|e| e.to_string())?;
    let now = SystemClock.unix();
    let shown = |e: AuthError| match e {
        AuthError::InvalidRequest { message, .. } => message,
        AuthError::NotFound(what) => {
            format!("no such {what} (clients of derp.toml are changed there)")
        }
        other => other.to_string(),
    };
    match command {
        ClientsCommand::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            scopes,
            public,
            first_party,
        } => {
            let new = oidc::NewClient {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                scopes,
                public,
                first_party,
            };
            let (row, secret) = db
                .write_sync(|conn| oidc::create_client(conn, new, &config_ids, now))
                .map_err(shown)?;
            println!("client_id: {}", row.client_id);
            match secret {
                Some(s) => println!(
                    "client_secret: {s}\n(shown once: derp keeps only its hash; `derp clients rotate-secret {}` makes a new one)",
                    row.client_id
                ),
                None => println!("public client: no secret; it must use PKCE (S256)"),
            }
            if config.oidc_provider.is_none() {
                println!("note: add an [oidc_provider] table to derp.toml to serve OpenID Connect");
            }
            Ok(())
        }
        ClientsCommand::List => {
            for id in &config_ids {
                println!("{id}\tderp.toml");
            }
            for row in oidc::stored_clients(&db).map_err(shown)? {
                let kind = if row.secret_hash.is_some() {
                    "confidential"
                } else {
                    "public"
                };
                println!(
                    "{}\t{}\t{kind}{}\t{}",
                    row.client_id,
                    row.name,
                    if row.first_party { ", first party" } else { "" },
                    row.redirect_uris.join(" ")
                );
            }
            Ok(())
        }
        ClientsCommand::RotateSecret { client_id } => {
            let secret = db
                .write_sync(|conn| oidc::rotate_client_secret(conn, &client_id, now))
                .map_err(shown)?;
            println!("client_secret: {secret}\n(shown once)");
            Ok(())
        }
        ClientsCommand::Delete { client_id } => {
            db.write_sync(|conn| oidc::delete_client(conn, &client_id, now))
                .map_err(shown)?;
            println!("client {client_id} deleted; its sessions ended");
            Ok(())
        }
    }
}
