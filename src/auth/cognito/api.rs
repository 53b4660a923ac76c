//! Cognito's user-facing JSON API over reqwest: `POST /` with
//! `X-Amz-Target: AWSCognitoIdentityProviderService.<Op>`. The user-facing
//! operations need no AWS signature, only the app client's `SECRET_HASH`;
//! the Admin* ones are signed with SigV4 (`Api::call_signed`). Every request
//! has a timeout; upstream bodies and messages go to the log, never to
//! clients.

use super::sigv4::{self, Keys};
use crate::config::{CognitoConfig, Secret};
use crate::error::AuthError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;

/// Upstream answers larger than this are refused (Cognito's are a few KiB).
const MAX_BODY: usize = 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// What a throttled caller is told to wait (Cognito gives no figure).
const RETRY_AFTER: u64 = 60;

/// The HTTP client of the backend: timeouts always set, no redirects.
pub(super) fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("derp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// `SECRET_HASH`: base64(HMAC-SHA256(client_secret, username + client_id)).
pub fn secret_hash(client_secret: &str, username: &str, client_id: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(client_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(username.as_bytes());
    mac.update(client_id.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Why a call failed.
#[derive(Debug)]
pub(super) enum CallError {
    /// Cognito answered with an error type (`NotAuthorizedException`, …).
    /// The message is for the log and for classification only.
    Service {
        kind: String,
        message: String,
        status: u16,
    },
    /// No usable answer: connection refused, timeout, a body that is not JSON.
    Transport(String),
}

impl CallError {
    pub fn is(&self, kind: &str) -> bool {
        matches!(self, Self::Service { kind: k, .. } if k == kind)
    }

    pub fn is_any(&self, kinds: &[&str]) -> bool {
        kinds.iter().any(|k| self.is(k))
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Service { message, .. } => message,
            Self::Transport(_) => "",
        }
    }

    fn is_throttle(&self) -> bool {
        self.is_any(&[
            "TooManyRequestsException",
            "LimitExceededException",
            "TooManyFailedAttemptsException",
            "ThrottlingException",
        ])
    }
}

/// The generic mapping: throttling is a 429, anything else a 502 whose
/// cause (operation and error type, never a body) reaches only the log.
pub(super) fn upstream(op: &str, e: CallError) -> AuthError {
    if e.is_throttle() {
        return AuthError::RateLimited {
            retry_after: RETRY_AFTER,
        };
    }
    match e {
        CallError::Service { kind, status, .. } => {
            AuthError::Upstream(format!("cognito {op}: {kind} (HTTP {status})"))
        }
        CallError::Transport(cause) => AuthError::Upstream(format!("cognito {op}: {cause}")),
    }
}

/// The cognito-idp endpoint and the app client.
pub(super) struct Api {
    http: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: Option<Secret>,
}

impl Api {
    pub fn new(http: reqwest::Client, cfg: &CognitoConfig, endpoint: String) -> Self {
        Self {
            http,
            endpoint,
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone().filter(|s| !s.expose().is_empty()),
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The `SECRET_HASH` for `username`, when the client has a secret.
    pub fn secret_hash(&self, username: &str) -> Option<String> {
        self.client_secret
            .as_ref()
            .map(|s| secret_hash(s.expose(), username, &self.client_id))
    }

    /// `{ClientId, Username, SecretHash?}` plus `extra`: the common body.
    pub fn user_body(&self, username: &str, extra: Value) -> Value {
        let mut body = serde_json::json!({"ClientId": self.client_id, "Username": username});
        if let Some(hash) = self.secret_hash(username) {
            body["SecretHash"] = hash.into();
        }
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    }

    /// Calls `op` with `body`; a 2xx answer's JSON, else the error type.
    pub async fn call(&self, op: &'static str, body: &Value) -> Result<Value, CallError> {
        self.send(op, serde_json::to_vec(body).unwrap_or_default(), None)
            .await
    }

    /// Calls an IAM-authorised operation (the Admin* ones), signed with
    /// SigV4 at `now` (epoch seconds).
    pub async fn call_signed(
        &self,
        op: &'static str,
        body: &Value,
        keys: &Keys,
        region: &str,
        now: i64,
    ) -> Result<Value, CallError> {
        let payload = serde_json::to_vec(body).unwrap_or_default();
        let url = reqwest::Url::parse(&self.endpoint)
            .map_err(|_| CallError::Transport("the endpoint is not a URL".into()))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(CallError::Transport("the endpoint has no host".into())),
        };
        let amz_date = sigv4::amz_date(now);
        let target = format!("AWSCognitoIdentityProviderService.{op}");
        let authorization = sigv4::authorization(
            keys,
            &sigv4::Request {
                method: "POST",
                path: url.path(),
                query: "",
                headers: &[
                    ("content-type", CONTENT_TYPE),
                    ("host", &host),
                    ("x-amz-date", &amz_date),
                    ("x-amz-target", &target),
                ],
                payload: &payload,
                amz_date: &amz_date,
                region,
                service: "cognito-idp",
            },
        );
        self.send(op, payload, Some((amz_date, authorization)))
            .await
    }

    async fn send(
        &self,
        op: &'static str,
        payload: Vec<u8>,
        signature: Option<(String, String)>,
    ) -> Result<Value, CallError> {
        let mut req = self
            .http
            .post(&self.endpoint)
            .header(
                "X-Amz-Target",
                format!("AWSCognitoIdentityProviderService.{op}"),
            )
            .header("Content-Type", CONTENT_TYPE);
        if let Some((amz_date, authorization)) = signature {
            req = req
                .header("X-Amz-Date", amz_date)
                .header("Authorization", authorization);
        }
        let res = req
            .body(payload)
            .send()
            .await
            .map_err(|e| CallError::Transport(without_url(e)))?;
        let status = res.status();
        let header_kind = res
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_capped(res).await.map_err(CallError::Transport)?;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return json.ok_or_else(|| {
                CallError::Transport(format!("{op}: the answer is not JSON (HTTP {status})"))
            });
        }
        let body_kind = json
            .as_ref()
            .and_then(|j| j.get("__type"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let message = json
            .as_ref()
            .and_then(|j| j.get("message").or_else(|| j.get("Message")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match body_kind.or(header_kind) {
            Some(raw) => Err(CallError::Service {
                kind: error_kind(&raw),
                message,
                status: status.as_u16(),
            }),
            None => Err(CallError::Transport(format!(
                "{op}: HTTP {status} without an error type"
            ))),
        }
    }
}

/// `com.amazonaws…#NotAuthorizedException:http://…` -> `NotAuthorizedException`.
fn error_kind(raw: &str) -> String {
    let after_hash = raw.rsplit('#').next().unwrap_or(raw);
    let kind = after_hash.split(':').next().unwrap_or(after_hash).trim();
    kind.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(80)
        .collect()
}

/// A transport error without the URL (which could carry a secret in a
/// misconfigured endpoint).
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", e.without_url())
}

/// Reads a body of at most [`MAX_BODY`] bytes.
pub(super) async fn read_capped(mut res: reqwest::Response) -> Result<Vec<u8>, String> {
    if res.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err("the answer is too large".into());
    }
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(without_url)? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err("the answer is too large".into());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_matches_an_independent_computation() {
        // python3: base64.b64encode(hmac.new(b"k1secretvalue-for-test-0123456789",
        //   b"alice@example.com" + b"4fjq7example0client", hashlib.sha256).digest())
        assert_eq!(
            secret_hash(
                "k1secretvalue-for-test-0123456789",
                "alice@example.com",
                "4fjq7example0client"
            ),
            "MYafesCyuX5gilfm8wr192xUCwKTbCWCaTfn4kedDtg="
        );
    }

    #[test]
    fn error_kinds_are_normalised() {
        assert_eq!(
            error_kind("NotAuthorizedException"),
            "NotAuthorizedException"
        );
        assert_eq!(
            error_kind("com.amazonaws.cognito#UserNotFoundException:http://internal"),
            "UserNotFoundException"
        );
    }
}
