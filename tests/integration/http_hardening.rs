//! HTTP hardening (issue #19): request-body deadlines and connection caps,
//! JSON-only API bodies, equal timing for known and unknown addresses, HSTS
//! on https, the setup link as a JSON log line, control characters in admin
//! search.

use crate::admin::{KEY, admin_app};
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

// ------------------------------------------------------ stalled bodies

/// Sends `head_and_part` on a new connection, then nothing more, and reads
/// until the server closes it (bounded by `limit`). Returns the answer (may
/// be empty) and how long the server took to close.
async fn stall(addr: &str, head_and_part: &str, limit: Duration) -> (String, Duration) {
    let mut stream = timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let started = Instant::now();
    stream.write_all(head_and_part.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let closed = timeout(limit, stream.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok(),
        "the server still holds the connection after {limit:?}, having sent {:?}",
        String::from_utf8_lossy(&answer)
    );
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

fn status_of(answer: &str) -> Option<u16> {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_its_connection_closed() {
    let app = spawn_with(|c| c.server.request_timeout_seconds = 2).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let limit = Duration::from_secs(15);

    // Content-Length: 100, 10 bytes sent.
    let head = format!(
        "POST /api/v1/auth/sign-in HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":\""
    );
    let (answer, took) = stall(&addr, &head, limit).await;
    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");

    // A chunked body that stops: answered and closed too, not drained forever.
    let head = format!(
        "POST /api/v1/auth/sign-up HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\na\r\n{{\"email\":\"\r\n"
    );
    let (answer, _) = stall(&addr, &head, limit).await;
    assert_eq!(status_of(&answer), Some(408), "{answer}");

    // A form on a hosted page.
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=a%40"
    );
    let (answer, _) = stall(&addr, &head, limit).await;
    assert_eq!(status_of(&answer), Some(408), "{answer}");

    // An unfinished head: the server's own head deadline (same setting).
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n");
    let (answer, _) = stall(&addr, &head, limit).await;
    assert!(
        answer.is_empty() || status_of(&answer) == Some(408),
        "{answer}"
    );

    // Complete requests are unaffected.
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

fn derp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_derp"));
    cmd.env_remove("DERP_CONFIG")
        .env_remove("DERP_BIND")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    cmd
}

/// A `derp serve` child (killed when dropped) and every line it printed on
/// stdout and stderr.
struct Serve {
    child: Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .env("DERP_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("derp starts");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (pipe, tx) in [
            (Box::new(out) as Box<dyn std::io::Read + Send>, tx.clone()),
            (Box::new(err), tx),
        ] {
            let kept = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(pos) = line.find("listening on http://") {
                        let url: String = line[pos + "listening on ".len()..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c))
                            .collect();
                        let _ = tx.send(url);
                    }
                    kept.lock().unwrap().push(line);
                }
            });
        }
        let mut serve = Serve {
            child,
            url: String::new(),
            lines,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => serve.url = url,
            Err(_) => panic!("derp did not start; it printed:\n{}", serve.output()),
        }
        serve
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// SIGTERM, then a bounded wait for the exit and the pipes' last lines.
    fn stop(&mut self) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "derp did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.lines.lock().unwrap().clone()
    }
}

fn config_file(dir: &Path, server: &str) -> PathBuf {
    let file = dir.join("derp.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\n{server}\n[auth.native]\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    file
}

/// This process's soft limit on open files.
fn own_open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            let line = t
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_string();
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(u64::MAX)
}

