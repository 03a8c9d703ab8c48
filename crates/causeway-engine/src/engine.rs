//! The engine: a deterministic state machine from spans, symptoms, commands and time to
//! incidents and the deliveries they need.
//!
//! `serve` feeds it live and `replay` feeds it a recording; given the same inputs in the same
//! order with the same times, both get the same incidents, ids and effects.
//!
//! Inputs: [`Engine::ingest`] (spans), [`Engine::fire`] / [`Engine::clear`] (symptoms),
//! [`Engine::tick`] (time passes), [`Engine::acknowledge`], [`Engine::resolve`],
//! [`Engine::reroute`] (people). Outputs: [`Engine::take_effects`] (deliveries for the outbox)
//! and [`Engine::take_changed`] (incidents to persist).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::analysis::{self, Analysis, EvidenceQuery, SymptomKind};
use crate::brief::{Brief, BriefInput};
use crate::change::{Change, VersionTracker};
use crate::decide::{self, Cause, Decision, DecisionContext, Outcome, Thresholds};
use crate::incident::{Action, Effect, Incident, IncidentState, Symptom, SymptomRecord, SymptomSource, SymptomTarget};
use crate::journey::Journey;
use crate::model::{Dictionary, IncomingSpan, NANOS_PER_MIN, NANOS_PER_SEC, Nanos};
use crate::ownership::{Owner, OwnerSource, Ownership};
use crate::slo::{SloEvent, SloTracker};
use crate::topology::Topology;
use crate::trace::TraceView;
use crate::window::{TraceSource, TraceWindow, WindowConfig};

/// Routing settings (`routing:` in causeway.yaml).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoutingConfig {
    pub thresholds: Thresholds,
    /// Bound on traces analysed per side (bad, baseline).
    pub max_traces: usize,
    /// Shortest evidence window before a symptom's firing time.
    pub min_lookback: Nanos,
    /// Length of the baseline window before the onset.
    pub baseline: Nanos,
    /// How long a decision may wait for evidence to accumulate before it goes with what it has.
    pub evidence_wait: Nanos,
    /// Quiet time after the last symptom resolves before the incident resolves (flap guard).
    pub resolve_grace: Nanos,
    /// Resolved incidents kept in memory (the store keeps them all).
    pub keep_resolved: usize,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            thresholds: Thresholds::default(),
            max_traces: 2000,
            min_lookback: 2 * NANOS_PER_MIN,
            baseline: 15 * NANOS_PER_MIN,
            evidence_wait: 60 * NANOS_PER_SEC,
            resolve_grace: 5 * NANOS_PER_MIN,
            keep_resolved: 500,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub window: WindowConfig,
    pub routing: RoutingConfig,
    pub journeys: Vec<Journey>,
    /// Raise symptoms from the journeys' own SLOs (off when an external alerting stack is the
    /// only source of symptoms, e.g. replaying a bundle with alerts.jsonl).
    pub slo_symptoms: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            window: WindowConfig::default(),
            routing: RoutingConfig::default(),
            journeys: Vec::new(),
            slo_symptoms: true,
        }
    }
}

/// SLO tiers are evaluated this often (event time).
const SLO_EVALUATION_PERIOD: Nanos = 10 * NANOS_PER_SEC;

struct Pending {
    symptom: Symptom,
}

pub struct Engine {
    config: EngineConfig,
    window: TraceWindow,
    ownership: Ownership,
    incidents: Vec<Incident>,
    /// Active symptom id -> incident id.
    active_symptoms: BTreeMap<String, String>,
    pending: Vec<Pending>,
    effects: Vec<Effect>,
    changed: BTreeSet<String>,
    next_sequence: u64,
    id_prefix: String,
    now: Nanos,
    changes: Vec<Change>,
    versions: VersionTracker,
    slo: SloTracker,
    last_slo_evaluation: Nanos,
}

/// Changes kept in memory (oldest dropped first).
const MAX_CHANGES: usize = 10_000;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("window", &self.window).field("incidents", &self.incidents.len()).finish()
    }
}

impl Engine {
    pub fn new(config: EngineConfig, ownership: Ownership) -> Engine {
        let slo = SloTracker::new(&config.journeys);
        Engine {
            window: TraceWindow::new(config.window),
            config,
            ownership,
            incidents: Vec::new(),
            active_symptoms: BTreeMap::new(),
            pending: Vec::new(),
            effects: Vec::new(),
            changed: BTreeSet::new(),
            next_sequence: 1,
            id_prefix: "inc-".to_string(),
            now: Nanos::MIN,
            changes: Vec::new(),
            versions: VersionTracker::default(),
            slo,
            last_slo_evaluation: 0,
        }
    }

    /// The journeys' SLI counters and burn-rate state.
    pub fn slo(&self) -> &SloTracker {
        &self.slo
    }

