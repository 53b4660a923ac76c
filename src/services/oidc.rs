//! derp as an OpenID Connect provider: the clients (from `derp.toml` and
//! created at run time), how a client authenticates, and the rules of the
//! authorization request that do not depend on HTTP.

use crate::auth::native::NativeBackend;
use crate::auth::secrets::{constant_time_eq, hash_token, random_token};
use crate::config::{JwtAlgorithm, OIDC_SCOPES, OidcProviderConfig, valid_client_redirect_uri};
use crate::error::{AuthError, AuthResult};
use crate::storage::oauth_provider::{self as store, ClientRow};
use crate::storage::{Conn, Db};
use std::sync::Arc;

/// The scopes a client may ask for when its table names none.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "email", "profile"];

/// How a client proves itself at the token endpoint.
#[derive(Clone)]
pub enum ClientSecret {
    /// A public client: no secret, PKCE required.
    None,
    /// From `derp.toml`.
    Configured(crate::config::Secret),
    /// Created at run time: the SHA-256 hex of the secret.
    Hashed(String),
}

#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret: ClientSecret,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub id_token_alg: JwtAlgorithm,
    /// From `derp.toml` (read-only elsewhere).
    pub from_config: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn is_public(&self) -> bool {
        matches!(self.secret, ClientSecret::None)
    }

    /// Whether `presented` is this client's secret (constant time).
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret {
            ClientSecret::None => false,
            ClientSecret::Configured(s) => {
                constant_time_eq(s.expose().as_bytes(), presented.as_bytes())
            }
            ClientSecret::Hashed(h) => {
                constant_time_eq(h.as_bytes(), hash_token(presented).as_bytes())
            }
        }
    }
}

/// How a client authenticated at the token, revocation or introspection
/// endpoint (what the HTTP layer read from the request).
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<String>,
    /// Whether the secret came in `Authorization: Basic`.
    pub basic: bool,
}

pub struct OidcProvider {
    cfg: OidcProviderConfig,
    pub native: Arc<NativeBackend>,
    db: Db,
    clock: Arc<dyn crate::clock::Clock>,
}

/// A client as the admin API shows it (never its secret).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    /// No secret: PKCE required.
    pub public: bool,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    /// `config` (derp.toml, read-only here) or `stored`.
    pub source: &'static str,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.id.clone(),
            name: c.name.clone(),
            public: c.is_public(),
            first_party: c.first_party,
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            scopes: c.scopes.clone(),
            source: if c.from_config { "config" } else { "stored" },
        }
    }
}

impl OidcProvider {
    pub fn new(
        cfg: OidcProviderConfig,
        native: Arc<NativeBackend>,
        db: Db,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        Self {
            cfg,
            native,
            db,
            clock,
        }
    }

    /// Every registered redirect URI, of every client (the hosted pages'
    /// `form-action` admits their origins).
    pub async fn redirect_uris(&self) -> AuthResult<Vec<String>> {
        let mut out: Vec<String> = self
            .cfg
            .clients
            .values()
            .flat_map(|c| c.redirect_uris.iter().cloned())
            .collect();
        let rows = self
            .db
            .read(|conn| Ok::<_, AuthError>(store::clients(conn)?))
            .await?;
        out.extend(rows.into_iter().flat_map(|r| r.redirect_uris));
        Ok(out)
    }

    /// Every client: derp.toml's, then the stored ones.
    pub async fn list_clients(&self) -> AuthResult<Vec<ClientView>> {
        let mut out = Vec::new();
        for id in self.cfg.clients.keys() {
            if let Some(c) = self.client(id).await? {
                out.push(ClientView::from(&c));
            }
        }
        let rows = self
            .db
            .read(|conn| Ok::<_, AuthError>(store::clients(conn)?))
            .await?;
        out.extend(rows.into_iter().map(|r| ClientView::from(&self.stored(r))));
        Ok(out)
    }