/// The reproduction: `derp serve` with the usual soft limit of 1,024
/// open files, 1,100 connections that send a head and 10 of 100 body bytes,
/// and `/healthz` must keep answering within a bounded time (before: "Too
/// many open files" until the clients let go). Every stalled connection is
/// answered 408 or closed by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_bodies_at_the_open_file_limit_leave_healthz_answering() {
    const STALLED: usize = 1_100;
    if own_open_files_limit() < (STALLED as u64) + 200 {
        // The test itself needs the sockets: raise our own soft limit.
        let _ = Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string(), "--nofile=4096:"])
            .status();
    }
    assert!(
        own_open_files_limit() >= (STALLED as u64) + 200,
        "the test process needs {} open files",
        STALLED + 200
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "request_timeout_seconds = 2");
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=1024:4096")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_derp"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("DERP_CONFIG")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    let server = Serve::start(cmd);
    let addr = server.url.trim_start_matches("http://").to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let res = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", server.output());

    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..STALLED {
        let addr = addr.clone();
        let sent = sent.clone();
        flood.push(tokio::spawn(async move {
            let head = format!(
                "POST /api/v1/auth/sign-in HTTP/1.1\r\nHost: {addr}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":\""
            );
            let connect = timeout(Duration::from_secs(40), TcpStream::connect(&addr)).await;
            let Ok(Ok(mut stream)) = connect else {
                sent.fetch_add(1, Ordering::SeqCst);
                return Err("connect failed or timed out".to_string());
            };
            let written = stream.write_all(head.as_bytes()).await;
            sent.fetch_add(1, Ordering::SeqCst);
            written.map_err(|e| format!("write: {e}"))?;
            let mut answer = Vec::new();
            match timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await {
                Err(_) => Err("still open after 60 s".to_string()),
                // Closed by the server, with a 408 or (reset) without.
                Ok(_) => Ok(status_of(&String::from_utf8_lossy(&answer))),
            }
        }));
    }
    // Every stalled request sent (or, bounded, as many as got through).
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.load(Ordering::SeqCst) < STALLED && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A new connection (an idle pooled one would dodge the accept queue).
    let fresh = || {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let asked = Instant::now();
    let res = fresh()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "/healthz with {} stalled requests sent: {e}\n{}",
                sent.load(Ordering::SeqCst),
                server.output()
            )
        });
    assert_eq!(res.status(), StatusCode::OK);
    let waited = asked.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "/healthz took {waited:?} during the flood"
    );

    let mut answered_408 = 0;
    for task in flood {
        match task.await.unwrap() {
            Ok(Some(408)) => answered_408 += 1,
            Ok(_) => {}
            Err(e) => panic!("a stalled connection: {e}\n{}", server.output()),
        }
    }
    assert!(
        answered_408 >= STALLED / 2,
        "{answered_408} of {STALLED} stalled bodies answered 408"
    );
    assert!(started.elapsed() < Duration::from_secs(90));
    // And the server is still well.
    let res = fresh()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        !server.output().contains("Too many open files"),
        "{}",
        server.output()
    );
}

// ------------------------------------------------------- content types