    /// For restoring persisted SLI counters.
    pub fn slo_mut(&mut self) -> &mut SloTracker {
        &mut self.slo
    }

    /// A change posted to the API (or replayed from changes.jsonl).
    pub fn record_change(&mut self, change: Change) {
        self.now = self.now.max(change.at);
        self.changes.push(change);
        if self.changes.len() > MAX_CHANGES {
            self.changes.remove(0);
        }
    }

    /// Changes posted or detected, oldest first.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Incident ids are `<prefix><sequence>`; a restarted server continues its sequence.
    pub fn set_incident_ids(&mut self, prefix: &str, next_sequence: u64) {
        self.id_prefix = prefix.to_string();
        self.next_sequence = next_sequence;
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn window(&self) -> &TraceWindow {
        &self.window
    }

    /// Receivers convert spans against this dictionary before [`Engine::ingest`].
    pub fn dictionary_mut(&mut self) -> &mut Dictionary {
        self.window.dictionary_mut()
    }

    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    pub fn ownership_mut(&mut self) -> &mut Ownership {
        &mut self.ownership
    }

    pub fn journeys(&self) -> &[Journey] {
        &self.config.journeys
    }

    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    pub fn incident(&self, id: &str) -> Option<&Incident> {
        self.incidents.iter().find(|incident| incident.id == id)
    }

    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Deliveries requested since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Ids of incidents created or changed since the last call.
    pub fn take_changed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    /// Restores an incident read back from the store (restart). Active ones keep routing.
    pub fn restore(&mut self, incident: Incident) {
        if incident.state.is_active() {
            for record in &incident.symptoms {
                if record.resolved_at.is_none() {
                    self.active_symptoms.insert(record.symptom.id.clone(), incident.id.clone());
                }
            }
        }
        self.incidents.push(incident);
    }

    /// Spans arrived at `now`.
    pub fn ingest(&mut self, now: Nanos, spans: Vec<IncomingSpan>) {
        self.now = self.now.max(now);
        let span_refs: Vec<&crate::model::Span> = spans.iter().map(|incoming| &incoming.span).collect();
        let detected = self.versions.detect(self.window.dictionary(), &span_refs);
        for change in detected {
            self.record_change(change);
        }
        self.slo.count(self.window.dictionary(), &spans);
        self.window.insert(now, spans);
    }

    /// Time passed: evict old traces, retry decisions waiting for evidence, finish resolutions.
    pub fn tick(&mut self, now: Nanos) {
        self.now = self.now.max(now);
        self.window.advance(self.now);
        if self.config.slo_symptoms && self.now.saturating_sub(self.last_slo_evaluation) >= SLO_EVALUATION_PERIOD {
            self.last_slo_evaluation = self.now - self.now.rem_euclid(SLO_EVALUATION_PERIOD);
            for event in self.slo.evaluate(self.now) {
                match event {
                    SloEvent::Fire(symptom) => self.fire(symptom),
                    SloEvent::Clear(id) => self.clear(&id, self.now),
                }
            }
        }
        self.process_pending();
        let grace = self.config.routing.resolve_grace;
        let now = self.now;
        let mut resolved = Vec::new();
        for incident in &mut self.incidents {
            if incident.state == IncidentState::Resolving
                && incident.resolving_since.is_some_and(|since| since.saturating_add(grace) <= now)
            {
                resolved.push(incident.id.clone());
            }
        }
        for id in resolved {
            self.finish_resolution(&id, now, "every symptom resolved and stayed quiet for the grace period");
        }
        self.forget_old_incidents();
    }

    /// A symptom fires. The same id firing again while active is ignored (re-sends, HA pairs).
    pub fn fire(&mut self, symptom: Symptom) {
        self.now = self.now.max(symptom.fired_at);
        if self.active_symptoms.contains_key(&symptom.id) || self.pending.iter().any(|p| p.symptom.id == symptom.id) {
            return;
        }
        self.pending.push(Pending { symptom });
        self.process_pending();
    }

    /// A symptom resolved at `at`.
    pub fn clear(&mut self, symptom_id: &str, at: Nanos) {
        self.now = self.now.max(at);
        if let Some(index) = self.pending.iter().position(|pending| pending.symptom.id == symptom_id) {
            // It resolved before evidence was in: decide now with what there is, then resolve.
            let pending = self.pending.remove(index);
            self.decide_and_apply(pending.symptom);
        }
        let Some(incident_id) = self.active_symptoms.remove(symptom_id) else {
            return;
        };
        let Some(incident) = self.incidents.iter_mut().find(|incident| incident.id == incident_id) else {
            return;
        };
        for record in &mut incident.symptoms {
            if record.symptom.id == symptom_id && record.resolved_at.is_none() {
                record.resolved_at = Some(at);
            }
        }
        incident.log(at, "symptom_resolved", format!("symptom {symptom_id} resolved"));
        if !incident.has_active_symptom() && matches!(incident.state, IncidentState::Open | IncidentState::Acknowledged)
        {
            incident.state = IncidentState::Resolving;
            incident.resolving_since = Some(at);
            incident.log(
                at,
                "resolving",
                "every symptom resolved; resolving after the grace period unless one returns".into(),
            );
        }
        self.changed.insert(incident_id);
    }

    pub fn acknowledge(&mut self, incident_id: &str, by: &str, at: Nanos) -> Result<(), CommandError> {
        self.now = self.now.max(at);
        let incident = self.incident_mut(incident_id)?;
        if incident.state == IncidentState::Resolved {
            return Err(CommandError::Resolved(incident_id.to_string()));
        }
        incident.state = IncidentState::Acknowledged;
        incident.acknowledged_at = Some(at);
        incident.log(at, "acknowledged", format!("acknowledged by {by}"));
        let teams = incident.paged_teams.clone();
        for team in teams {
            self.emit(incident_id, &team, Action::Acknowledge, at, format!("acknowledged by {by}"));
        }
        self.changed.insert(incident_id.to_string());
        Ok(())
    }

    pub fn resolve(&mut self, incident_id: &str, by: &str, at: Nanos) -> Result<(), CommandError> {
        self.now = self.now.max(at);
        let incident = self.incident_mut(incident_id)?;
        if incident.state == IncidentState::Resolved {
            return Err(CommandError::Resolved(incident_id.to_string()));
        }
        self.finish_resolution(incident_id, at, &format!("resolved by {by}"));
        Ok(())
    }

    /// "This was team X's": pages X, releases the teams paged before, and remembers the
    /// correction for the cause components and their failure kinds.
    pub fn reroute(
        &mut self,
        incident_id: &str,
        team: &str,
        reason: &str,
        by: &str,
        at: Nanos,
    ) -> Result<(), CommandError> {
        self.now = self.now.max(at);
        let team = team.trim();
        if team.is_empty() {
            return Err(CommandError::Invalid("team must not be empty".into()));
        }
        let incident = self.incident_mut(incident_id)?;
        if incident.state == IncidentState::Resolved {
            return Err(CommandError::Resolved(incident_id.to_string()));
        }
        let previous = std::mem::take(&mut incident.paged_teams);
        let paging = incident.paging;
        let causes: Vec<(String, String)> = incident
            .decision()
            .causes
            .iter()
            .map(|cause| (cause.component.clone(), cause.kind.as_str().to_string()))
            .collect();
        incident.paged_teams = vec![team.to_string()];
        incident.reroutes.push(crate::incident::Reroute {
            at,
            from: previous.clone(),
            to: team.to_string(),
            reason: reason.to_string(),
        });
        incident.log(at, "rerouted", format!("rerouted by {by} from {} to {team}: {reason}", previous.join(", ")));
        for old in previous.iter().filter(|old| old.as_str() != team) {
            self.emit(incident_id, old, Action::Resolve, at, format!("rerouted to {team}: {reason}"));
        }
        let action = if paging { Action::Page } else { Action::Notify };
        self.emit(incident_id, team, action, at, format!("rerouted to you by {by}: {reason}"));
        for (component, signature) in causes {
            self.ownership.correct(&component, &signature, team);
        }
        self.changed.insert(incident_id.to_string());
        Ok(())
    }

    /// Attaches the optional AI narration to an incident's brief and tells the paged teams.
    pub fn attach_narration(
        &mut self,
        incident_id: &str,
        narration: crate::brief::Narration,
        at: Nanos,
    ) -> Result<(), CommandError> {
        self.now = self.now.max(at);
        let incident = self.incident_mut(incident_id)?;
        let Some(brief) = incident.brief.as_mut() else {
            return Err(CommandError::Invalid(format!("incident {incident_id} has no brief to narrate")));
        };
        let text = narration.text.clone();
        brief.narration = Some(narration);
        incident.log(at, "narration", "AI-written summary attached (it cites the brief's evidence)".to_string());
        let teams = incident.paged_teams.clone();
        for team in teams {
            self.emit(
                incident_id,
                &team,
                Action::Update,
                at,
                format!("AI-written summary (cites the brief's evidence): {text}"),
            );
        }
        self.changed.insert(incident_id.to_string());
        Ok(())
    }

    /// Analyses a symptom without applying anything (API "what would happen", tests, bench).
    pub fn analyse(&self, symptom: &Symptom) -> (Option<Analysis>, Decision) {
        let plan = self.plan(symptom);
        let (analysis, decision) = self.evaluate(symptom, &plan);
        (analysis, decision)
    }

    /// The brief a decision would get, without applying anything (benchmarks, previews).
    pub fn preview_brief(&self, symptom: &Symptom, analysis: Option<&Analysis>, decision: &Decision) -> Brief {
        let plan = self.plan(symptom);
        self.brief(symptom, &plan, analysis, decision)
    }

    fn incident_mut(&mut self, incident_id: &str) -> Result<&mut Incident, CommandError> {
        self.incidents
            .iter_mut()
            .find(|incident| incident.id == incident_id)
            .ok_or_else(|| CommandError::NotFound(incident_id.to_string()))
    }

    fn emit(&mut self, incident_id: &str, team: &str, action: Action, at: Nanos, note: String) {
        let effect = Effect { incident_id: incident_id.to_string(), team: team.to_string(), action, at, note };
        if let Some(incident) = self.incidents.iter_mut().find(|incident| incident.id == incident_id) {
            incident.effects.push(effect.clone());
        }
        self.effects.push(effect);
    }

    fn finish_resolution(&mut self, incident_id: &str, at: Nanos, why: &str) {
        let Some(incident) = self.incidents.iter_mut().find(|incident| incident.id == incident_id) else {
            return;
        };
        incident.state = IncidentState::Resolved;
        incident.resolved_at = Some(at);
        incident.resolving_since = None;
        incident.log(at, "resolved", why.to_string());
        let symptom_ids: Vec<String> = incident.symptoms.iter().map(|record| record.symptom.id.clone()).collect();
        let mut teams = incident.paged_teams.clone();
        for team in &incident.notified_teams {
            if !teams.contains(team) {
                teams.push(team.clone());
            }
        }
        for id in symptom_ids {
            if self.active_symptoms.get(&id).map(String::as_str) == Some(incident_id) {
                self.active_symptoms.remove(&id);
            }
        }
        for team in teams {
            self.emit(incident_id, &team, Action::Resolve, at, why.to_string());
        }
        self.changed.insert(incident_id.to_string());
    }

    fn forget_old_incidents(&mut self) {
        let keep = self.config.routing.keep_resolved;
        let n_resolved = self.incidents.iter().filter(|incident| incident.state == IncidentState::Resolved).count();
        if n_resolved <= keep {
            return;
        }
        let mut to_drop = n_resolved - keep;
        self.incidents.retain(|incident| {
            if to_drop > 0 && incident.state == IncidentState::Resolved {
                to_drop -= 1;
                false
            } else {
                true
            }
        });
    }

    fn process_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for item in pending {
            let plan = self.plan(&item.symptom);
            let waited = self.now.saturating_sub(item.symptom.fired_at);
            if plan.query.is_some()
                && waited < self.config.routing.evidence_wait
                && !self.has_enough_evidence(&item.symptom, &plan)
            {
                self.pending.push(item);
                continue;
            }
            self.decide_and_apply(item.symptom);
        }
    }