    /// Registers a client; its secret is in the answer only (none for a
    /// public client).
    pub async fn create_client(&self, new: NewClient) -> AuthResult<(ClientView, Option<String>)> {
        let ids: Vec<String> = self.cfg.clients.keys().cloned().collect();
        let now = self.clock.unix();
        let (row, secret) = self
            .db
            .write(move |conn| create_client(conn, new, &ids, now))
            .await?;
        Ok((ClientView::from(&self.stored(row)), secret))
    }

    fn refuse_config_client(&self, client_id: &str) -> AuthResult<()> {
        if self.cfg.clients.contains_key(client_id) {
            return Err(AuthError::Forbidden(
                "this client is defined in derp.toml: change it there".into(),
            ));
        }
        Ok(())
    }

    /// A new secret for a stored confidential client.
    pub async fn rotate_secret(&self, client_id: &str) -> AuthResult<String> {
        self.refuse_config_client(client_id)?;
        let (id, now) = (client_id.to_string(), self.clock.unix());
        self.db
            .write(move |conn| rotate_client_secret(conn, &id, now))
            .await
    }

    /// Deletes a stored client (its sessions end).
    pub async fn delete_client(&self, client_id: &str) -> AuthResult<()> {
        self.refuse_config_client(client_id)?;
        let (id, now) = (client_id.to_string(), self.clock.unix());
        self.db
            .write(move |conn| delete_client(conn, &id, now))
            .await
    }

    pub fn config(&self) -> &OidcProviderConfig {
        &self.cfg
    }

    /// Every algorithm an id_token may be signed with.
    pub fn id_token_algs(&self) -> Vec<JwtAlgorithm> {
        self.cfg.id_token_algs()
    }

    /// The client `id`, from `derp.toml` first, then the stored ones.
    pub async fn client(&self, id: &str) -> AuthResult<Option<Client>> {
        if let Some(c) = self.cfg.clients.get(id) {
            return Ok(Some(Client {
                id: id.to_string(),
                name: c.name.clone().unwrap_or_else(|| id.to_string()),
                secret: match &c.secret {
                    Some(s) => ClientSecret::Configured(s.clone()),
                    None => ClientSecret::None,
                },
                redirect_uris: c.redirect_uris.clone(),
                post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
                scopes: c
                    .scopes
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()),
                first_party: c.first_party,
                id_token_alg: c
                    .id_token_signing_alg
                    .unwrap_or(self.cfg.id_token_signing_alg),
                from_config: true,
            }));
        }
        Ok(self
            .native
            .provider_stored_client(id)
            .await?
            .map(|row| self.stored(row)))
    }

    fn stored(&self, row: ClientRow) -> Client {
        Client {
            id: row.client_id,
            name: row.name,
            secret: match row.secret_hash {
                Some(h) => ClientSecret::Hashed(h),
                None => ClientSecret::None,
            },
            redirect_uris: row.redirect_uris,
            post_logout_redirect_uris: row.post_logout_redirect_uris,
            scopes: row.scopes,
            first_party: row.first_party,
            id_token_alg: self.cfg.id_token_signing_alg,
            from_config: false,
        }
    }

    /// RFC 6749 2.3: a confidential client proves itself with its secret
    /// (`client_secret_basic` or `client_secret_post`, not both); a public
    /// client only names itself. `None` is `invalid_client`.
    pub async fn authenticate(&self, creds: &ClientCredentials) -> AuthResult<Option<Client>> {
        let Some(id) = creds.client_id.as_deref() else {
            return Ok(None);
        };
        let Some(client) = self.client(id).await? else {
            return Ok(None);
        };
        let ok = match (&client.secret, creds.secret.as_deref()) {
            (ClientSecret::None, None) => true,
            (ClientSecret::None, Some(_)) => false,
            (_, Some(secret)) => client.secret_matches(secret),
            (_, None) => false,
        };
        Ok(ok.then_some(client))
    }
}

