//! The investigation brief (SPEC §4.7): what a strong teammate would have found in the first
//! ten minutes, built deterministically from the evidence, every line pointing at it.
//!
//! * Summary: what users feel, what is failing, who is paged and why.
//! * Probable causes, ranked, with why the runner-ups rank lower.
//! * Common attributes (BubbleUp): values over-represented in the blamed spans against the same
//!   component's spans in the baseline. High-cardinality dimensions (ids, timestamps) are left
//!   out by measuring their cardinality, not by a list of names.
//! * Changes near the onset for the blamed component and its dependencies.
//! * Blast radius: journeys hurting at the same time, callers affected.
//! * Remediation options, each with its reason; runbooks from the catalog.
//! * Similar past incidents and how they ended.
//!
//! Each line carries evidence ids (`E1`, ...) so an optional narrator can cite them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::{Analysis, CauseKind, SymptomKind};
use crate::change::Change;
use crate::decide::{Decision, Outcome};
use crate::incident::{Incident, IncidentState};
use crate::intern::Symbol;
use crate::journey::Journey;
use crate::model::{NANOS_PER_MIN, Nanos, Span, TraceId};
use crate::ownership::Ownership;
use crate::slo::{SloTracker, burn};
use crate::trace::TraceView;
use crate::window::TraceSource;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Brief {
    pub summary: String,
    pub probable_causes: Vec<ProbableCause>,
    pub common_attributes: Vec<CommonAttribute>,
    /// Why the attribute list is empty or short ("nothing stands out", "no baseline").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_attributes_note: Option<String>,
    pub changes: Vec<BriefChange>,
    pub blast_radius: BlastRadius,
    pub remediations: Vec<Remediation>,
    pub similar_incidents: Vec<SimilarIncident>,
    /// Evidence items the lines refer to, for citations.
    pub evidence: Vec<Evidence>,
    /// The optional AI narration, marked as such; absent until (and unless) it arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narration: Option<Narration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbableCause {
    pub service: String,
    pub kind: CauseKind,
    pub team: String,
    pub score: f64,
    pub why: String,
    pub evidence: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommonAttribute {
    pub component: String,
    pub key: String,
    pub value: String,
    pub share_bad: f64,
    pub share_baseline: f64,
    pub n_bad: usize,
    pub n_baseline: usize,
    pub evidence: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BriefChange {
    pub service: String,
    pub kind: String,
    pub version: Option<String>,
    pub previous_version: Option<String>,
    pub at: Nanos,
    pub minutes_before_onset: f64,
    pub summary: String,
    pub source: String,
    pub evidence: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlastRadius {
    pub journeys: Vec<JourneyImpact>,
    pub callers: Vec<String>,
    pub since: Nanos,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyImpact {
    pub journey: String,
    /// Share of the journey's requests that were bad over the evidence window.
    pub bad_share: f64,
    pub requests: u64,
    pub kind: SymptomKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    pub action: String,
    pub target: String,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarIncident {
    pub id: String,
    pub opened_at: Nanos,
    pub duration_minutes: Option<f64>,
    pub paged_teams: Vec<String>,
    pub ended: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub id: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<TraceId>,
}

/// The narrator's text, always shown as AI-written, with the evidence it cites.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Narration {
    pub text: String,
    pub model: String,
    pub cites: Vec<String>,
    pub ai_generated: bool,
}

/// What the brief is built from.
pub struct BriefInput<'a> {
    pub source: &'a dyn TraceSource,
    pub analysis: Option<&'a Analysis>,
    pub decision: &'a Decision,
    /// The journey of the symptom, if any.
    pub journey: Option<&'a Journey>,
    pub journeys: &'a [Journey],
    pub slo: &'a SloTracker,
    pub changes: &'a [Change],
    pub past: &'a [Incident],
    pub ownership: &'a Ownership,
    /// Start of the evidence window (the onset as far as the evidence goes).
    pub onset: Nanos,
    pub baseline: (Nanos, Nanos),
    pub entry: Option<(String, Option<String>)>,
    pub now: Nanos,
}

pub fn build(input: &BriefInput<'_>) -> Brief {
    let mut evidence = Evidence::list();
    let decision = input.decision;
    let probable_causes = probable_causes(decision, &mut evidence);
    let (common_attributes, note) = match (input.analysis, decision.candidates.first()) {
        (Some(analysis), Some(top)) => common_attributes(input, analysis, &top.component, &mut evidence),
        _ => (Vec::new(), Some("no trace evidence to compare".to_string())),
    };
    let changes = changes(input, &mut evidence);
    let blast_radius = blast_radius(input, &mut evidence);
    let remediations = remediations(input, &common_attributes, &changes);
    let similar_incidents = similar(input);
    let summary = summary(input, &blast_radius);
    Brief {
        summary,
        probable_causes,
        common_attributes,
        common_attributes_note: note,
        changes,
        blast_radius,
        remediations,
        similar_incidents,
        evidence: evidence.items,
        narration: None,
    }
}

struct EvidenceList {
    items: Vec<Evidence>,
}

impl Evidence {
    fn list() -> EvidenceList {
        EvidenceList { items: Vec::new() }
    }
}

impl EvidenceList {
    fn add(&mut self, text: String, traces: Vec<TraceId>) -> String {
        let id = format!("E{}", self.items.len() + 1);
        self.items.push(Evidence { id: id.clone(), text, traces });
        id
    }
}

fn percent(value: f64) -> String {
    format!("{:.0}%", (value * 100.0).max(0.0))
}

fn probable_causes(decision: &Decision, evidence: &mut EvidenceList) -> Vec<ProbableCause> {
    let top_score = decision.candidates.first().map_or(0.0, |top| top.score);
    decision
        .candidates
        .iter()
        .take(5)
        .enumerate()
        .map(|(rank, candidate)| {
            let mut text = if candidate.kind == CauseKind::Latency {
                format!(
                    "{} (latency) wins {:.0} of {} slow traces ({} of the blame); its own critical-path time averaged {:.0} ms in slow traces against {:.0} ms in the baseline",
                    candidate.component,
                    candidate.votes,
                    decision.n_bad,
                    percent(candidate.score),
                    candidate.rate,
                    candidate.baseline_rate
                )
            } else {
                format!(
                    "{} ({}) is blamed in {:.0} of {} bad traces ({} of the blame beyond the baseline); it failed {} of requests now against {} before",
                    candidate.component,
                    candidate.kind.as_str(),
                    candidate.votes,
                    decision.n_bad,
                    percent(candidate.score),
                    percent(candidate.rate),
                    percent(candidate.baseline_rate)
                )
            };
            if let Some(callee) = &candidate.via_callee {
                text.push_str(&format!("; its calls to {callee} failed on its own side (the callee answered)"));
            }
            let id = evidence.add(text, candidate.exemplars.clone());
            let why = if rank == 0 {
                format!(
                    "{} of the blame ({} votes), owner {} ({})",
                    percent(candidate.score),
                    candidate.votes,
                    candidate.team,
                    candidate.owner_source.describe()
                )
            } else if candidate.score < 0.05 && candidate.votes > 0.0 && candidate.kind != CauseKind::Latency {
                format!(
                    "ranks lower: its failures are as frequent as before the onset ({} now, {} in the baseline)",
                    percent(candidate.rate),
                    percent(candidate.baseline_rate)
                )
            } else {
                format!("ranks lower: {} of the blame against {} for the top cause", percent(candidate.score), percent(top_score))
            };
            ProbableCause {
                service: candidate.component.clone(),
                kind: candidate.kind,
                team: candidate.team.clone(),
                score: candidate.score,
                why,
                evidence: vec![id],
            }
        })
        .collect()
}

/// A dimension value: an interned string, or an HTTP status.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum DimensionValue {
    Text(Symbol),
    Status(u16),
}

const DIMENSIONS: [&str; 11] = [
    "service.version",
    "service.instance.id",
    "k8s.pod.name",
    "host.name",
    "cloud.availability_zone",
    "http.route",
    "db.statement",
    "error.type",
    "exception.type",
    "exception.message",
    "http.response.status_code",
];

fn dimensions(source: &dyn TraceSource, span: &Span) -> [Option<DimensionValue>; 11] {
    let resource = source.dictionary().resources.get(span.resource);
    let text = |symbol: Symbol| symbol.is_some().then_some(DimensionValue::Text(symbol));
    [
        text(resource.version),
        text(resource.instance),
        text(resource.pod),
        text(resource.host),
        text(resource.zone),
        text(span.route),
        text(span.db_statement),
        text(span.error_type),
        text(span.exception_type),
        text(span.exception_message),
        (span.http_status != 0).then_some(DimensionValue::Status(span.http_status)),
    ]
}

/// Does this span belong to `component` (its own span, or a client span calling it)?
fn belongs(view: &TraceView<'_>, index: usize, component: Symbol) -> bool {
    if view.service(index) == component {
        return true;
    }
    let span = view.span(index);
    view.kind(index).is_outgoing() && span.callee == component && view.server_child(index).is_none()
}

/// BubbleUp: values over-represented in blamed spans against the component's baseline spans.
fn common_attributes(
    input: &BriefInput<'_>,
    analysis: &Analysis,
    component: &str,
    evidence: &mut EvidenceList,
) -> (Vec<CommonAttribute>, Option<String>) {
    let source = input.source;
    let dictionary = source.dictionary();
    let Some(component_symbol) = dictionary.strings.get(component) else {
        return (Vec::new(), Some(format!("{component} has no spans in the window")));
    };
    let Some(candidate) = analysis.candidates.iter().find(|candidate| candidate.component == component) else {
        return (Vec::new(), None);
    };
    // Blamed spans, widened to every span of the component in those traces (a version or a pod
    // shows on the component's server spans even when blame landed on a client span).
    let mut bad: Vec<(TraceId, u32)> = Vec::new();
    for (trace_id, index) in &candidate.blamed_spans {
        let Some(spans) = source.trace(trace_id) else { continue };
        let view = TraceView::new(spans, dictionary);
        if (*index as usize) < view.len() && belongs(&view, *index as usize, component_symbol) {
            bad.push((*trace_id, *index));
        } else if let Some(found) = (0..view.len()).find(|i| belongs(&view, *i, component_symbol)) {
            bad.push((*trace_id, found as u32));
        }
    }
    let mut baseline: Vec<(TraceId, u32)> = Vec::new();
    if let Some((service, operation)) = &input.entry {
        if let Some(entry_service) = dictionary.strings.get(service) {
            let mut visit = |trace_id: TraceId, spans: &[Span], _: usize| {
                let view = TraceView::new(spans, dictionary);
                for index in 0..view.len() {
                    if belongs(&view, index, component_symbol) && !view.is_error(index) {
                        baseline.push((trace_id, index as u32));
                    }
                }
                baseline.len() < 2000
            };
            match operation.as_ref().and_then(|operation| dictionary.strings.get(operation)) {
                Some(operation) => {
                    source.visit_entries(entry_service, operation, input.baseline.0, input.baseline.1, &mut visit)
                }
                None => source.visit_service_entries(entry_service, input.baseline.0, input.baseline.1, &mut visit),
            }
        }
    }
    if bad.len() < 5 {
        return (Vec::new(), Some(format!("too few blamed spans of {component} ({}) to compare", bad.len())));
    }
    if baseline.len() < 5 {
        return (Vec::new(), Some(format!("no baseline spans of {component} to compare against ({})", baseline.len())));
    }
    let count = |refs: &[(TraceId, u32)]| {
        let mut counts: Vec<BTreeMap<DimensionValue, usize>> = vec![BTreeMap::new(); DIMENSIONS.len()];
        for (trace_id, index) in refs {
            let Some(span) = source.trace(trace_id).and_then(|spans| spans.get(*index as usize)) else { continue };
            for (slot, value) in dimensions(source, span).into_iter().enumerate() {
                if let Some(value) = value {
                    *counts[slot].entry(value).or_default() += 1;
                }
            }
        }
        counts
    };
    let bad_counts = count(&bad);
    let baseline_counts = count(&baseline);
    let (n_bad, n_baseline) = (bad.len() as f64, baseline.len() as f64);
    let mut found = Vec::new();
    for (slot, key) in DIMENSIONS.iter().enumerate() {
        // High cardinality by design: when most spans carry a value of their own, a value
        // cannot be "common" (request ids, timestamps, unique messages).
        let distinct = bad_counts[slot].len().max(baseline_counts[slot].len());
        let carriers = bad_counts[slot].values().sum::<usize>().max(1);
        if distinct as f64 > 0.5 * carriers as f64 && carriers >= 10 {
            continue;
        }
        for (value, bad_count) in &bad_counts[slot] {
            let share_bad = *bad_count as f64 / n_bad;
            let share_baseline = baseline_counts[slot].get(value).copied().unwrap_or(0) as f64 / n_baseline;
            if share_bad >= 0.4 && share_bad - share_baseline >= 0.25 && share_bad >= 1.5 * share_baseline.max(0.01) {
                let value_text = match value {
                    DimensionValue::Text(symbol) => dictionary.str(*symbol).to_string(),
                    DimensionValue::Status(status) => status.to_string(),
                };
                found.push((share_bad - share_baseline, key, value_text, share_bad, share_baseline));
            }
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)).then_with(|| a.2.cmp(&b.2)));
    found.truncate(8);
    if found.is_empty() {
        return (
            Vec::new(),
            Some(format!(
                "nothing stands out: no value of {component}'s spans is over-represented in {} failing spans against {} baseline spans",
                bad.len(),
                baseline.len()
            )),
        );
    }
    let attributes = found
        .into_iter()
        .map(|(_, key, value, share_bad, share_baseline)| {
            let id = evidence.add(
                format!(
                    "{key}={value} on {} of {component}'s failing spans against {} of its baseline spans ({} and {} spans)",
                    percent(share_bad),
                    percent(share_baseline),
                    bad.len(),
                    baseline.len()
                ),
                Vec::new(),
            );
            CommonAttribute {
                component: component.to_string(),
                key: key.to_string(),
                value,
                share_bad: (share_bad * 1000.0).round() / 1000.0,
                share_baseline: (share_baseline * 1000.0).round() / 1000.0,
                n_bad: bad.len(),
                n_baseline: baseline.len(),
                evidence: id,
            }
        })
        .collect();
    (attributes, None)
}

/// Changes of the cause components and their dependencies from 2 h before the onset until now.
fn changes(input: &BriefInput<'_>, evidence: &mut EvidenceList) -> Vec<BriefChange> {
    let mut related: Vec<String> = input.decision.causes.iter().map(|cause| cause.component.clone()).collect();
    if related.is_empty() {
        related.extend(input.decision.candidates.iter().take(2).map(|candidate| candidate.component.clone()));
    }
    let mut with_dependencies = related.clone();
    for component in &related {
        if let Some(found) = input.ownership.component(component) {
            with_dependencies.extend(found.depends_on.iter().cloned());
        }
        for edge in &input.decision.causal_edges {
            if &edge.from == component {
                with_dependencies.push(edge.to.clone());
            }
        }
    }
    let from = input.onset - 120 * NANOS_PER_MIN;
    let mut list: Vec<&Change> = input
        .changes
        .iter()
        .filter(|change| change.at >= from && change.at <= input.now && with_dependencies.contains(&change.service))
        .collect();
    // Closest to the onset first.
    list.sort_by_key(|change| ((change.at - input.onset).abs(), change.service.clone()));
    list.into_iter()
        .take(5)
        .map(|change| {
            let minutes_before = (input.onset - change.at) as f64 / NANOS_PER_MIN as f64;
            let when = if minutes_before >= 0.0 {
                format!("{minutes_before:.0} min before the onset")
            } else {
                format!("{:.0} min after the onset", -minutes_before)
            };
            let id = evidence.add(
                format!(
                    "{} {} of {}{} {when} ({})",
                    change.kind,
                    change.version.as_deref().map(|v| format!("to {v}")).unwrap_or_default(),
                    change.service,
                    change.previous_version.as_deref().map(|p| format!(" from {p}")).unwrap_or_default(),
                    change.source
                ),
                Vec::new(),
            );
            BriefChange {
                service: change.service.clone(),
                kind: change.kind.clone(),
                version: change.version.clone(),
                previous_version: change.previous_version.clone(),
                at: change.at,
                minutes_before_onset: (minutes_before * 10.0).round() / 10.0,
                summary: change.summary.clone(),
                source: change.source.clone(),
                evidence: id,
            }
        })
        .collect()
}

fn blast_radius(input: &BriefInput<'_>, evidence: &mut EvidenceList) -> BlastRadius {
    let window = (input.now - input.onset).max(NANOS_PER_MIN);
    let mut journeys = Vec::new();
    for journey in input.journeys {
        let Some(state) = input.slo.journey_state(&journey.name) else { continue };
        let sums = state.sums(input.now, &[window]);
        let counts = sums[0];
        if counts.total == 0 {
            continue;
        }
        for (kind, target) in [
            (SymptomKind::Error, journey.slo.availability),
            (SymptomKind::Latency, journey.slo.latency.map(|latency| latency.target)),
        ] {
            let Some(target) = target else { continue };
            let budget = 1.0 - target;
            let burning = burn(counts, kind, budget);
            let bad = match kind {
                SymptomKind::Error => counts.errors,
                SymptomKind::Latency => counts.slow,
            };
            let share = f64::from(bad) / f64::from(counts.total);
            let is_symptom = input.journey.is_some_and(|own| own.name == journey.name);
            if burning >= 2.0 || (is_symptom && bad > 0) {
                journeys.push(JourneyImpact {
                    journey: journey.name.clone(),
                    bad_share: (share * 1000.0).round() / 1000.0,
                    requests: u64::from(counts.total),
                    kind,
                });
            }
        }
    }
    let causes: Vec<&str> = input.decision.causes.iter().map(|cause| cause.component.as_str()).collect();
    let mut callers: Vec<String> = input
        .decision
        .causal_edges
        .iter()
        .filter(|edge| edge.share >= 0.05 && !causes.contains(&edge.from.as_str()))
        .map(|edge| edge.from.clone())
        .collect();
    callers.sort();
    callers.dedup();
    if !journeys.is_empty() {
        let text = journeys
            .iter()
            .map(|impact| {
                format!(
                    "{}: {} of {} requests bad ({:?})",
                    impact.journey,
                    percent(impact.bad_share),
                    impact.requests,
                    impact.kind
                )
                .to_lowercase()
            })
            .collect::<Vec<_>>()
            .join("; ");
        evidence.add(format!("since the onset {text}"), Vec::new());
    }
    BlastRadius { journeys, callers, since: input.onset }
}

fn remediations(input: &BriefInput<'_>, attributes: &[CommonAttribute], changes: &[BriefChange]) -> Vec<Remediation> {
    let mut out = Vec::new();
    let Some(cause) = input.decision.causes.first() else {
        return out;
    };
    let component = &cause.component;
    let attribute =
        |key: &str| attributes.iter().find(|attribute| attribute.key == key && &attribute.component == component);
    if let Some(version) = attribute("service.version") {
        let deploy = changes
            .iter()
            .find(|change| &change.service == component && change.version.as_deref() == Some(version.value.as_str()));
        let from = deploy.and_then(|change| change.previous_version.clone());
        out.push(Remediation {
            action: "roll back".to_string(),
            target: match &from {
                Some(previous) => format!("{component} from {} to {previous}", version.value),
                None => format!("{component} {} to the previous version", version.value),
            },
            why: format!(
                "{} of failing spans run {} against {} of baseline spans{}",
                percent(version.share_bad),
                version.value,
                percent(version.share_baseline),
                deploy
                    .map(|change| format!("; deployed {:.0} min before the onset", change.minutes_before_onset))
                    .unwrap_or_default()
            ),
        });
    } else if let Some(change) = changes.iter().find(|change| {
        &change.service == component && change.minutes_before_onset >= 0.0 && change.minutes_before_onset <= 30.0
    }) {
        out.push(Remediation {
            action: "roll back".to_string(),
            target: format!(
                "the {} of {component}{}",
                change.kind,
                change.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default()
            ),
            why: format!("it happened {:.0} min before the onset", change.minutes_before_onset),
        });
    }
    for (key, action) in [("k8s.pod.name", "drain"), ("service.instance.id", "drain"), ("host.name", "drain")] {
        if let Some(found) = attribute(key) {
            out.push(Remediation {
                action: action.to_string(),
                target: format!("{key}={}", found.value),
                why: format!(
                    "{} of failing spans come from it against {} before",
                    percent(found.share_bad),
                    percent(found.share_baseline)
                ),
            });
            break;
        }
    }
    if let Some(zone) = attribute("cloud.availability_zone") {
        out.push(Remediation {
            action: "fail over".to_string(),
            target: format!("away from zone {}", zone.value),
            why: format!(
                "{} of failing spans are in {} against {} before",
                percent(zone.share_bad),
                zone.value,
                percent(zone.share_baseline)
            ),
        });
    }
    if matches!(cause.kind, CauseKind::Latency | CauseKind::Capacity) {
        let growth = input.decision.candidates.first().map(|top| (top.rate, top.baseline_rate));
        out.push(Remediation {
            action: "scale out".to_string(),
            target: component.clone(),
            why: match (cause.kind, growth) {
                (CauseKind::Capacity, _) => "it refuses requests for capacity (429/503)".to_string(),
                (_, Some((now, before))) if before > 0.0 => format!(
                    "its own time on the critical path grew from {before:.0} ms to {now:.0} ms, a sign of saturation"
                ),
                _ => "its own time on the critical path grew: a sign of saturation".to_string(),
            },
        });
    }
    let component_info = input.ownership.component(component);
    let uninstrumented = input.decision.candidates.first().is_some_and(|top| top.component == *component)
        && component_info.is_none_or(|info| info.entity_kind.as_deref() != Some("Component"))
        && (component.contains('/') || component.contains('.'));
    if uninstrumented || cause.kind == CauseKind::NoResponse {
        out.push(Remediation {
            action: "engage the owner".to_string(),
            target: format!("{component} ({})", cause.team),
            why: if cause.kind == CauseKind::NoResponse {
                "it stopped answering (timeouts, refused connections): check it is up and reachable".to_string()
            } else {
                "an uninstrumented dependency answers with errors: its owner sees its side".to_string()
            },
        });
    }
    if let Some(info) = component_info {
        for runbook in &info.runbooks {
            out.push(Remediation {
                action: "follow the runbook".to_string(),
                target: runbook.clone(),
                why: format!("catalog runbook of {component}"),
            });
        }
    }
    out
}

fn similar(input: &BriefInput<'_>) -> Vec<SimilarIncident> {
    let causes: Vec<&str> = input.decision.causes.iter().map(|cause| cause.component.as_str()).collect();
    if causes.is_empty() {
        return Vec::new();
    }
    let kind = input.decision.causes.first().map(|cause| cause.kind);
    let mut found: Vec<SimilarIncident> = input
        .past
        .iter()
        .filter(|incident| incident.opened_at < input.onset)
        .filter(|incident| incident.cause_components.iter().any(|component| causes.contains(&component.as_str())))
        .filter(|incident| incident.decision().causes.first().map(|cause| cause.kind) == kind)
        .map(|incident| {
            let ended = if let Some(reroute) = incident.reroutes.last() {
                format!("rerouted to {}: {}", reroute.to, reroute.reason)
            } else if incident.state != IncidentState::Resolved {
                "still open".to_string()
            } else if incident
                .timeline
                .iter()
                .any(|event| event.kind == "resolved" && event.text.starts_with("resolved by"))
            {
                incident
                    .timeline
                    .iter()
                    .rev()
                    .find(|event| event.kind == "resolved")
                    .map(|event| event.text.clone())
                    .unwrap_or_default()
            } else {
                "resolved on its own (symptoms cleared)".to_string()
            };
            SimilarIncident {
                id: incident.id.clone(),
                opened_at: incident.opened_at,
                duration_minutes: incident.resolved_at.map(|resolved| {
                    ((resolved - incident.opened_at) as f64 / NANOS_PER_MIN as f64 * 10.0).round() / 10.0
                }),
                paged_teams: incident.paged_teams.clone(),
                ended,
            }
        })
        .collect();
    found.sort_by_key(|incident| std::cmp::Reverse(incident.opened_at));
    found.truncate(5);
    found
}

fn summary(input: &BriefInput<'_>, blast: &BlastRadius) -> String {
    let decision = input.decision;
    let what = match (input.journey, decision.symptom_kind) {
        (Some(journey), Some(SymptomKind::Error)) => format!("{} users see errors", journey.name),
        (Some(journey), Some(SymptomKind::Latency)) => format!("{} is slow for users", journey.name),
        (Some(journey), None) => format!("{} is degraded", journey.name),
        (None, _) => decision
            .entry
            .clone()
            .map(|entry| format!("{entry} is failing"))
            .unwrap_or_else(|| "an alert fired".to_string()),
    };
    let share = input
        .journey
        .and_then(|journey| blast.journeys.iter().find(|impact| impact.journey == journey.name))
        .map(|impact| format!(" ({} of {} requests since the onset)", percent(impact.bad_share), impact.requests))
        .unwrap_or_else(|| {
            if decision.n_total > 0 {
                format!(" ({} of {} requests in the evidence window)", decision.n_bad, decision.n_total)
            } else {
                String::new()
            }
        });
    let failing = match decision.outcome {
        Outcome::SingleCause | Outcome::TwoCauses => decision
            .causes
            .iter()
            .map(|cause| {
                format!("{} ({}, {} of the blame)", cause.component, cause.kind.as_str(), percent(cause.share))
            })
            .collect::<Vec<_>>()
            .join(" and "),
        Outcome::DiffuseBlame => format!(
            "failures spread over {} components below {}",
            decision.candidates.len(),
            decision.causes.first().map(|cause| cause.component.as_str()).unwrap_or("the entry")
        ),
        Outcome::InsufficientEvidence => "not yet clear (too little evidence)".to_string(),
        Outcome::Labels => "not visible in traces".to_string(),
    };
    let paged = decision.page.join(" and ");
    let why = decision
        .causes
        .first()
        .map(|cause| cause.owner_source.describe())
        .unwrap_or_else(|| "symptom owner".to_string());
    format!("{what}{share}. Failing: {failing}. Paged: {paged} ({why}).")
}
