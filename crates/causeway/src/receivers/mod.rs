//! Everything that enters Causeway from the outside, converted to engine types at this edge.

pub mod alertmanager;
pub mod changes;
pub mod otlp;
pub mod otlp_grpc;
pub mod otlp_http;

#[cfg(test)]
mod fuzz;
