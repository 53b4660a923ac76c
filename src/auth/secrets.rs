//! Opaque tokens: 256 random bits, base64url; stored only as SHA-256 hex.
//! Refresh tokens also carry the millisecond they were made, so that each
//! new one is stored at the end of the token index (see [`refresh_key`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 random bytes from the OS, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A short random identifier (key ids).
pub fn random_id(len_bytes: usize) -> String {
    let mut bytes = vec![0u8; len_bytes];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hex digits of a refresh token's time prefix: milliseconds since 1970
/// fit in 12 until the year 10889.
const REFRESH_PREFIX_DIGITS: usize = 12;

/// A new refresh token made at `now_ms` (milliseconds since 1970): that
/// time as 12 hex digits, a dot, then a random token (256 bits, as
/// [`random_token`]).
pub fn new_refresh_token(now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or(0).min(0xffff_ffff_ffff);
    format!("{ms:012x}.{}", random_token())
}

/// The key a refresh token is stored and looked up under. For a token of
/// [`new_refresh_token`]'s shape: `r`, its time prefix, a dot, then the
/// SHA-256 hex of the whole token, so that keys grow with time and a new
/// token is written at the end of the index, not into a random page of it
/// (a random page per refresh was most of what a refresh wrote to disk
/// once the table held a few hundred thousand rows). Any other string,
/// among them tokens made before the prefix existed, keeps its plain
/// SHA-256 hex, which is 64 characters and so never equals a prefixed key.
/// Either way, only the exact token finds its row.
pub fn refresh_key(token: &str) -> String {
    match token.split_once('.') {
        Some((ms, _))
            if ms.len() == REFRESH_PREFIX_DIGITS
                && ms.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            format!("r{ms}.{}", hash_token(token))
        }
        _ => hash_token(token),
    }
}

/// Compares two secrets in constant time for equal lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_chars_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn refresh_tokens_carry_their_time_and_their_keys_grow_with_it() {
        let a = new_refresh_token(1_764_590_400_123);
        let (ms, rest) = a.split_once('.').unwrap();
        assert_eq!(ms, "019ad9c8b27b");
        assert_eq!(rest.len(), 43);
        let key = refresh_key(&a);
        assert_eq!(key, format!("r{ms}.{}", hash_token(&a)));
        let b = new_refresh_token(1_764_590_400_124);
        assert!(refresh_key(&b) > key, "a later token sorts after");
        assert!(new_refresh_token(-1).starts_with("000000000000."));
        // An older token (no prefix) sorts before every prefixed one.
        assert!(hash_token(&random_token()) < key);
    }

    #[test]
    fn other_strings_keep_their_plain_hash() {
        let old = random_token();
        assert_eq!(refresh_key(&old), hash_token(&old));
        for other in [
            "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln",
            "0123456789AB.x",
            "0123456789a.x",
            "0123456789abc.x",
            ".x",
            "",
        ] {
            assert_eq!(refresh_key(other), hash_token(other), "{other}");
        }
        // The same token always gives the same key, and another token another.
        let t = new_refresh_token(1_764_590_400_123);
        assert_eq!(refresh_key(&t), refresh_key(&t));
        let (ms, _) = t.split_once('.').unwrap();
        assert_ne!(
            refresh_key(&format!("{ms}.{}", random_token())),
            refresh_key(&t)
        );
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
