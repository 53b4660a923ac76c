//! The HTTP surface: the only module that speaks actix-web.

pub mod admin;
pub mod api;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod oauth_flow;
pub mod openapi;
pub mod pages;
pub mod server;
