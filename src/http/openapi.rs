//! `/openapi.json`: the OpenAPI 3.1 document of the JSON API, generated from
//! the handlers' `#[utoipa::path]` annotations and the types they read and
//! answer with. A route that is served but not listed here, or listed but
//! not served, fails `tests/integration/api_errors.rs`.
//!
//! The types below only describe bodies that the handlers build with
//! `json!` (they are never constructed).
#![allow(dead_code)]

use crate::auth::{AuthOutcome, TokenPair};
use crate::domain::User;
use crate::services::admin::OutboxMessage;
use crate::services::lockouts::LockoutView;
use crate::storage::outbox::OutboxStats;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// Every error: a stable `code`, a human `message`, the `request_id` that
/// the log line carries, and for some codes more detail.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `invalid_request`, `invalid_credentials`,
    /// `unauthenticated`, `invalid_token`, `forbidden`, `not_found`,
    /// `rate_limited`, `weak_password`, …
    pub code: String,
    pub message: String,
    pub request_id: String,
    /// `invalid_request`: the problem with each field, by field name.
    pub fields: Option<BTreeMap<String, String>>,
    /// `weak_password`: the policy rules the password breaks.
    pub reasons: Option<Vec<String>>,
    /// `last_owner`: the orgs the user is the only owner of.
    pub orgs: Option<Vec<String>>,
    /// `rate_limited`: seconds to wait (also in `Retry-After`).
    pub retry_after: Option<u64>,
}

/// The error responses every JSON operation may give (`4XX`, `5XX`), with
/// [`ErrorBody`].
pub struct Errors;

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
                .into()
        };
        BTreeMap::from([
            ("4XX".to_string(), error("The request was refused")),
            ("5XX".to_string(), error("derp or its upstream failed")),
        ])
    }
}

/// A user whose sign-up (or confirmation) gave no tokens yet.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingUser {
    pub email: String,
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum SignUpUser {
    User(User),
    Pending(PendingUser),
}

/// `tokens` is null and `confirmation_required` true until the address is
/// confirmed (when confirmation is on). With `[auth.native.mfa] required`,
/// `tokens` is null and `mfa_enrollment_required` true: the
/// `enrollment_token` enrolls the first factor (`/mfa/totp/enroll` and
/// `/mfa/totp/verify`, or `/passkeys/register/start` and `…/finish`, with
/// `enrollment_token`), which signs the user in.
#[derive(ToSchema)]
pub struct SignUpResponse {
    pub user: SignUpUser,
    pub tokens: Option<TokenPair>,
    pub confirmation_required: bool,
    pub mfa_enrollment_required: Option<bool>,
    pub enrollment_token: Option<String>,
}

/// A confirmation code that signs nobody in (Cognito): sign in next.
#[derive(ToSchema)]
pub struct Confirmed {
    pub user: PendingUser,
    #[schema(schema_with = null)]
    pub tokens: (),
}

fn null() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Null)
        .build()
}

#[derive(ToSchema)]
#[serde(untagged)]
pub enum ConfirmResponse {
    SignedIn(AuthOutcome),
    MfaRequired(MfaRequired),
    Confirmed(Confirmed),
}

/// A factor that can answer the second step.
#[derive(ToSchema)]
pub struct FactorRef {
    pub id: String,
    /// `totp` or `passkey`
    #[schema(rename = "type")]
    pub kind: String,
}

/// The first factor was right and the user has a second one: send a code
/// with `mfa_token` to `POST /api/v1/auth/mfa/challenge`.
#[derive(ToSchema)]
pub struct MfaRequired {
    #[schema(schema_with = null)]
    pub user: (),
    #[schema(schema_with = null)]
    pub tokens: (),
    /// Always true.
    pub mfa_required: bool,
    pub mfa_token: String,
    pub factors: Vec<FactorRef>,
}

/// Signed in (`{user, tokens}`), or a second factor is needed.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum SignInResponse {
    SignedIn(AuthOutcome),
    MfaRequired(MfaRequired),
}

