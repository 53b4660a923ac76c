//! The command line: `derp serve | migrate | migrate-store | validate-config | keys rotate |
//! backup | healthcheck | admin create | mfa reset | clients`, one file
//! per group; this one parses the arguments and dispatches.

mod admin;
mod backup;
mod clients;
mod keys;
mod migrate;
mod serve;

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "derp", version, about = "A self-hosted auth server")]
pub struct Cli {
    /// Configuration file [default: ./derp.toml, or the embedded default when absent]
    #[arg(long, short, global = true, env = "DERP_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given)
    Serve,
    /// Apply pending database migrations
    Migrate {
        /// List pending migrations without applying them
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy an installation's SQLite database into the PostgreSQL database
    /// that [storage] names (empty, created by derp); then start derp on it
    MigrateStore {
        /// The engine to copy from: sqlite
        #[arg(long, value_parser = ["sqlite"])]
        from: String,
        /// The engine to copy to: postgres
        #[arg(long, value_parser = ["postgres"])]
        to: String,
    },
    /// Check a configuration file and exit non-zero with the reasons
    ValidateConfig {
        /// The file to check [default: --config or ./derp.toml]
        path: Option<PathBuf>,
    },
    /// Signing keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Copy the database to PATH (0600), consistently, while the server runs
    Backup {
        /// The file to write; an existing one is refused without --force
        path: PathBuf,
        /// Replace PATH if it exists
        #[arg(long)]
        force: bool,
    },
    /// Admin accounts
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Second factors
    Mfa {
        #[command(subcommand)]
        command: MfaCommand,
    },
    /// OpenID Connect clients of derp as a provider (besides those of
    /// [oidc_provider.clients.*] in derp.toml)
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Exit 0 when the running server answers GET /readyz with 200
    Healthcheck {
        /// The URL to ask [default: http://<bind>/readyz from the configuration,
        /// DERP_BIND overriding bind]
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Make EMAIL an admin (creating the user when needed); without
    /// --password, print a one-time link to choose one
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum MfaCommand {
    /// Remove every second factor and recovery code of EMAIL (a user who
    /// lost them): the next sign-in needs only the first factor
    Reset {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Register a client; prints its id and, once, its secret
    Create {
        /// Shown on the consent page and in /account
        #[arg(long)]
        name: String,
        /// Where the client may be sent back with a code (repeatable)
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may send the browser (repeatable)
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Scopes it may ask for, comma separated [openid,email,profile]
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
        /// No secret: a browser or mobile app, which must use PKCE
        #[arg(long)]
        public: bool,
        /// Skip the consent page
        #[arg(long)]
        first_party: bool,
    },
    /// List the clients (derp.toml's and the registered ones)
    List,
    /// A new secret for a registered client (printed once; the old one stops working)
    RotateSecret { client_id: String },
    /// Delete a registered client; its sessions end
    Delete { client_id: String },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Start signing with a new key; old keys verify until their tokens expire
    Rotate,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("derp: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Which configuration `Config::load(path)` reads: the file given, else
/// `./derp.toml` when it exists, else the embedded default.
pub(super) fn config_source(path: Option<&std::path::Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None if std::path::Path::new("derp.toml").exists() => "./derp.toml".into(),
        None => "the embedded default (no ./derp.toml)".into(),
    }
}

pub(super) fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    Config::load(path.map(PathBuf::as_path)).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let path = cli
                .config
                .clone()
                .or_else(|| Some(PathBuf::from("derp.toml")).filter(|p| p.exists()));
            serve::serve(load(cli.config.as_ref())?, path)
        }
        Command::ValidateConfig { path } => {
            let path = path.or(cli.config);
            migrate::validate_config(load(path.as_ref())?)
        }
        Command::Migrate { dry_run } => migrate::migrate(load(cli.config.as_ref())?, dry_run),
        Command::MigrateStore { .. } => migrate::migrate_store(load(cli.config.as_ref())?),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => keys::rotate(load(cli.config.as_ref())?),
        Command::Admin {
            command: AdminCommand::Create { email, password },
        } => {
            let config = load(cli.config.as_ref())?;
            admin::admin_create(config, &email, password)
        }
        Command::Mfa {
            command: MfaCommand::Reset { email },
        } => admin::mfa_reset(load(cli.config.as_ref())?, &email),
        Command::Clients { command } => clients::clients_command(cli.config.as_ref(), command),
        Command::Backup { path, force } => {
            let config = load(cli.config.as_ref())?;
            if config.storage.postgres_url().is_some() {
                return Err(
                    "derp backup copies the SQLite file; with [storage] engine = \"postgres\", \
                     back the database up with pg_dump and keep a copy of secrets.key"
                        .into(),
                );
            }
            backup::backup_command(&config.server.data_dir, &path, force)
        }
        Command::Healthcheck { url } => {
            let url = match url {
                Some(url) => url,
                None => serve::readyz_url(load(cli.config.as_ref())?)?,
            };
            serve::healthcheck(&url)
        }
    }
}
