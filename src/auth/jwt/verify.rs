//! Verification: derp's own access tokens, a client's (RFC 9068), and the
//! audience of an id_token hint.

use super::{AccessClaims, CLOCK_LEEWAY, HMAC_KID, Keyring};
use crate::error::AuthError;
use jsonwebtoken::Validation;

impl Keyring {
    /// Verifies signature, algorithm, issuer, audience (required when
    /// configured) and, against `now` from the injected clock, `exp`, `nbf`
    /// and `iat`.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, AuthError> {
        let claims = self.decode_access(token, self.audience.as_deref(), false)?;
        if !times_hold(&claims, now) || claims.client_id.is_some() {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// Verifies an access token issued to an OpenID Connect client (RFC
    /// 9068): as [`Self::verify`], but it must carry `client_id` and an
    /// `aud` equal to it (the configured audience is for derp's own tokens).
    pub fn verify_client(&self, token: &str, now: i64) -> Result<AccessClaims, AuthError> {
        let claims = self.decode_access(token, None, true)?;
        let bound = claims.client_id.is_some() && claims.aud == claims.client_id;
        if !times_hold(&claims, now) || !bound {
            return Err(AuthError::InvalidToken);
        }
        Ok(claims)
    }

    /// What both kinds of access token must pass: `typ` `at+jwt`, a known
    /// key used with its own algorithm, the signature, the issuer, `exp`,
    /// `sub` and `iss` present, and `aud` equal to `audience` when one is
    /// given (present at least, with `require_aud`). Times are left to the
    /// caller, against the injected clock rather than the library's reading
    /// of the wall clock.
    fn decode_access(
        &self,
        token: &str,
        audience: Option<&str>,
        require_aud: bool,
    ) -> Result<AccessClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(AuthError::InvalidToken);
        }
        let set = self.current();
        let kid = header.kid.as_deref().unwrap_or(HMAC_KID);
        let (alg, key) = set.verifying.get(kid).ok_or(AuthError::InvalidToken)?;
        if header.alg != *alg {
            return Err(AuthError::InvalidToken);
        }
        let mut required = vec!["exp", "sub", "iss"];
        if audience.is_some() || require_aud {
            // Without this, jsonwebtoken checks `aud` only when present.
            required.push("aud");
        }
        let mut validation = self.validation(*alg, &required);
        if let Some(aud) = audience {
            validation.set_audience(&[aud]);
            validation.validate_aud = true;
        }
        jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|_| AuthError::InvalidToken)
    }

    /// Signature, algorithm, issuer and the `required` claims; no times and
    /// no audience unless the caller adds one.
    fn validation(&self, alg: jsonwebtoken::Algorithm, required: &[&str]) -> Validation {
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.required_spec_claims = required.iter().map(|s| s.to_string()).collect();
        validation
    }

    /// The `aud` of an id_token this keyring signed, its signature, algorithm
    /// and issuer checked but not its times (an `id_token_hint` may have
    /// expired).
    pub fn id_token_audience(&self, token: &str) -> Option<String> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let set = self.current();
        let (alg, key) = set.verifying.get(header.kid.as_deref()?)?;
        if header.alg != *alg {
            return None;
        }
        let validation = self.validation(*alg, &["iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .ok()?
            .claims;
        match &claims["aud"] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) => a.first()?.as_str().map(str::to_string),
            _ => None,
        }
    }
}

/// Not expired, and neither valid-from nor issued more than the leeway ahead.
fn times_hold(c: &AccessClaims, now: i64) -> bool {
    c.exp > now && c.iat <= now + CLOCK_LEEWAY && c.nbf.is_none_or(|nbf| nbf <= now + CLOCK_LEEWAY)
}
