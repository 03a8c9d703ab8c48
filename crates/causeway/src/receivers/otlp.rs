//! OTLP traces at the edge: decoding (protobuf, OTLP/JSON), validation with partial-success
//! accounting, and conversion into the engine's span model.
//!
//! This is the only place that knows OpenTelemetry attribute keys. It reads both old and new
//! semantic-convention keys (SPEC §2.1) so the engine sees one normalized form.
//!
//! Decoding and validation run on the request's thread (they need no shared state);
//! [`convert`] interns strings into the window's dictionary and runs on the pipeline thread.

use causeway_engine::{
    CalleeKind, Dictionary, IncomingSpan, Link, Resource, Span, SpanId, SpanKind, StatusCode, Symbol, TraceId,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1 as otlp;
use prost::Message;

/// Why a request body could not be decoded at all (a 400 / `INVALID_ARGUMENT`).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed OTLP protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("malformed OTLP/JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encoding of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

pub fn decode(encoding: Encoding, body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    Ok(match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)?,
        Encoding::Json => serde_json::from_slice(body)?,
    })
}

/// The outcome of validating a request: how many spans were kept and why others were not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Validation {
    pub accepted: u64,
    pub rejected: u64,
    /// The first few distinct reasons, for the `partial_success.error_message`.
    pub reasons: Vec<String>,
}

impl Validation {
    pub fn message(&self) -> String {
        self.reasons.join("; ")
    }

    fn reject(&mut self, reason: String) {
        self.rejected += 1;
        if self.reasons.len() < 5 && !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }
}

/// Removes spans the engine cannot use (bad ids, missing timestamps) and counts them.
/// What stays is guaranteed to convert.
pub fn validate(request: &mut ExportTraceServiceRequest) -> Validation {
    let mut validation = Validation::default();
    for resource_spans in &mut request.resource_spans {
        for scope_spans in &mut resource_spans.scope_spans {
            scope_spans.spans.retain(|span| match span_problem(span) {
                None => {
                    validation.accepted += 1;
                    true
                }
                Some(problem) => {
                    validation.reject(problem);
                    false
                }
            });
        }
    }
    validation
}

fn span_problem(span: &otlp::Span) -> Option<String> {
    if span.trace_id.len() != 16 {
        return Some(format!("span {:?}: invalid traceId (need 16 bytes, got {})", span.name, span.trace_id.len()));
    }
    if span.trace_id.iter().all(|byte| *byte == 0) {
        return Some(format!("span {:?}: invalid traceId (all zero)", span.name));
    }
    if span.span_id.len() != 8 {
        return Some(format!("span {:?}: invalid spanId (need 8 bytes, got {})", span.name, span.span_id.len()));
    }
    if span.span_id.iter().all(|byte| *byte == 0) {
        return Some(format!("span {:?}: invalid spanId (all zero)", span.name));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Some(format!("span {:?}: invalid parentSpanId ({} bytes)", span.name, span.parent_span_id.len()));
    }
    if span.start_time_unix_nano == 0 || span.end_time_unix_nano == 0 {
        return Some(format!("span {:?}: missing start or end time", span.name));
    }
    if span.start_time_unix_nano > i64::MAX as u64 || span.end_time_unix_nano > i64::MAX as u64 {
        return Some(format!("span {:?}: timestamp out of range", span.name));
    }
    None
}

/// Counts the spans in a request.
pub fn count_spans(request: &ExportTraceServiceRequest) -> u64 {
    request
        .resource_spans
        .iter()
        .flat_map(|resource_spans| &resource_spans.scope_spans)
        .map(|scope_spans| scope_spans.spans.len() as u64)
        .sum()
}

