//! OTLP/HTTP receiver: `POST /v1/traces`, protobuf or JSON, optionally gzip-compressed.
//!
//! Responses follow the OTLP specification: an `ExportTraceServiceResponse` in the request's
//! encoding (with `partial_success` when spans were refused), 400 with a `google.rpc.Status`
//! naming the problem for malformed input, 413 for an oversized body, 415 for an unknown
//! content type, 429 with `Retry-After` when the pipeline's queue is full.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use prost::Message;
use tower_http::decompression::RequestDecompressionLayer;

use crate::pipeline::{Batch, Pipeline};
use crate::receivers::otlp::{self, Encoding};

#[derive(Clone, Debug)]
pub struct HttpReceiver {
    pub pipeline: Pipeline,
    pub max_request_bytes: usize,
    /// Bearer token required on ingest, when configured.
    pub token: Option<crate::auth::Secret>,
}

pub fn router(receiver: HttpReceiver) -> Router {
    let limit = receiver.max_request_bytes;
    Router::new()
        .route("/v1/traces", post(export))
        .with_state(receiver)
        // The limit applies to the decompressed body: gzip bombs are refused too.
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestDecompressionLayer::new())
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

const GRPC_INVALID_ARGUMENT: i32 = 3;
const GRPC_RESOURCE_EXHAUSTED: i32 = 8;
const GRPC_UNAUTHENTICATED: i32 = 16;

async fn export(State(receiver): State<HttpReceiver>, headers: HeaderMap, body: Body) -> Response {
    let metrics = &receiver.pipeline.shared.metrics;
    let encoding = match content_encoding(&headers) {
        Some(encoding) => encoding,
        None => {
            metrics.request("http", "unsupported");
            let content_type =
                headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("<none>");
            tracing::warn!(transport = "http", content_type, "rejected OTLP request: unsupported content type");
            return error_response(
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                GRPC_INVALID_ARGUMENT,
                format!("unsupported content type {content_type:?}: send application/x-protobuf or application/json"),
            );
        }
    };
    if let Some(token) = &receiver.token {
        if !crate::auth::bearer_matches(&headers, token) {
            metrics.request("http", "unauthenticated");
            return error_response(
                encoding,
                StatusCode::UNAUTHORIZED,
                GRPC_UNAUTHENTICATED,
                "missing or wrong bearer token".into(),
            );
        }
    }
    let body: Bytes = match axum::body::to_bytes(body, receiver.max_request_bytes).await {
        Ok(body) => body,
        Err(error) => {
            let too_large = is_length_limit(&error);
            let (status, outcome, message) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "request body over the {} byte limit (ingest.max_request_bytes)",
                        receiver.max_request_bytes
                    ),
                )
            } else {
                (StatusCode::BAD_REQUEST, "malformed", format!("cannot read request body: {error}"))
            };
            metrics.request("http", outcome);
            tracing::warn!(transport = "http", %message, "rejected OTLP request");
            return error_response(encoding, status, GRPC_INVALID_ARGUMENT, message);
        }
    };
    let encoded_bytes = body.len();
    let decoded = tokio::task::spawn_blocking(move || {
        let mut request = otlp::decode(encoding, &body)?;
        let validation = otlp::validate(&mut request);
        let queued_bytes = otlp::decoded_bytes(&request);
        Ok::<_, otlp::DecodeError>((request, validation, queued_bytes))
    })
    .await;
    let (request, validation, queued_bytes) = match decoded {
        Ok(Ok(decoded)) => decoded,
        Ok(Err(error)) => {
            metrics.request("http", "malformed");
            tracing::warn!(transport = "http", %error, "rejected OTLP request");
            return error_response(encoding, StatusCode::BAD_REQUEST, GRPC_INVALID_ARGUMENT, error.to_string());
        }
        Err(join_error) => {
            metrics.request("http", "malformed");
            tracing::error!(transport = "http", error = %join_error, "OTLP decoder failed");
            return error_response(
                encoding,
                StatusCode::BAD_REQUEST,
                GRPC_INVALID_ARGUMENT,
                "request could not be decoded".into(),
            );
        }
    };
    metrics.reject("invalid", validation.rejected);
    let mut message = validation.message();
    if validation.accepted == 0 && validation.rejected == 0 && encoded_bytes > 16 && encoding == Encoding::Json {
        // serde ignores unknown keys: a snake_case body decodes to nothing without an error.
        message =
            "the body decoded to zero spans; OTLP/JSON uses camelCase keys (resourceSpans, scopeSpans)".to_string();
        tracing::warn!(transport = "http", bytes = encoded_bytes, "non-empty OTLP/JSON body held no spans");
    }
    if validation.rejected > 0 {
        tracing::warn!(transport = "http", rejected = validation.rejected, reasons = %message, "refused invalid spans");
    }
    if validation.accepted > 0 {
        let n_spans = validation.accepted;
        if receiver.pipeline.submit(Batch { request, queued_bytes }).is_err() {
            metrics.reject("overload", n_spans);
            metrics.request("http", "overload");
            tracing::warn!(transport = "http", spans = n_spans, "ingest queue full, asking the client to retry");
            let mut response = error_response(
                encoding,
                StatusCode::TOO_MANY_REQUESTS,
                GRPC_RESOURCE_EXHAUSTED,
                "ingest queue full, retry later".into(),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        metrics.spans_received.inc_by(n_spans);
    }
    metrics.request("http", if validation.rejected > 0 { "partial" } else { "ok" });
    let partial_success = (validation.rejected > 0 || !message.is_empty())
        .then_some(ExportTracePartialSuccess { rejected_spans: validation.rejected as i64, error_message: message });
    success_response(encoding, ExportTraceServiceResponse { partial_success })
}

fn content_encoding(headers: &HeaderMap) -> Option<Encoding> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = content_type.split(';').next()?.trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

fn success_response(encoding: Encoding, response: ExportTraceServiceResponse) -> Response {
    match encoding {
        Encoding::Protobuf => {
            ([(header::CONTENT_TYPE, "application/x-protobuf")], response.encode_to_vec()).into_response()
        }
        Encoding::Json => match serde_json::to_vec(&response) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
        },
    }
}

fn error_response(encoding: Encoding, status: StatusCode, code: i32, message: String) -> Response {
    let rpc_status = RpcStatus { code, message };
    let mut response = match encoding {
        Encoding::Protobuf => {
            ([(header::CONTENT_TYPE, "application/x-protobuf")], rpc_status.encode_to_vec()).into_response()
        }
        Encoding::Json => {
            ([(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(&rpc_status).unwrap_or_default())
                .into_response()
        }
    };
    *response.status_mut() = status;
    response
}
