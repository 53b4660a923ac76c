//! Reading `derp.toml`: parse, substitute `$VARIABLE`s, set aside the
//! original library's leftover keys, deserialize while refusing unknown
//! keys, then let every table validate itself.

use super::{Config, ConfigError, EMBEDDED_DEFAULT};
use std::path::Path;

/// Keys of the original library's configuration that mean nothing to derp:
/// its database and KV cache (derp keeps everything in its own SQLite). They
/// are accepted with a warning so the original's files load as written;
/// every other unknown key stays an error.
pub const LEGACY_KEYS: &[&str] = &[
    "database",
    "kv.valkey",
    "auth.native.use_kv_cache",
    "auth.native.cache_prefix",
    "auth.native.cache_session_ttl_seconds",
    "auth.native.cache_user_ttl_seconds",
];

/// Takes the [`LEGACY_KEYS`] out of `value`: the ones that were there.
fn strip_legacy_keys(value: &mut toml::Value) -> Vec<String> {
    let mut found = Vec::new();
    for key in LEGACY_KEYS {
        let (parents, last) = match key.rsplit_once('.') {
            Some((p, l)) => (p.split('.').collect::<Vec<_>>(), l),
            None => (Vec::new(), *key),
        };
        let mut table = value.as_table_mut();
        for p in &parents {
            table = table
                .and_then(|t| t.get_mut(*p))
                .and_then(|v| v.as_table_mut());
        }
        if let Some(t) = table
            && t.remove(last).is_some()
        {
            found.push(key.to_string());
        }
    }
    // `[kv]` held only `[kv.valkey]`: nothing is left of it.
    if let Some(root) = value.as_table_mut()
        && root
            .get("kv")
            .and_then(|kv| kv.as_table())
            .is_some_and(|kv| kv.is_empty())
        && found.iter().any(|k| k == "kv.valkey")
    {
        root.remove("kv");
    }
    found
}

impl Config {
    /// Reads `path`; when `path` is the default and no file exists, returns the
    /// embedded default.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::from_toml(&text)
            }
            None => {
                let default = Path::new("derp.toml");
                if default.exists() {
                    Self::load(Some(default))
                } else {
                    Self::from_toml(EMBEDDED_DEFAULT)
                }
            }
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        substitute_env(&mut value, &mut Vec::new())?;
        let ignored_keys = strip_legacy_keys(&mut value);
        let mut unknown: Option<String> = None;
        let mut config: Config = serde_ignored::deserialize(value, |path| {
            if unknown.is_none() {
                // serde_ignored marks `Option` layers with `?`: not part of the key.
                let segments: Vec<String> = path
                    .to_string()
                    .split('.')
                    .filter(|s| *s != "?")
                    .map(str::to_string)
                    .collect();
                unknown = Some(segments.join("."));
            }
        })
        .map_err(|e| ConfigError::Parse(e.to_string()))?;
        if let Some(path) = unknown {
            let (table, key) = match path.rsplit_once('.') {
                Some((t, k)) => (t.to_string(), k.to_string()),
                None => ("root".to_string(), path),
            };
            return Err(ConfigError::UnknownKey { key, table });
        }
        config.ignored_keys = ignored_keys;
        config.validate()?;
        config.hosted.read_custom_css()?;
        Ok(config)
    }
}

/// Replaces `"$NAME"` strings by the environment variable `NAME`.
fn substitute_env(value: &mut toml::Value, path: &mut Vec<String>) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => {
            if let Some(var) = s.strip_prefix('$')
                && !var.is_empty()
            {
                *s = std::env::var(var).map_err(|_| ConfigError::UnsetVariable {
                    var: var.to_string(),
                    key: path.join("."),
                })?;
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                substitute_env(item, path)?;
                path.pop();
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                path.push(k.clone());
                substitute_env(v, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::LEGACY_KEYS;
    use crate::config::Config;

    #[test]
    fn unknown_key_is_named_with_its_table() {
        let err = Config::from_toml("[auth.native.jwt]\nsecrett = \"x\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `secrett` in table [auth.native.jwt]"
        );
    }

    #[test]
    fn the_original_librarys_leftover_keys_are_ignored_with_a_warning_each() {
        let c = Config::from_toml(
            "[database]\nurl = \"postgresql://x\"\n\
             [kv.valkey]\naddresses = [[\"localhost\", 6379]]\n\
             [auth.native]\nuse_kv_cache = true\ncache_prefix = \"derp:auth\"\n\
             cache_session_ttl_seconds = 300\ncache_user_ttl_seconds = 300\n\
             enable_magic_link = true\n\
             [auth.native.github_oauth]\nclient_id = \"a\"\nclient_secret = \"b\"\n\
             redirect_uri = \"http://localhost/cb\"\n",
        )
        .unwrap();
        assert_eq!(c.ignored_keys.len(), 6, "{:?}", c.ignored_keys);
        let warnings = c.warnings();
        for key in LEGACY_KEYS {
            assert!(
                warnings.iter().any(|w| w.contains(&format!("`{key}`"))),
                "{key}: {warnings:?}"
            );
        }
        assert!(c.native().enable_magic_link);
        // GitHub sign-in is derp's too: the original's table configures it.
        let gh = c.native().github_oauth.unwrap();
        assert_eq!(gh.client_id, "a");
        assert_eq!(gh.redirect_uri.as_deref(), Some("http://localhost/cb"));
        assert_eq!(gh.scopes, ["user:email"]);
        assert!(!c.ignored_keys.iter().any(|k| k.contains("github")));
        // Anything else stays an error, next to the ignored keys too.
        let err = Config::from_toml("[kv.valkey]\nmode = \"standalone\"\n[kv.redis]\nx = 1\n")
            .unwrap_err();
        // (`[kv]` is no table of derp's: what is left of it is the unknown key.)
        assert_eq!(err.to_string(), "unknown key `kv` in table [root]");
        let err = Config::from_toml("[auth.native]\ncache_everything = true\n").unwrap_err();
        assert!(err.to_string().contains("cache_everything"), "{err}");
    }

    #[test]
    fn unset_variable_is_named() {
        let err = Config::from_toml("[auth.native.jwt]\nsecret = \"$DERP_TEST_SURELY_UNSET\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("DERP_TEST_SURELY_UNSET"));
        assert!(err.to_string().contains("auth.native.jwt.secret"));
    }
}