/// The scopes of a request (`scope`, space separated), in a stable order,
/// or the name of the first one `client` may not ask for.
pub fn requested_scopes(raw: Option<&str>, client: &Client) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        if !OIDC_SCOPES.contains(&s) || !client.scopes.iter().any(|c| c == s) {
            return Err(s.to_string());
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out.sort_by_key(|s| OIDC_SCOPES.iter().position(|k| k == s));
    Ok(out)
}

/// A new client's settings (`derp clients create`, the admin API).
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Option<Vec<String>>,
    pub public: bool,
    pub first_party: bool,
}

/// Creates a client; returns it with its secret (shown once), none for a
/// public client. `config_ids` are the ids taken by `derp.toml`.
pub fn create_client(
    conn: &Conn,
    new: NewClient,
    config_ids: &[String],
    now: i64,
) -> AuthResult<(ClientRow, Option<String>)> {
    if new.name.trim().is_empty() {
        return Err(AuthError::field("name", "must not be empty"));
    }
    if new.redirect_uris.is_empty() {
        return Err(AuthError::field("redirect_uri", "at least one is needed"));
    }
    for uri in new.redirect_uris.iter() {
        valid_client_redirect_uri(uri).map_err(|e| AuthError::field("redirect_uri", e))?;
    }
    for uri in new.post_logout_redirect_uris.iter() {
        valid_client_redirect_uri(uri)
            .map_err(|e| AuthError::field("post_logout_redirect_uri", e))?;
    }
    let scopes = new
        .scopes
        .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
    if let Some(bad) = scopes.iter().find(|s| !OIDC_SCOPES.contains(&s.as_str())) {
        return Err(AuthError::field(
            "scopes",
            format!("unknown scope `{bad}` (known: {})", OIDC_SCOPES.join(", ")),
        ));
    }
    let mut id = crate::auth::secrets::random_id(16);
    while config_ids.contains(&id) || store::client(conn, &id)?.is_some() {
        id = crate::auth::secrets::random_id(16);
    }
    let secret = (!new.public).then(random_token);
    let row = ClientRow {
        client_id: id,
        name: new.name.trim().to_string(),
        secret_hash: secret.as_deref().map(hash_token),
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        scopes,
        first_party: new.first_party,
        created_at: now,
    };
    store::insert_client(conn, &row)?;
    crate::storage::audit::record(
        conn,
        now,
        &crate::storage::audit::AuditEvent {
            action: "oauth_client.created",
            target: Some(&row.client_id),
            detail: serde_json::json!({"name": row.name, "public": new.public}),
            ..Default::default()
        },
    )?;
    Ok((row, secret))
}

/// A new secret for a stored confidential client (shown once).
pub fn rotate_client_secret(conn: &Conn, client_id: &str, now: i64) -> AuthResult<String> {
    let row = store::client(conn, client_id)?.ok_or(AuthError::NotFound("client"))?;
    if row.secret_hash.is_none() {
        return Err(AuthError::field(
            "client_id",
            "is a public client: it has no secret",
        ));
    }
    let secret = random_token();
    store::set_client_secret(conn, client_id, &hash_token(&secret))?;
    crate::storage::audit::record(
        conn,
        now,
        &crate::storage::audit::AuditEvent {
            action: "oauth_client.secret_rotated",
            target: Some(client_id),
            ..Default::default()
        },
    )?;
    Ok(secret)
}

/// Deletes a stored client, its consents and codes, and ends the sessions
/// minted for it.
pub fn delete_client(conn: &Conn, client_id: &str, now: i64) -> AuthResult<()> {
    if !store::delete_client(conn, client_id)? {
        return Err(AuthError::NotFound("client"));
    }
    crate::storage::sessions::revoke_all_for_client(conn, client_id, now, "client_deleted")?;
    crate::storage::audit::record(
        conn,
        now,
        &crate::storage::audit::AuditEvent {
            action: "oauth_client.deleted",
            target: Some(client_id),
            ..Default::default()
        },
    )?;
    Ok(())
}

/// The stored clients.
pub fn stored_clients(db: &Db) -> AuthResult<Vec<ClientRow>> {
    db.write_sync(|conn| Ok(store::clients(conn)?))
}