    fn has_enough_evidence(&self, symptom: &Symptom, plan: &Plan) -> bool {
        let (analysis, _) = self.evaluate(symptom, plan);
        analysis.is_some_and(|analysis| analysis.n_bad >= self.config.routing.thresholds.min_traces)
    }

    fn decide_and_apply(&mut self, symptom: Symptom) {
        let plan = self.plan(&symptom);
        let (analysis, decision) = self.evaluate(&symptom, &plan);
        let kind = analysis.as_ref().and(decision.symptom_kind);
        let brief = self.brief(&symptom, &plan, analysis.as_ref(), &decision);
        self.apply(symptom, decision, kind, &plan, brief);
    }

    /// The investigation brief for a decision (SPEC §4.7).
    fn brief(&self, symptom: &Symptom, plan: &Plan, analysis: Option<&Analysis>, decision: &Decision) -> Brief {
        let journey =
            symptom.journey().and_then(|name| self.config.journeys.iter().find(|journey| journey.name == name));
        let (onset, baseline, entry) = match &plan.query {
            Some(query) => (
                query.from,
                (query.baseline_from, query.baseline_to),
                Some((query.entry_service.clone(), query.entry_operation.clone())),
            ),
            None => (symptom.fired_at, (symptom.fired_at, symptom.fired_at), None),
        };
        crate::brief::build(&BriefInput {
            source: &self.window,
            analysis,
            decision,
            journey,
            journeys: &self.config.journeys,
            slo: &self.slo,
            changes: &self.changes,
            past: &self.incidents,
            ownership: &self.ownership,
            onset,
            baseline,
            entry,
            now: self.now.max(symptom.fired_at),
        })
    }

