//! Alert intake: the Alertmanager webhook (v4) and the Alertmanager-compatible
//! `POST /api/v2/alerts`. Validated (clear 400s), idempotent (HA pairs and re-sends are one
//! symptom), firing and resolved both handled.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};

use super::{ApiError, ApiState, with_core};
use crate::pipeline::wall_clock_nanos;
use crate::receivers::alertmanager;

pub async fn alertmanager_webhook(State(state): State<ApiState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let events = alertmanager::parse_webhook(&body).map_err(|error| {
        tracing::warn!(%error, "rejected an Alertmanager webhook");
        ApiError::bad_request("invalid_alerts", error.to_string())
    })?;
    let n = events.len();
    with_core(&state, move |core| core.alerts(&events, false, wall_clock_nanos())).await?;
    Ok(Json(json!({"status": "ok", "alerts": n})))
}

pub async fn prometheus_v2(State(state): State<ApiState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let now = wall_clock_nanos();
    let events = alertmanager::parse_v2(&body, now).map_err(|error| {
        tracing::warn!(%error, "rejected a /api/v2/alerts post");
        ApiError::bad_request("invalid_alerts", error.to_string())
    })?;
    let n = events.len();
    with_core(&state, move |core| core.alerts(&events, true, now)).await?;
    Ok(Json(json!({"status": "ok", "alerts": n})))
}
