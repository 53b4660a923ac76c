//! The JSON API under `/api/v1`.

pub mod auth;
pub mod mfa;
pub mod oauth;
pub mod oauth_cognito;
pub mod oidc;
pub mod ops;
pub mod orgs;
