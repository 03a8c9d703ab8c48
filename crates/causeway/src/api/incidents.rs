//! Incidents: list, detail (with reasons, candidates, pages and delivery status), and the
//! commands people give: acknowledge, resolve, reroute.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use causeway_engine::CommandError;
use causeway_engine::incident::{Action, Incident};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, with_core, with_store};
use crate::pipeline::wall_clock_nanos;
use crate::replay::report::time;
use crate::state::Command;

#[derive(Deserialize)]
pub struct ListQuery {
    /// `open` (default: all).
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// One line of the incident list.
pub fn summary(incident: &Incident, now: i64) -> Value {
    let decision = incident.decision();
    json!({
        "id": incident.id,
        "state": incident.state,
        "opened_at": time(incident.opened_at),
        "resolved_at": incident.resolved_at.map(time),
        "age_seconds": (now - incident.opened_at) / 1_000_000_000,
        "journeys": incident.journeys(),
        "title": incident.symptoms.first().map(|record| record.symptom.summary.clone()).unwrap_or_default(),
        "causes": incident.cause_components,
        "cause_kind": decision.causes.first().map(|cause| cause.kind.as_str()),
        "outcome": decision.outcome,
        "confidence": decision.confidence,
        "paged_teams": incident.paged_teams,
        "notified_teams": incident.notified_teams,
        "paging": incident.paging,
        "symptoms": incident.symptoms.len(),
    })
}

pub async fn list(State(state): State<ApiState>, Query(query): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let open_only = match query.state.as_deref() {
        None | Some("all") => false,
        Some("open") => true,
        Some(other) => return Err(ApiError::bad_request("invalid_state", format!("state {other:?}: use open or all"))),
    };
    let limit = query.limit.unwrap_or(200).min(5000);
    let records = with_store(&state, move |store| store.incidents(open_only, limit)).await?;
    let now = wall_clock_nanos();
    let mut incidents: Vec<Incident> =
        records.iter().filter_map(|record| serde_json::from_str(&record.body).ok()).collect();
    // Open first, then newest.
    incidents.sort_by_key(|incident| (!incident.state.is_active(), std::cmp::Reverse(incident.opened_at)));
    Ok(Json(json!({"incidents": incidents.iter().map(|incident| summary(incident, now)).collect::<Vec<_>>()})))
}

pub async fn detail(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let lookup = id.clone();
    let (record, deliveries, events) = with_store(&state, move |store| {
        let record = store.incident(&lookup)?;
        let deliveries = store.deliveries(&lookup)?;
        let mut with_attempts = Vec::new();
        for delivery in deliveries {
            let attempts = store.attempts(delivery.id)?;
            with_attempts.push((delivery, attempts));
        }
        Ok((record, with_attempts, store.events(&lookup)?))
    })
    .await?;
    let record = record
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "incident_not_found", format!("no incident {id}")))?;
    let incident: Incident = serde_json::from_str(&record.body)
        .map_err(|error| ApiError::internal(format!("unreadable incident snapshot: {error}")))?;
    let deliveries: Vec<Value> = deliveries
        .into_iter()
        .map(|(delivery, attempts)| {
            json!({
                "id": delivery.id,
                "team": delivery.new.team,
                "action": delivery.new.action,
                "channel": delivery.new.channel,
                "dedup_key": delivery.new.dedup_key,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "last_error": delivery.last_error,
                "created_at": time(delivery.new.created_at),
                "delivered_at": delivery.delivered_at.map(time),
                "fallbacks": delivery.new.fallbacks,
                "attempt_log": attempts.iter().map(|attempt| json!({
                    "at": time(attempt.at),
                    "attempt": attempt.attempt,
                    "status_code": attempt.status_code,
                    "outcome": attempt.outcome,
                    "error": attempt.error,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let pages: Vec<Value> = incident
        .effects
        .iter()
        .filter(|effect| matches!(effect.action, Action::Page | Action::Notify))
        .map(|effect| json!({"team": effect.team, "at": time(effect.at), "kind": effect.action.as_str(), "note": effect.note}))
        .collect();
    let now = wall_clock_nanos();
    Ok(Json(json!({
        "summary": summary(&incident, now),
        "incident": incident,
        "pages": pages,
        "deliveries": deliveries,
        "events": events,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActorBody {
    #[serde(default)]
    by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RerouteBody {
    team: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    by: Option<String>,
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request("invalid_body", format!("invalid JSON body: {error}")))
}

fn command_error(error: CommandError) -> ApiError {
    match error {
        CommandError::NotFound(id) => {
            ApiError::new(StatusCode::NOT_FOUND, "incident_not_found", format!("no open incident {id}"))
        }
        CommandError::Resolved(id) => {
            ApiError::new(StatusCode::CONFLICT, "incident_resolved", format!("incident {id} is already resolved"))
        }
        CommandError::Invalid(message) => ApiError::bad_request("invalid_command", message),
    }
}

async fn run_command(state: &ApiState, command: Command) -> Result<Json<Value>, ApiError> {
    let id = match &command {
        Command::Acknowledge { incident, .. }
        | Command::Resolve { incident, .. }
        | Command::Reroute { incident, .. } => incident.clone(),
    };
    with_core(state, move |core| core.command(&command, wall_clock_nanos())).await?.map_err(command_error)?;
    Ok(Json(json!({"status": "ok", "incident": id})))
}

pub async fn acknowledge(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: ActorBody = parse_body(&body)?;
    run_command(&state, Command::Acknowledge { incident: id, by: body.by.unwrap_or_else(|| "api".into()) }).await
}

pub async fn resolve(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: ActorBody = parse_body(&body)?;
    run_command(&state, Command::Resolve { incident: id, by: body.by.unwrap_or_else(|| "api".into()) }).await
}

pub async fn reroute(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: RerouteBody = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request("invalid_body", format!("expected {{\"team\", \"reason\"}}: {error}"))
    })?;
    let teams = &state.ownership.ownership.teams;
    if !teams.contains(&body.team) {
        let known: Vec<&str> = teams.iter().map(String::as_str).collect();
        return Err(ApiError::bad_request(
            "unknown_team",
            format!("unknown team {:?}; known teams: {}", body.team, known.join(", ")),
        ));
    }
    let reason = if body.reason.trim().is_empty() { "no reason given".to_string() } else { body.reason };
    run_command(
        &state,
        Command::Reroute { incident: id, team: body.team, reason, by: body.by.unwrap_or_else(|| "api".into()) },
    )
    .await
}