    /// What a symptom is about: where to look, and who owns the symptom itself.
    fn plan(&self, symptom: &Symptom) -> Plan {
        let routing = &self.config.routing;
        let lookback = match &symptom.source {
            SymptomSource::Slo { short_window, .. } => (*short_window).max(routing.min_lookback),
            _ => routing.min_lookback,
        };
        let from = symptom.fired_at - lookback;
        let to = self.now.max(symptom.fired_at);
        let entry_service = match &symptom.target {
            SymptomTarget::Journey { journey } => {
                self.config.journeys.iter().find(|j| &j.name == journey).map(|j| j.entry_service.clone())
            }
            SymptomTarget::Service { service, .. } => Some(service.clone()),
            SymptomTarget::Labels => None,
        };
        let (baseline_from, baseline_to) = self.baseline_window(from, entry_service.as_deref());
        let (query_target, owner, entry) = match &symptom.target {
            SymptomTarget::Journey { journey } => match self.config.journeys.iter().find(|j| &j.name == journey) {
                Some(journey) => {
                    let owner = match &journey.owner {
                        Some(team) => Owner { team: team.clone(), source: OwnerSource::JourneyOwner },
                        None => self
                            .ownership
                            .owner(&journey.entry_service, "error", None)
                            .unwrap_or_else(|| self.ownership.default_owner()),
                    };
                    (
                        Some((
                            journey.entry_service.clone(),
                            Some(journey.entry_operation.clone()),
                            journey.latency_threshold(),
                        )),
                        owner,
                        Some(format!("{} {}", journey.entry_service, journey.entry_operation)),
                    )
                }
                None => (None, self.label_owner(symptom), None),
            },
            SymptomTarget::Service { service, operation } => (
                Some((service.clone(), operation.clone(), None)),
                self.label_owner(symptom),
                Some(match operation {
                    Some(operation) => format!("{service} {operation}"),
                    None => service.clone(),
                }),
            ),
            SymptomTarget::Labels => (None, self.label_owner(symptom), None),
        };
        let query = query_target.map(|(entry_service, entry_operation, latency_threshold)| EvidenceQuery {
            entry_service,
            entry_operation,
            kind: symptom.kind.unwrap_or(SymptomKind::Error),
            from,
            to,
            baseline_from,
            baseline_to,
            latency_threshold,
            max_traces: routing.max_traces,
        });
        Plan { query, owner, entry }
    }

