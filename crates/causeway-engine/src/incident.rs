//! Incidents (SPEC §4.5): one per cause, however many symptoms point at it.
//!
//! An incident's lifecycle: `open` -> (`acknowledged`) -> `resolving` (every symptom resolved;
//! the resolve waits out the grace period so a flapping symptom reopens instead of re-paging)
//! -> `resolved`. People can acknowledge, resolve and reroute at any time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::SymptomKind;
use crate::decide::Decision;
use crate::model::Nanos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Acknowledged,
    /// Every symptom resolved; the resolve is sent once the grace period passes quietly.
    Resolving,
    Resolved,
}

impl IncidentState {
    pub fn is_active(self) -> bool {
        !matches!(self, IncidentState::Resolved)
    }
}

/// What a symptom is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum SymptomTarget {
    Journey {
        journey: String,
    },
    Service {
        service: String,
        operation: Option<String>,
    },
    /// Nothing to analyse: routed by labels (SPEC §4.6).
    Labels,
}

/// Where a symptom came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum SymptomSource {
    /// The journey's own burn-rate alert.
    Slo { tier: String, long_window: Nanos, short_window: Nanos, burn_long: f64, burn_short: f64, threshold: f64 },
    /// An external alert (Alertmanager, Prometheus).
    Alert { alertname: String, labels: BTreeMap<String, String> },
    /// Injected directly (tests, scripted replays).
    Manual,
}

/// A symptom as the engine receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Symptom {
    /// Stable identity: the same id firing again is the same symptom (idempotence).
    pub id: String,
    pub target: SymptomTarget,
    /// `None`: not known; both analyses run and the traces decide.
    pub kind: Option<SymptomKind>,
    /// Severity allows paging (`paging_severities`); otherwise a notification only.
    pub may_page: bool,
    pub fired_at: Nanos,
    pub source: SymptomSource,
    /// The alert's `team` label, when present (label routing).
    pub team_label: Option<String>,
    pub summary: String,
}

impl Symptom {
    pub fn journey(&self) -> Option<&str> {
        match &self.target {
            SymptomTarget::Journey { journey } => Some(journey),
            _ => None,
        }
    }

    pub fn service(&self) -> Option<&str> {
        match &self.target {
            SymptomTarget::Service { service, .. } => Some(service),
            _ => None,
        }
    }
}

/// A symptom attached to an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SymptomRecord {
    pub symptom: Symptom,
    pub resolved_at: Option<Nanos>,
    /// The kind the analysis settled on.
    pub analysed_kind: Option<SymptomKind>,
}

/// One delivery the engine asks for. The binary writes these into the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub incident_id: String,
    pub team: String,
    pub action: Action,
    pub at: Nanos,
    pub note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Ring the team's pager.
    Page,
    /// Tell a team (chat/webhook only, never a pager): "payments is on the checkout errors".
    Notify,
    /// A further symptom joined: update what the team already has, no new page.
    Update,
    Acknowledge,
    Resolve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Page => "page",
            Action::Notify => "notify",
            Action::Update => "update",
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub at: Nanos,
    pub kind: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reroute {
    pub at: Nanos,
    pub from: Vec<String>,
    pub to: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub state: IncidentState,
    pub opened_at: Nanos,
    pub acknowledged_at: Option<Nanos>,
    pub resolving_since: Option<Nanos>,
    pub resolved_at: Option<Nanos>,
    /// Cause components (one, or two for independent causes); empty when nothing was found.
    pub cause_components: Vec<String>,
    pub symptoms: Vec<SymptomRecord>,
    /// The decision that opened it, then the decisions of symptoms that joined.
    pub decisions: Vec<Decision>,
    /// Teams whose pager rang for it (kept current through reroutes).
    pub paged_teams: Vec<String>,
    pub notified_teams: Vec<String>,
    /// Whether any symptom allowed paging (otherwise the incident is a notice).
    pub paging: bool,
    pub effects: Vec<Effect>,
    pub reroutes: Vec<Reroute>,
    pub timeline: Vec<TimelineEvent>,
    /// The investigation brief, built when the incident opened.
    #[serde(default)]
    pub brief: Option<crate::brief::Brief>,
}

impl Incident {
    pub fn decision(&self) -> &Decision {
        &self.decisions[0]
    }

    pub fn journeys(&self) -> Vec<&str> {
        let mut journeys: Vec<&str> = self.symptoms.iter().filter_map(|record| record.symptom.journey()).collect();
        journeys.dedup();
        journeys
    }

    pub fn has_active_symptom(&self) -> bool {
        self.symptoms.iter().any(|record| record.resolved_at.is_none())
    }

    pub(crate) fn log(&mut self, at: Nanos, kind: &str, text: String) {
        self.timeline.push(TimelineEvent { at, kind: kind.to_string(), text });
    }
}
