//! OTLP span construction: names, kinds, statuses and attributes the way real instrumentation
//! libraries write them, in the old or the new semantic-convention generation per service.
//!
//! This is the only place in the simulator that knows OpenTelemetry attribute keys. It writes
//! what `receivers/otlp.rs` reads: `http.response.status_code` / `http.status_code`,
//! `service.peer.name` / `peer.service`, `db.system.name` / `db.system`, `db.namespace` /
//! `db.name`, `rpc.response.status_code` (name) / `rpc.grpc.status_code` (number),
//! `server.address` / `net.peer.name`, `messaging.*`, `error.type`, and `exception` events.
//! It takes times as given (already skewed by the caller) and draws no random numbers itself.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1 as otlp;

use super::Nanos;
use super::world::{Dependency, DependencyKind, Operation, Protocol, Semconv, Service, Topic};
use crate::receivers::otlp::GRPC_CODE_NAMES;

/// OTLP span kinds (`opentelemetry.proto.trace.v1.Span.SpanKind`).
pub const KIND_UNSPECIFIED: i32 = 0;
pub const KIND_INTERNAL: i32 = 1;
pub const KIND_SERVER: i32 = 2;
pub const KIND_CLIENT: i32 = 3;
pub const KIND_PRODUCER: i32 = 4;
pub const KIND_CONSUMER: i32 = 5;

const STATUS_ERROR: i32 = 2;

/// W3C trace flags (sampled) plus the OTLP "parent is remote" bits.
const FLAGS_LOCAL_PARENT: u32 = 0x101;
const FLAGS_REMOTE_PARENT: u32 = 0x301;

/// Identity and timing shared by every span.
#[derive(Clone, Copy, Debug)]
pub struct SpanBase {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    /// Recorded (possibly skewed) times.
    pub start: Nanos,
    pub end: Nanos,
}

/// How a call or an operation failed, as its span records it.
#[derive(Clone, Debug)]
pub enum Failure {
    /// Answered with an error: an HTTP status and the equivalent gRPC code.
    Answered { http: u16, grpc: u8, exception: Option<Exception> },
    /// No answer before the timeout: no status code, `error.type` says why.
    Timeout { exception: Exception },
}

#[derive(Clone, Debug)]
pub struct Exception {
    pub kind: String,
    pub message: String,
}

impl Failure {
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Failure::Answered { http, .. } => Some(*http),
            Failure::Timeout { .. } => None,
        }
    }
}

