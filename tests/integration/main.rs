//! One integration-test binary: every test starts the real server in-process
//! on port 0 with its own SQLite file, and talks to it over real HTTP.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod helpers;
mod smtp_server;

mod admin;
mod admin_console;
mod api_errors;
mod branding;
mod clerk;
mod cli;
mod cognito;
mod cognito_admin;
mod cognito_code_pages;
mod cognito_hosted_ui;
mod cognito_pages;
mod file_lengths;
mod github;
mod guards;
mod http_hardening;
mod i18n;
mod instances;
mod layers;
mod lockout;
mod mail_flows;
mod mfa;
mod mfa_policy;
mod oauth;
mod oidc_provider;
mod ops_cli;
mod ops_runtime;
mod orgs;
mod pages;
mod pages_details;
mod pages_product;
mod passkey_enrollment;
mod passkeys;
mod refresh_grace;
mod reload;
mod session_tokens;
mod sign_in;
mod sign_up;
mod signing_keys;
mod smtp_delivery;
mod token_hardening;
mod user_account;
mod webhooks;
