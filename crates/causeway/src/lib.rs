//! The `causeway` binary's library: configuration, receivers, pipeline, API, commands.
//!
//! The binary (`main.rs`) is glue over these modules; integration tests use them directly.
//! Data flows one way: receivers -> pipeline -> engine -> store (outbox) -> notifiers;
//! the API and UI read.

pub mod api;
pub mod assistant;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod metrics;
pub mod notifiers;
pub mod ownership;
pub mod pipeline;
pub mod receivers;
pub mod record;
pub mod replay;
pub mod server;
pub mod sim;
pub mod state;
pub mod ui;
