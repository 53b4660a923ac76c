//! `GET /session` without a signature check or a database read for a token
//! seen before: a map from access token to the `SessionInfo` it gave, kept
//! only while the session epoch ([`crate::storage::sessions::epoch`]) stays
//! where it was when the session row was read. Any revocation, active-org
//! change or deletion moves the epoch, so a signed-out session is refused
//! at once, exactly as without the cache. Only tokens whose signature
//! verified are ever stored.

use crate::auth::SessionInfo;
use std::collections::HashMap;
use std::sync::RwLock;

/// Entries kept at most; the map is emptied when it is full.
const CAPACITY: usize = 20_000;

struct Entry {
    info: SessionInfo,
    /// The earlier of the token's `exp` and the session's absolute expiry.
    valid_until: i64,
    epoch: u64,
}

#[derive(Default)]
pub struct SessionCache {
    map: RwLock<HashMap<Box<str>, Entry>>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").finish_non_exhaustive()
    }
}

impl SessionCache {
    /// The answer for `token` when it is still good at `now` under `epoch`.
    pub fn get(&self, token: &str, now: i64, epoch: u64) -> Option<SessionInfo> {
        let map = self.map.read().ok()?;
        let e = map.get(token)?;
        (e.epoch == epoch && now < e.valid_until).then(|| e.info.clone())
    }

    /// Remembers a verified answer; `epoch` must be the one read before the
    /// session row was.
    pub fn put(&self, token: &str, info: SessionInfo, valid_until: i64, epoch: u64) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(
            token.into(),
            Entry {
                info,
                valid_until,
                epoch,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SessionInfo {
        SessionInfo {
            user_id: "u".into(),
            session_id: "s".into(),
            role: "default".into(),
            expires_at: 100,
            org_id: None,
            org_role: None,
            email: None,
            amr: Vec::new(),
        }
    }

    #[test]
    fn a_moved_epoch_or_the_end_of_validity_drops_an_entry() {
        let c = SessionCache::default();
        c.put("t", info(), 100, 7);
        assert!(c.get("t", 50, 7).is_some());
        assert!(c.get("t", 50, 8).is_none(), "epoch moved");
        assert!(c.get("t", 100, 7).is_none(), "expired");
        assert!(c.get("other", 50, 7).is_none());
    }

    #[test]
    fn the_map_never_grows_past_its_capacity() {
        let c = SessionCache::default();
        for i in 0..CAPACITY + 5 {
            c.put(&i.to_string(), info(), 100, 0);
        }
        assert!(c.map.read().map(|m| m.len()).unwrap_or(0) <= CAPACITY);
    }
}