    /// The baseline ends where the evidence window starts, moved earlier past any incident
    /// that was open then (a baseline must be healthy).
    fn baseline_window(&self, onset: Nanos, entry_service: Option<&str>) -> (Nanos, Nanos) {
        let length = self.config.routing.baseline;
        // A gap before the evidence window: symptoms fire some time after the real onset.
        let mut end = onset - self.config.routing.min_lookback;
        // Only incidents that touched this entry spoil its baseline.
        let touches = |incident: &&Incident| {
            entry_service.is_some_and(|service| {
                incident.decisions.iter().any(|decision| {
                    decision.entry.as_deref().is_some_and(|entry| entry.split(' ').next() == Some(service))
                        || decision.causal_edges.iter().any(|edge| edge.from == service || edge.to == service)
                })
            })
        };
        for incident in self.incidents.iter().filter(touches) {
            let open_until = incident.resolved_at.unwrap_or(Nanos::MAX);
            if incident.opened_at < end && open_until > end - length {
                end = end.min(incident.opened_at - self.config.routing.min_lookback);
            }
        }
        (end - length, end)
    }

    /// SPEC §4.6: `team` label, then the owner of the `service` label, then `default_team`.
    fn label_owner(&self, symptom: &Symptom) -> Owner {
        if let Some(team) = &symptom.team_label {
            return Owner { team: team.clone(), source: OwnerSource::AlertLabel };
        }
        if let Some(service) = symptom.service() {
            if let Some(owner) =
                self.ownership.owner(service, "error", self.resource_teams().get(service).map(String::as_str))
            {
                return Owner { team: owner.team, source: OwnerSource::AlertLabel };
            }
        }
        self.ownership.default_owner()
    }

    fn resource_teams(&self) -> BTreeMap<String, String> {
        let dictionary = self.window.dictionary();
        dictionary
            .resources
            .iter()
            .filter(|(_, resource)| resource.team.is_some())
            .map(|(_, resource)| {
                (dictionary.str(resource.service).to_string(), dictionary.str(resource.team).to_string())
            })
            .collect()
    }

