//! Two `derp serve` processes against one PostgreSQL database behave as one
//! server: what one writes the other reads, a revocation on one is refused
//! by the other's `/session` cache, one refresh token used on both rotates
//! once, each mail of the shared outbox is sent once, and killing one
//! (-9) under load loses nothing that was answered. PostgreSQL only: the
//! suite's PostgreSQL run (`DERP_TEST_POSTGRES`) runs it.

use crate::helpers::*;
use crate::ops_runtime::Server;
use crate::smtp_server::SmtpServer;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How soon another instance's `/session` refuses a revoked session
/// (docs/operations.md promises one second; the notification takes
/// milliseconds).
const REVOCATION_SEEN_WITHIN: Duration = Duration::from_secs(1);

fn instance_config(dir: &Path, url: &str, smtp_port: u16) -> PathBuf {
    let file = dir.join("derp.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\n\
             # One public address for every instance: it is the tokens' issuer.\n\
             public_url = \"http://derp.test\"\n\
             [storage]\nengine = \"postgres\"\nurl = \"{url}\"\n\
             [auth.native]\nenable_confirmation = false\nrefresh_reuse_grace_seconds = 0\n\
             [email]\nfrom_email = \"derp <no-reply@derp.test>\"\nsmtp_host = \"127.0.0.1\"\n\
             smtp_port = {smtp_port}\ntls = \"none\"\n\
             [rate_limit]\nsign_up_per_ip = 100000\nsign_in_per_ip = 100000\n\
             sign_in_per_account = 100000\nemail_per_address = 100000\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    file
}

async fn post(
    client: &Client,
    base: &str,
    path: &str,
    bearer: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = client.post(format!("{base}{path}")).json(&body);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

async fn session_status(client: &Client, base: &str, access: &str) -> StatusCode {
    client
        .get(format!("{base}/api/v1/auth/session"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
}

/// A sign-in or sign-up (`what`) with the suite's password.
async fn with_password(
    client: &Client,
    base: &str,
    what: &str,
    email: impl AsRef<str>,
) -> reqwest::Response {
    let body = json!({"email": email.as_ref(), "password": PASSWORD});
    post(client, base, &format!("/api/v1/auth/{what}"), None, body).await
}

async fn refresh_at(client: &Client, base: &str, token: &str) -> reqwest::Response {
    post(
        client,
        base,
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": token}),
    )
    .await
}

fn tokens(v: &Value) -> (String, String) {
    (
        v["tokens"]["access_token"].as_str().unwrap().to_string(),
        v["tokens"]["refresh_token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_behave_as_one_server() {
    let Some(admin) = test_postgres() else {
        eprintln!("PostgreSQL only: set DERP_TEST_POSTGRES (./test.sh does)");
        return;
    };
    let url = new_postgres_database(&admin).await;
    let smtp = SmtpServer::start().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(&instance_config(dir_a.path(), &url, smtp.port));
    // Every instance seals with the same key: the second gets a copy.
    let data_b = dir_b.path().join("data");
    std::fs::create_dir(&data_b).unwrap();
    std::fs::copy(
        dir_a.path().join("data/secrets.key"),
        data_b.join("secrets.key"),
    )
    .unwrap();
    let b = Server::start(&instance_config(dir_b.path(), &url, smtp.port));
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(IDLE)
        .build()
        .unwrap();

    // Sign up on one, sign in on the other, and each accepts the other's token.
    let res = with_password(&client, &a.url, "sign-up", "one@example.com").await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", a.output());
    let res = with_password(&client, &b.url, "sign-in", "one@example.com").await;
    assert_eq!(res.status(), StatusCode::OK, "{}", b.output());
    let (access, _) = tokens(&res.json().await.unwrap());
    assert_eq!(
        session_status(&client, &a.url, &access).await,
        StatusCode::OK
    );
    assert_eq!(
        session_status(&client, &b.url, &access).await,
        StatusCode::OK
    );

    // Revoked on B: A's cache held the session, and refuses it at once.
    let res = post(
        &client,
        &b.url,
        "/api/v1/auth/sign-out",
        Some(&access),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    while session_status(&client, &a.url, &access).await != StatusCode::UNAUTHORIZED {
        assert!(
            revoked.elapsed() < REVOCATION_SEEN_WITHIN,
            "A still accepts a session revoked on B after {REVOCATION_SEEN_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("revocation on B refused by A after {:?}", revoked.elapsed());

    // One refresh token, 20 uses at once split across both: one rotation,
    // and the reuse revokes the family on both.
    let res = with_password(&client, &a.url, "sign-in", "one@example.com").await;
    let (_, refresh) = tokens(&res.json().await.unwrap());
    let mut uses = Vec::new();
    for i in 0..20 {
        let (client, base, refresh) = (
            client.clone(),
            if i % 2 == 0 {
                a.url.clone()
            } else {
                b.url.clone()
            },
            refresh.clone(),
        );
        uses.push(tokio::spawn(async move {
            let res = refresh_at(&client, &base, &refresh).await;
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }));
    }
    let mut rotated = Vec::new();
    for u in uses {
        let (status, body) = u.await.unwrap();
        match status {
            StatusCode::OK => rotated.push(tokens(&body)),
            StatusCode::UNAUTHORIZED => assert_eq!(body["error"]["code"], "invalid_token"),
            other => panic!("refresh answered {other}: {body}"),
        }
    }
    assert_eq!(rotated.len(), 1, "one of 20 parallel uses rotates");
    let (child_access, child_refresh) = rotated.pop().unwrap();
    for base in [&a.url, &b.url] {
        let res = refresh_at(&client, base, &child_refresh).await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "the reuse revoked the family"
        );
        assert_eq!(
            session_status(&client, base, &child_access).await,
            StatusCode::UNAUTHORIZED
        );
    }

    // The outbox is shared: mails asked of either instance go out once.
    for i in 0..10 {
        let base = if i % 2 == 0 { &a.url } else { &b.url };
        let email = format!("mail-{i}@example.com");
        let res = with_password(&client, base, "sign-up", &email).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let res = post(
            &client,
            if i % 2 == 0 { &b.url } else { &a.url },
            "/api/v1/auth/password/recover",
            None,
            json!({"email": email}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    for i in 0..10 {
        smtp.inbox
            .wait_for(&format!("mail-{i}@example.com"), 1)
            .await;
    }
    // Longer than both senders' poll (5 s): a second copy would be here.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for i in 0..10 {
        let got = smtp.inbox.to(&format!("mail-{i}@example.com")).len();
        assert_eq!(got, 1, "mail-{i}: sent {got} times");
    }

    // `derp keys rotate` against the shared database: both instances
    // publish the new key at once, and a token A signs with it verifies on B.
    let rotated = crate::ops_runtime::derp()
        .args(["keys", "rotate", "--config"])
        .arg(dir_a.path().join("derp.toml"))
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let published = Instant::now();
    for base in [&a.url, &b.url] {
        loop {
            let jwks: Value = client
                .get(format!("{base}/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if jwks["keys"].as_array().unwrap().len() == 2 {
                break;
            }
            assert!(
                published.elapsed() < REVOCATION_SEEN_WITHIN,
                "{base} does not publish the rotated key"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let res = with_password(&client, &a.url, "sign-in", "one@example.com").await;
    let (fresh, _) = tokens(&res.json().await.unwrap());
    assert_eq!(
        session_status(&client, &b.url, &fresh).await,
        StatusCode::OK
    );

    // The database drops every connection (a restart, a failover): each
    // instance opens new ones, and writes and reads work again at once.
    let terminate = url.clone();
    let dropped = tokio::task::spawn_blocking(move || {
        let mut admin = postgres::Client::connect(&terminate, postgres::NoTls).unwrap();
        admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .len()
    })
    .await
    .unwrap();
    assert!(
        dropped >= 4,
        "the instances' connections were dropped ({dropped})"
    );
    for (n, base) in [&a.url, &b.url].into_iter().enumerate() {
        let since = Instant::now();
        let mut failed = 0;
        let access = loop {
            let res =
                with_password(&client, base, "sign-up", format!("back-{n}@example.com")).await;
            if res.status() == StatusCode::CREATED {
                break tokens(&res.json().await.unwrap()).0;
            }
            failed += 1;
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "{base} still fails writes 5 s after the database dropped it"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!("{base}: writing again after {failed} failed sign-ups");
        assert_eq!(failed, 0, "a dropped connection costs no write");
        let other = if n == 0 { &b.url } else { &a.url };
        assert_eq!(
            session_status(&client, other, &access).await,
            StatusCode::OK
        );
    }

    // kill -9 A under a sign-up load on both: B keeps serving, and every
    // sign-up that either answered is there.
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base) = (
            client.clone(),
            if w % 2 == 0 {
                a.url.clone()
            } else {
                b.url.clone()
            },
        );
        let (answered, stop) = (answered.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut errors_on_b = 0;
            for i in 0..100_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let email = format!("load-{w}-{i}@example.com");
                let sent = client
                    .post(format!("{base}/api/v1/auth/sign-up"))
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await;
                match sent {
                    Ok(res) if res.status() == StatusCode::CREATED => {
                        answered.lock().unwrap().push(email)
                    }
                    // A is gone: its writers stop.
                    _ if w % 2 == 0 => break,
                    other => {
                        if errors_on_b == 0 {
                            match other {
                                Ok(res) => eprintln!(
                                    "B refused a sign-up: {} {}",
                                    res.status(),
                                    res.text().await.unwrap_or_default()
                                ),
                                Err(e) => eprintln!("B did not answer a sign-up: {e}"),
                            }
                        }
                        errors_on_b += 1;
                    }
                }
            }
            errors_on_b
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = answered.lock().unwrap().len();
    a.signal("-KILL");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut errors_on_b = 0;
    for w in writers {
        errors_on_b += w.await.unwrap();
    }
    assert_eq!(errors_on_b, 0, "B failed sign-ups while A died");
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > before_kill,
        "B kept signing users up after the kill"
    );
    eprintln!(
        "{} sign-ups answered, {before_kill} before the kill",
        answered.len()
    );
    for email in &answered {
        let res = with_password(&client, &b.url, "sign-in", email).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{email} was answered but is gone"
        );
    }
    drop(b);
}

fn sqlite_config(dir: &Path, storage: &str) -> PathBuf {
    let file = dir.join("derp.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\npublic_url = \"http://derp.test\"\n{storage}\
             [auth.native]\nenable_confirmation = false\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    file
}

/// `derp migrate-store --from sqlite --to postgres` moves an installation:
/// its users sign in with their passwords, its refresh tokens rotate, its
/// signing key still signs; a second copy into the now full database is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_moves_a_sqlite_installation_to_postgres() {
    let Some(admin) = test_postgres() else {
        eprintln!("PostgreSQL only: set DERP_TEST_POSTGRES (./test.sh does)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(IDLE)
        .build()
        .unwrap();
    let on_sqlite = Server::start(&sqlite_config(dir.path(), ""));
    let mut refresh = Vec::new();
    for i in 0..3 {
        let res = with_password(
            &client,
            &on_sqlite.url,
            "sign-up",
            format!("moved-{i}@example.com"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        refresh.push(tokens(&res.json().await.unwrap()).1);
    }
    let jwks = |base: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("{base}/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let kid = jwks(on_sqlite.url.clone()).await["keys"][0]["kid"].clone();
    on_sqlite.signal("-TERM");
    drop(on_sqlite);

    let url = new_postgres_database(&admin).await;
    let config = sqlite_config(
        dir.path(),
        &format!("[storage]\nengine = \"postgres\"\nurl = \"{url}\"\n"),
    );
    let copy = || {
        crate::ops_runtime::derp()
            .args([
                "migrate-store",
                "--from",
                "sqlite",
                "--to",
                "postgres",
                "--config",
            ])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = copy();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("users: 3"), "{printed}");

    let on_postgres = Server::start(&config);
    assert_eq!(
        jwks(on_postgres.url.clone()).await["keys"][0]["kid"],
        kid,
        "the same signing key"
    );
    for (i, r) in refresh.iter().enumerate() {
        let res = with_password(
            &client,
            &on_postgres.url,
            "sign-in",
            format!("moved-{i}@example.com"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "moved-{i} signs in");
        let res = refresh_at(&client, &on_postgres.url, r).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "moved-{i}'s refresh token rotates"
        );
    }
    // New rows get new ids after the copied ones.
    let res = with_password(&client, &on_postgres.url, "sign-up", "after@example.com").await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let again = copy();
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("already holds"), "{said}");
}

/// On PostgreSQL a statement that fails when it runs aborts the
/// transaction, and a COMMIT then rolls back in silence. A write that catches such a failure and
/// goes on is answered as failed, while the writes sharing its
/// transaction (group commit) still commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_goes_on_after_a_failed_statement_fails_alone() {
    use derp::storage::{Db, ExecCached as _, StorageError, StorageResult};
    let Some(admin) = test_postgres() else {
        eprintln!("PostgreSQL only: set DERP_TEST_POSTGRES (./test.sh does)");
        return;
    };
    let url = new_postgres_database(&admin).await;
    let db = tokio::task::spawn_blocking(move || Db::open_postgres(&url))
        .await
        .unwrap()
        .unwrap();
    let mut writes = Vec::new();
    for i in 0..40 {
        let db = db.clone();
        writes.push(tokio::spawn(async move {
            db.write(move |conn| -> StorageResult<()> {
                conn.exec(
                    "INSERT INTO settings (name, value, created_at) VALUES (?1, 'v', 0)",
                    [format!("w-{i}")],
                )?;
                if i % 4 == 0 {
                    // Fails when it runs (a taken name), not when prepared.
                    let again = conn.exec(
                        "INSERT INTO settings (name, value, created_at) VALUES (?1, 'v', 0)",
                        [format!("w-{i}")],
                    );
                    assert!(matches!(again, Err(StorageError::Conflict(_))), "{again:?}");
                }
                Ok(())
            })
            .await
        }));
    }
    for (i, w) in writes.into_iter().enumerate() {
        let outcome = w.await.unwrap();
        assert_eq!(outcome.is_ok(), i % 4 != 0, "write {i}: {outcome:?}");
    }
    let kept: Vec<String> = db
        .read(|conn| -> StorageResult<Vec<String>> {
            let mut stmt =
                conn.prepare("SELECT name FROM settings WHERE name LIKE 'w-%' ORDER BY name")?;
            stmt.query_map((), |r| r.get(0))?.collect()
        })
        .await
        .unwrap();
    assert_eq!(kept.len(), 30, "{kept:?}");
    assert!(
        kept.iter()
            .all(|n| n[2..].parse::<usize>().unwrap() % 4 != 0)
    );
    // The blocking form says so too.
    let db2 = db.clone();
    let sync = tokio::task::spawn_blocking(move || {
        db2.write_sync(|conn| -> StorageResult<()> {
            conn.exec(
                "INSERT INTO settings (name, value, created_at) VALUES ('sync', 'v', 0)",
                (),
            )?;
            let again = conn.exec(
                "INSERT INTO settings (name, value, created_at) VALUES ('sync', 'v', 0)",
                (),
            );
            assert!(again.is_err());
            Ok(())
        })
    })
    .await
    .unwrap();
    assert!(matches!(sync, Err(StorageError::Other(_))), "{sync:?}");
}
