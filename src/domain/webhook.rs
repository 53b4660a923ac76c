//! Webhook events, endpoint filters, secrets and the Standard Webhooks
//! signature: plain rules, no I/O.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Every event type derp sends, as the receiver sees it in `type`.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "user.disabled",
    "session.created",
    "session.revoked",
    "org.created",
    "org.updated",
    "org.deleted",
    "org.member.added",
    "org.member.removed",
    "org.member.role_changed",
    "invitation.created",
    "invitation.accepted",
];

/// The type of the event that "send a test event" delivers to one endpoint;
/// filters do not apply to it.
pub const TEST_EVENT: &str = "webhook.test";

/// An endpoint's list of event patterns: `*`, an exact type, or a prefix
/// followed by `.*` (`user.*`, `org.member.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(Vec<String>);

impl EventFilter {
    /// Every pattern must match at least one event type, so a typo is an
    /// error rather than an endpoint that silently receives nothing.
    pub fn parse(patterns: &[String]) -> Result<Self, String> {
        if patterns.is_empty() {
            return Err("must list at least one event pattern (\"*\" for all)".into());
        }
        for p in patterns {
            if !EVENT_TYPES.iter().any(|t| pattern_matches(p, t)) {
                return Err(format!(
                    "`{p}` matches no event type (known: {})",
                    EVENT_TYPES.join(", ")
                ));
            }
        }
        Ok(Self(patterns.to_vec()))
    }

    /// Patterns as stored, checked when they were saved.
    pub fn from_stored(patterns: Vec<String>) -> Self {
        Self(patterns)
    }

    pub fn all() -> Self {
        Self(vec!["*".into()])
    }

    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    pub fn matches(&self, event_type: &str) -> bool {
        self.0.iter().any(|p| pattern_matches(p, event_type))
    }
}

fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == event_type,
    }
}

/// A signing secret: `whsec_` and the base64 of at least 24 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    pub const MIN_BYTES: usize = 24;

    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .strip_prefix("whsec_")
            .ok_or("must start with `whsec_` followed by base64")?;
        let key = B64
            .decode(encoded)
            .map_err(|_| "the part after `whsec_` is not valid base64")?;
        if key.len() < Self::MIN_BYTES {
            return Err(format!(
                "must hold at least {} bytes of key material (has {})",
                Self::MIN_BYTES,
                key.len()
            ));
        }
        Ok(Self {
            text: text.to_string(),
            key,
        })
    }

    /// A new secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Self {
            text: format!("whsec_{}", B64.encode(&key)),
            key,
        }
    }

    /// The `whsec_…` text, as the receiver configures it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &str) -> String {
        // HMAC accepts a key of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// Seconds, in units of the retry schedule, to wait after the `attempts`-th
/// failed attempt: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, then
/// every 8 h, until [`GIVE_UP_AFTER`] has passed since the event.
pub fn retry_delay(attempts: i64) -> i64 {
    const SCHEDULE: &[i64] = &[5, 30, 120, 600, 1800, 3600, 7200, 14_400];
    usize::try_from(attempts.max(1) - 1)
        .ok()
        .and_then(|i| SCHEDULE.get(i).copied())
        .unwrap_or(28_800)
}

/// An event not delivered within three days is given up.
pub const GIVE_UP_AFTER: i64 = 3 * 86_400;

/// How long one attempt may take before it counts as a failure.
pub const ATTEMPT_TIMEOUT_SECONDS: u64 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exact_prefix_and_all() {
        let f = EventFilter::parse(&["user.*".into(), "org.member.added".into()]).unwrap();
        assert!(f.matches("user.created"));
        assert!(f.matches("org.member.added"));
        assert!(!f.matches("org.member.removed"));
        assert!(!f.matches("org.created"));
        let members = EventFilter::parse(&["org.member.*".into()]).unwrap();
        assert!(members.matches("org.member.role_changed"));
        assert!(!members.matches("org.updated"));
        assert!(EventFilter::all().matches("session.revoked"));
        // A prefix must end at a dot: `user.*` does not take `users.x`.
        assert!(!pattern_matches("user.*", "users.created"));
    }

    #[test]
    fn unknown_patterns_and_empty_lists_are_refused() {
        assert!(EventFilter::parse(&[]).is_err());
        assert!(EventFilter::parse(&["user.create".into()]).is_err());
        assert!(EventFilter::parse(&["billing.*".into()]).is_err());
    }

    #[test]
    fn secrets_need_the_prefix_and_enough_key() {
        assert!(WebhookSecret::parse("c2VjcmV0").is_err());
        assert!(WebhookSecret::parse("whsec_c2VjcmV0").is_err(), "6 bytes");
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        let s = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(s.expose()).unwrap(), s);
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The example of the Standard Webhooks specification.
        let s = WebhookSecret {
            text: String::new(),
            key: B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        };
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retries_back_off_then_repeat_every_eight_hours() {
        assert_eq!(retry_delay(1), 5);
        assert_eq!(retry_delay(2), 30);
        assert_eq!(retry_delay(8), 14_400);
        assert_eq!(retry_delay(9), 28_800);
        assert_eq!(retry_delay(40), 28_800);
    }
}
