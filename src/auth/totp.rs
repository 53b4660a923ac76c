//! TOTP (RFC 6238) as derp uses it, through `totp-rs`: SHA-1, 6 digits,
//! 30-second steps, one step of clock skew either way. Which step a code
//! matched is returned, so that the caller can refuse a replay (a step not
//! newer than the last one accepted for the factor).

use crate::error::{AuthError, AuthResult};
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const DIGITS: u8 = 6;
pub const STEP: u64 = 30;

/// 160 random bits, the size RFC 4226 recommends for SHA-1.
pub fn new_secret() -> Vec<u8> {
    let mut bytes = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// The secret as authenticator apps take it typed in: base32, no padding.
pub fn base32(secret: &[u8]) -> String {
    Secret::from(secret).to_base32()
}

fn totp(secret: &[u8], issuer: Option<&str>, account: &str) -> AuthResult<Totp> {
    let mut b = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(secret);
    if !account.is_empty() {
        b = b.with_account_name(account.replace(':', "_"));
    }
    b = b.with_issuer(issuer.map(|i| i.replace(':', "_")));
    b.build()
        .map_err(|e| AuthError::internal(format!("totp: {e}")))
}

/// `otpauth://totp/Issuer:account?secret=…&issuer=Issuer…` for the QR code.
pub fn otpauth_url(secret: &[u8], issuer: &str, account: &str) -> AuthResult<String> {
    totp(secret, Some(issuer), account)?
        .to_url()
        .map_err(|e| AuthError::internal(format!("totp url: {e}")))
}

/// The time step (`unix / 30`) whose code `code` is, within one step of
/// `now`; `None` for a wrong or malformed code.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = u64::try_from(now).ok()?;
    let t = totp(secret, None, "").ok()?;
    t.check(code, now).and_then(|s| i64::try_from(s).ok())
}

/// The code of `secret` at `unix` (tests and tools).
pub fn code_at(secret: &[u8], unix: i64) -> String {
    match totp(secret, None, "") {
        Ok(t) => t.generate(u64::try_from(unix).unwrap_or(0)).to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 seed "12345678901234567890", the last 6
    /// of the 8 digits.
    #[test]
    fn matches_the_rfc_test_vectors() {
        let seed = b"12345678901234567890";
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(seed, t), eight[2..]);
            assert_eq!(matching_step(seed, &eight[2..], t), Some(t / 30));
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now);
        assert_eq!(matching_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now - 30), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now + 90), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn the_url_names_issuer_and_account() {
        let url = otpauth_url(&new_secret(), "Acme", "a@example.com").unwrap_or_default();
        assert!(
            url.starts_with("otpauth://totp/Acme:a%40example.com?"),
            "{url}"
        );
        assert!(url.contains("issuer=Acme"));
    }
}
