//! The traffic simulator behind `causeway simulate` and `causeway demo`: a microservice world
//! described as data, generating realistic OpenTelemetry traces with injected faults and their
//! ground truth.
//!
//! It produces OTLP wire types (`opentelemetry_proto`), never engine types: what it generates
//! goes through the same receivers as production traffic. It must not read the wall clock except
//! to anchor a live stream ([`stream`]); everything else runs on event time from
//! [`Options::start`], deterministically for a given seed.
//!
//! # Entry points
//!
//! - [`write_bundle`]: a replay bundle (SPEC §7) in a directory: `traces.jsonl[.gz]`,
//!   `alerts.jsonl`, `changes.jsonl`, `causeway.yaml`, `owners.yaml`, `truth.json`.
//! - [`stream()`]: the same traffic live over OTLP/HTTP protobuf, on the wall clock (or faster),
//!   announcing fault starts and ends on a channel. `causeway demo` runs it in-process with
//!   [`FaultPlan::demo`] (a fault every few minutes, a different kind each time).
//! - [`Simulation`]: the underlying iterator of [`SimEvent`]s (export batches and fault
//!   boundaries in event-time order), for tests and benchmarks that want the requests in memory.
//!
//! # Worlds
//!
//! Two worlds ship in the binary: `webshop` (15 services, 6 teams; the demo's) and `large`
//! (44 services, 12 teams; the default for benchmarks). A world file is YAML; unknown keys are
//! errors. `worlds/webshop.yaml` is the commented example. In brief:
//!
//! ```yaml
//! name: webshop
//! namespace: shop                      # service.namespace and k8s namespace (default shop)
//! environment: production              # deployment.environment(.name)
//! region: eu-west-1
//! zones: [eu-west-1a, eu-west-1b]      # instances given as a count are spread over these
//! default_team: platform               # owners.yaml default_team
//! teams:                               # every team, with its channels in owners.yaml
//!   web: [pagerduty, slack]            # -> pagerduty: {routing_key_env: PD_WEB}, slack: {webhook_env: SLACK_WEB}
//!   dba: [slack]
//! network: { median_ms: 0.3, p99_ms: 2.5 }   # one network hop, log-normal
//! timeout_ms: 5000                     # default client timeout
//! noise: { error_rate: 0.0003, lost_spans: 0.001 }   # default own error rate of an operation; lost spans
//! traffic: { diurnal_amplitude: 0.15, walk_step: 0.03 }
//! services:
//!   checkout:
//!     team: orders
//!     version: 3.4.1                   # service.version
//!     language: java                   # java | go | nodejs | python | dotnet (exceptions, SDK names)
//!     protocol: http                   # http | grpc (gRPC operations are named pkg.Service/Method)
//!     semconv: new                     # new | old: which generation of attribute keys it emits
//!     span_kinds: true                 # false: a legacy SDK, every span SPAN_KIND_UNSPECIFIED
//!     clock_skew_ms: 0                 # its clock is off by this much
//!     peer_attribute: true             # client spans carry service.peer.name / peer.service
//!     instances: 3                     # or a list of {id, pod, host, zone}
//!     operations:
//!       "POST /checkout":              # the SERVER span name (and http.method + http.route)
//!         latency: { median_ms: 6, p99_ms: 40 }    # its own work, excluding calls
//!         error_rate: 0.0003           # optional, default noise.error_rate
//!         calls:                       # in order; each may have p, retries, fallback, timeout_ms, repeat
//!           - { service: cart, operation: "GET /cart/{id}" }
//!           - parallel:
//!               - { service: pricing, operation: "POST /quote", retries: 1 }
//!               - { dependency: orders-db, operation: "SELECT orders", statement: "SELECT ..." }
//!           - { service: recommendations, operation: "GET /recs", fallback: true, p: 0.5 }
//!           - { internal: "render receipt", latency: { median_ms: 1, p99_ms: 4 } }
//!           - { publish: orders.placed }
//! dependencies:                        # uninstrumented: seen only through CLIENT spans
//!   orders-db: { kind: postgresql, namespace: orders, host: orders-db.internal, team: dba,
//!                latency: { median_ms: 2, p99_ms: 15 } }        # named postgresql/orders
//!   sessions: { kind: redis, host: sessions-cache, team: platform, latency: {...} }   # redis/sessions-cache
//!   paygate: { kind: http, host: api.paygate.example, team: payments, latency: {...} } # api.paygate.example
//! topics:
//!   orders.placed: { system: kafka, team: platform, delay: { median_ms: 40, p99_ms: 400 },
//!                    consumers: [ { service: fulfillment, operation: "orders.placed process" } ] }
//! journeys:                            # become causeway.yaml's journeys (SPEC §3)
//!   - name: checkout
//!     entry: { service: frontend, operation: "POST /api/checkout" }
//!     owner: web                       # default: the entry service's team
//!     rate: 0.8                        # requests per second (before --rate-scale)
//!     slo: { availability: 99.9, latency: { threshold_ms: 1500, target: 99.0 } }
//! ```
//!
//! Call semantics: `p` is the chance the call happens; `retries` re-sends a failed call (each
//! attempt is its own CLIENT span); `fallback: true` means the caller absorbs the failure (a
//! handled error under a healthy parent); otherwise a failure fails the caller (5xx up the
//! chain). A `publish` writes a PRODUCER span; each consumer handles the message in a new trace
//! whose CONSUMER span links to it.
//!
//! # Faults
//!
//! See [`faults`] for the catalogue ([`FaultKind`]) and how targets are chosen. Each fault
//! leaves ground truth ([`TruthEntry`]), named as SPEC §4.2 names components.