    fn evaluate(&self, symptom: &Symptom, plan: &Plan) -> (Option<Analysis>, Decision) {
        let resource_teams = self.resource_teams();
        let context = |kind: Option<SymptomKind>| DecisionContext {
            at: self.now.max(symptom.fired_at),
            ownership: &self.ownership,
            resource_teams: &resource_teams,
            symptom_owner: plan.owner.clone(),
            entry: plan.entry.clone(),
            symptom_kind: kind,
            thresholds: self.config.routing.thresholds,
        };
        let Some(query) = &plan.query else {
            return (None, label_decision(&context(symptom.kind), "the alert names no journey or service with traces"));
        };
        let run = |kind: SymptomKind| {
            let mut query = query.clone();
            query.kind = kind;
            analysis::analyze(&self.window, &query)
        };
        let (analysis, kind) = match symptom.kind {
            Some(kind) => (run(kind), kind),
            None => {
                // Error or latency unknown: use what the traces show.
                let errors = run(SymptomKind::Error);
                let min = self.config.routing.thresholds.min_traces;
                if errors.n_bad >= min && errors.explained >= min as f64 * 0.5 {
                    (errors, SymptomKind::Error)
                } else {
                    let latency = run(SymptomKind::Latency);
                    if latency.explained > errors.explained {
                        (latency, SymptomKind::Latency)
                    } else {
                        (errors, SymptomKind::Error)
                    }
                }
            }
        };
        if analysis.n_total == 0 {
            let reason = format!("no traces of {} in the window", plan.entry.as_deref().unwrap_or("the target"));
            return (Some(analysis), label_decision(&context(Some(kind)), &reason));
        }
        let mut decision = decide::decide(&analysis, &context(Some(kind)));
        // Adaptive paging pages on what users feel: a service's own error alert whose failures
        // never reach the user (callers retry or fall back) becomes a notification.
        let min = self.config.routing.thresholds.min_traces;
        if matches!(symptom.target, SymptomTarget::Service { .. })
            && kind == SymptomKind::Error
            && !self.config.journeys.is_empty()
            && analysis.n_bad_sampled >= min
            && analysis.user_visible * 10 < analysis.n_bad_sampled
        {
            decision.absorbed = true;
            decision.reasons.push(format!(
                "callers absorb these failures: {} of {} failing requests reached a user; notifying instead of paging",
                analysis.user_visible, analysis.n_bad_sampled
            ));
        }
        (Some(analysis), decision)
    }

    fn apply(
        &mut self,
        symptom: Symptom,
        decision: Decision,
        analysed_kind: Option<SymptomKind>,
        plan: &Plan,
        brief: Brief,
    ) {
        let at = self.now.max(symptom.fired_at);
        let cause_components: Vec<String> = decision.causes.iter().map(|cause| cause.component.clone()).collect();
        let record = SymptomRecord { symptom: symptom.clone(), resolved_at: None, analysed_kind };
        if let Some(incident_id) = self.find_incident_to_join(&symptom, &decision, &cause_components) {
            self.join(&incident_id, record, decision, &plan.owner, at, brief);
            return;
        }
        let id = format!("{}{}", self.id_prefix, self.next_sequence);
        self.next_sequence += 1;
        let paging = symptom.may_page && !decision.absorbed;
        let mut incident = Incident {
            id: id.clone(),
            state: IncidentState::Open,
            opened_at: at,
            acknowledged_at: None,
            resolving_since: None,
            resolved_at: None,
            cause_components,
            symptoms: vec![record],
            decisions: vec![decision.clone()],
            paged_teams: Vec::new(),
            notified_teams: Vec::new(),
            paging,
            effects: Vec::new(),
            reroutes: Vec::new(),
            timeline: Vec::new(),
            brief: Some(brief),
        };
        incident.log(symptom.fired_at, "symptom", format!("symptom fired: {}", symptom.summary));
        incident.log(at, "decision", decision.reasons.join("; "));
        self.active_symptoms.insert(symptom.id.clone(), id.clone());
        self.incidents.push(incident);
        self.changed.insert(id.clone());
        let what = describe_symptom(&symptom);
        for team in &decision.page {
            let (action, note) = if paging {
                (Action::Page, format!("{what}: {}", summary_line(&decision)))
            } else {
                (
                    Action::Notify,
                    format!("(not paging: severity below paging_severities) {what}: {}", summary_line(&decision)),
                )
            };
            self.record_team(&id, team, action == Action::Page);
            self.emit(&id, team, action, at, note);
        }
        for team in &decision.notify {
            self.record_team(&id, team, false);
            let paged = decision.page.join(" and ");
            let verb = if decision.page.len() > 1 { "are" } else { "is" };
            let how = if paging { "paged" } else { "notified" };
            self.emit(&id, team, Action::Notify, at, format!("{paged} {verb} {how} for the {what} you see"));
        }
    }

    fn record_team(&mut self, incident_id: &str, team: &str, paged: bool) {
        if let Some(incident) = self.incidents.iter_mut().find(|incident| incident.id == incident_id) {
            let list = if paged { &mut incident.paged_teams } else { &mut incident.notified_teams };
            if !list.iter().any(|existing| existing == team) {
                list.push(team.to_string());
            }
        }
    }

