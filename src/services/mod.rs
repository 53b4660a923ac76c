//! Use cases that sit above the user stores: the ways in with their rate
//! limits ([`accounts`]), orgs and invitations, admin, lockouts, providers,
//! the mail outbox and metrics. This layer owns policy: who may do what.

pub mod accounts;
pub mod admin;
pub mod lockouts;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod orgs;
pub mod outbox;
pub mod paging;
pub mod rate_limit;
pub mod webhooks;
