//! SIGHUP reloads what can change safely, reports the rest, and refuses an
//! invalid file without changing anything: the real binary, a real signal.

use crate::helpers::{PASSWORD, plain_client};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "a-service-key-for-the-reload-test-0123456789";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(
    data: &std::path::Path,
    product: &str,
    per_account: u32,
    extra_hosted: &str,
    server_extra: &str,
) -> String {
    format!(
        "[server]\ndata_dir = \"{}\"\n{server_extra}\n[auth.native]\nenable_confirmation = false\n[hosted]\nproduct_name = \"{product}\"\n{extra_hosted}\n[admin]\nservice_keys = [\"{KEY}\"]\n[rate_limit]\nsign_in_per_ip = 1000\nsign_in_per_account = {per_account}\nsign_up_per_ip = 1000\nemail_per_address = 1000\n",
        data.display()
    )
}

async fn wait_for(lines: &Arc<Mutex<Vec<String>>>, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if lines.lock().unwrap().iter().any(|l| l.contains(needle)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn sighup_reloads_safe_settings_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("derp.toml");
    let data = dir.path().join("data");
    std::fs::write(&file, config(&data, "Before", 1, "", "")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_derp"))
        .args(["serve", "--config"])
        .arg(&file)
        .env("DERP_BIND", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid = child.id().to_string();
    let _running = Running(child);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    assert!(
        wait_for(&lines, "listening on http://").await,
        "derp started"
    );
    let base = {
        let l = lines.lock().unwrap();
        let line = l
            .iter()
            .find(|l| l.contains("listening on http://"))
            .unwrap()
            .clone();
        let at = line.find("http://").unwrap();
        line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .to_string()
    };
    let client = plain_client();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    assert_eq!(
        post(
            "/api/v1/auth/sign-up",
            json!({"email": "r@example.com", "password": PASSWORD})
        )
        .await
        .unwrap()
        .status(),
        StatusCode::CREATED
    );
    let sign_in = || {
        post(
            "/api/v1/auth/sign-in",
            json!({"email": "r@example.com", "password": PASSWORD}),
        )
    };
    assert_eq!(sign_in().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        sign_in().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "one a minute"
    );
    let login = || async {
        client
            .get(format!("{base}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(login().await.contains("Before"));
    let app_url = "https://new.example.com/cb";
    let redirect = || async {
        client
            .get(format!("{base}/login?redirect_to={app_url}"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(redirect().await, StatusCode::BAD_REQUEST);

    // New branding, limits and allow-list, and a change that needs a restart.
    std::fs::write(
        &file,
        config(
            &data,
            "After",
            100,
            &format!("allowed_redirect_urls = [\"{app_url}\"]"),
            "trusted_proxies = [\"10.0.0.0/8\"]",
        ),
    )
    .unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        wait_for(&lines, "configuration reloaded").await,
        "the reload is logged"
    );
    assert!(login().await.contains("After"), "branding reloaded");
    assert_eq!(
        sign_in().await.unwrap().status(),
        StatusCode::OK,
        "rate limits reloaded"
    );
    assert_eq!(redirect().await, StatusCode::OK, "allow-list reloaded");
    let audit: Value = client
        .get(format!("{base}/api/v1/admin/audit?action=config.reloaded"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event = &audit["events"][0];
    assert_eq!(event["detail"]["needs_restart"], json!(["server"]));
    let applied = event["detail"]["applied"].as_array().unwrap();
    assert!(
        applied.contains(&json!("rate_limit")) && applied.contains(&json!("hosted")),
        "{event}"
    );

    // An invalid file changes nothing.
    std::fs::write(&file, "[hosted]\nproduct_nmae = \"Typo\"\n").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(wait_for(&lines, "configuration not reloaded").await);
    assert!(login().await.contains("After"));
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// A reload compares the tables' values, secrets included: a new service
/// key (which prints as `[redacted]` like the old one) is reported as
/// needing a restart, and the same file again changes nothing.
#[tokio::test]
async fn a_changed_secret_is_seen_by_a_reload() {
    let old_key = "the-service-key-before-the-reload-0123456789";
    let app = crate::helpers::spawn_with(|c| {
        c.admin.service_keys = vec![derp::config::Secret::new(old_key)];
    })
    .await;
    let file = app._dir.path().join("derp.toml");
    let write = |key: &str| {
        std::fs::write(
            &file,
            format!(
                "[server]\nbind = \"127.0.0.1:0\"\npublic_url = \"{}\"\ndata_dir = \"{}\"\n\
                 [auth.native]\n\
                 [rate_limit]\nsign_in_per_ip = 10000\nsign_in_per_account = 10000\n\
                 sign_up_per_ip = 10000\nemail_per_address = 10000\n\
                 [admin]\nservice_keys = [\"{key}\"]\n",
                app.base,
                app._dir.path().join("data").display()
            ),
        )
        .unwrap()
    };
    write(old_key);
    let same = derp::startup::reload(&app.state, &file).await.unwrap();
    assert!(
        same.applied.is_empty() && same.needs_restart.is_empty(),
        "{same:?}"
    );
    write("the-service-key-after-the-reload-01234567890");
    let changed = derp::startup::reload(&app.state, &file).await.unwrap();
    assert_eq!(changed.needs_restart, ["admin"], "{changed:?}");
    assert!(changed.applied.is_empty(), "{changed:?}");
}
