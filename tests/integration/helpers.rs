//! `spawn_app()`: the real server on a random port, a temp database, a
//! capturing mailer and a clock the test can move.

use derp::auth::password::Hasher;
use derp::clock::{Clock, OffsetClock};
use derp::config::Config;
use derp::mail::{DevMailer, Mail, Mailer};
use derp::startup::{AppHandle, Application, Overrides};
use derp::state::AppState;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub mailer: Arc<DevMailer>,
    pub clock: Arc<OffsetClock>,
    pub state: AppState,
    pub handle: AppHandle,
    /// Keeps the data directory alive as long as the app.
    pub _dir: tempfile::TempDir,
}

/// Confirmation off, generous rate limits: the common case.
pub async fn spawn_app() -> TestApp {
    spawn_with(|c| {
        c.auth
            .native
            .get_or_insert_with(Default::default)
            .enable_confirmation = false;
    })
    .await
}

pub fn base_config(dir: &std::path::Path) -> Config {
    let mut config = Config::from_toml("[auth.native]\n").expect("base config");
    config.server.bind = "127.0.0.1:0".into();
    config.server.data_dir = dir.join("data");
    config.rate_limit.sign_in_per_ip = 10_000;
    config.rate_limit.sign_in_per_account = 10_000;
    config.rate_limit.sign_up_per_ip = 10_000;
    config.rate_limit.email_per_address = 10_000;
    config
}

pub async fn spawn_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = base_config(dir.path());
    change(&mut config);
    spawn_config(config, dir).await
}

pub async fn spawn_config(config: Config, dir: tempfile::TempDir) -> TestApp {
    spawn_full(config, dir, true).await
}

