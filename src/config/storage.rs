//! `[storage]`: where derp keeps its data.

use super::{ConfigError, Secret};
use serde::Deserialize;

/// The storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageEngine {
    /// One SQLite file, `<data_dir>/derp.db` (the default).
    #[default]
    Sqlite,
    /// A PostgreSQL database that several derp instances may share.
    Postgres,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StorageConfig {
    pub engine: StorageEngine,
    /// PostgreSQL's connection string (`postgres://user:pass@host/db` or
    /// `host=… dbname=…`), usually `"$DATABASE_URL"`. A secret: it may hold
    /// a password.
    pub url: Option<Secret>,
}

impl StorageConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match (self.engine, &self.url) {
            (StorageEngine::Postgres, None) => Err(ConfigError::Invalid(
                "storage.url: required with engine = \"postgres\" (for example \"$DATABASE_URL\")"
                    .into(),
            )),
            (StorageEngine::Postgres, Some(url)) => {
                let u = url.expose();
                if u.starts_with("postgres://") || u.starts_with("postgresql://") || u.contains('=')
                {
                    Ok(())
                } else {
                    Err(ConfigError::Invalid(
                        "storage.url: a postgres:// URL or a `host=… dbname=…` string".into(),
                    ))
                }
            }
            (StorageEngine::Sqlite, Some(_)) => Err(ConfigError::Invalid(
                "storage.url: only for engine = \"postgres\" (SQLite lives in server.data_dir)"
                    .into(),
            )),
            (StorageEngine::Sqlite, None) => Ok(()),
        }
    }

    /// PostgreSQL's connection string when the engine is PostgreSQL;
    /// `None`: SQLite.
    pub fn postgres_url(&self) -> Option<&str> {
        match self.engine {
            StorageEngine::Postgres => self.url.as_ref().map(Secret::expose),
            StorageEngine::Sqlite => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, StorageEngine};

    #[test]
    fn the_engine_and_its_url_are_checked() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.storage.engine, StorageEngine::Sqlite);
        let c = Config::from_toml(
            "[storage]\nengine = \"postgres\"\nurl = \"postgres://derp@localhost/derp\"\n",
        )
        .unwrap();
        assert_eq!(c.storage.engine, StorageEngine::Postgres);
        for (bad, says) in [
            (
                "[storage]\nengine = \"postgres\"\n",
                "storage.url: required",
            ),
            (
                "[storage]\nurl = \"postgres://x@y/z\"\n",
                "storage.url: only",
            ),
            ("[storage]\nengine = \"mysql\"\n", "mysql"),
            (
                "[storage]\nengine = \"postgres\"\nurl = \"localhost\"\n",
                "postgres:// URL",
            ),
        ] {
            let e = Config::from_toml(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