/// The SERVER span of an operation (or the CONSUMER span of a message handler, with its link).
pub fn server(
    service: &Service,
    operation: &Operation,
    base: SpanBase,
    failure: Option<&Failure>,
    consumer_of: Option<(&Topic, [u8; 16], [u8; 8])>,
) -> otlp::Span {
    let mut attributes = Vec::with_capacity(5);
    let mut links = Vec::new();
    let kind;
    if let Some((topic, link_trace, link_span)) = consumer_of {
        kind = KIND_CONSUMER;
        messaging_attributes(service.semconv, topic, "process", &mut attributes);
        links.push(otlp::span::Link {
            trace_id: link_trace.to_vec(),
            span_id: link_span.to_vec(),
            trace_state: String::new(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: FLAGS_REMOTE_PARENT,
        });
    } else {
        kind = KIND_SERVER;
        match (service.protocol, &operation.rpc, &operation.http) {
            (Protocol::Grpc, Some((rpc_service, method)), _) => {
                attributes.push(string("rpc.system", "grpc"));
                attributes.push(string("rpc.service", rpc_service));
                attributes.push(string("rpc.method", method));
                let code = failure.map_or(0, |failure| match failure {
                    Failure::Answered { grpc, .. } => *grpc,
                    Failure::Timeout { .. } => 4,
                });
                grpc_status(service.semconv, code, &mut attributes);
            }
            (_, _, Some((method, route))) => {
                let status = failure.and_then(Failure::http_status).unwrap_or(200);
                match service.semconv {
                    Semconv::New => {
                        attributes.push(string("http.request.method", method));
                        attributes.push(string("http.route", route));
                        attributes.push(int("http.response.status_code", i64::from(status)));
                    }
                    Semconv::Old => {
                        attributes.push(string("http.method", method));
                        attributes.push(string("http.route", route));
                        attributes.push(int("http.status_code", i64::from(status)));
                    }
                }
            }
            _ => {}
        }
    }
    let mut span = span(service, &operation.name, kind, base);
    span.links = links;
    if let Some(failure) = failure {
        mark_failed(&mut span, &mut attributes, failure, None, service.semconv, service.protocol);
    }
    span.attributes = attributes;
    span
}

/// A CLIENT span calling an instrumented service. `failure` is what the caller saw.
pub fn client_to_service(
    caller: &Service,
    callee: &Service,
    operation: &Operation,
    base: SpanBase,
    failure: Option<&Failure>,
    attempt: u32,
) -> otlp::Span {
    let mut attributes = Vec::with_capacity(7);
    match (callee.protocol, &operation.rpc, &operation.http) {
        (Protocol::Grpc, Some((rpc_service, method)), _) => {
            attributes.push(string("rpc.system", "grpc"));
            attributes.push(string("rpc.service", rpc_service));
            attributes.push(string("rpc.method", method));
            address(caller.semconv, &callee.name, 50051, &mut attributes);
            match failure {
                None => grpc_status(caller.semconv, 0, &mut attributes),
                Some(Failure::Answered { grpc, .. }) => grpc_status(caller.semconv, *grpc, &mut attributes),
                Some(Failure::Timeout { .. }) => {}
            }
        }
        (_, _, http) => {
            let method = http.as_ref().map_or("POST", |(method, _)| method.as_str());
            let status = match failure {
                None => Some(200),
                Some(failure) => failure.http_status(),
            };
            match caller.semconv {
                Semconv::New => attributes.push(string("http.request.method", method)),
                Semconv::Old => attributes.push(string("http.method", method)),
            }
            address(caller.semconv, &callee.name, 8080, &mut attributes);
            if let Some(status) = status {
                let key = match caller.semconv {
                    Semconv::New => "http.response.status_code",
                    Semconv::Old => "http.status_code",
                };
                attributes.push(int(key, i64::from(status)));
            }
        }
    }
    if caller.peer_attribute {
        let key = match caller.semconv {
            Semconv::New => "service.peer.name",
            Semconv::Old => "peer.service",
        };
        attributes.push(string(key, &callee.name));
    }
    if attempt > 0 {
        attributes.push(int("http.request.resend_count", i64::from(attempt)));
    }
    let mut span = span(caller, &operation.name, KIND_CLIENT, base);
    if let Some(failure) = failure {
        mark_failed(&mut span, &mut attributes, failure, None, caller.semconv, callee.protocol);
    }
    span.attributes = attributes;
    span
}

/// A CLIENT span calling an uninstrumented dependency (database, cache, external API).
pub fn client_to_dependency(
    caller: &Service,
    dependency: &Dependency,
    operation: &str,
    statement: Option<&str>,
    base: SpanBase,
    failure: Option<&Failure>,
    attempt: u32,
) -> otlp::Span {
    let mut attributes = Vec::with_capacity(7);
    let semconv = caller.semconv;
    match dependency.kind {
        DependencyKind::Postgresql | DependencyKind::Redis => {
            let system = match dependency.kind {
                DependencyKind::Postgresql => "postgresql",
                _ => "redis",
            };
            let verb = operation.split(' ').next().unwrap_or(operation);
            match semconv {
                Semconv::New => {
                    attributes.push(string("db.system.name", system));
                    if let Some(namespace) = &dependency.namespace {
                        attributes.push(string("db.namespace", namespace));
                    }
                    attributes.push(string("db.operation.name", verb));
                    if let Some(statement) = statement {
                        attributes.push(string("db.query.text", statement));
                    }
                }
                Semconv::Old => {
                    attributes.push(string("db.system", system));
                    if let Some(namespace) = &dependency.namespace {
                        attributes.push(string("db.name", namespace));
                    }
                    attributes.push(string("db.operation", verb));
                    if let Some(statement) = statement {
                        attributes.push(string("db.statement", statement));
                    }
                }
            }
            address(semconv, &dependency.host, dependency.port, &mut attributes);
            if let Some(Failure::Answered { exception: Some(exception), .. }) = failure
                && semconv == Semconv::New
                && let Some(code) = database_code(exception)
            {
                attributes.push(string("db.response.status_code", code));
            }
        }
        DependencyKind::Http => {
            let (method, path) = operation.split_once(' ').unwrap_or(("POST", operation));
            let status = match failure {
                None => Some(200),
                Some(failure) => failure.http_status(),
            };
            match semconv {
                Semconv::New => {
                    attributes.push(string("http.request.method", method));
                    address(semconv, &dependency.host, dependency.port, &mut attributes);
                    attributes.push(string("url.full", &format!("https://{}{path}", dependency.host)));
                    if let Some(status) = status {
                        attributes.push(int("http.response.status_code", i64::from(status)));
                    }
                }
                Semconv::Old => {
                    attributes.push(string("http.method", method));
                    address(semconv, &dependency.host, dependency.port, &mut attributes);
                    attributes.push(string("http.url", &format!("https://{}{path}", dependency.host)));
                    if let Some(status) = status {
                        attributes.push(int("http.status_code", i64::from(status)));
                    }
                }
            }
            if attempt > 0 {
                attributes.push(int("http.request.resend_count", i64::from(attempt)));
            }
        }
    }
    let mut span = span(caller, operation, KIND_CLIENT, base);
    if let Some(failure) = failure {
        // Database clients put the database's own code (SQLSTATE) or the error class in error.type.
        let error_type = match (dependency.kind, failure) {
            (DependencyKind::Http, _) | (_, Failure::Timeout { .. }) => None,
            (_, Failure::Answered { exception, .. }) => exception.as_ref().map(|exception| {
                database_code(exception).map(str::to_string).unwrap_or_else(|| exception.kind.clone())
            }),
        };
        mark_failed(&mut span, &mut attributes, failure, error_type, semconv, Protocol::Http);
    }
    span.attributes = attributes;
    span
}

/// A database error message starts with its five-character code (`53300: too many clients`).
fn database_code(exception: &Exception) -> Option<&str> {
    exception.message.split(':').next().filter(|code| code.len() == 5)
}

/// A PRODUCER span publishing a message.
pub fn producer(caller: &Service, topic: &Topic, base: SpanBase) -> otlp::Span {
    let mut attributes = Vec::with_capacity(3);
    messaging_attributes(caller.semconv, topic, "send", &mut attributes);
    let name = match caller.semconv {
        Semconv::New => format!("send {}", topic.name),
        Semconv::Old => format!("{} publish", topic.name),
    };
    let mut span = span(caller, &name, KIND_PRODUCER, base);
    span.attributes = attributes;
    span
}

/// An INTERNAL span: work inside one service.
pub fn internal(service: &Service, name: &str, base: SpanBase) -> otlp::Span {
    span(service, name, KIND_INTERNAL, base)
}

fn span(service: &Service, name: &str, kind: i32, base: SpanBase) -> otlp::Span {
    let remote_parent = matches!(kind, KIND_SERVER | KIND_CONSUMER);
    otlp::Span {
        trace_id: base.trace_id.to_vec(),
        span_id: base.span_id.to_vec(),
        trace_state: String::new(),
        parent_span_id: base.parent.map_or_else(Vec::new, |parent| parent.to_vec()),
        flags: if remote_parent && base.parent.is_some() { FLAGS_REMOTE_PARENT } else { FLAGS_LOCAL_PARENT },
        name: name.to_string(),
        kind: if service.records_kind { kind } else { KIND_UNSPECIFIED },
        start_time_unix_nano: base.start.max(1) as u64,
        end_time_unix_nano: base.end.max(base.start).max(1) as u64,
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(otlp::Status::default()),
    }
}

fn mark_failed(
    span: &mut otlp::Span,
    attributes: &mut Vec<KeyValue>,
    failure: &Failure,
    error_type_override: Option<String>,
    semconv: Semconv,
    protocol: Protocol,
) {
    let (error_type, message, exception) = match failure {
        Failure::Answered { http, grpc, exception } => {
            let error_type = match protocol {
                Protocol::Grpc => GRPC_CODE_NAMES[usize::from(*grpc).min(16)].to_string(),
                Protocol::Http => http.to_string(),
            };
            let message =
                exception.as_ref().map_or_else(|| format!("HTTP {http}"), |exception| exception.message.clone());
            (error_type, message, exception.as_ref())
        }
        Failure::Timeout { exception } => ("timeout".to_string(), exception.message.clone(), Some(exception)),
    };
    span.status = Some(otlp::Status { message, code: STATUS_ERROR });
    // error.type is a newer attribute, but client instrumentations of both generations set it
    // on failed calls by now; server spans of old instrumentations do not.
    if semconv == Semconv::New || span.kind != KIND_SERVER {
        attributes.push(string("error.type", error_type_override.as_deref().unwrap_or(&error_type)));
    }
    if let Some(exception) = exception {
        span.events.push(otlp::span::Event {
            time_unix_nano: span.end_time_unix_nano,
            name: "exception".to_string(),
            attributes: vec![
                string("exception.type", &exception.kind),
                string("exception.message", &exception.message),
            ],
            dropped_attributes_count: 0,
        });
    }
}

fn grpc_status(semconv: Semconv, code: u8, attributes: &mut Vec<KeyValue>) {
    match semconv {
        Semconv::New => attributes.push(string("rpc.response.status_code", GRPC_CODE_NAMES[usize::from(code).min(16)])),
        Semconv::Old => attributes.push(int("rpc.grpc.status_code", i64::from(code))),
    }
}

fn address(semconv: Semconv, host: &str, port: u16, attributes: &mut Vec<KeyValue>) {
    match semconv {
        Semconv::New => {
            attributes.push(string("server.address", host));
            attributes.push(int("server.port", i64::from(port)));
        }
        Semconv::Old => {
            attributes.push(string("net.peer.name", host));
            attributes.push(int("net.peer.port", i64::from(port)));
        }
    }
}

fn messaging_attributes(semconv: Semconv, topic: &Topic, operation: &str, attributes: &mut Vec<KeyValue>) {
    attributes.push(string("messaging.system", &topic.system));
    match semconv {
        Semconv::New => {
            attributes.push(string("messaging.destination.name", &topic.name));
            attributes.push(string("messaging.operation.type", operation));
        }
        Semconv::Old => {
            attributes.push(string("messaging.destination", &topic.name));
            let operation = if operation == "send" { "publish" } else { operation };
            attributes.push(string("messaging.operation", operation));
        }
    }
}

pub fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_string())) }),
        key_strindex: 0,
    }
}

pub fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        key_strindex: 0,
    }
}