/// `capture_mail: false` delivers through `[email]` (real SMTP).
pub async fn spawn_full(config: Config, dir: tempfile::TempDir, capture_mail: bool) -> TestApp {
    if let Ok(filter) = std::env::var("DERP_TEST_LOG") {
        // The server's log in the test's output: DERP_TEST_LOG=error.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    let config = on_postgres_if_asked(config).await;
    let mailer = Arc::new(DevMailer::capturing());
    let clock = Arc::new(OffsetClock::default());
    let app = Application::build(
        config,
        Overrides {
            clock: Some(clock.clone() as Arc<dyn Clock>),
            mailer: capture_mail.then(|| mailer.clone() as Arc<dyn Mailer>),
            // A cheap argon2 cost keeps the suite fast; the cost itself is
            // the binary's, tested by the runs of the real binary.
            hasher: Some(Hasher::with_cost(1024, 1).expect("argon2 parameters")),
            workers: Some(1),
            outbox_poll: Some(Duration::from_millis(50)),
            // One millisecond per second of the retry schedule.
            webhook_retry_unit_ms: Some(1),
        },
    )
    .await
    .expect("application starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(IDLE)
        .build()
        .expect("client");
    TestApp {
        base,
        client,
        mailer,
        clock,
        state,
        handle,
        _dir: dir,
    }
}

/// The cluster the suite runs against instead of SQLite: an admin
/// connection string (`host=… port=… user=postgres dbname=postgres`), set
/// by `./test.sh` for the suite's PostgreSQL run.
pub fn test_postgres() -> Option<String> {
    std::env::var("DERP_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A new empty database on the test cluster; its connection string.
pub async fn new_postgres_database(admin: &str) -> String {
    let admin = admin.to_string();
    tokio::task::spawn_blocking(move || {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut client =
            postgres::Client::connect(&admin, postgres::NoTls).expect("the test cluster answers");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        format!("{admin} dbname={name}")
    })
    .await
    .expect("create a test database")
}

/// The test database of each data directory, so that an app started again
/// on the same directory (a restart), or the command line pointed at it,
/// finds the same data.
static DATABASES: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
    std::sync::Mutex::new(Vec::new());

/// Under [`test_postgres`], the database of `data_dir` (made on first use).
pub async fn postgres_for(data_dir: &std::path::Path) -> Option<String> {
    let admin = test_postgres()?;
    let known = DATABASES
        .lock()
        .expect("databases")
        .iter()
        .find(|(d, _)| d == data_dir)
        .map(|(_, url)| url.clone());
    if known.is_some() {
        return known;
    }
    let url = new_postgres_database(&admin).await;
    DATABASES
        .lock()
        .expect("databases")
        .push((data_dir.to_path_buf(), url.clone()));
    Some(url)
}

/// The `[storage]` table a `derp.toml` for `data_dir` needs under
/// [`test_postgres`] (empty on SQLite).
pub async fn storage_toml(data_dir: &std::path::Path) -> String {
    match postgres_for(data_dir).await {
        Some(url) => format!("[storage]\nengine = \"postgres\"\nurl = \"{url}\"\n"),
        None => String::new(),
    }
}

/// Under [`test_postgres`], each data directory gets a database of its own
/// on that cluster (the directory keeps only the key files).
pub async fn on_postgres_if_asked(mut config: Config) -> Config {
    use derp::config::{Secret, StorageEngine};
    if config.storage.engine == StorageEngine::Sqlite
        && let Some(url) = postgres_for(&config.server.data_dir).await
    {
        config.storage.engine = StorageEngine::Postgres;
        config.storage.url = Some(Secret::new(url));
    }
    config
}

/// Tests of what only SQLite has (its file, `derp backup`): true, and a
/// note, when the suite runs on PostgreSQL.
pub fn sqlite_only(what: &str) -> bool {
    if test_postgres().is_some() {
        eprintln!("skipped on PostgreSQL: {what}");
        return true;
    }
    false
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_bearer(&self, path: &str, token: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Signs up (confirmation off) and returns the body.
    pub async fn sign_up(&self, email: &str) -> Value {
        let res = self
            .post(
                "/api/v1/auth/sign-up",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.expect("json")
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/sign-in",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn session(&self, access_token: &str) -> Response {
        self.get_bearer("/api/v1/auth/session", access_token).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Mails sent so far to `to`, waiting briefly for ones sent after commit.
    pub async fn mails_to(&self, to: &str, at_least: usize) -> Vec<Mail> {
        for _ in 0..100 {
            let mails: Vec<Mail> = self
                .mailer
                .recent()
                .into_iter()
                .filter(|m| m.to == to)
                .collect();
            if mails.len() >= at_least {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.mailer
            .recent()
            .into_iter()
            .filter(|m| m.to == to)
            .collect()
    }

    /// Signs `email` in through the `/login` page with this app's browser
    /// (its cookie jar then holds the page session); asserts the redirect.
    pub async fn sign_in_through_pages(&self, email: &str) {
        let login = self
            .client
            .get(self.url("/login"))
            .send()
            .await
            .expect("login page");
        let csrf = hidden(&login.text().await.expect("html"), "csrf_token");
        let res = self
            .client
            .post(self.url("/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", email),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .expect("sign-in");
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "signed in through /login"
        );
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(seconds);
    }
}

/// The `token` query parameter of the first link in a mail.
pub fn token_from(mail: &Mail) -> String {
    let start = mail.text.find("token=").expect("a token link") + "token=".len();
    mail.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Asserts the standard error body and returns it.
pub async fn expect_error(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for expected `{code}`");
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.expect("json error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    body
}

/// The claims of a JWT, without verifying it.
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims json")
}

pub fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("header json")
}

/// The value of the first hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in page"))
        + marker.len();
    html[start..].chars().take_while(|c| *c != '"').collect()
}

/// How long a test client keeps an idle connection: under the server's
/// 5 s keep-alive. A test that blocks its thread (a CLI run) would
/// otherwise send its next request on a connection closed meanwhile.
pub const IDLE: Duration = Duration::from_secs(2);

/// A plain client (redirects followed, no cookies) whose idle connections
/// end before the server's keep-alive does.
pub fn plain_client() -> Client {
    Client::builder()
        .pool_idle_timeout(IDLE)
        .build()
        .expect("client")
}

/// A second browser: its own cookies, no redirects followed.
pub fn spawn_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .pool_idle_timeout(IDLE)
        .build()
        .expect("client")
}

/// A request with an optional bearer and JSON body (admin API tests).
pub async fn call_as(
    app: &TestApp,
    method: reqwest::Method,
    path: impl Into<String>,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut req = app.client.request(method, app.url(&path.into()));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("request")
}

/// The audit events matching `query`, read with the service key `key`.
pub async fn audit_events(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let res = call_as(
        app,
        reqwest::Method::GET,
        format!("/api/v1/admin/audit?{query}"),
        Some(key),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.expect("json")["events"]
        .as_array()
        .expect("events")
        .clone()
}