pub mod alerts;
pub mod bundle;
pub mod command;
pub mod faults;
mod simulation;
mod spans;
pub mod stream;
mod traces;
pub mod world;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use bundle::{BundleSettings, BundleSummary, write_bundle};
pub use faults::{Cause, Effect, Fault, FaultKind, FaultPlan, TruthEntry};
pub use simulation::{Batch, SimEvent, Simulation, Stats};
pub use stream::{FaultNotice, StreamOptions, StreamSummary, stream};
pub use world::World;

/// Unix time in nanoseconds (the engine's time unit too).
pub type Nanos = i64;

/// Where a bundle starts when `--start` is not given: fixed, so bundles are reproducible.
pub const DEFAULT_START: &str = "2026-01-12T09:00:00Z";

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Options {
    pub world: Arc<World>,
    pub seed: u64,
    /// Event time of the first request.
    pub start: Nanos,
    /// How long traffic runs; `None` runs until the consumer stops (streaming only).
    pub duration: Option<Duration>,
    pub faults: FaultPlan,
    /// Multiplies every journey's request rate.
    pub rate_scale: f64,
    /// Count what Prometheus would scrape (needed for `alerts.jsonl`; off for streams).
    pub record_metrics: bool,
}

impl Options {
    /// Defaults: seed 1, [`DEFAULT_START`], 60 minutes, every fault kind, rates as the world says.
    pub fn new(world: World) -> Options {
        Options {
            world: Arc::new(world),
            seed: 1,
            start: parse_time(DEFAULT_START).expect("the default start is valid RFC 3339"),
            duration: Some(Duration::from_secs(3600)),
            faults: FaultPlan::all(),
            rate_scale: 1.0,
            record_metrics: true,
        }
    }
}

/// RFC 3339 in UTC with the shortest exact fraction (`2026-01-12T09:00:04.935Z`), as Go and
/// Alertmanager print times.
pub fn rfc3339(at: Nanos) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(at)) {
        Ok(timestamp) => timestamp.to_string(),
        Err(_) => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// Parses an RFC 3339 time into Unix nanoseconds.
pub fn parse_time(text: &str) -> anyhow::Result<Nanos> {
    let timestamp: jiff::Timestamp =
        text.parse().map_err(|error| anyhow::anyhow!("invalid RFC 3339 time {text:?}: {error}"))?;
    Nanos::try_from(timestamp.as_nanosecond()).map_err(|_| anyhow::anyhow!("time {text:?} is out of range"))
}
