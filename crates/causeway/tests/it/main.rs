//! Causeway's integration tests: one binary, one module per capability.
//! Servers run on 127.0.0.1 with port 0; nothing reaches any other address.

mod audit;
mod briefs;
mod common;
mod flood;
mod otel_sdk;
mod otlp_ingest;
mod paging;
mod prometheus;
mod receivers;
mod record_replay;
mod ui;
