//! Causeway's engine: a pure, deterministic state machine from spans, symptoms and time to
//! routing decisions and incidents (SPEC §4).
//!
//! **Architecture invariant:** no IO, no clock, no async runtime, no wire formats. Inputs and
//! the current time come in as values; decisions and diagnostics come out. This is what makes
//! `serve` and `replay` agree and what keeps tests fast data.

pub mod analysis;
pub mod brief;
pub mod change;
pub mod decide;
pub mod engine;
pub mod incident;
pub mod intern;
pub mod journey;
pub mod model;
pub mod ownership;
pub mod slo;
pub mod topology;
pub mod trace;
pub mod window;

pub use engine::{CommandError, Engine, EngineConfig, RoutingConfig};
pub use intern::{Interner, Symbol};
pub use model::*;
pub use trace::{TraceView, span_is_error};
pub use window::{TraceSource, TraceWindow, WindowConfig, WindowCounters};
