//! The `derp` binary itself: config validation, the embedded default, key rotation.

use crate::helpers::*;
use reqwest::StatusCode;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn derp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_derp"));
    cmd.env_remove("DERP_CONFIG")
        .env_remove("DERP_BIND")
        .env("RUST_LOG", "info");
    cmd
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `derp` in `dir` on a free port; returns the process and base URL.
fn start(dir: &std::path::Path, args: &[&str]) -> (Running, String) {
    let mut child = derp()
        .args(args)
        .current_dir(dir)
        .env("DERP_BIND", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("derp starts");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = BufReader::new(stdout).lines();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(pos) = line.find("listening on http://") {
            let url: String = line[pos + "listening on ".len()..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            let url = url
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .to_string();
            std::thread::spawn(move || for _ in lines {});
            return (running, url);
        }
    }
    panic!("derp did not report its address");
}

#[tokio::test]
async fn embedded_default_serves_with_private_database_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start(dir.path(), &[]);
    let client = plain_client();
    assert_eq!(
        client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let res = client
        .post(format!("{url}/api/v1/auth/sign-up"))
        .json(&serde_json::json!({"email": "new@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["confirmation_required"], true,
        "confirmation is on by default"
    );
    let jwks: serde_json::Value = client
        .get(format!("{url}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA", "a generated EdDSA key");
    let data = dir.path().join("data");
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for f in ["derp.db", "derp.db-wal"] {
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

#[test]
fn validate_config_names_unknown_keys_and_unset_variables() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("derp.toml");
    std::fs::write(&file, "[auth.native.password]\nmin_lenght = 8\n").unwrap();
    let out = derp()
        .args(["validate-config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("min_lenght") && err.contains("[auth.native.password]"),
        "{err}"
    );

    std::fs::write(
        &file,
        "[auth.native.jwt]\nsecret = \"$DERP_TEST_UNSET_VAR\"\n",
    )
    .unwrap();
    let out = derp()
        .args(["validate-config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DERP_TEST_UNSET_VAR"));

    std::fs::write(&file, "[auth.native.jwt]\nsecret = \"$DERP_TEST_SECRET\"\n").unwrap();
    let out = derp()
        .args(["validate-config"])
        .arg(&file)
        .env("DERP_TEST_SECRET", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("HS256") && !stdout.contains("0123456789abcdef"));
}

/// The original library's configuration, as its users wrote it: the
/// leftover keys load with one warning each, and its Cognito and Clerk
/// blocks load without `[auth] org_context_secret`.
#[test]
fn validate_config_takes_the_original_librarys_files_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("derp.toml");
    std::fs::write(
        &file,
        r#"
[database]
url = "postgresql+asyncpg://app:app@localhost/app"
[kv.valkey]
addresses = [["localhost", 6379]]
[auth.native]
enable_signup = true
enable_confirmation = true
enable_magic_link = false
use_kv_cache = true
cache_prefix = "derp:auth"
cache_session_ttl_seconds = 300
cache_user_ttl_seconds = 300
[auth.native.jwt]
secret = "$JWT_SECRET"
algorithm = "HS256"
access_token_expire_minutes = 15
refresh_token_expire_days = 7
[auth.native.password]
min_length = 8
[auth.native.github_oauth]
client_id = "gh"
client_secret = "gh-secret"
redirect_uri = "https://app.example.com/auth/callback/github"
"#,
    )
    .unwrap();
    let out = derp()
        .args(["validate-config"])
        .arg(&file)
        .env("JWT_SECRET", "an-example-secret-of-at-least-32-bytes")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in derp::config::LEGACY_KEYS {
        let lines = stdout
            .lines()
            .filter(|l| l.starts_with("warning:") && l.contains(&format!("`{key}`")))
            .count();
        assert_eq!(lines, 1, "one warning naming {key}: {stdout}");
    }
    assert!(stdout.contains("configuration OK"), "{stdout}");

    // An unknown key that is not the original's is still an error.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("cache_prefix", "cache_prefixx")).unwrap();
    let out = derp()
        .args(["validate-config"])
        .arg(&file)
        .env("JWT_SECRET", "an-example-secret-of-at-least-32-bytes")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cache_prefixx"));

    for block in [
        "[auth.cognito]\nuser_pool_id = \"us-east-1_abc\"\nclient_id = \"c\"\n\
         client_secret = \"s\"\nregion = \"us-east-1\"\n",
        "[auth.clerk]\nsecret_key = \"sk_test_abc\"\n",
    ] {
        std::fs::write(&file, block).unwrap();
        let out = derp()
            .args(["validate-config"])
            .arg(&file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{block}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("warning:") && stdout.contains("org_context_secret"),
            "{stdout}"
        );
    }
}

#[test]
fn a_short_hs256_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("derp.toml");
    std::fs::write(
        &file,
        "[auth.native.jwt]\nsecret = \"too-short\"\nalgorithm = \"HS256\"\n",
    )
    .unwrap();
    let out = derp()
        .args(["serve", "--config"])
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 bytes"));
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn the_shipped_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/derp.toml");
    let out = derp()
        .args(["validate-config", example])
        .env("JWT_SECRET", "an-example-secret-of-at-least-32-bytes")
        .env("SMTP_USER", "user")
        .env("SMTP_PASSWORD", "password")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn version_and_migrate_dry_run() {
    let out = derp().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("derp "));
    let dir = tempfile::tempdir().unwrap();
    let out = derp()
        .args(["migrate", "--dry-run"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("pending: 0001_init.sql"));
    let out = derp()
        .args(["migrate"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied: 0001_init.sql"));
    let out = derp()
        .args(["migrate", "--dry-run"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no pending migrations"));
}

#[tokio::test]
async fn keys_rotate_publishes_a_new_key_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("derp.toml");
    let storage = storage_toml(&dir.path().join("data")).await;
    std::fs::write(&file, format!("[server]\ndata_dir = \"{}\"\npublic_url = \"http://derp.test\"\n[auth.native]\nenable_confirmation = false\n{storage}", dir.path().join("data").display())).unwrap();
    let config = derp::config::Config::load(Some(&file)).unwrap();
    let mut test_config = base_config(dir.path());
    test_config.server = derp::config::ServerConfig {
        bind: "127.0.0.1:0".into(),
        ..config.server.clone()
    };
    test_config.auth = config.auth.clone();
    let before = spawn_config(test_config.clone(), tempfile::tempdir().unwrap()).await;
    let up = before.sign_up("rot@example.com").await;
    let old_token = up["tokens"]["access_token"].as_str().unwrap().to_string();
    let old_kid = header(&old_token)["kid"].as_str().unwrap().to_string();

    let out = derp()
        .args(["keys", "rotate", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let after = spawn_config(test_config, tempfile::tempdir().unwrap()).await;
    let jwks: serde_json::Value = after
        .client
        .get(after.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&old_kid.as_str()));
    let fresh = after
        .sign_in("rot@example.com", PASSWORD)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let new_kid = header(fresh["tokens"]["access_token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_kid, old_kid, "the new key signs");
    assert_eq!(
        after.session(&old_token).await.status(),
        StatusCode::OK,
        "old tokens still verify"
    );
}
