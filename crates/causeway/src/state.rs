//! The live state around the engine: what `serve` adds to the pure engine.
//!
//! [`Core`] owns the engine and, after every step that can change incidents, *flushes*: the
//! engine's effects become outbox rows, written in one transaction with the incident snapshots
//! and decisions ([`causeway_store::Store::record`]) before the delivery worker is woken —
//! decided pages survive a crash. It also persists SLI counters and changes, expires alerts
//! posted to `/api/v2/alerts` that are not re-sent, and restores all of it at start-up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use causeway_engine::change::Change;
use causeway_engine::incident::Incident;
use causeway_engine::slo::MinuteCounts;
use causeway_engine::{CommandError, Engine, IncomingSpan, NANOS_PER_MIN, Nanos};
use causeway_store::{Batch, Correction, IncidentEvent, IncidentRecord, SliMinute};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::notifiers::worker::{SharedStore, lock};
use crate::ownership::LoadedOwnership;
use crate::receivers::alertmanager::{AlertEvent, AlertMapping};
use crate::receivers::otlp::{self, ConvertOptions};
use crate::record::Recorder;

/// Where decisions go: the store (outbox) and the worker to wake.
#[derive(Clone)]
pub struct Outbox {
    pub store: SharedStore,
    pub ownership: Arc<LoadedOwnership>,
    /// Base URL of the UI, for incident links in pages.
    pub base_url: String,
    pub wake: Arc<tokio::sync::Notify>,
}

/// A person's command.
#[derive(Debug, Clone)]
pub enum Command {
    Acknowledge { incident: String, by: String },
    Resolve { incident: String, by: String },
    Reroute { incident: String, team: String, reason: String, by: String },
}

pub struct Core {
    pub engine: Engine,
    convert: ConvertOptions,
    outbox: Option<Outbox>,
    mapping: AlertMapping,
    /// Alerts posted to /api/v2/alerts: they resolve at `endsAt` unless re-sent.
    v2_expiry: BTreeMap<String, Nanos>,
    persisted_decisions: HashMap<String, usize>,
    persisted_changes: usize,
    last_sli_save: Nanos,
    recorder: Option<Recorder>,
    narrator: Option<tokio::sync::mpsc::UnboundedSender<crate::assistant::Job>>,
    narrated: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("engine", &self.engine).finish()
    }
}

impl Core {
    pub fn new(engine: Engine, convert: ConvertOptions, mapping: AlertMapping) -> Core {
        Core {
            engine,
            convert,
            outbox: None,
            mapping,
            v2_expiry: BTreeMap::new(),
            persisted_decisions: HashMap::new(),
            persisted_changes: 0,
            last_sli_save: Nanos::MIN,
            recorder: None,
            narrator: None,
            narrated: std::collections::HashSet::new(),
        }
    }

    /// Asks the narrator for a summary of each new incident's brief (after its page is queued).
    pub fn with_narrator(mut self, jobs: tokio::sync::mpsc::UnboundedSender<crate::assistant::Job>) -> Core {
        self.narrator = Some(jobs);
        self
    }

    /// An accepted AI narration arrives: attach it and update the paged teams.
    pub fn narrate(&mut self, incident: &str, narration: causeway_engine::brief::Narration, now: Nanos) {
        if let Err(error) = self.engine.attach_narration(incident, narration, now) {
            tracing::warn!(%incident, %error, "narration not attached");
        }
        self.flush(now);
    }

    pub fn with_outbox(mut self, outbox: Outbox) -> Core {
        self.outbox = Some(outbox);
        self
    }

