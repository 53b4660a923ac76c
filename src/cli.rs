//! The command line: `derp serve | migrate | validate-config | keys rotate`.

use crate::auth::jwt;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::AuthError;
use crate::startup::{Application, Overrides};
use crate::storage::{Db, migrations};
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

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    Config::load(path.map(PathBuf::as_path)).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(load(cli.config.as_ref())?),
        Command::ValidateConfig { path } => {
            let path = path.or(cli.config);
            let config = load(path.as_ref())?;
            println!(
                "configuration OK: backend {:?}, bind {}, algorithm {}",
                config.backend(),
                config.server.bind,
                config.native().jwt.effective_algorithm().as_str()
            );
            Ok(())
        }
        Command::Migrate { dry_run } => {
            let config = load(cli.config.as_ref())?;
            let db =
                Db::open_without_migrating(&config.server.data_dir).map_err(|e| e.to_string())?;
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
            let db = Db::open(&config.server.data_dir).map_err(|e| e.to_string())?;
            drop(db);
            if pending.is_empty() {
                println!("no pending migrations");
            }
            for name in pending {
                println!("applied: {name}");
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let config = load(cli.config.as_ref())?;
            let db = Db::open(&config.server.data_dir).map_err(|e| e.to_string())?;
            let alg = config.native().jwt.effective_algorithm();
            let now = SystemClock.unix();
            let kid = db
                .write_sync(|conn| -> Result<String, AuthError> { jwt::rotate(conn, alg, now) })
                .map_err(|e| e.to_string())?;
            println!(
                "new {} signing key {kid}; a running server picks it up within a minute, and old keys keep verifying until their tokens expire",
                alg.as_str()
            );
            Ok(())
        }
    }
}

fn serve(config: Config) -> Result<(), String> {
    init_tracing(&config.server.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let app = Application::build(config, Overrides::default())
            .await
            .map_err(|e| e.to_string())?;
        let url = app.state().config.public_url();
        tracing::info!(port = app.port(), "derp listening on {url}");
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn init_tracing(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