/// Bytes a decoded request holds on the heap (capacities of its vectors and strings): what a
/// queued batch really costs, which for protobuf is several times its encoded size.
pub fn decoded_bytes(request: &ExportTraceServiceRequest) -> usize {
    use std::mem::size_of;
    fn attributes_bytes(attributes: &[KeyValue]) -> usize {
        attributes
            .iter()
            .map(|attribute| {
                size_of::<KeyValue>()
                    + attribute.key.capacity()
                    + attribute.value.as_ref().map_or(0, |value| match &value.value {
                        Some(any_value::Value::StringValue(text)) => text.capacity(),
                        Some(any_value::Value::BytesValue(bytes)) => bytes.capacity(),
                        Some(any_value::Value::ArrayValue(array)) => array.values.capacity() * size_of::<AnyValue>(),
                        Some(any_value::Value::KvlistValue(list)) => attributes_bytes(&list.values),
                        _ => 0,
                    })
            })
            .sum()
    }
    let mut total = request.resource_spans.capacity() * size_of::<otlp::ResourceSpans>();
    for resource_spans in &request.resource_spans {
        total += resource_spans.resource.as_ref().map_or(0, |resource| attributes_bytes(&resource.attributes));
        total += resource_spans.scope_spans.capacity() * size_of::<otlp::ScopeSpans>();
        for scope_spans in &resource_spans.scope_spans {
            total += scope_spans.spans.capacity() * size_of::<otlp::Span>();
            for span in &scope_spans.spans {
                total += span.trace_id.capacity() + span.span_id.capacity() + span.parent_span_id.capacity();
                total += span.name.capacity() + span.trace_state.capacity();
                total += attributes_bytes(&span.attributes);
                total += span.events.capacity() * size_of::<otlp::span::Event>();
                for event in &span.events {
                    total += event.name.capacity() + attributes_bytes(&event.attributes);
                }
                total += span.links.capacity() * size_of::<otlp::span::Link>();
                for link in &span.links {
                    total += link.trace_id.capacity() + link.span_id.capacity() + attributes_bytes(&link.attributes);
                }
                total += span.status.as_ref().map_or(0, |status| status.message.capacity());
            }
        }
    }
    total
}

/// Which resource attributes name the owning team, in order (SPEC §2.4, item 3).
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub team_keys: Vec<String>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions { team_keys: vec!["service.owner.name".to_string(), "team".to_string()] }
    }
}

/// Converts a validated request into engine spans, interning into `dictionary`.
pub fn convert(
    request: &ExportTraceServiceRequest,
    options: &ConvertOptions,
    dictionary: &mut Dictionary,
    out: &mut Vec<IncomingSpan>,
) {
    for resource_spans in &request.resource_spans {
        let attributes = resource_spans.resource.as_ref().map(|resource| resource.attributes.as_slice()).unwrap_or(&[]);
        let resource = convert_resource(attributes, options, dictionary);
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                if let Some(incoming) = convert_span(span, resource, dictionary) {
                    out.push(incoming);
                }
            }
        }
    }
}

fn convert_resource(
    attributes: &[KeyValue],
    options: &ConvertOptions,
    dictionary: &mut Dictionary,
) -> causeway_engine::ResourceId {
    let mut resource = Resource::default();
    let mut environment_new = None;
    let mut environment_old = None;
    let mut team_candidates: Vec<(usize, String)> = Vec::new();
    for attribute in attributes {
        let Some(value) = attribute.value.as_ref() else {
            continue;
        };
        let strings = &mut dictionary.strings;
        match attribute.key.as_str() {
            "service.name" => resource.service = strings.intern(&value_text(value)),
            "service.namespace" => resource.namespace = strings.intern(&value_text(value)),
            "service.version" => resource.version = strings.intern(&value_text(value)),
            "service.instance.id" => resource.instance = strings.intern(&value_text(value)),
            "k8s.pod.name" => resource.pod = strings.intern(&value_text(value)),
            "host.name" => resource.host = strings.intern(&value_text(value)),
            "cloud.availability_zone" => resource.zone = strings.intern(&value_text(value)),
            "deployment.environment.name" => environment_new = Some(value_text(value)),
            "deployment.environment" => environment_old = Some(value_text(value)),
            _ => {}
        }
        if let Some(rank) = options.team_keys.iter().position(|key| *key == attribute.key) {
            team_candidates.push((rank, value_text(value)));
        }
    }
    if resource.service.is_none() {
        resource.service = dictionary.strings.intern("unknown_service");
    }
    if let Some(environment) = environment_new.or(environment_old) {
        resource.environment = dictionary.strings.intern(&environment);
    }
    team_candidates.sort();
    if let Some((_, team)) = team_candidates.into_iter().find(|(_, team)| !team.is_empty()) {
        resource.team = dictionary.strings.intern(&team);
    }
    dictionary.resources.intern(resource)
}

