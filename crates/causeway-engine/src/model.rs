//! The span model the engine reasons about.
//!
//! Wire formats (OTLP protobuf, OTLP/JSON) are converted into these types at the edge, in the
//! binary's receivers: the engine never sees attribute maps, only the handful of normalized
//! fields causality analysis and the brief need. Strings are interned ([`Symbol`]) and the
//! resource a span came from is shared ([`ResourceId`]), which is what keeps a retained span
//! under 200 bytes.
//!
//! **Invariant:** nothing here performs IO or reads a clock; timestamps are Unix nanoseconds
//! handed in by the caller.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::intern::{Interner, Symbol};

/// Unix time in nanoseconds. Event time everywhere in the engine.
pub type Nanos = i64;

pub const NANOS_PER_MS: Nanos = 1_000_000;
pub const NANOS_PER_SEC: Nanos = 1_000_000_000;
pub const NANOS_PER_MIN: Nanos = 60 * NANOS_PER_SEC;

/// A W3C trace id. The all-zero id is invalid and rejected at the edge.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// A span id. Zero means "none" (a root span's parent).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub u64);

impl TraceId {
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }

    /// Parses 32 hex digits.
    pub fn from_hex(text: &str) -> Option<TraceId> {
        let mut out = [0u8; 16];
        decode_hex_into(text, &mut out)?;
        Some(TraceId(out))
    }

    /// A 64-bit digest, for deterministic sampling decisions.
    pub fn low_u64(&self) -> u64 {
        let mut low = [0u8; 8];
        low.copy_from_slice(&self.0[8..]);
        u64::from_be_bytes(low)
    }
}

impl SpanId {
    pub const NONE: SpanId = SpanId(0);

    pub fn is_none(&self) -> bool {
        self.0 == 0
    }

    pub fn from_bytes(bytes: [u8; 8]) -> SpanId {
        SpanId(u64::from_be_bytes(bytes))
    }

    pub fn from_hex(text: &str) -> Option<SpanId> {
        let mut out = [0u8; 8];
        decode_hex_into(text, &mut out)?;
        Some(SpanId::from_bytes(out))
    }
}

fn decode_hex_into(text: &str, out: &mut [u8]) -> Option<()> {
    let bytes = text.as_bytes();
    if bytes.len() != out.len() * 2 {
        return None;
    }
    for (index, pair) in bytes.chunks_exact(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        out[index] = (high * 16 + low) as u8;
    }
    Some(())
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl Serialize for TraceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for SpanId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TraceId::from_hex(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid trace id {text:?}")))
    }
}

/// OTLP span kind. `Unspecified` is common in real data and is inferred during analysis
/// (see [`crate::trace::TraceView`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum SpanKind {
    #[default]
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    pub fn from_otlp(value: i32) -> SpanKind {
        match value {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// SERVER and CONSUMER spans receive work from another component.
    pub fn is_incoming(self) -> bool {
        matches!(self, SpanKind::Server | SpanKind::Consumer)
    }

    /// CLIENT and PRODUCER spans hand work to another component.
    pub fn is_outgoing(self) -> bool {
        matches!(self, SpanKind::Client | SpanKind::Producer)
    }
}

/// OTLP status code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum StatusCode {
    #[default]
    Unset = 0,
    Ok = 1,
    Error = 2,
}

impl StatusCode {
    pub fn from_otlp(value: i32) -> StatusCode {
        match value {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

/// How a CLIENT/PRODUCER span names the component it calls, in the precedence of SPEC §4.2.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum CalleeKind {
    #[default]
    None = 0,
    /// `service.peer.name` / `peer.service`: an instrumented or named service.
    PeerService = 1,
    /// `<db.system.name>/<db.namespace>`.
    Database = 2,
    /// `<messaging.system>/<destination>`.
    Messaging = 3,
    /// `server.address` / `net.peer.name`.
    Address = 4,
}

/// A span as retained by the window. The trace id lives with the trace, not the span.
///
/// Optional symbols are [`Symbol::NONE`] when absent; `http_status` is 0 and `rpc_status`
/// is [`Span::NO_RPC_STATUS`] when absent.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub span_id: SpanId,
    pub parent_span_id: SpanId,
    pub start: Nanos,
    pub end: Nanos,
    pub resource: ResourceId,
    pub name: Symbol,
    /// `http.route`, when present.
    pub route: Symbol,
    /// The called component's name, see [`CalleeKind`].
    pub callee: Symbol,
    pub error_type: Symbol,
    pub exception_type: Symbol,
    /// Exception message, normalized at the edge so ids and numbers do not explode cardinality.
    pub exception_message: Symbol,
    /// `db.query.text` / `db.statement` reduced to its shape (literals removed).
    pub db_statement: Symbol,
    pub http_status: u16,
    pub rpc_status: u8,
    pub kind: SpanKind,
    pub status: StatusCode,
    pub callee_kind: CalleeKind,
    pub links: Option<Box<Vec<Link>>>,
}

impl Span {
    pub const NO_RPC_STATUS: u8 = u8::MAX;

