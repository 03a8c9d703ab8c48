//! The HTTP API (`/api/v1/...`), `/healthz` and `/metrics`.
//!
//! Handlers read shared state and return JSON; every failure is an [`ApiError`] with a stable
//! `code`. Writes (alerts, commands, changes) go through the [`crate::state::Core`], under its
//! lock, on a blocking thread (they may run an analysis). When `auth.token_env` is configured
//! every `/api/v1` route needs `Authorization: Bearer`; alert intake takes the ingest token
//! when one is configured. Write routes refuse cross-site browser requests.

mod alerts;
mod incidents;
mod journeys;
mod traces;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::auth::{Secret, bearer_matches};
use crate::notifiers::worker::SharedStore;
use crate::ownership::LoadedOwnership;
use crate::pipeline::Pipeline;
pub use journeys::{TeamSummary, team_pages, team_summaries};
pub use traces::SpanBody;

#[derive(Clone)]
pub struct ApiState {
    pub pipeline: Pipeline,
    /// Bearer token for the API, when configured.
    pub token: Option<Secret>,
    /// Bearer token for alert intake (the ingest token, else the API token).
    pub ingest_token: Option<Secret>,
    pub store: SharedStore,
    pub ownership: Arc<LoadedOwnership>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/api/v1/traces/{trace_id}", get(traces::get_trace))
        .route("/api/v1/services", get(traces::get_services))
        .route("/api/v1/incidents", get(incidents::list))
        .route("/api/v1/incidents/{id}", get(incidents::detail))
        .route("/api/v1/incidents/{id}/ack", post(incidents::acknowledge))
        .route("/api/v1/incidents/{id}/resolve", post(incidents::resolve))
        .route("/api/v1/incidents/{id}/reroute", post(incidents::reroute))
        .route("/api/v1/journeys", get(journeys::list))
        .route("/api/v1/changes", get(journeys::list_changes).post(journeys::post_changes))
        .route("/api/v1/teams", get(journeys::teams))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let intake = Router::new()
        .route("/api/v1/alerts/alertmanager", post(alerts::alertmanager_webhook))
        .route("/api/v2/alerts", post(alerts::prometheus_v2))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_ingest_token));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(api)
        .merge(intake)
        .layer(middleware::from_fn(refuse_cross_site_writes))
        .with_state(state)
}

/// An API failure: HTTP status, a stable machine-readable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}

async fn require_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.token {
        if !bearer_matches(&headers, token) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(request).await
}

async fn require_ingest_token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.ingest_token {
        if !bearer_matches(&headers, token) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(request).await
}

/// Browsers mark cross-site requests (`Sec-Fetch-Site`) and send `Origin`: a write from another
/// site is refused, so a page elsewhere cannot make a logged-in browser acknowledge or reroute.
async fn refuse_cross_site_writes(headers: HeaderMap, request: axum::extract::Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let cross_site = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok()) == Some("cross-site");
        let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
        let foreign_origin = match (headers.get(header::ORIGIN).and_then(|value| value.to_str().ok()), host) {
            (Some(origin), Some(host)) => {
                let origin_host = origin.split("://").nth(1).unwrap_or(origin);
                origin != "null" && origin_host != host
            }
            _ => false,
        };
        if cross_site || foreign_origin {
            return ApiError::new(StatusCode::FORBIDDEN, "cross_site", "cross-site write refused").into_response();
        }
    }
    next.run(request).await
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn metrics(State(state): State<ApiState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.pipeline.shared.render_metrics())
        .into_response()
}

/// Runs `work` on the core on a blocking thread (analysis can take tens of milliseconds).
pub async fn with_core<T: Send + 'static>(
    state: &ApiState,
    work: impl FnOnce(&mut crate::state::Core) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let shared = state.pipeline.shared.clone();
    tokio::task::spawn_blocking(move || {
        let mut core = shared.core();
        work(&mut core)
    })
    .await
    .map_err(|error| ApiError::internal(format!("worker failed: {error}")))
}

/// Runs `work` on the store on a blocking thread.
pub async fn with_store<T: Send + 'static>(
    state: &ApiState,
    work: impl FnOnce(&dyn causeway_store::Store) -> Result<T, causeway_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let guard = crate::notifiers::worker::lock(&store);
        work(guard.as_ref())
    })
    .await
    .map_err(|error| ApiError::internal(format!("worker failed: {error}")))?
    .map_err(|error| ApiError::internal(error.to_string()))
}
