//! Keyset pagination for every list the API returns: a cursor is the key of
//! the last row of a page (a user id, an org id, a sequence number), opaque
//! to clients (base64url), and the next page starts after it. A full page
//! carries a cursor; a shorter one is the last.

use crate::error::{AuthError, AuthResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn refused() -> AuthError {
    AuthError::field("cursor", "is not a cursor this server issued")
}

/// The cursor that names `key`.
pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The key a cursor names; no cursor (or an empty one) starts at the top.
pub fn decode(cursor: Option<&str>) -> AuthResult<String> {
    match cursor {
        None | Some("") => Ok(String::new()),
        Some(c) => URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(refused),
    }
}

/// A numeric key (a sequence number or row id); no cursor is 0.
pub fn decode_number(cursor: Option<&str>) -> AuthResult<i64> {
    match decode(cursor)?.as_str() {
        "" => Ok(0),
        s => s.parse().map_err(|_| refused()),
    }
}

/// The cursor after `rows` when they fill a page of `limit`, else none.
pub fn next_cursor<R>(rows: &[R], limit: i64, key: impl Fn(&R) -> String) -> Option<String> {
    (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| encode(&key(r))))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode(Some(&encode("user-1"))).unwrap(), "user-1");
        assert_eq!(decode(None).unwrap(), "");
        assert_eq!(decode_number(Some(&encode("42"))).unwrap(), 42);
        assert_eq!(decode_number(None).unwrap(), 0);
        assert!(decode(Some("garbage!")).is_err());
        assert!(decode_number(Some(&encode("x:1"))).is_err());
        assert_eq!(
            next_cursor(&[1, 2], 2, |n| n.to_string()),
            Some(encode("2"))
        );
        assert_eq!(next_cursor(&[1], 2, |n| n.to_string()), None);
    }
}
