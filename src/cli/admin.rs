//! `derp admin create` and `derp mfa reset`: on the database directly,
//! server running or not.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::AuthError;
use crate::storage::Db;

/// `derp admin create`: works on the database directly, server running or not.
pub(super) fn admin_create(
    config: Config,
    email: &str,
    password: Option<String>,
) -> Result<(), String> {
    let email = crate::domain::Email::parse(email).map_err(|p| format!("--email {p}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // Opened before the runtime: PostgreSQL's blocking client cannot
    // connect from inside one.
    let db = Db::open_store(config.storage.postgres_url(), &config.server.data_dir)
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let admin = crate::services::admin::AdminService {
            db,
            clock: std::sync::Arc::new(SystemClock),
            hasher: crate::auth::password::Hasher::new(),
            policy: crate::domain::PasswordPolicy::new(config.native().password.clone()),
            directory: None,
            mail: None,
            public_url: config.public_url(),
        };
        let made = admin
            .create_admin(email, password, &config.public_url())
            .await
            .map_err(|e| match e {
                AuthError::WeakPassword(r) => format!("--password is too weak: {}", r.join(", ")),
                other => other.to_string(),
            })?;
        let what = if made.promoted {
            "is now an admin"
        } else {
            "is created as an admin"
        };
        println!("{} {what} (user id {})", made.user.email, made.user.id);
        if let Some(link) = made.password_link {
            println!("Choose a password with this one-time link (24 hours):\n\n    {link}\n");
        }
        Ok(())
    })
}

/// `derp mfa reset`: removes a user's second factors and recovery codes.
pub(super) fn mfa_reset(config: Config, email: &str) -> Result<(), String> {
    let email = crate::domain::Email::parse(email).map_err(|p| format!("--email {p}"))?;
    let db = Db::open_store(config.storage.postgres_url(), &config.server.data_dir)
        .map_err(|e| e.to_string())?;
    let now = SystemClock.unix();
    let done = db
        .write_sync(|conn| crate::auth::native::mfa::reset_factors(conn, email.as_str(), now))
        .map_err(|e| e.to_string())?;
    match done {
        Some((id, n)) => {
            println!("{email}: {n} second factor(s) and the recovery codes removed (user id {id})");
            Ok(())
        }
        None => Err(format!("no user with the email {email}")),
    }
}
