//! Traces and the service graph as the window holds them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use causeway_engine::{Dictionary, Span, SpanKind, TraceId, TraceSource, TraceView, topology::Topology};
use serde::Serialize;
use serde_json::json;

use super::{ApiError, ApiState};

#[derive(Serialize)]
struct TraceBody {
    trace_id: TraceId,
    spans: Vec<SpanBody>,
}

/// A span as the API shows it: strings resolved, absent values omitted.
#[derive(Serialize)]
pub struct SpanBody {
    pub span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub service: String,
    pub name: String,
    /// The recorded kind.
    pub kind: SpanKind,
    /// The kind used by analysis (inferred when the recorded one is unspecified).
    pub effective_kind: SpanKind,
    pub start_unix_nano: i64,
    pub end_unix_nano: i64,
    pub duration_ms: f64,
    pub status: causeway_engine::StatusCode,
    pub error: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_status: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_statement: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<serde_json::Value>,
    pub resource: serde_json::Map<String, serde_json::Value>,
}

impl SpanBody {
    pub fn new(view: &TraceView<'_>, index: usize) -> SpanBody {
        let span: &Span = view.span(index);
        let dictionary: &Dictionary = view.dictionary;
        let text = |symbol: causeway_engine::Symbol| symbol.is_some().then(|| dictionary.str(symbol).to_string());
        let resource = dictionary.resources.get(span.resource);
        let mut resource_body = serde_json::Map::new();
        for (key, symbol) in [
            ("service.namespace", resource.namespace),
            ("service.version", resource.version),
            ("service.instance.id", resource.instance),
            ("k8s.pod.name", resource.pod),
            ("host.name", resource.host),
            ("cloud.availability_zone", resource.zone),
            ("deployment.environment.name", resource.environment),
            ("team", resource.team),
        ] {
            if let Some(value) = text(symbol) {
                resource_body.insert(key.to_string(), value.into());
            }
        }
        SpanBody {
            span_id: span.span_id.to_string(),
            parent_span_id: (!span.parent_span_id.is_none()).then(|| span.parent_span_id.to_string()),
            service: dictionary.service_name(span).to_string(),
            name: dictionary.str(span.name).to_string(),
            kind: span.kind,
            effective_kind: view.kind(index),
            start_unix_nano: span.start,
            end_unix_nano: span.end,
            duration_ms: span.duration() as f64 / 1e6,
            status: span.status,
            error: view.is_error(index),
            http_status: (span.http_status != 0).then_some(span.http_status),
            rpc_status: span.has_rpc_status().then_some(span.rpc_status),
            route: text(span.route),
            callee: text(span.callee),
            error_type: text(span.error_type),
            exception_type: text(span.exception_type),
            exception_message: text(span.exception_message),
            db_statement: text(span.db_statement),
            links: span
                .links
                .iter()
                .flat_map(|links| links.iter())
                .map(|link| json!({"trace_id": link.trace_id.to_string(), "span_id": link.span_id.to_string()}))
                .collect(),
            resource: resource_body,
        }
    }
}

pub async fn get_trace(State(state): State<ApiState>, Path(trace_id): Path<String>) -> Result<Response, ApiError> {
    let parsed = TraceId::from_hex(&trace_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_trace_id",
            format!("{trace_id:?} is not a trace id (32 hex digits)"),
        )
    })?;
    let core = state.pipeline.shared.core();
    let window = core.engine.window();
    let spans = window.trace(&parsed).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "trace_not_found", format!("trace {trace_id} is not in the window"))
    })?;
    let view = TraceView::new(spans, window.dictionary());
    let body =
        TraceBody { trace_id: parsed, spans: (0..view.len()).map(|index| SpanBody::new(&view, index)).collect() };
    Ok(Json(body).into_response())
}

pub async fn get_services(State(state): State<ApiState>) -> Json<serde_json::Value> {
    let core = state.pipeline.shared.core();
    let window = core.engine.window();
    let mut topology = Topology::default();
    for (_, spans) in window.traces() {
        topology.observe(&TraceView::new(spans, window.dictionary()));
    }
    let dictionary = window.dictionary();
    let services: Vec<_> = topology
        .nodes
        .iter()
        .map(|(name, stats)| {
            json!({
                "name": dictionary.str(*name),
                "uninstrumented": stats.uninstrumented,
                "spans": stats.spans,
                "requests": stats.requests,
                "errors": stats.errors,
            })
        })
        .collect();
    let calls: Vec<_> = topology
        .edges
        .iter()
        .map(|((caller, callee), stats)| {
            json!({"caller": dictionary.str(*caller), "callee": dictionary.str(*callee), "calls": stats.calls, "errors": stats.errors})
        })
        .collect();
    Json(json!({"services": services, "calls": calls}))
}