    fn find_incident_to_join(&self, symptom: &Symptom, decision: &Decision, causes: &[String]) -> Option<String> {
        let active = self.incidents.iter().filter(|incident| incident.state.is_active());
        if !causes.is_empty() {
            // The incident of the top cause first, then any incident sharing a cause.
            let holds = |component: &String| {
                self.incidents
                    .iter()
                    .filter(|incident| incident.state.is_active())
                    .find(|incident| incident.cause_components.contains(component))
            };
            if let Some(incident) = causes.iter().find_map(holds) {
                return Some(incident.id.clone());
            }
        }
        // Thin evidence that points at the cause of an open incident joins it.
        if decision.outcome == Outcome::InsufficientEvidence {
            if let Some(top) = decision.candidates.first().filter(|top| top.score >= 0.5) {
                if let Some(incident) = self
                    .incidents
                    .iter()
                    .filter(|incident| incident.state.is_active())
                    .find(|incident| incident.cause_components.contains(&top.component))
                {
                    return Some(incident.id.clone());
                }
            }
        }
        let same_target =
            |incident: &Incident| incident.symptoms.iter().any(|record| record.symptom.target == symptom.target);
        if decision.outcome == Outcome::Labels {
            // SPEC §4.6: an alert no trace explains still folds into an open incident when its
            // service is that incident's cause or lies on its causal chain.
            let service = symptom.service().map(str::to_string);
            let related = |incident: &Incident| match &service {
                Some(service) => self.related_to_causes(service, incident),
                None => false,
            };
            return active
                .filter(|incident| related(incident) || same_target(incident))
                .map(|incident| incident.id.clone())
                .next();
        }
        if causes.is_empty() {
            return active.filter(|incident| same_target(incident)).map(|incident| incident.id.clone()).next();
        }
        None
    }

    /// Is `service` an incident's cause, on its causal chain, or a dependency of its cause?
    fn related_to_causes(&self, service: &str, incident: &Incident) -> bool {
        if incident.cause_components.iter().any(|cause| cause == service) {
            return true;
        }
        if incident
            .decisions
            .iter()
            .any(|decision| decision.causal_edges.iter().any(|edge| edge.from == service || edge.to == service))
        {
            return true;
        }
        for cause in &incident.cause_components {
            if self
                .ownership
                .component(cause)
                .is_some_and(|component| component.depends_on.iter().any(|d| d == service))
            {
                return true;
            }
        }
        // The dependency graph learned from traces: is the service called by a cause?
        let dictionary = self.window.dictionary();
        let (Some(service_symbol), causes) = (
            dictionary.strings.get(service),
            incident.cause_components.iter().filter_map(|cause| dictionary.strings.get(cause)).collect::<Vec<_>>(),
        ) else {
            return false;
        };
        if causes.is_empty() {
            return false;
        }
        let mut topology = Topology::default();
        for (_, spans) in self.window.traces() {
            topology.observe(&TraceView::new(spans, self.window.dictionary()));
        }
        causes.iter().any(|cause| topology.edges.contains_key(&(*cause, service_symbol)))
    }

