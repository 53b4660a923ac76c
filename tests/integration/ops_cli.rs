//! Running derp on a server: `derp backup` under write load and a restore
//! from it, the copy `Db::open` keeps before migrating, `derp healthcheck`,
//! and SIGHUP (`systemctl reload`) not ending the server.

use crate::helpers::*;
use derp::storage::{Db, StorageError, backup, migrations};
use reqwest::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn derp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_derp"));
    cmd.env_remove("DERP_CONFIG")
        .env_remove("DERP_BIND")
        .env("RUST_LOG", "info");
    cmd
}

/// Runs the binary off the async workers, so in-process servers keep serving.
async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("derp runs"))
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A `derp.toml` naming a data directory and a bind address.
fn config_file(dir: &Path, data_dir: &Path, bind: &str) -> PathBuf {
    let file = dir.join("derp.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nbind = \"{bind}\"\ndata_dir = \"{}\"\n[auth.native]\n",
            data_dir.display()
        ),
    )
    .unwrap();
    file
}

/// A sign-up that answered 201: when it was sent and when the answer came.
struct SignedUp {
    email: String,
    sent: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_write_load_restores_every_user_signed_up_before_it() {
    if sqlite_only("derp backup copies the SQLite file") {
        return;
    }
    let app = spawn_app().await;
    let work = tempfile::tempdir().unwrap();
    let config = config_file(
        work.path(),
        &app.state.config.server.data_dir,
        "127.0.0.1:0",
    );

    // Two writers sign users up (each sign-up also opens a session) until told to stop.
    let created: Arc<Mutex<Vec<SignedUp>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/auth/sign-up"));
        let (created, stop) = (created.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let email = format!("load-{w}-{i}@example.com");
                i += 1;
                let sent = Instant::now();
                let res = client
                    .post(&url)
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::CREATED, "{email}");
                // Recorded only once the 201 is in hand.
                created.lock().unwrap().push(SignedUp { email, sent });
            }
        }));
    }
    let count = |created: &Arc<Mutex<Vec<SignedUp>>>| created.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&created) < 8 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Everyone in the list now had their 201 before the backup started.
    let before: Vec<String> = created
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.email.clone())
        .collect();
    let out_file = work.path().join("derp-backup.db");
    let mut cmd = derp();
    cmd.arg("backup")
        .arg(&out_file)
        .arg("--config")
        .arg(&config);
    let out = run(cmd).await;
    let backup_done = Instant::now();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("integrity ok"),
        "{}",
        text(&out.stdout)
    );

    // Keep writing until some sign-ups were sent after the backup finished.
    let deadline = Instant::now() + Duration::from_secs(120);
    while created
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.sent > backup_done)
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "the load stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let after: Vec<String> = created
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.sent > backup_done)
        .map(|s| s.email.clone())
        .collect();

    assert_eq!(mode(&out_file), 0o600, "the backup is owner-only");
    assert_eq!(backup::integrity_check(&out_file).unwrap(), "ok");
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = out_file.clone().into_os_string();
        side.push(suffix);
        assert!(!Path::new(&side).exists(), "a single self-contained file");
    }

    // Restore: the backup becomes derp.db of a new server.
    let restored_dir = tempfile::tempdir().unwrap();
    let data = restored_dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let db_file = data.join("derp.db");
    std::fs::copy(&out_file, &db_file).unwrap();
    std::fs::set_permissions(&db_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Its secrets.key goes with it (docs/operations.md): it opens the signing keys.
    std::fs::copy(
        app.state.config.server.data_dir.join("secrets.key"),
        data.join("secrets.key"),
    )
    .unwrap();
    let mut config = base_config(restored_dir.path());
    config
        .auth
        .native
        .get_or_insert_with(Default::default)
        .enable_confirmation = false;
    let restored = spawn_config(config, restored_dir).await;

    assert!(before.len() >= 8);
    for email in &before {
        assert_eq!(
            restored.sign_in(email, PASSWORD).await.status(),
            StatusCode::OK,
            "{email} signed up before the backup started"
        );
    }
    for email in &after {
        expect_error(
            restored.sign_in(email, PASSWORD).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
    assert_eq!(backup::integrity_check(&db_file).unwrap(), "ok");
    // The source kept serving and kept everything.
    assert_eq!(
        app.sign_in(&after[0], PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn backup_refuses_to_overwrite_without_force_and_never_creates_a_database() {
    if sqlite_only("derp backup copies the SQLite file") {
        return;
    }
    let app = spawn_app().await;
    app.sign_up("kept@example.com").await;
    let work = tempfile::tempdir().unwrap();
    let config = config_file(
        work.path(),
        &app.state.config.server.data_dir,
        "127.0.0.1:0",
    );
    let target = work.path().join("existing.db");
    std::fs::write(&target, "keep me").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut cmd = derp();
    cmd.arg("backup").arg(&target).arg("--config").arg(&config);
    let out = run(cmd).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");

    let mut cmd = derp();
    cmd.args(["backup", "--force"])
        .arg(&target)
        .arg("--config")
        .arg(&config);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&target), 0o600, "replaced by an owner-only file");
    assert_eq!(backup::integrity_check(&target).unwrap(), "ok");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The live database itself is not a target, even with --force.
    let live = app.state.config.server.data_dir.join("derp.db");
    let mut cmd = derp();
    cmd.args(["backup", "--force"])
        .arg(&live)
        .arg("--config")
        .arg(&config);
    let out = run(cmd).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("live database"));
    assert_eq!(
        app.sign_in("kept@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );

    // A directory is not a file name.
    let mut cmd = derp();
    cmd.args(["backup", "--force"])
        .arg(work.path())
        .arg("--config")
        .arg(&config);
    let out = run(cmd).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is a directory"));

    // No database: an error, and nothing created.
    let missing = work.path().join("nothing-here");
    let config = config_file(work.path(), &missing, "127.0.0.1:0");
    let mut cmd = derp();
    cmd.arg("backup")
        .arg(work.path().join("x.db"))
        .arg("--config")
        .arg(&config);
    let out = run(cmd).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no database"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists() && !work.path().join("x.db").exists());
}

/// A database at migration 1 (older than this binary), holding one user.
fn database_at_version_1(data: &Path) {
    let db = Db::open_without_migrating(data).unwrap();
    let (number, _, sql) = migrations::all()[0];
    assert_eq!(number, 1);
    db.write_sync(|conn| -> Result<(), StorageError> {
        conn.execute_batch(sql)?;
        conn.execute_batch(
            "INSERT INTO users (id, email, created_at, updated_at)
             VALUES ('u-old', 'old@example.com', 0, 0);
             PRAGMA user_version = 1;",
        )?;
        Ok(())
    })
    .unwrap();
}

fn pre_migration_backups(data: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("derp.db.pre-")
        })
        .collect();
    found.sort();
    found
}

/// `(user_version, whether old@example.com is there, whether the outbox table is)`
fn inspect(db_file: &Path) -> (u32, bool, bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(db_file, data.join("derp.db")).unwrap();
    let db = Db::open_without_migrating(&data).unwrap();
    db.write_sync(|conn| -> Result<_, StorageError> {
        let version = migrations::current_version(conn)?;
        let user: i64 = conn.query_row(
            "SELECT count(*) FROM users WHERE email = 'old@example.com'",
            (),
            |r| r.get(0),
        )?;
        let outbox: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'outbox'",
            (),
            |r| r.get(0),
        )?;
        Ok((version, user == 1, outbox == 1))
    })
    .unwrap()
}

#[tokio::test]
async fn migrating_an_existing_database_keeps_a_copy_first() {
    if sqlite_only("the copy before migrating is of the SQLite file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    database_at_version_1(&data);
    let config = config_file(dir.path(), &data, "127.0.0.1:0");
    let latest = migrations::all().last().unwrap().0;

    let mut cmd = derp();
    cmd.args(["migrate", "--dry-run", "--config"]).arg(&config);
    let out = run(cmd).await;
    assert!(
        text(&out.stdout).contains("pending: 0002_"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        pre_migration_backups(&data).is_empty(),
        "a dry run copies nothing"
    );

    let mut cmd = derp();
    cmd.args(["migrate", "--config"]).arg(&config);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("backed up the database to") && stdout.contains("applied: 0002_"));
    let copies = pre_migration_backups(&data);
    assert_eq!(copies.len(), 1, "{copies:?}");
    let name = copies[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let stamp = name
        .strip_prefix("derp.db.pre-2-")
        .and_then(|s| s.strip_suffix(".bak"))
        .unwrap_or_else(|| panic!("named derp.db.pre-<N>-<unix time>.bak: {name}"));
    assert!(stamp.parse::<i64>().unwrap() > 1_700_000_000, "{name}");
    assert_eq!(mode(&copies[0]), 0o600);
    assert_eq!(backup::integrity_check(&copies[0]).unwrap(), "ok");
    assert_eq!(
        inspect(&copies[0]),
        (1, true, false),
        "the copy is the database as it was before migrating"
    );
    assert_eq!(inspect(&data.join("derp.db")), (latest, true, true));

    // Nothing pending: no copy.
    let mut cmd = derp();
    cmd.args(["migrate", "--config"]).arg(&config);
    let out = run(cmd).await;
    assert!(text(&out.stdout).contains("no pending migrations"));
    assert_eq!(pre_migration_backups(&data).len(), 1);

    // A new database has nothing to keep.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_data = fresh.path().join("data");
    let config = config_file(fresh.path(), &fresh_data, "127.0.0.1:0");
    let mut cmd = derp();
    cmd.args(["migrate", "--config"]).arg(&config);
    assert!(run(cmd).await.status.success());
    assert!(pre_migration_backups(&fresh_data).is_empty());

    // The server migrates at start through the same path.
    let served = tempfile::tempdir().unwrap();
    database_at_version_1(&served.path().join("data"));
    let app = spawn_config(base_config(served.path()), served).await;
    let data = app.state.config.server.data_dir.clone();
    let copies = pre_migration_backups(&data);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(inspect(&copies[0]), (1, true, false));
}

/// A one-connection-at-a-time server that answers every request with `answer`
/// (or never answers, when `None`).
fn fake_server(answer: Option<&'static str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            match answer {
                Some(a) => {
                    let _ = stream.write_all(a.as_bytes());
                }
                None => held.push(stream),
            }
        }
    });
    port
}