/// A second factor as its owner sees it (no secret).
#[derive(ToSchema)]
pub struct Factor {
    pub id: String,
    /// `totp` or `passkey`
    #[schema(rename = "type")]
    pub kind: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

#[derive(ToSchema)]
pub struct FactorList {
    pub factors: Vec<Factor>,
}

/// A pending TOTP factor: what the authenticator app needs, shown once.
#[derive(ToSchema)]
pub struct TotpEnrollment {
    pub factor_id: String,
    /// Base32, for typing into the app.
    pub secret: String,
    pub otpauth_url: String,
}

/// The factor is active; recovery codes come with the first one.
#[derive(ToSchema)]
pub struct TotpVerified {
    pub factor: Factor,
    /// Shown once; empty when the user already had codes.
    pub recovery_codes: Vec<String>,
    /// With `enrollment_token`: the sign-in it completed.
    pub user: Option<User>,
    /// With `enrollment_token`: the tokens of that sign-in.
    pub tokens: Option<TokenPair>,
}

/// A WebAuthn ceremony started: finish it with `flow_id` within 5 minutes.
#[derive(ToSchema)]
pub struct PasskeyStart {
    pub flow_id: String,
    /// `PublicKeyCredentialCreationOptions` (register) or
    /// `PublicKeyCredentialRequestOptions` (sign-in) as JSON, binary fields
    /// base64url.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// The passkey is registered and active.
#[derive(ToSchema)]
pub struct PasskeyRegistered {
    pub factor: Factor,
    /// Shown once: only when the passkey is the user's first factor.
    pub recovery_codes: Option<Vec<String>>,
    /// With `enrollment_token`: the sign-in it completed.
    pub user: Option<User>,
    /// With `enrollment_token`: the tokens of that sign-in.
    pub tokens: Option<TokenPair>,
}

#[derive(ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

#[derive(ToSchema)]
pub struct TokensResponse {
    pub tokens: TokenPair,
}

/// The request was taken; the answer is the same whether or not the
/// address has an account.
#[derive(ToSchema)]
pub struct Accepted {
    /// `accepted`
    pub status: String,
}

#[derive(ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `unavailable`
    pub status: String,
}

#[derive(ToSchema)]
pub struct AuthorizationUrl {
    /// Where to send the browser.
    pub url: String,
    /// The `state` in that URL (Google, GitHub and OpenID Connect providers): the
    /// app's own when the provider returns to the app, to pass to
    /// `/oauth/{provider}/sign-in` with the code.
    pub state: Option<String>,
}

#[derive(ToSchema)]
pub struct LockoutList {
    pub lockouts: Vec<LockoutView>,
}

#[derive(ToSchema)]
pub struct Outbox {
    pub queue: OutboxStats,
    pub messages: Vec<OutboxMessage>,
    /// The last mails the in-memory mailer kept (development).
    pub recent_mail: Vec<serde_json::Value>,
}

/// The public keys that verify derp's tokens (RFC 7517).
#[derive(ToSchema)]
pub struct Jwks {
    pub keys: Vec<HashMap<String, serde_json::Value>>,
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A user's access token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "service_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "One of `[admin] service_keys` (the admin API and /metrics)",
                    ))
                    .build(),
            ),
        );
    }
}

use crate::http::admin::{api as admin_api, lockouts, webhooks};
use crate::http::api::{auth, mfa, oauth, oidc, ops, orgs};
use crate::http::pages::oauth as oauth_pages;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "derp",
        description = "derp's JSON API: sign-up and sign-in, sessions and tokens, organizations, \
                       and the admin API. Errors answer `{\"error\": {\"code\", \"message\", …}}`.",
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "auth", description = "Sign-up, sign-in, tokens, the session and the account"),
        (name = "mfa", description = "Second factors (TOTP, passkeys, recovery codes) and the sign-in challenge"),
        (name = "oauth", description = "Sign-in with Google, GitHub, OpenID Connect providers and Cognito's hosted UI"),
        (name = "oidc", description = "derp as an OpenID Connect provider: the back channel of its clients ([oidc_provider])"),
        (name = "orgs", description = "Organizations, members and invitations"),
        (name = "admin", description = "The admin API: an admin's access token or a service key"),
        (name = "ops", description = "Health, metrics and public documents"),
    ),
    paths(
        auth::sign_up, auth::sign_in, auth::refresh, auth::sign_out, auth::get_session,
        auth::get_user, auth::update_user, auth::list_sessions, auth::revoke_session,
        auth::confirm, auth::resend_confirmation, auth::send_magic_link,
        auth::verify_magic_link, auth::recover_password, auth::reset_password,
        auth::set_active_org, auth::exchange_code,
        mfa::list_factors, mfa::remove_factor, mfa::enroll_totp, mfa::verify_totp,
        mfa::new_recovery_codes, mfa::challenge, mfa::passkey_register_start,
        mfa::passkey_register_finish, mfa::passkey_sign_in_start, mfa::passkey_sign_in_finish,
        oauth::authorization_url, oauth_pages::callback, oauth::sign_in,
        orgs::create_org, orgs::list_orgs, orgs::get_org, orgs::update_org, orgs::delete_org,
        orgs::list_members, orgs::add_member, orgs::change_role, orgs::remove_member,
        orgs::list_invitations, orgs::invite, orgs::revoke_invitation, orgs::accept_invitation,
        admin_api::overview, admin_api::list_users, admin_api::create_user, admin_api::get_user,
        admin_api::update_user, admin_api::delete_user, admin_api::sign_out_user, admin_api::reset_user_mfa,
        admin_api::send_confirmation, admin_api::send_recovery, admin_api::list_orgs,
        admin_api::create_org, admin_api::get_org, admin_api::update_org, admin_api::delete_org,
        admin_api::list_members, admin_api::add_member, admin_api::change_role,
        admin_api::remove_member, admin_api::list_invitations, admin_api::invite,
        admin_api::revoke_invitation, admin_api::audit, admin_api::outbox,
        admin_api::list_clients, admin_api::create_client, admin_api::rotate_client_secret,
        admin_api::delete_client,
        lockouts::list, lockouts::clear,
        webhooks::api::list, webhooks::api::create, webhooks::api::get, webhooks::api::update,
        webhooks::api::delete,
        webhooks::api::rotate_secret, webhooks::api::send_test, webhooks::api::deliveries,
        webhooks::api::redeliver,
        ops::healthz, ops::readyz, ops::metrics, ops::jwks, ops::openid_configuration,
        ops::openapi,
        oidc::token, oidc::userinfo_get, oidc::userinfo_post, oidc::revoke, oidc::introspect,
    ),
)]
pub struct ApiDoc;

/// The document as served, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()))
}