    pub fn duration(&self) -> Nanos {
        (self.end - self.start).max(0)
    }

    pub fn has_rpc_status(&self) -> bool {
        self.rpc_status != Span::NO_RPC_STATUS
    }

    /// A response status (HTTP or RPC) was recorded: the callee answered.
    pub fn has_response_status(&self) -> bool {
        self.http_status != 0 || self.has_rpc_status()
    }

    /// Heap bytes owned by this span beyond its inline size (links).
    pub fn heap_bytes(&self) -> usize {
        match &self.links {
            Some(links) => std::mem::size_of::<Vec<Link>>() + links.capacity() * std::mem::size_of::<Link>(),
            None => 0,
        }
    }
}

/// A span link (messaging: a consumer links to the producer span).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// Index into [`Resources`]: the resource attributes shared by all spans of one SDK instance.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
pub struct ResourceId(pub u32);

/// The resource attributes the engine uses. Unknown values are [`Symbol::NONE`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Resource {
    pub service: Symbol,
    pub namespace: Symbol,
    pub version: Symbol,
    pub instance: Symbol,
    pub pod: Symbol,
    pub host: Symbol,
    pub zone: Symbol,
    pub environment: Symbol,
    /// The owning team when the resource says so (`service.owner.name`, `team`, ...).
    pub team: Symbol,
}

/// Deduplicated resource table: one entry per distinct resource, shared by its spans.
#[derive(Debug, Default, Clone)]
pub struct Resources {
    entries: Vec<Resource>,
    lookup: hashbrown::HashMap<Resource, ResourceId>,
}

impl Resources {
    pub fn intern(&mut self, resource: Resource) -> ResourceId {
        if let Some(id) = self.lookup.get(&resource) {
            return *id;
        }
        let id = ResourceId(self.entries.len() as u32);
        self.entries.push(resource);
        self.lookup.insert(resource, id);
        id
    }

    pub fn get(&self, id: ResourceId) -> &Resource {
        &self.entries[id.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (ResourceId, &Resource)> {
        self.entries.iter().enumerate().map(|(index, resource)| (ResourceId(index as u32), resource))
    }

    /// Bytes allocated by the table (capacity-based, not counts).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Resource>() + self.lookup.allocation_size()
    }
}

/// The string tables a span needs to be read: interner and resources.
#[derive(Debug, Default, Clone)]
pub struct Dictionary {
    pub strings: Interner,
    pub resources: Resources,
}

impl Dictionary {
    pub fn service_of(&self, span: &Span) -> Symbol {
        self.resources.get(span.resource).service
    }

    pub fn service_name(&self, span: &Span) -> &str {
        self.strings.resolve(self.service_of(span))
    }

    pub fn str(&self, symbol: Symbol) -> &str {
        self.strings.resolve(symbol)
    }

    pub fn heap_bytes(&self) -> usize {
        self.strings.heap_bytes() + self.resources.heap_bytes()
    }
}

/// A span before it joins the window: the trace id travels with it.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingSpan {
    pub trace_id: TraceId,
    pub span: Span,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_hex() {
        let trace = TraceId::from_hex("5b8efff798038103d269b633813fc60c").expect("valid hex");
        assert_eq!(trace.to_string(), "5b8efff798038103d269b633813fc60c");
        let span = SpanId::from_hex("eee19b7ec3c1b174").expect("valid hex");
        assert_eq!(span.to_string(), "eee19b7ec3c1b174");
        assert!(TraceId::from_hex("5b8e").is_none());
        assert!(TraceId::from_hex("zz8efff798038103d269b633813fc60c").is_none());
    }

    #[test]
    fn a_span_stays_small() {
        // The window's memory budget (SPEC §9: < 200 bytes per retained span) starts here.
        assert!(std::mem::size_of::<Span>() <= 104, "Span grew to {} bytes", std::mem::size_of::<Span>());
    }
}
