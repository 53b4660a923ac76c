//! Consent: the scopes a user granted a client, given, listed and taken
//! back; and the clients and id_tokens the consent pages look up.

use crate::auth::RequestMeta;
use crate::auth::native::NativeBackend;
use crate::auth::native::record;
use crate::error::AuthResult;
use crate::storage::oauth_provider as store;
use crate::storage::sessions;
use serde_json::json;

impl NativeBackend {
    /// Consent `user_id` gave `client_id`: the scopes, if any.
    pub async fn provider_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> AuthResult<Option<Vec<String>>> {
        let (u, c) = (user_id.to_string(), client_id.to_string());
        self.db
            .read(move |conn| Ok(store::consent(conn, &u, &c)?))
            .await
    }

    /// Remembers consent to `scopes` (audited `consent.granted`).
    pub async fn provider_grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        meta: &RequestMeta,
    ) -> AuthResult<()> {
        let (u, c, scopes, meta) = (
            user_id.to_string(),
            client_id.to_string(),
            scopes.to_vec(),
            meta.clone(),
        );
        let now = self.now();
        self.db
            .write(move |conn| {
                store::set_consent(conn, &u, &c, &scopes, now)?;
                record(
                    conn,
                    now,
                    &meta,
                    "consent.granted",
                    Some(&u),
                    json!({"client_id": c, "scope": scopes.join(" ")}),
                )
            })
            .await
    }

    /// Withdraws a consent and ends the client's sessions of the user
    /// (audited `consent.revoked`); false when there was none.
    pub async fn provider_revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        meta: &RequestMeta,
    ) -> AuthResult<bool> {
        let (u, c, meta) = (user_id.to_string(), client_id.to_string(), meta.clone());
        let now = self.now();
        self.db
            .write(move |conn| -> AuthResult<bool> {
                let had = store::delete_consent(conn, &u, &c)?;
                let ended = sessions::revoke_for_client(conn, &u, &c, now, "consent_revoked")?;
                if had || ended > 0 {
                    record(
                        conn,
                        now,
                        &meta,
                        "consent.revoked",
                        Some(&u),
                        json!({"client_id": c, "sessions_ended": ended}),
                    )?;
                }
                Ok(had || ended > 0)
            })
            .await
    }

    /// `(client_id, scopes, granted_at)` of the user's consents.
    pub async fn provider_consents(&self, user_id: &str) -> AuthResult<Vec<(String, String, i64)>> {
        let u = user_id.to_string();
        self.db
            .read(move |conn| Ok(store::consents_of(conn, &u)?))
            .await
    }

    /// The client an id_token this server signed was issued to.
    pub fn provider_id_token_audience(&self, token: &str) -> Option<String> {
        self.keys.id_token_audience(token)
    }

    /// Clients created at run time (`derp clients`, the admin API).
    pub async fn provider_stored_client(
        &self,
        client_id: &str,
    ) -> AuthResult<Option<store::ClientRow>> {
        let c = client_id.to_string();
        self.db.read(move |conn| Ok(store::client(conn, &c)?)).await
    }
}