/// Span attributes of interest, gathered in one pass before precedence is applied.
#[derive(Default)]
struct SpanAttributes<'a> {
    route: Option<&'a AnyValue>,
    http_status_new: Option<&'a AnyValue>,
    http_status_old: Option<&'a AnyValue>,
    rpc_status_string: Option<&'a AnyValue>,
    rpc_grpc_status: Option<&'a AnyValue>,
    peer_new: Option<&'a AnyValue>,
    peer_old: Option<&'a AnyValue>,
    db_system_new: Option<&'a AnyValue>,
    db_system_old: Option<&'a AnyValue>,
    db_namespace_new: Option<&'a AnyValue>,
    db_namespace_old: Option<&'a AnyValue>,
    db_statement_new: Option<&'a AnyValue>,
    db_statement_old: Option<&'a AnyValue>,
    messaging_system: Option<&'a AnyValue>,
    messaging_destination_new: Option<&'a AnyValue>,
    messaging_destination_old: Option<&'a AnyValue>,
    server_address: Option<&'a AnyValue>,
    net_peer_name: Option<&'a AnyValue>,
    error_type: Option<&'a AnyValue>,
}

impl<'a> SpanAttributes<'a> {
    fn gather(attributes: &'a [KeyValue]) -> Self {
        let mut found = SpanAttributes::default();
        for attribute in attributes {
            let Some(value) = attribute.value.as_ref() else {
                continue;
            };
            let slot = match attribute.key.as_str() {
                "http.route" => &mut found.route,
                "http.response.status_code" => &mut found.http_status_new,
                "http.status_code" => &mut found.http_status_old,
                "rpc.response.status_code" | "rpc.status_code" => &mut found.rpc_status_string,
                "rpc.grpc.status_code" => &mut found.rpc_grpc_status,
                "service.peer.name" => &mut found.peer_new,
                "peer.service" => &mut found.peer_old,
                "db.system.name" => &mut found.db_system_new,
                "db.system" => &mut found.db_system_old,
                "db.namespace" => &mut found.db_namespace_new,
                "db.name" => &mut found.db_namespace_old,
                "db.query.text" => &mut found.db_statement_new,
                "db.statement" => &mut found.db_statement_old,
                "messaging.system" => &mut found.messaging_system,
                "messaging.destination.name" => &mut found.messaging_destination_new,
                "messaging.destination" => &mut found.messaging_destination_old,
                "server.address" => &mut found.server_address,
                "net.peer.name" => &mut found.net_peer_name,
                "error.type" => &mut found.error_type,
                _ => continue,
            };
            *slot = Some(value);
        }
        found
    }
}

