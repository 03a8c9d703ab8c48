//! Journeys (SLO status, budget, burn per tier, active symptoms), changes, and teams (pages
//! received, and the pages static routing would have sent them for failures caused elsewhere).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use causeway_engine::incident::{Action, Incident};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiState, with_core, with_store};
use crate::pipeline::wall_clock_nanos;
use crate::replay::report::time;

pub async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let value = with_core(&state, |core| {
        let engine = &core.engine;
        let now = wall_clock_nanos();
        let statuses = engine.slo().status(now);
        let journeys: Vec<Value> = engine
            .journeys()
            .iter()
            .map(|journey| {
                let status = statuses.iter().find(|status| status.journey == journey.name);
                let active: Vec<Value> = engine
                    .incidents()
                    .iter()
                    .filter(|incident| incident.state.is_active())
                    .flat_map(|incident| {
                        incident
                            .symptoms
                            .iter()
                            .filter(|record| record.resolved_at.is_none() && record.symptom.journey() == Some(journey.name.as_str()))
                            .map(move |record| json!({"id": record.symptom.id, "incident": incident.id, "kind": record.symptom.kind, "fired_at": time(record.symptom.fired_at), "summary": record.symptom.summary}))
                    })
                    .collect();
                let owner = journey
                    .owner
                    .clone()
                    .or_else(|| engine.ownership().owner(&journey.entry_service, "error", None).map(|owner| owner.team))
                    .unwrap_or_else(|| engine.ownership().default_team.clone());
                json!({
                    "name": journey.name,
                    "entry": {"service": journey.entry_service, "operation": journey.entry_operation},
                    "owner": owner,
                    "slo": {
                        "availability": journey.slo.availability,
                        "latency": journey.slo.latency.map(|latency| json!({"threshold_ms": latency.threshold as f64 / 1e6, "target": latency.target})),
                        "period_days": journey.slo.period as f64 / 86_400e9,
                    },
                    "slis": status.map(|status| &status.slis),
                    "healthy": active.is_empty(),
                    "active_symptoms": active,
                })
            })
            .collect();
        json!({"journeys": journeys})
    })
    .await?;
    Ok(Json(value))
}

#[derive(Deserialize)]
pub struct ChangesQuery {
    #[serde(default)]
    service: Option<String>,
}

pub async fn list_changes(
    State(state): State<ApiState>,
    Query(query): Query<ChangesQuery>,
) -> Result<Json<Value>, ApiError> {
    let value = with_core(&state, move |core| {
        let changes: Vec<Value> = core
            .engine
            .changes()
            .iter()
            .rev()
            .filter(|change| query.service.as_ref().is_none_or(|service| &change.service == service))
            .take(1000)
            .map(|change| {
                json!({
                    "service": change.service,
                    "version": change.version,
                    "previous_version": change.previous_version,
                    "kind": change.kind,
                    "at": time(change.at),
                    "summary": change.summary,
                    "links": change.links,
                    "source": change.source,
                })
            })
            .collect();
        json!({"changes": changes})
    })
    .await?;
    Ok(Json(value))
}

pub async fn post_changes(State(state): State<ApiState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let changes = crate::receivers::changes::parse_changes(&body)
        .map_err(|error| ApiError::bad_request("invalid_change", format!("{error:#}")))?;
    let n = changes.len();
    with_core(&state, move |core| {
        let now = wall_clock_nanos();
        for change in changes {
            core.change(change, now);
        }
    })
    .await?;
    Ok(Json(json!({"status": "ok", "changes": n})))
}

/// Pages per team: received (adaptive), what static routing would have sent, and how many of
/// those were for failures caused elsewhere — the pages adaptive paging took off this team.
pub fn team_pages(incidents: &[Incident]) -> BTreeMap<String, (u64, u64, u64)> {
    let mut pages: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for incident in incidents {
        for effect in incident.effects.iter().filter(|effect| effect.action == Action::Page) {
            pages.entry(effect.team.clone()).or_default().0 += 1;
        }
        for (record, decision) in incident.symptoms.iter().zip(&incident.decisions) {
            if !record.symptom.may_page {
                continue;
            }
            let team = decision.naive.static_team.clone();
            let entry = pages.entry(team.clone()).or_default();
            entry.1 += 1;
            if !incident.paged_teams.contains(&team) {
                entry.2 += 1;
            }
        }
    }
    pages
}

/// One team as `GET /api/v1/teams` and the teams page show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TeamSummary {
    pub team: String,
    /// Pages received from Causeway.
    pub pages: u64,
    /// Pages static routing (every symptom to its owner) would have sent.
    pub static_pages: u64,
    /// Static pages for failures caused elsewhere: what adaptive paging took off this team.
    pub absorbed: u64,
    pub has_pager: bool,
    /// Channel kinds only, never their addresses.
    pub channels: Vec<&'static str>,
    pub owns: Vec<String>,
}

/// Every team known to ownership or paged at least once, by name.
pub async fn team_summaries(state: &ApiState) -> Result<Vec<TeamSummary>, ApiError> {
    let records = with_store(state, |store| store.incidents(false, 100_000)).await?;
    let incidents: Vec<Incident> =
        records.iter().filter_map(|record| serde_json::from_str(&record.body).ok()).collect();
    let pages = team_pages(&incidents);
    let ownership = &state.ownership;
    let mut names: Vec<String> = ownership.ownership.teams.iter().cloned().collect();
    names.extend(pages.keys().cloned());
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|team| {
            let (pages, static_pages, absorbed) = pages.get(&team).copied().unwrap_or_default();
            let contacts = ownership.contacts_of(&team);
            let owns = ownership
                .ownership
                .components
                .iter()
                .filter(|(_, component)| component.team.as_deref() == Some(team.as_str()))
                .map(|(name, _)| name.clone())
                .collect();
            TeamSummary {
                pages,
                static_pages,
                absorbed,
                has_pager: contacts.has_pager(),
                channels: crate::notifiers::channels(Action::Page, &contacts),
                owns,
                team,
            }
        })
        .collect())
}

pub async fn teams(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let teams = team_summaries(&state).await?;
    Ok(Json(json!({"teams": teams})))
}