#[tokio::test]
async fn json_api_bodies_must_be_declared_json() {
    let app = spawn_app().await;
    let body = json!({"email": "ct@example.com", "password": PASSWORD}).to_string();
    let send = |ctype: Option<&'static str>, path: &'static str, body: String| {
        let mut req = app.client.post(app.url(path)).body(body);
        if let Some(ctype) = ctype {
            req = req.header("content-type", ctype);
        }
        req.send()
    };
    for ctype in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        for path in [
            "/api/v1/auth/sign-up",
            "/api/v1/auth/password/recover",
            "/api/v1/auth/confirm/resend",
        ] {
            let res = send(ctype, path, body.clone()).await.unwrap();
            let err = expect_error(
                res,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            )
            .await;
            assert!(
                err["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("content-type"),
                "{err}"
            );
        }
    }
    assert!(app.mails_to("ct@example.com", 0).await.is_empty());
    // Nothing was created: the JSON sign-up is the first.
    let res = send(
        Some("application/json; charset=utf-8"),
        "/api/v1/auth/sign-up",
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let tokens: Value = res.json().await.unwrap();
    let res = send(
        Some("application/vnd.example+json"),
        "/api/v1/auth/sign-in",
        body.clone(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // No body where none is needed: still fine.
    let access = tokens["tokens"]["access_token"].as_str().unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/auth/sign-out"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

// -------------------------------------------------------------- timing

/// Medians of `rounds` interleaved requests to `path` for the registered
/// address and for fresh unknown ones, each on an idle server (a short pause
/// lets work queued by the previous answer finish first).
async fn medians(
    app: &TestApp,
    rounds: usize,
    path: &str,
    known: Value,
    unknown: impl Fn(usize) -> Value,
) -> (Duration, Duration) {
    async fn timed(app: &TestApp, path: &str, body: Value) -> Duration {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let res = app.post(path, body).await;
        let took = started.elapsed();
        let status = res.status();
        assert!(
            status.is_success() || status == StatusCode::UNAUTHORIZED,
            "{path}: {status}"
        );
        took
    }
    let (mut k, mut u) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        if i % 2 == 0 {
            k.push(timed(app, path, known.clone()).await);
            u.push(timed(app, path, unknown(i)).await);
        } else {
            u.push(timed(app, path, unknown(i)).await);
            k.push(timed(app, path, known.clone()).await);
        }
    }
    k.sort();
    u.sort();
    (k[k.len() / 2], u[u.len() / 2])
}

fn ratio(known: Duration, unknown: Duration) -> f64 {
    let (a, b) = (known.as_secs_f64(), unknown.as_secs_f64());
    a.max(b) / a.min(b)
}

/// Asserts that [`medians`] are within `bound` of each other in one of up to
/// five attempts: other tests running at once add noise, never a steady
/// difference, while a real difference shows in every attempt.
async fn assert_same_time(
    app: &TestApp,
    bound: f64,
    rounds: usize,
    path: &str,
    known: Value,
    unknown: impl Fn(usize) -> Value,
) {
    let mut seen = Vec::new();
    for attempt in 0..5 {
        let (k, u) = medians(app, rounds, path, known.clone(), |i| {
            unknown(attempt * rounds + i)
        })
        .await;
        eprintln!("{path}: known {k:?}, unknown {u:?}");
        if ratio(k, u) < bound {
            return;
        }
        seen.push(format!("known {k:?} vs unknown {u:?} ({:.2})", ratio(k, u)));
    }
    panic!("{path}: not within {bound}x in 5 attempts: {seen:?}");
}

/// As `spawn_with`, with the server's own argon2 cost (OWASP's) instead of
/// the suite's cheap one: sign-in and sign-up timing is about hashing, and
/// a cheap hash leaves only the database work of sign-up to compare, which
/// production's hashing time dwarfs.
async fn spawn_with_real_hashing(change: impl FnOnce(&mut derp::config::Config)) -> TestApp {
    use derp::clock::{Clock, OffsetClock};
    use derp::mail::{DevMailer, Mailer};
    use derp::startup::{Application, Overrides};
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config(dir.path());
    change(&mut config);
    let mailer = Arc::new(DevMailer::capturing());
    let clock = Arc::new(OffsetClock::default());
    let app = Application::build(
        config,
        Overrides {
            clock: Some(clock.clone() as Arc<dyn Clock>),
            mailer: Some(mailer.clone() as Arc<dyn Mailer>),
            hasher: None,
            workers: Some(1),
            outbox_poll: Some(Duration::from_millis(50)),
            // One millisecond per second of the retry schedule.
            webhook_retry_unit_ms: Some(1),
        },
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        mailer,
        clock,
        state,
        handle,
        _dir: dir,
    }
}

/// An app with confirmation on, no lockout, `known@example.com` confirmed
/// and `pending@example.com` signed up but unconfirmed.
async fn timing_app(real_hashing: bool) -> TestApp {
    let change = |c: &mut derp::config::Config| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = true;
        // Repeated wrong passwords must not lock the known address.
        c.rate_limit.lockout_after = 0;
    };
    let app = if real_hashing {
        spawn_with_real_hashing(change).await
    } else {
        spawn_with(change).await
    };
    for email in ["known@example.com", "pending@example.com"] {
        let res = app
            .post(
                "/api/v1/auth/sign-up",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert!(res.status().is_success());
    }
    let mail = app.mails_to("known@example.com", 1).await.remove(0);
    let res = app
        .post("/api/v1/auth/confirm", json!({"token": token_from(&mail)}))
        .await;
    assert!(res.status().is_success());
    app
}

/// Password recovery (registered vs unknown address) and confirmation resend
/// (unconfirmed vs unknown) take the same time: medians of interleaved
/// requests within 1.1x, best of three attempts (before: 1.2x to 1.33x here,
/// 1.3x and 1.38x in the issue). The mail still goes to the registered
/// address only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_and_resend_take_the_same_time_for_known_and_unknown_addresses() {
    let app = timing_app(false).await;
    assert_same_time(
        &app,
        1.1,
        100,
        "/api/v1/auth/password/recover",
        json!({"email": "known@example.com"}),
        |i| json!({"email": format!("nobody{i}@example.com")}),
    )
    .await;
    assert_same_time(
        &app,
        1.1,
        100,
        "/api/v1/auth/confirm/resend",
        json!({"email": "pending@example.com"}),
        |i| json!({"email": format!("nobody{i}@example.com")}),
    )
    .await;
    // The work still happens, after the answer.
    let mails = app.mails_to("known@example.com", 2).await;
    assert!(mails.iter().any(|m| m.kind == "reset"), "{mails:?}");
    assert!(app.mails_to("pending@example.com", 2).await.len() >= 2);
    assert!(app.mails_to("nobody0@example.com", 0).await.is_empty());
}

/// Sign-in (wrong password) and sign-up take about the same time for a
/// registered address as for an unknown one, at the server's real argon2
/// cost (both hash either way; the bound is looser than above because
/// hashing dominates, and its noise with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_sign_up_take_the_same_time_for_known_and_unknown_addresses() {
    let app = timing_app(true).await;
    assert_same_time(
        &app,
        1.25,
        20,
        "/api/v1/auth/sign-in",
        json!({"email": "known@example.com", "password": "a wrong password"}),
        |i| json!({"email": format!("nobody{i}@example.com"), "password": "a wrong password"}),
    )
    .await;
    assert_same_time(
        &app,
        1.25,
        20,
        "/api/v1/auth/sign-up",
        json!({"email": "known@example.com", "password": PASSWORD}),
        |i| json!({"email": format!("new{i}@example.com"), "password": PASSWORD}),
    )
    .await;
}

// ---------------------------------------------------------------- HSTS

#[tokio::test]
async fn hsts_is_sent_on_https_only() {
    let get = |app: &TestApp, path: &'static str| {
        let url = app.url(path);
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let https = spawn_with(|c| {
        c.server.public_url = Some("https://auth.example.com".into());
        c.server.hsts_max_age_seconds = 600;
    })
    .await;
    for path in ["/healthz", "/login", "/api/v1/nothing-here"] {
        let res = get(&https, path).await;
        assert_eq!(
            res.headers()["strict-transport-security"],
            "max-age=600",
            "{path}"
        );
    }
    let default =
        spawn_with(|c| c.server.public_url = Some("https://auth.example.com".into())).await;
    let res = get(&default, "/healthz").await;
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    let off = spawn_with(|c| {
        c.server.public_url = Some("https://auth.example.com".into());
        c.server.hsts_max_age_seconds = 0;
    })
    .await;
    let res = get(&off, "/healthz").await;
    assert!(!res.headers().contains_key("strict-transport-security"));

    let http = spawn_app().await;
    for path in ["/healthz", "/login"] {
        let res = get(&http, path).await;
        assert!(
            !res.headers().contains_key("strict-transport-security"),
            "{path}"
        );
    }
}

// ---------------------------------------------- setup link, admin search

/// With `log_format = "json"`, everything `derp serve` prints is JSON, the
/// one-time admin setup link included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_the_setup_link_is_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "log_format = \"json\"");
    let mut cmd = derp();
    cmd.args(["serve", "--config"]).arg(&config);
    let mut server = Serve::start(cmd);
    let lines = tokio::task::block_in_place(|| server.stop());
    assert!(lines.len() >= 3, "{lines:?}");
    let mut link = None;
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nall:\n{lines:#?}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if let Some(l) = v["setup_link"].as_str() {
            link = Some(l.to_string());
        }
    }
    let link = link.unwrap_or_else(|| panic!("no setup_link in {lines:#?}"));
    assert!(link.starts_with(&server.url), "{link}");
    assert!(link.contains("token="), "{link}");
}

#[tokio::test]
async fn admin_search_with_control_characters_matches_nobody() {
    let app = admin_app().await;
    app.sign_up("one@example.com").await;
    app.sign_up("two@example.com").await;
    let get = |path: &'static str| {
        let req = app
            .client
            .request(Method::GET, app.url(path))
            .bearer_auth(KEY);
        async move { req.send().await.unwrap() }
    };
    for path in [
        "/api/v1/admin/users?q=%00",
        "/api/v1/admin/users?q=one%00",
        "/api/v1/admin/users?q=%1F",
        "/api/v1/admin/orgs?q=%00",
    ] {
        let body = expect_error(get(path).await, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(body["error"]["fields"]["q"].is_string(), "{path}: {body}");
    }
    // Plain searches are unchanged.
    let page: Value = get("/api/v1/admin/users?q=one").await.json().await.unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 1, "{page}");
    // Below the API too (the admin pages search through the same store).
    let conn_users = app
        .state
        .db
        .read(|conn| derp::storage::users::search(conn, "\0", "", 50))
        .await
        .unwrap();
    assert!(conn_users.is_empty());
}