    fn join(
        &mut self,
        incident_id: &str,
        record: SymptomRecord,
        decision: Decision,
        owner: &Owner,
        at: Nanos,
        brief: Brief,
    ) {
        // Causes other open incidents already stand for: paged there, not again here.
        let elsewhere: BTreeMap<String, String> = self
            .incidents
            .iter()
            .filter(|incident| incident.id != incident_id && incident.state.is_active())
            .flat_map(|incident| {
                incident.cause_components.iter().map(|component| (component.clone(), incident.id.clone()))
            })
            .collect();
        // More evidence can show a second cause owned by another team (SPEC §4.4 two causes):
        // it becomes a cause of this incident and its team is paged too, once per cause.
        let new_causes: Vec<Cause> = if decision.outcome == Outcome::TwoCauses && !decision.absorbed {
            let current = self
                .incidents
                .iter()
                .find(|incident| incident.id == incident_id)
                .map(|incident| incident.cause_components.clone())
                .unwrap_or_default();
            decision
                .causes
                .iter()
                .filter(|cause| !current.contains(&cause.component) && !elsewhere.contains_key(&cause.component))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let Some(incident) = self.incidents.iter_mut().find(|incident| incident.id == incident_id) else {
            return;
        };
        let symptom = record.symptom.clone();
        let what = describe_symptom(&symptom);
        let absorbed = decision.absorbed;
        let paged_elsewhere: Vec<String> = decision
            .causes
            .iter()
            .filter_map(|cause| {
                elsewhere.get(&cause.component).map(|other| {
                    format!("{} is the cause of {other}, whose team is paged there: not paged again", cause.component)
                })
            })
            .collect();
        incident.symptoms.push(record);
        incident.decisions.push(decision);
        for note in paged_elsewhere {
            // Said once: later symptoms with the same evidence would repeat it.
            if !incident.timeline.iter().any(|event| event.text == note) {
                incident.log(at, "decision", note);
            }
        }
        if !new_causes.is_empty() {
            // The brief follows the decision that names every cause.
            incident.brief = Some(brief);
        }
        for cause in &new_causes {
            incident.cause_components.push(cause.component.clone());
            incident.log(
                at,
                "decision",
                format!(
                    "second cause found: {} ({}, {:.0}% of bad traces), owner {}",
                    cause.component,
                    cause.kind.as_str(),
                    cause.share * 100.0,
                    cause.team
                ),
            );
        }
        incident.log(
            symptom.fired_at,
            "symptom",
            format!("symptom joined: {} (same cause, no new page)", symptom.summary),
        );
        let mut reopened = false;
        if incident.state == IncidentState::Resolving {
            incident.state =
                if incident.acknowledged_at.is_some() { IncidentState::Acknowledged } else { IncidentState::Open };
            incident.resolving_since = None;
            incident.log(at, "reopened", "a symptom returned within the grace period: reopened, not re-paged".into());
            reopened = true;
        }
        let start_paging = symptom.may_page && !absorbed && !incident.paging;
        if start_paging {
            incident.paging = true;
        }
        let paged = incident.paged_teams.clone();
        let first_decision_pages = incident.decision().page.clone();
        let notified = incident.notified_teams.clone();
        self.active_symptoms.insert(symptom.id.clone(), incident_id.to_string());
        self.changed.insert(incident_id.to_string());
        if start_paging {
            // A notice became a page: a paging symptom joined.
            for team in first_decision_pages {
                self.record_team(incident_id, &team, true);
                self.emit(
                    incident_id,
                    &team,
                    Action::Page,
                    at,
                    format!("{what}: paging now (a paging symptom joined)"),
                );
            }
        } else {
            for team in &paged {
                let note = if reopened {
                    format!("{what} returned (reopened)")
                } else {
                    format!("{what} joined this incident")
                };
                self.emit(incident_id, team, Action::Update, at, note);
            }
        }
        let paging = self.incident(incident_id).is_some_and(|incident| incident.paging);
        for cause in &new_causes {
            let already = self.incident(incident_id).is_some_and(|incident| {
                incident.paged_teams.contains(&cause.team) || (!paging && incident.notified_teams.contains(&cause.team))
            });
            if already {
                continue;
            }
            let note = format!(
                "{what}: {} is a second cause ({}, {:.0}% of bad traces); {} already on the first",
                cause.component,
                cause.kind.as_str(),
                cause.share * 100.0,
                if paged.is_empty() { "nobody".to_string() } else { paged.join(" and ") }
            );
            self.record_team(incident_id, &cause.team, paging);
            self.emit(incident_id, &cause.team, if paging { Action::Page } else { Action::Notify }, at, note);
        }
        let paged_now = self.incident(incident_id).map(|incident| incident.paged_teams.clone()).unwrap_or_default();
        if !paged_now.contains(&owner.team) && !notified.contains(&owner.team) {
            self.record_team(incident_id, &owner.team, false);
            self.emit(
                incident_id,
                &owner.team,
                Action::Notify,
                at,
                format!("{} is on the {what} you see", paged_now.join(" and ")),
            );
        }
    }
}

struct Plan {
    query: Option<EvidenceQuery>,
    owner: Owner,
    entry: Option<String>,
}

/// A command from a person could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    NotFound(String),
    Resolved(String),
    Invalid(String),
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::NotFound(id) => write!(f, "no incident {id}"),
            CommandError::Resolved(id) => write!(f, "incident {id} is already resolved"),
            CommandError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CommandError {}

fn label_decision(context: &DecisionContext<'_>, why: &str) -> Decision {
    let owner = &context.symptom_owner;
    Decision {
        at: context.at,
        outcome: Outcome::Labels,
        symptom_kind: context.symptom_kind,
        entry: context.entry.clone(),
        causes: Vec::new(),
        page: vec![owner.team.clone()],
        notify: Vec::new(),
        confidence: 0.0,
        candidates: Vec::new(),
        reasons: vec![format!("{why}: routed by labels to {} ({})", owner.team, owner.source.describe())],
        thresholds: context.thresholds,
        n_total: 0,
        n_bad: 0,
        n_baseline: 0,
        causal_edges: Vec::new(),
        naive: crate::decide::NaiveTeams { static_team: owner.team.clone(), deepest_error: None, slowest_span: None },
        absorbed: false,
    }
}

fn describe_symptom(symptom: &Symptom) -> String {
    let kind = match symptom.kind {
        Some(SymptomKind::Error) => "errors",
        Some(SymptomKind::Latency) => "latency",
        None => "symptom",
    };
    match &symptom.target {
        SymptomTarget::Journey { journey } => format!("{journey} {kind}"),
        SymptomTarget::Service { service, .. } => format!("{service} {kind}"),
        SymptomTarget::Labels => symptom.summary.clone(),
    }
}

fn summary_line(decision: &Decision) -> String {
    match decision.causes.as_slice() {
        [] => decision.reasons.last().cloned().unwrap_or_default(),
        causes => causes
            .iter()
            .map(|cause| {
                format!("{} ({}, {:.0}% of bad traces)", cause.component, cause.kind.as_str(), cause.share * 100.0)
            })
            .collect::<Vec<_>>()
            .join(" and "),
    }
}
