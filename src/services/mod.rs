//! Use cases that sit above the backends: rate limits now; orgs,
//! invitations and admin as they arrive.

pub mod admin;
mod admin_directory;
pub mod lockouts;
pub mod metrics;
pub mod oauth;
pub mod orgs;
pub mod outbox;
pub mod rate_limit;