#[tokio::test]
async fn healthcheck_asks_readyz_at_the_configured_address() {
    let app = spawn_app().await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("unused");

    let mut cmd = derp();
    cmd.args(["healthcheck", "--url", &app.url("/readyz")]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ready"));

    // From the configuration's bind; a wildcard bind is asked on loopback.
    for bind in [format!("127.0.0.1:{port}"), format!("0.0.0.0:{port}")] {
        let config = config_file(dir.path(), &data, &bind);
        let mut cmd = derp();
        cmd.args(["healthcheck", "--config"]).arg(&config);
        let out = run(cmd).await;
        assert!(out.status.success(), "{bind}: {}", text(&out.stderr));
    }

    // Nothing listening: non-zero, one line naming the URL and the reason.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let config = config_file(dir.path(), &data, &format!("127.0.0.1:{dead_port}"));
    let mut cmd = derp();
    cmd.args(["healthcheck", "--config"]).arg(&config);
    let out = run(cmd).await;
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("http://127.0.0.1:{dead_port}/readyz"))
            && err.contains("cannot connect"),
        "{err}"
    );

    // DERP_BIND overrides the configured bind, as for serve.
    let mut cmd = derp();
    cmd.args(["healthcheck", "--config"])
        .arg(&config)
        .env("DERP_BIND", format!("127.0.0.1:{port}"));
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A server that is up but not ready.
    let busy = fake_server(Some(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ));
    let mut cmd = derp();
    cmd.args([
        "healthcheck",
        "--url",
        &format!("http://127.0.0.1:{busy}/readyz"),
    ]);
    let out = run(cmd).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("answered 503"),
        "{}",
        text(&out.stderr)
    );

    // A server that never answers: given up after 3 s.
    let silent = fake_server(None);
    let started = Instant::now();
    let mut cmd = derp();
    cmd.args([
        "healthcheck",
        "--url",
        &format!("http://127.0.0.1:{silent}/readyz"),
    ]);
    let out = run(cmd).await;
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        text(&out.stderr).contains("no answer within 3 s"),
        "{}",
        text(&out.stderr)
    );
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn sighup_does_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = derp()
        .arg("serve")
        .current_dir(dir.path())
        .env("DERP_BIND", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut server = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("derp reports its address");
        if let Some(pos) = line.find("listening on http://") {
            let url: String = line[pos + "listening on ".len()..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            break url
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .to_string();
        }
    };

    let kill = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logged = false;
    while !logged && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => logged = line.contains("SIGHUP"),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert!(server.0.try_wait().unwrap().is_none(), "still running");
    assert!(logged, "the hangup is logged");
    let mut cmd = derp();
    cmd.args(["healthcheck", "--url", &format!("{url}/readyz")]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}
