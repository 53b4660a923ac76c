//! derp: a self-hosted auth server. See `README.md` and `../shared/DESIGN.md`.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod mail;
pub mod services;
pub mod startup;
pub mod state;
pub mod storage;