fn convert_span(
    span: &otlp::Span,
    resource: causeway_engine::ResourceId,
    dictionary: &mut Dictionary,
) -> Option<IncomingSpan> {
    let trace_id = TraceId(span.trace_id.as_slice().try_into().ok()?);
    let span_id = SpanId::from_bytes(span.span_id.as_slice().try_into().ok()?);
    let parent_span_id = match span.parent_span_id.as_slice() {
        [] => SpanId::NONE,
        bytes => SpanId::from_bytes(bytes.try_into().ok()?),
    };
    let attributes = SpanAttributes::gather(&span.attributes);
    let strings = &mut dictionary.strings;

    let http_status = attributes
        .http_status_new
        .or(attributes.http_status_old)
        .and_then(value_int)
        .filter(|status| (100..=999).contains(status))
        .map_or(0, |status| status as u16);
    let rpc_status = attributes
        .rpc_grpc_status
        .and_then(value_int)
        .filter(|code| (0..=16).contains(code))
        .map(|code| code as u8)
        .or_else(|| attributes.rpc_status_string.and_then(grpc_code_from_value))
        .unwrap_or(Span::NO_RPC_STATUS);

    let (callee_kind, callee) = callee_of(&attributes, strings);
    let error_type = attributes.error_type.map_or(Symbol::NONE, |value| strings.intern(&value_text(value)));
    let route = attributes.route.map_or(Symbol::NONE, |value| strings.intern(&value_text(value)));
    let db_statement = attributes
        .db_statement_new
        .or(attributes.db_statement_old)
        .map_or(Symbol::NONE, |value| strings.intern(&statement_shape(&value_text(value))));

    let mut exception_type = Symbol::NONE;
    let mut exception_message = Symbol::NONE;
    for event in &span.events {
        if event.name != "exception" {
            continue;
        }
        for attribute in &event.attributes {
            let Some(value) = attribute.value.as_ref() else {
                continue;
            };
            match attribute.key.as_str() {
                "exception.type" => exception_type = strings.intern(&value_text(value)),
                "exception.message" => exception_message = strings.intern(&message_shape(&value_text(value))),
                _ => {}
            }
        }
    }

    let links = if span.links.is_empty() {
        None
    } else {
        let links: Vec<Link> = span
            .links
            .iter()
            .filter_map(|link| {
                Some(Link {
                    trace_id: TraceId(link.trace_id.as_slice().try_into().ok()?),
                    span_id: SpanId::from_bytes(link.span_id.as_slice().try_into().ok()?),
                })
            })
            .collect();
        (!links.is_empty()).then(|| Box::new(links))
    };

    let start = span.start_time_unix_nano as i64;
    let end = (span.end_time_unix_nano as i64).max(start);
    Some(IncomingSpan {
        trace_id,
        span: Span {
            span_id,
            parent_span_id,
            start,
            end,
            resource,
            name: strings.intern(&span.name),
            route,
            callee,
            error_type,
            exception_type,
            exception_message,
            db_statement,
            http_status,
            rpc_status,
            kind: SpanKind::from_otlp(span.kind),
            status: StatusCode::from_otlp(span.status.as_ref().map_or(0, |status| status.code)),
            callee_kind,
            links,
        },
    })
}

/// The callee's name in SPEC §4.2's precedence: peer service, database, messaging destination,
/// server address.
fn callee_of(attributes: &SpanAttributes<'_>, strings: &mut causeway_engine::Interner) -> (CalleeKind, Symbol) {
    if let Some(peer) = attributes.peer_new.or(attributes.peer_old) {
        return (CalleeKind::PeerService, strings.intern(&value_text(peer)));
    }
    if let Some(system) = attributes.db_system_new.or(attributes.db_system_old) {
        let system = value_text(system);
        let namespace = attributes
            .db_namespace_new
            .or(attributes.db_namespace_old)
            .or(attributes.server_address)
            .or(attributes.net_peer_name)
            .map(value_text);
        let name = match namespace {
            Some(namespace) if !namespace.is_empty() => format!("{system}/{namespace}"),
            _ => system,
        };
        return (CalleeKind::Database, strings.intern(&name));
    }
    if let Some(system) = attributes.messaging_system {
        if let Some(destination) = attributes.messaging_destination_new.or(attributes.messaging_destination_old) {
            let name = format!("{}/{}", value_text(system), value_text(destination));
            return (CalleeKind::Messaging, strings.intern(&name));
        }
    }
    if let Some(address) = attributes.server_address.or(attributes.net_peer_name) {
        return (CalleeKind::Address, strings.intern(&value_text(address)));
    }
    (CalleeKind::None, Symbol::NONE)
}

/// Text of an attribute value; non-string scalars are formatted.
pub fn value_text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        Some(any_value::Value::BytesValue(bytes)) => hex::encode(bytes),
        _ => String::new(),
    }
}

