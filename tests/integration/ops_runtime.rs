//! Running derp, observed from outside: `/metrics` (Prometheus text, counts,
//! labels that never hold a token or an id, who may scrape it), JSON logs,
//! SIGTERM with requests in flight, and `kill -9` under write load.

use crate::helpers::*;
use derp::config::Secret;
use derp::storage::{Db, StorageError, backup, metrics as store_metrics, outbox};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------- /metrics

/// One sample of the text exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (0.0.4) strictly: every sample belongs
/// to a family declared by `# TYPE` before it (histograms through their
/// `_bucket`, `_sum` and `_count` series), names and label names are valid,
/// label values are quoted with `\\`, `\"` and `\n` escapes (and may hold
/// braces, as route patterns do), values are numbers, and the text ends with
/// a newline. (`prometheus-parse` was tried first: it cuts a label value at
/// its first `}`, so it misreads `route="/invitations/{token}"`.)
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    let is_name = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(is_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "one TYPE per family: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(rest.split(' ').next().is_some_and(is_name), "{line}");
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let name_end = line.find(['{', ' ']).expect("a sample line");
        let name = &line[..name_end];
        assert!(is_name(name), "{line}");
        let declared = types.contains_key(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|f| types.get(f).is_some_and(|k| k == "histogram"))
            });
        assert!(declared, "sample before its # TYPE: {line}");
        let mut rest = &line[name_end..];
        let mut labels = HashMap::new();
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (label, after) = inner.split_once("=\"").expect("label=\"value\"");
                assert!(is_name(label), "{line}");
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect("closing quote") {
                        (_, '\\') => match chars.next().expect("escaped char").1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        (i, '"') => break i,
                        (_, c) => value.push(c),
                    }
                };
                assert!(labels.insert(label.to_string(), value).is_none(), "{line}");
                inner = &after[end + 1..];
                inner = inner.strip_prefix(',').unwrap_or(inner);
            }
        }
        let value = rest.strip_prefix(' ').expect("a space before the value");
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

/// `GET /metrics`, checked and parsed.
async fn scrape(app: &TestApp) -> (String, Vec<Sample>) {
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = res.text().await.unwrap();
    let samples = parse_exposition(&text);
    (text, samples)
}