    pub fn with_recorder(mut self, recorder: Recorder) -> Core {
        self.recorder = Some(recorder);
        self
    }

    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// Restores incidents, corrections, the incident sequence, SLI counters and recent changes
    /// from the store (start-up).
    pub fn restore(&mut self, now: Nanos) -> anyhow::Result<()> {
        let Some(outbox) = &self.outbox else { return Ok(()) };
        let store = lock(&outbox.store);
        let mut next_sequence = store.meta("next_incident")?.and_then(|text| text.parse::<u64>().ok()).unwrap_or(1);
        let mut restored = 0;
        for record in store.incidents(true, 10_000)? {
            match serde_json::from_str::<Incident>(&record.body) {
                Ok(incident) => {
                    if let Some(number) = incident.id.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()) {
                        next_sequence = next_sequence.max(number + 1);
                    }
                    self.persisted_decisions.insert(incident.id.clone(), incident.decisions.len());
                    self.engine.restore(incident);
                    restored += 1;
                }
                Err(error) => tracing::error!(incident = %record.id, %error, "cannot restore an incident snapshot"),
            }
        }
        for correction in store.corrections()? {
            self.engine.ownership_mut().correct(&correction.component, &correction.signature, &correction.team);
        }
        let names: Vec<(String, Nanos)> = self
            .engine
            .journeys()
            .iter()
            .map(|journey| {
                let longest = journey.slo.tiers.iter().map(|tier| tier.long).max().unwrap_or(0);
                (journey.name.clone(), journey.slo.period.max(longest))
            })
            .collect();
        let mut n_minutes = 0;
        for (journey, span) in names {
            let since = (now - span).div_euclid(NANOS_PER_MIN);
            let minutes = store.sli(&journey, since)?;
            n_minutes += minutes.len();
            if let Some(state) = self.engine.slo_mut().journey_state_mut(&journey) {
                for minute in minutes {
                    state.restore(
                        minute.minute,
                        MinuteCounts { total: minute.total, errors: minute.errors, slow: minute.slow },
                    );
                }
            }
        }
        let changes = store.changes(now - 24 * 60 * NANOS_PER_MIN, 10_000)?;
        drop(store);
        for body in changes {
            if let Ok(change) = serde_json::from_str::<Change>(&body) {
                self.engine.record_change(change);
            }
        }
        self.persisted_changes = self.engine.changes().len();
        self.engine.set_incident_ids("inc-", next_sequence);
        tracing::info!(incidents = restored, sli_minutes = n_minutes, next_sequence, "restored state from the store");
        Ok(())
    }

    /// Converts and inserts one batch that arrived at `now`. Returns the number of spans inserted.
    pub fn ingest(&mut self, now: Nanos, request: &ExportTraceServiceRequest) -> usize {
        if let Some(recorder) = &mut self.recorder {
            recorder.traces(request);
        }
        let mut spans: Vec<IncomingSpan> = Vec::with_capacity(otlp::count_spans(request) as usize);
        otlp::convert(request, &self.convert, self.engine.dictionary_mut(), &mut spans);
        let n_spans = spans.len();
        self.engine.ingest(now, spans);
        n_spans
    }

    /// Time passes.
    pub fn tick(&mut self, now: Nanos) {
        let expired: Vec<String> =
            self.v2_expiry.iter().filter(|(_, ends)| **ends <= now).map(|(id, _)| id.clone()).collect();
        for id in expired {
            if let Some(ends) = self.v2_expiry.remove(&id) {
                self.engine.clear(&id, ends);
            }
        }
        self.engine.tick(now);
        if let Some(recorder) = &mut self.recorder {
            recorder.flush();
        }
        if now.saturating_sub(self.last_sli_save) >= NANOS_PER_MIN {
            self.save_sli(now);
            self.last_sli_save = now;
        }
        self.flush(now);
    }

    /// Alerts from Alertmanager or Prometheus. `v2` alerts expire at `endsAt` unless re-sent.
    pub fn alerts(&mut self, events: &[AlertEvent], v2: bool, now: Nanos) {
        if let Some(recorder) = &mut self.recorder {
            recorder.alerts(events, now);
        }
        for event in events {
            if event.firing {
                if v2 {
                    if let Some(ends) = event.ends_at {
                        self.v2_expiry.insert(event.id.clone(), ends);
                    } else {
                        self.v2_expiry.remove(&event.id);
                    }
                }
                let symptom = self.mapping.symptom(event);
                self.engine.fire(symptom);
            } else {
                self.v2_expiry.remove(&event.id);
                self.engine.clear(&event.id, event.ends_at.unwrap_or(now).min(now));
            }
        }
        self.flush(now);
    }

    pub fn change(&mut self, change: Change, now: Nanos) {
        if let Some(recorder) = &mut self.recorder {
            recorder.change(&change);
        }
        self.engine.record_change(change);
        self.flush(now);
    }

    pub fn command(&mut self, command: &Command, now: Nanos) -> Result<(), CommandError> {
        let (incident, kind, actor, detail) = match command {
            Command::Acknowledge { incident, by } => {
                self.engine.acknowledge(incident, by, now)?;
                (incident, "acknowledge", by, String::new())
            }
            Command::Resolve { incident, by } => {
                self.engine.resolve(incident, by, now)?;
                (incident, "resolve", by, String::new())
            }
            Command::Reroute { incident, team, reason, by } => {
                self.engine.reroute(incident, team, reason, by, now)?;
                (incident, "reroute", by, format!("to {team}: {reason}"))
            }
        };
        let mut batch = Batch {
            events: vec![IncidentEvent {
                incident_id: incident.clone(),
                at: now,
                kind: kind.to_string(),
                actor: actor.clone(),
                detail,
            }],
            ..Batch::default()
        };
        if let Command::Reroute { incident, team, .. } = command {
            if let Some(found) = self.engine.incident(incident) {
                for cause in &found.decision().causes {
                    batch.corrections.push(Correction {
                        component: cause.component.clone(),
                        signature: cause.kind.as_str().to_string(),
                        team: team.clone(),
                        at: now,
                    });
                }
            }
        }
        self.flush_with(now, batch);
        Ok(())
    }

    /// Writes what the engine produced since the last flush and wakes the worker.
    pub fn flush(&mut self, now: Nanos) {
        self.flush_with(now, Batch::default());
    }

    fn flush_with(&mut self, now: Nanos, mut batch: Batch) {
        let effects = self.engine.take_effects();
        let changed = self.engine.take_changed();
        let Some(outbox) = self.outbox.clone() else { return };
        for id in &changed {
            let Some(incident) = self.engine.incident(id) else { continue };
            let persisted = self.persisted_decisions.get(id).copied().unwrap_or(0);
            for decision in incident.decisions.iter().skip(persisted) {
                batch.decisions.push((id.clone(), decision.at, serde_json::to_string(decision).unwrap_or_default()));
            }
            self.persisted_decisions.insert(id.clone(), incident.decisions.len());
            batch.incidents.push(IncidentRecord {
                id: incident.id.clone(),
                state: serde_json::to_value(incident.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                opened_at: incident.opened_at,
                resolved_at: incident.resolved_at,
                updated_at: now,
                body: serde_json::to_string(incident).unwrap_or_default(),
            });
        }
        for effect in &effects {
            let Some(incident) = self.engine.incident(&effect.incident_id) else { continue };
            let (deliveries, warning) = crate::notifiers::plan(effect, incident, &outbox.ownership, &outbox.base_url);
            if let Some(warning) = warning {
                tracing::error!(incident = %effect.incident_id, action = effect.action.as_str(), "{warning}");
            }
            batch.deliveries.extend(deliveries);
        }
        if let Some(narrator) = &self.narrator {
            for effect in effects.iter().filter(|effect| effect.action == causeway_engine::incident::Action::Page) {
                if !self.narrated.insert(effect.incident_id.clone()) {
                    continue;
                }
                if let Some(brief) =
                    self.engine.incident(&effect.incident_id).and_then(|incident| incident.brief.clone())
                {
                    let _ = narrator.send(crate::assistant::Job { incident_id: effect.incident_id.clone(), brief });
                }
            }
        }
        let changes = self.engine.changes();
        let new_changes: Vec<Change> = changes.iter().skip(self.persisted_changes).cloned().collect();
        self.persisted_changes = changes.len();
        let next_sequence =
            self.engine.incidents().iter().filter_map(|i| i.id.rsplit('-').next()?.parse::<u64>().ok()).max();
        if batch.incidents.is_empty()
            && batch.deliveries.is_empty()
            && batch.events.is_empty()
            && new_changes.is_empty()
        {
            return;
        }
        let mut store = lock(&outbox.store);
        let result = store.record(&batch).and_then(|_| {
            for change in &new_changes {
                store.add_change(change.at, &change.service, &serde_json::to_string(change).unwrap_or_default())?;
            }
            if let Some(last) = next_sequence {
                store.set_meta("next_incident", &(last + 1).to_string())?;
            }
            Ok(())
        });
        drop(store);
        match result {
            Ok(()) => {
                if !batch.deliveries.is_empty() {
                    outbox.wake.notify_one();
                }
            }
            Err(error) => tracing::error!(%error, "cannot persist decisions and deliveries; pages are not being sent"),
        }
    }

    /// A graceful stop: SLI counters are saved now rather than at the next minute.
    pub fn shutdown(&mut self, now: Nanos) {
        self.save_sli(now);
        self.flush(now);
        if let Some(recorder) = &mut self.recorder {
            recorder.flush();
        }
    }

    fn save_sli(&mut self, now: Nanos) {
        let Some(outbox) = &self.outbox else { return };
        let recent = now.div_euclid(NANOS_PER_MIN) - 3;
        let names: Vec<String> = self.engine.journeys().iter().map(|journey| journey.name.clone()).collect();
        let mut store = lock(&outbox.store);
        for name in names {
            let Some(state) = self.engine.slo().journey_state(&name) else { continue };
            let minutes: Vec<SliMinute> = state
                .minutes()
                .into_iter()
                .filter(|(minute, _)| *minute >= recent)
                .map(|(minute, counts)| SliMinute {
                    minute,
                    total: counts.total,
                    errors: counts.errors,
                    slow: counts.slow,
                })
                .collect();
            if let Err(error) = store.save_sli(&name, &minutes) {
                tracing::error!(journey = %name, %error, "cannot persist SLI counters");
            }
        }
    }
}