/// Integer value of an attribute, accepting numeric strings (some SDKs send status codes as
/// strings).
fn value_int(value: &AnyValue) -> Option<i64> {
    match &value.value {
        Some(any_value::Value::IntValue(number)) => Some(*number),
        Some(any_value::Value::StringValue(text)) => text.trim().parse().ok(),
        Some(any_value::Value::DoubleValue(number)) if number.fract() == 0.0 => Some(*number as i64),
        _ => None,
    }
}

/// gRPC status names, indexed by code.
pub const GRPC_CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// gRPC status code from `rpc.status_code` / `rpc.response.status_code` (a name like
/// `UNAVAILABLE` or a number).
fn grpc_code_from_value(value: &AnyValue) -> Option<u8> {
    if let Some(number) = value_int(value) {
        return (0..=16).contains(&number).then_some(number as u8);
    }
    let text = value_text(value).to_ascii_uppercase();
    GRPC_CODE_NAMES.iter().position(|name| *name == text).map(|code| code as u8)
}

/// Maximum length kept of free-text values (statements, messages).
const MAX_TEXT: usize = 160;

/// A SQL statement's shape: string and numeric literals become `?`, whitespace collapses.
/// Keeps cardinality low (one value per query shape) so the brief can compare shapes.
pub fn statement_shape(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len().min(MAX_TEXT));
    let mut chars = statement.chars().peekable();
    let mut last_space = false;
    while let Some(c) = chars.next() {
        if out.len() >= MAX_TEXT {
            break;
        }
        match c {
            '\'' | '"' => {
                for inner in chars.by_ref() {
                    if inner == c {
                        break;
                    }
                }
                out.push('?');
                last_space = false;
            }
            c if c.is_ascii_digit() && !out.chars().last().is_some_and(|p| p.is_alphanumeric() || p == '_') => {
                while chars.peek().is_some_and(|next| next.is_ascii_alphanumeric() || *next == '.') {
                    chars.next();
                }
                out.push('?');
                last_space = false;
            }
            c if c.is_whitespace() => {
                if !last_space && !out.is_empty() {
                    out.push(' ');
                }
                last_space = true;
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
    }
    out.trim_end().to_string()
}

/// A message's shape: runs of digits and long hex-like tokens (ids, addresses) become `*`.
pub fn message_shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_TEXT));
    for (index, token) in message.split(' ').enumerate() {
        if out.len() >= MAX_TEXT {
            break;
        }
        if index > 0 {
            out.push(' ');
        }
        let hexish = token.chars().filter(|c| c.is_ascii_hexdigit()).count();
        let digits = token.chars().filter(char::is_ascii_digit).count();
        if token.len() >= 8 && hexish * 10 >= token.len() * 8 && digits > 0 {
            out.push('*');
            continue;
        }
        let mut in_digits = false;
        for c in token.chars() {
            if c.is_ascii_digit() {
                if !in_digits {
                    out.push('*');
                }
                in_digits = true;
            } else {
                out.push(c);
                in_digits = false;
            }
        }
    }
    out.truncate(floor_char_boundary(&out, MAX_TEXT));
    out
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_shapes_drop_literals() {
        assert_eq!(
            statement_shape("SELECT * FROM orders WHERE id = 42 AND owner = 'bob'"),
            "SELECT * FROM orders WHERE id = ? AND owner = ?"
        );
        assert_eq!(statement_shape("select  col1\n from t2"), "select col1 from t2");
    }

    #[test]
    fn message_shapes_drop_ids_and_numbers() {
        assert_eq!(message_shape("timeout after 3000ms on order 9f8e7d6c5b4a"), "timeout after *ms on order *");
        assert_eq!(message_shape("connection refused"), "connection refused");
    }

    #[test]
    fn grpc_codes_parse_from_names_and_numbers() {
        let name = AnyValue { value: Some(any_value::Value::StringValue("unavailable".into())) };
        let number = AnyValue { value: Some(any_value::Value::StringValue("4".into())) };
        assert_eq!(grpc_code_from_value(&name), Some(14));
        assert_eq!(grpc_code_from_value(&number), Some(4));
    }
}