/// The value of the sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test]
async fn metrics_count_sign_ins_rate_limits_and_reuse_without_tokens_in_labels() {
    let app = spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
        c.rate_limit.sign_in_per_ip = 4;
    })
    .await;
    let signed_up = app.sign_up("ada@example.com").await;
    let user_id = signed_up["user"]["id"].as_str().unwrap().to_string();
    let access = signed_up["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = signed_up["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Sign-ins: a good and a bad one through the API, a bad one through the
    // page, then bad ones until the per-IP limit (4 a minute) refuses.
    assert_eq!(
        app.sign_in("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.sign_in("ada@example.com", "wrong password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let page = app
        .client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the login form's CSRF token")
        .to_string();
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "ada@example.com"),
            ("password", "wrong password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the page's failure");
    let mut api_failures = 1;
    let mut limited = 0;
    for _ in 0..10 {
        match app.sign_in("ada@example.com", "wrong again").await.status() {
            StatusCode::UNAUTHORIZED => api_failures += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(limited, 1, "the limit was reached");

    // A refresh token used again after the grace window: reuse detected.
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
    app.advance(60);
    assert_eq!(
        app.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Requests whose paths hold secrets and ids.
    let secrets = [
        "InvitationTokenSecret0123456789",
        "QueryTokenSecret0123456789",
        "UnmatchedPathSecret0123456789",
        "SessionIdSecret0123456789",
        user_id.as_str(),
    ];
    app.client
        .get(app.url(&format!("/invitations/{}", secrets[0])))
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url(&format!("/confirm?token={}", secrets[1])))
        .send()
        .await
        .unwrap();
    let res = app
        .client
        .get(app.url(&format!("/no/such/{}", secrets[2])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.client
        .delete(app.url(&format!("/api/v1/auth/sessions/{}", secrets[3])))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let res = app
        .get_bearer(&format!("/api/v1/admin/users/{user_id}"), &access)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let (text, samples) = scrape(&app).await;
    let sign_in = [("route", "/api/v1/auth/sign-in"), ("method", "POST")];
    assert_eq!(
        value(&samples, "derp_sign_ins_total", &[("result", "success")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&samples, "derp_sign_ins_total", &[("result", "failure")]),
        Some(f64::from(api_failures + 1)),
        "API and page failures: {text}"
    );
    assert_eq!(
        value(
            &samples,
            "derp_rate_limited_total",
            &[("route", "/api/v1/auth/sign-in")]
        ),
        Some(1.0)
    );
    let status = |s| {
        value(
            &samples,
            "derp_http_requests_total",
            &[sign_in[0], sign_in[1], ("status", s)],
        )
    };
    assert_eq!(status("200"), Some(1.0));
    assert_eq!(status("401"), Some(f64::from(api_failures)));
    assert_eq!(status("429"), Some(1.0));
    assert_eq!(
        value(
            &samples,
            "derp_http_requests_total",
            &[("method", "POST"), ("route", "/login"), ("status", "401")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "derp_refresh_reuse_detected_total", &[]),
        Some(1.0)
    );
    // The histogram timed every sign-in request.
    assert_eq!(
        value(
            &samples,
            "derp_http_request_duration_seconds_count",
            &sign_in
        ),
        Some(f64::from(api_failures + 2)),
        "{text}"
    );
    for (name, labels) in [
        ("derp_outbox_messages", vec![("status", "queued")]),
        ("derp_outbox_messages", vec![("status", "failed")]),
        ("derp_db_pool_connections", vec![("state", "idle")]),
        ("derp_db_pool_connections", vec![("state", "in_use")]),
    ] {
        assert!(value(&samples, name, &labels).is_some(), "{name}: {text}");
    }
    assert!(value(&samples, "process_resident_memory_bytes", &[]).unwrap() > 1_000_000.0);

    // Routes are patterns; nothing secret is in the text at all.
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} leaked into /metrics");
    }
    let routes: HashSet<&str> = samples
        .iter()
        .filter_map(|s| s.labels.get("route").map(String::as_str))
        .collect();
    for route in [
        "/invitations/{token}",
        "/confirm",
        "/api/v1/auth/sessions/{id}",
        "/api/v1/admin/users/{id}",
        "unmatched",
    ] {
        assert!(routes.contains(route), "{route} in {routes:?}\n{text}");
    }
    // The scrape itself is counted, under its route.
    let (_, again) = scrape(&app).await;
    assert_eq!(
        value(
            &again,
            "derp_http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "200")]
        ),
        Some(1.0)
    );
    for route in &routes {
        assert!(
            *route == "unmatched" || (route.starts_with('/') && !route.contains('?')),
            "{route}"
        );
    }
}

#[tokio::test]
async fn metrics_are_open_on_loopback_and_need_a_service_key_through_a_proxy() {
    const KEY: &str = "metrics-scraper-key-0123456789abcdef";
    let app = spawn_with(|c| c.admin.service_keys = vec![Secret::new(KEY)]).await;
    let get = |xff: Option<&str>, key: Option<&str>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(ip) = xff {
            req = req.header("x-forwarded-for", ip);
        }
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        async move { req.send().await.unwrap() }
    };
    assert_eq!(get(None, None).await.status(), StatusCode::OK, "loopback");
    expect_error(
        get(Some("203.0.113.9"), None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(
        get(Some("203.0.113.9"), Some("not-the-key")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = get(Some("203.0.113.9"), Some(KEY)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("derp_http_requests_total")
    );

    // Without service keys, only direct loopback callers get it.
    let open = spawn_app().await;
    let res = open
        .client
        .get(open.url("/metrics"))
        .header("forwarded", "for=203.0.113.9")
        .send()
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("service_keys")
    );
}

// ------------------------------------------------- the mail sender at stop

/// Takes `delay` over every message, and says when it has started one.
struct SlowMailer {
    delay: Duration,
    started: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl derp::mail::Mailer for SlowMailer {
    async fn send(&self, _: &derp::mail::Mail) -> Result<(), derp::mail::MailError> {
        self.started.notify_one();
        tokio::time::sleep(self.delay).await;
        Ok(())
    }
}

#[tokio::test]
async fn at_stop_the_mail_sender_finishes_its_message_or_leaves_it_queued() {
    use derp::clock::{Clock, SystemClock};
    // (time one send takes, grace given at stop, status of that message after)
    for (delay, grace, expected) in [
        (Duration::from_millis(300), Duration::from_secs(10), "sent"),
        (
            Duration::from_secs(3600),
            Duration::from_millis(300),
            "queued",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let now = SystemClock.unix();
        db.write(move |c| {
            for id in ["<1@test>", "<2@test>"] {
                let m = outbox::NewMessage {
                    message_id: id,
                    kind: "confirm",
                    to: "a@example.com",
                    subject: "s",
                    text: "t",
                    html: None,
                };
                outbox::enqueue(c, &m, now)?;
            }
            Ok::<_, StorageError>(())
        })
        .await
        .unwrap();
        let mailer = Arc::new(SlowMailer {
            delay,
            started: tokio::sync::Notify::new(),
        });
        let sender = derp::services::outbox::Sender {
            db: db.clone(),
            mailer: mailer.clone(),
            clock: Arc::new(SystemClock),
            waker: Arc::new(tokio::sync::Notify::new()),
            poll: Duration::from_millis(20),
        }
        .spawn();
        tokio::time::timeout(Duration::from_secs(10), mailer.started.notified())
            .await
            .expect("the first message is being sent");
        let started = Instant::now();
        sender.stop(grace).await;
        assert!(started.elapsed() < grace + Duration::from_secs(5));
        let rows = db.read(|c| outbox::recent(c, 10)).await.unwrap();
        let status = |id: &str| {
            let r = rows.iter().find(|r| r.message_id == id).unwrap();
            (r.status.clone(), r.attempts)
        };
        assert_eq!(status("<1@test>").0, expected, "{delay:?}");
        assert_eq!(
            status("<2@test>"),
            ("queued".to_string(), 0),
            "nothing more is claimed once stopping"
        );
        sender.stop(grace).await; // a second stop is harmless
    }
}

// ---------------------------------------------------------- the binary

pub(crate) fn derp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_derp"));
    cmd.env_remove("DERP_CONFIG")
        .env_remove("DERP_BIND")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    cmd
}

/// A running `derp serve`, killed (-9) when dropped; its stdout collected.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `derp serve --config <config>` on a free loopback port.
    pub(crate) fn start(config: &Path) -> Self {
        let mut child = derp()
            .args(["serve", "--config"])
            .arg(config)
            .env("DERP_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("derp starts");
        let stdout = child.stdout.take().expect("stdout");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let kept = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on http://")
                    && let Some((pos, key)) = ["port=", "\"port\":"]
                        .iter()
                        .find_map(|k| line.find(k).map(|p| (p, *k)))
                {
                    // The bound port (the address printed is public_url's),
                    // from a pretty or a JSON line.
                    let port: String = line[pos + key.len()..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let _ = tx.send(format!("http://127.0.0.1:{port}"));
                }
                kept.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            lines,
            reader: Some(reader),
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => server.url = url,
            Err(_) => panic!(
                "derp did not report its address; it printed:\n{}",
                server.output()
            ),
        }
        server
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }

    /// Waits (bounded) for the process to end.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "derp did not exit within {limit:?}; it printed:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Every line printed, once the process has exited (its stdout is
    /// closed then, so the reader ends).
    fn all_lines(&mut self) -> Vec<String> {
        assert!(self.child.try_wait().unwrap().is_some(), "derp has exited");
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.lines.lock().unwrap().clone()
    }
}

/// A `derp.toml` with a data directory, generous limits and `extra`.
fn config_file(dir: &Path, extra: &str) -> PathBuf {
    let file = dir.join("derp.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\ndata_dir = \"{}\"\n{extra}\n[auth.native]\n\
             [rate_limit]\nsign_up_per_ip = 100000\nsign_in_per_ip = 100000\n\
             sign_in_per_account = 100000\nemail_per_address = 100000\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    file
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), and
/// the whole answer: its status and body, checked against `Content-Length`.
/// `Err` names what went wrong (refused, reset, cut short, timed out).
async fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read after {} bytes: {e}", answer.len()))?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, rest) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no complete head: {answer:?}"))?;
        let status = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|l| l.get(..3))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: {head:?}"))?;
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .ok_or_else(|| format!("no Content-Length: {head:?}"))?;
        if rest.len() != length {
            return Err(format!("body cut short: {} of {length} bytes", rest.len()));
        }
        Ok((status, rest.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| "no answer within 60 s".to_string())?
}

/// The host:port of a base URL.
fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

fn wal_size(data: &Path) -> u64 {
    std::fs::metadata(data.join("derp.db-wal")).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_requests_in_flight_and_leaves_a_clean_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "");
    let mut server = Server::start(&config);
    let addr = host_port(&server.url);

    // 40 sign-ups at once (confirmation on: each also queues a mail), each
    // on its own connection; the hashing runs one per core, so most are
    // still running when the first answer comes back (by then the server has
    // accepted every connection). SIGTERM goes out at that moment.
    const N: usize = 40;
    let done = Arc::new(AtomicUsize::new(0));
    let first = Arc::new(tokio::sync::Notify::new());
    let mut requests = Vec::new();
    for i in 0..N {
        let (addr, done, first) = (addr.clone(), done.clone(), first.clone());
        requests.push(tokio::spawn(async move {
            let body = json!({"email": format!("term-{i}@example.com"), "password": PASSWORD});
            let result =
                raw_request(&addr, "POST", "/api/v1/auth/sign-up", &body.to_string()).await;
            done.fetch_add(1, Ordering::SeqCst);
            first.notify_one();
            result
        }));
    }
    tokio::time::timeout(Duration::from_secs(60), first.notified())
        .await
        .expect("a first answer");
    server.signal("-TERM");
    let finished_before_term = done.load(Ordering::SeqCst);

    let mut results = Vec::new();
    for r in requests {
        results.push(r.await.unwrap());
    }
    assert!(
        finished_before_term < N,
        "SIGTERM came while requests were in flight ({finished_before_term} of {N} done)"
    );
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok((201, body)) => {
                let body: Value = serde_json::from_str(body).expect("a JSON body");
                assert_eq!(body["confirmation_required"], true);
            }
            other => panic!(
                "sign-up {i} was accepted before SIGTERM but got {other:?}; derp printed:\n{}",
                server.output()
            ),
        }
    }

    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(40)));
    assert_eq!(status.code(), Some(0), "a clean exit: {}", server.output());
    let lines = server.all_lines();
    assert!(
        lines.last().is_some_and(|l| l.contains("derp stopped")),
        "{}",
        lines.join("\n")
    );

    let data = dir.path().join("data");
    assert_eq!(wal_size(&data), 0, "the write-ahead log was checkpointed");
    assert_eq!(
        backup::integrity_check(&data.join("derp.db")).unwrap(),
        "ok"
    );
    let db = Db::open_without_migrating(&data).unwrap();
    let (stats, gaps) = db
        .read(|c| Ok::<_, StorageError>((outbox::stats(c)?, store_metrics::sign_up_gaps(c)?)))
        .await
        .unwrap();
    assert_eq!(stats.sending, 0, "no mail is left half-sent: {stats:?}");
    assert_eq!(stats.queued + stats.sent, N as i64, "{stats:?}");
    assert_eq!(gaps.unconfirmed_users, N as i64);
    assert!(gaps.without_token.is_empty() && gaps.without_mail.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_write_load_loses_nothing_that_was_answered() {
    if sqlite_only(
        "reads the SQLite file after the kill; tests/integration/instances.rs kills an instance on PostgreSQL",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "");
    let server = Server::start(&config);

    // Four writers sign users up (confirmation on) until the process dies.
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(IDLE)
        .build()
        .unwrap();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, url) = (
            client.clone(),
            format!("{}/api/v1/auth/sign-up", server.url),
        );
        let (created, stop) = (created.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let email = format!("crash-{w}-{i}@example.com");
                let res = client
                    .post(&url)
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        // Recorded only once the whole answer is in hand.
                        if r.bytes().await.is_ok() {
                            created.lock().unwrap().push(email);
                        }
                    }
                    Ok(r) => panic!("{email}: {}", r.status()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while created.lock().unwrap().len() < 12 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal("-KILL");
    let mut server = server;
    tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(10)));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("writers stop")
            .unwrap();
    }
    let created = created.lock().unwrap().clone();
    let data = dir.path().join("data");

    // Restart in-process on the same database.
    let mut config = base_config(dir.path());
    config.server.data_dir = data.clone();
    let app = spawn_config(config, tempfile::tempdir().unwrap()).await;

    // No use case is half-written: every unconfirmed user has a token and
    // a confirmation mail.
    let (gaps, rows) = app
        .state
        .db
        .read(|c| {
            Ok::<_, StorageError>((store_metrics::sign_up_gaps(c)?, outbox::recent(c, 100_000)?))
        })
        .await
        .unwrap();
    assert!(
        gaps.without_token.is_empty() && gaps.without_mail.is_empty(),
        "{gaps:?}"
    );
    assert!(gaps.unconfirmed_users >= created.len() as i64);

    // Every sign-up that was answered 201 exists with its password, and its
    // confirmation (the token from the outbox, sent or not) signs it in.
    for email in &created {
        expect_error(
            app.sign_in(email, PASSWORD).await,
            StatusCode::FORBIDDEN,
            "email_not_confirmed",
        )
        .await;
        let mail = rows
            .iter()
            .find(|r| &r.to_addr == email && r.kind == "confirm")
            .unwrap_or_else(|| panic!("a confirmation mail for {email}"));
        let token = token_from(&derp::mail::Mail {
            to: mail.to_addr.clone(),
            subject: mail.subject.clone(),
            text: mail.text_body.clone(),
            html: None,
            kind: mail.kind.clone(),
            message_id: None,
        });
        let res = app
            .post("/api/v1/auth/confirm", json!({"token": token}))
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{email}");
        assert_eq!(
            app.sign_in(email, PASSWORD).await.status(),
            StatusCode::OK,
            "{email}"
        );
    }

    // Mail interrupted mid-send was re-queued and goes out.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = app.state.db.read(outbox::stats).await.unwrap();
        if s.sending == 0 && s.queued == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the outbox drains: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.handle.stop().await;
    assert_eq!(
        backup::integrity_check(&data.join("derp.db")).unwrap(),
        "ok"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_with_request_fields_and_no_query() {
    let dir = tempfile::tempdir().unwrap();
    // On the suite's PostgreSQL run, `derp admin create` and the server
    // use the test database.
    let storage = storage_toml(&dir.path().join("data")).await;
    let config = config_file(dir.path(), &format!("log_format = \"json\"\n{storage}"));
    // With an admin in place, serve prints no setup link (plain text).
    let out = derp()
        .args([
            "admin",
            "create",
            "--email",
            "admin@example.com",
            "--password",
            PASSWORD,
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut server = Server::start(&config);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(IDLE)
        .build()
        .unwrap();
    const SECRET: &str = "QueryStringSecret0123456789";
    let res = client
        .get(format!("{}/confirm?token={SECRET}", server.url))
        .send()
        .await
        .unwrap();
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let status = res.status().as_u16();
    let res = client
        .get(format!("{}/no-such-page", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    drop(client);
    server.signal("-TERM");
    let exit = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(40)));
    assert_eq!(exit.code(), Some(0));

    let lines = server.all_lines();
    assert!(lines.len() >= 4, "{lines:?}");
    let events: Vec<Value> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(
                v.is_object() && v["timestamp"].is_string() && v["level"].is_string(),
                "{l}"
            );
            v
        })
        .collect();
    assert!(
        lines.iter().all(|l| !l.contains(SECRET)),
        "the query string is never logged"
    );
    let line = events
        .iter()
        .find(|e| e["message"] == "request" && e["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("the request's line in {lines:?}"));
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/confirm");
    assert_eq!(line["status"], status);
    assert!(line["ms"].is_number(), "{line}");
    assert!(
        events.iter().any(|e| e["message"] == "request"
            && e["path"] == "/no-such-page"
            && e["status"] == 404)
    );
    assert_eq!(events.last().unwrap()["message"], "derp stopped");
}
