//! Deciding whom to page from an analysis (SPEC §4.4), with every reason recorded.
//!
//! 1. Too little evidence: page the journey owner, attach the candidates, say so.
//! 2. Two components each >= `two_cause_share` with different owners: page both. (Checked
//!    before rule 3, unlike SPEC §4.4's order: a runner-up behind 30% of failures owned by
//!    another team is an independent fault users feel, even when the top cause exceeds 60%.)
//! 3. One component with share >= `dominant_share`: page its owner, notify the journey owner.
//! 4. Otherwise diffuse blame: page the owner of the closest common caller, else the journey owner.
//!
//! Unowned components climb the causal chain to the closest owned caller; `default_team`
//! catches the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::{Analysis, CausalEdge, CauseKind, SymptomKind};
use crate::model::{Nanos, TraceId};
use crate::ownership::{Owner, OwnerSource, Ownership};

/// Thresholds of the decision, configurable (`routing:` in causeway.yaml).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub min_traces: usize,
    pub dominant_share: f64,
    pub two_cause_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { min_traces: 10, dominant_share: 0.6, two_cause_share: 0.3 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    InsufficientEvidence,
    SingleCause,
    TwoCauses,
    DiffuseBlame,
    /// No trace evidence applies: routed by the alert's labels (SPEC §4.6).
    Labels,
}

/// A cause the decision pages for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub component: String,
    pub kind: CauseKind,
    pub operation: String,
    pub team: String,
    pub owner_source: OwnerSource,
    pub share: f64,
}

/// A ranked candidate as shown to people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankedCandidate {
    pub component: String,
    pub kind: CauseKind,
    pub operation: String,
    pub team: String,
    pub owner_source: OwnerSource,
    /// Share of the adjusted votes.
    pub score: f64,
    pub votes: f64,
    pub rate: f64,
    pub baseline_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_callee: Option<String>,
    pub exemplars: Vec<TraceId>,
}

/// What to page and why. Serialized into the store, the API and replay reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub at: Nanos,
    pub outcome: Outcome,
    pub symptom_kind: Option<SymptomKind>,
    pub entry: Option<String>,
    pub causes: Vec<Cause>,
    /// Teams paged (a pager rings).
    pub page: Vec<String>,
    /// Teams notified (chat/webhook only): the customer-facing team when someone else is paged.
    pub notify: Vec<String>,
    pub confidence: f64,
    pub candidates: Vec<RankedCandidate>,
    pub reasons: Vec<String>,
    pub thresholds: Thresholds,
    pub n_total: usize,
    pub n_bad: usize,
    pub n_baseline: usize,
    pub causal_edges: Vec<CausalEdge>,
    /// Whom naive routers would have paged for the same symptom (comparison only).
    pub naive: NaiveTeams,
    /// A service's own alert whose failures no user saw (callers absorbed them): notify, never page.
    #[serde(default)]
    pub absorbed: bool,
}

/// The teams three naive routers would page: the symptom's owner (static routing), the owner of
/// the deepest erroring span, the owner of the slowest span.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NaiveTeams {
    pub static_team: String,
    pub deepest_error: Option<String>,
    pub slowest_span: Option<String>,
}

/// Inputs of a decision besides the analysis.
pub struct DecisionContext<'a> {
    pub at: Nanos,
    pub ownership: &'a Ownership,
    /// Teams named by span resource attributes, per service.
    pub resource_teams: &'a BTreeMap<String, String>,
    /// The customer-facing team of the symptom (journey owner, or the alert's own routing).
    pub symptom_owner: Owner,
    pub entry: Option<String>,
    pub symptom_kind: Option<SymptomKind>,
    pub thresholds: Thresholds,
}

pub fn decide(analysis: &Analysis, context: &DecisionContext<'_>) -> Decision {
    let thresholds = context.thresholds;
    let candidates: Vec<RankedCandidate> = analysis
        .candidates
        .iter()
        .filter(|candidate| candidate.adjusted_votes > 0.0 || candidate.votes > 0.0)
        .map(|candidate| {
            let owner = owner_of(context, &candidate.component, candidate.kind, &analysis.causal_edges);
            RankedCandidate {
                component: candidate.component.clone(),
                kind: candidate.kind,
                operation: candidate.operation.clone(),
                team: owner.team,
                owner_source: owner.source,
                score: round3(candidate.share),
                votes: round3(candidate.votes),
                rate: round3(candidate.rate),
                baseline_rate: round3(candidate.baseline_rate),
                via_callee: candidate.via_callee.clone(),
                exemplars: candidate.exemplars.clone(),
            }
        })
        .collect();
    let mut decision = Decision {
        at: context.at,
        outcome: Outcome::InsufficientEvidence,
        symptom_kind: context.symptom_kind,
        entry: context.entry.clone(),
        causes: Vec::new(),
        page: Vec::new(),
        notify: Vec::new(),
        confidence: 0.0,
        candidates,
        reasons: Vec::new(),
        thresholds,
        n_total: analysis.n_total,
        n_bad: analysis.n_bad,
        n_baseline: analysis.n_baseline,
        causal_edges: analysis.causal_edges.clone(),
        naive: NaiveTeams {
            static_team: context.symptom_owner.team.clone(),
            deepest_error: analysis
                .naive
                .deepest_error
                .as_ref()
                .map(|component| owner_of(context, component, CauseKind::Error, &analysis.causal_edges).team),
            slowest_span: analysis
                .naive
                .slowest_span
                .as_ref()
                .map(|component| owner_of(context, component, CauseKind::Latency, &analysis.causal_edges).team),
        },
        absorbed: false,
    };
    let journey_owner = &context.symptom_owner;
    decision.reasons.push(format!(
        "{} of {} requests at {} were bad in the evidence window; baseline {} requests",
        analysis.n_bad,
        analysis.n_total,
        context.entry.as_deref().unwrap_or("the entry"),
        analysis.n_baseline
    ));
    decision.reasons.extend(analysis.notes.iter().cloned());

    let explained = analysis.explained;
    if analysis.n_bad < thresholds.min_traces || explained < thresholds.min_traces as f64 * 0.5 {
        decision.outcome = Outcome::InsufficientEvidence;
        decision.page = vec![journey_owner.team.clone()];
        decision.reasons.push(format!(
            "insufficient evidence: {} bad traces ({:.1} explained beyond baseline), fewer than min_traces {}; paging the symptom owner {} ({})",
            analysis.n_bad,
            explained,
            thresholds.min_traces,
            journey_owner.team,
            journey_owner.source.describe()
        ));
        decision.confidence = 0.0;
        return decision;
    }

    let top = decision.candidates.first().cloned();
    let second = decision.candidates.get(1).cloned();
    // Two independent causes are checked first: a runner-up behind 30% of the failures, owned
    // by another team, is a second fault users feel even when the first explains more than 60%.
    if let (Some(top), Some(second)) = (&top, &second) {
        if top.score >= thresholds.two_cause_share
            && second.score >= thresholds.two_cause_share
            && top.team != second.team
        {
            decision.outcome = Outcome::TwoCauses;
            decision.confidence = top.score.min(second.score);
            decision.reasons.push(format!(
                "two independent causes: {} {:.0}% (team {}) and {} {:.0}% (team {}), each >= {:.0}%: paging both",
                top.component,
                top.score * 100.0,
                top.team,
                second.component,
                second.score * 100.0,
                second.team,
                thresholds.two_cause_share * 100.0
            ));
            decision.causes.push(cause_of(top));
            decision.causes.push(cause_of(second));
            finish_pages(&mut decision, journey_owner);
            return decision;
        }
    }
    if let Some(top) = &top {
        if top.score >= thresholds.dominant_share {
            decision.outcome = Outcome::SingleCause;
            decision.confidence = top.score;
            decision.reasons.push(format!(
                "{} ({}) explains {:.0}% of the bad traces (>= {:.0}%): paging its owner {} ({})",
                top.component,
                top.kind.as_str(),
                top.score * 100.0,
                thresholds.dominant_share * 100.0,
                top.team,
                top.owner_source.describe()
            ));
            decision.causes.push(cause_of(top));
            finish_pages(&mut decision, journey_owner);
            return decision;
        }
    }

    decision.outcome = Outcome::DiffuseBlame;
    let significant: Vec<&RankedCandidate> =
        decision.candidates.iter().filter(|candidate| candidate.score >= 0.1).collect();
    let common = closest_common_caller(&analysis.causal_edges, &significant, context.entry.as_deref());
    let owner = common
        .as_ref()
        .map(|component| (component.clone(), owner_of(context, component, CauseKind::Error, &analysis.causal_edges)));
    match owner {
        Some((component, owner)) => {
            decision.reasons.push(format!(
                "diffuse blame: no component reaches {:.0}%; the closest common caller of the candidates is {component}, owned by {} ({})",
                thresholds.dominant_share * 100.0,
                owner.team,
                owner.source.describe()
            ));
            decision.confidence = top.as_ref().map_or(0.0, |top| top.score);
            decision.causes.push(Cause {
                component,
                kind: top.as_ref().map_or(CauseKind::Unknown, |top| top.kind),
                operation: String::new(),
                team: owner.team,
                owner_source: owner.source,
                share: significant.iter().map(|candidate| candidate.score).sum(),
            });
            finish_pages(&mut decision, journey_owner);
        }
        None => {
            decision
                .reasons
                .push(format!("diffuse blame and no common caller: paging the symptom owner {}", journey_owner.team));
            decision.page = vec![journey_owner.team.clone()];
        }
    }
    decision
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn cause_of(candidate: &RankedCandidate) -> Cause {
    Cause {
        component: candidate.component.clone(),
        kind: candidate.kind,
        operation: candidate.operation.clone(),
        team: candidate.team.clone(),
        owner_source: candidate.owner_source.clone(),
        share: candidate.score,
    }
}

fn finish_pages(decision: &mut Decision, journey_owner: &Owner) {
    for cause in &decision.causes {
        if !decision.page.contains(&cause.team) {
            decision.page.push(cause.team.clone());
        }
    }
    if !decision.page.contains(&journey_owner.team) {
        decision.notify.push(journey_owner.team.clone());
        let verb = if decision.page.len() > 1 { "are" } else { "is" };
        decision.reasons.push(format!(
            "the symptom owner {} is notified, not paged: {} {verb} on it",
            journey_owner.team,
            decision.page.join(" and ")
        ));
    }
}

/// The owner of a component; unowned components climb the causal chain to the closest owned
/// caller, then fall to `default_team`.
pub fn owner_of(context: &DecisionContext<'_>, component: &str, kind: CauseKind, edges: &[CausalEdge]) -> Owner {
    let lookup =
        |name: &str| context.ownership.owner(name, kind.as_str(), context.resource_teams.get(name).map(String::as_str));
    if let Some(owner) = lookup(component) {
        return owner;
    }
    let mut current = component.to_string();
    let mut seen = vec![current.clone()];
    while let Some(caller) = closest_caller(edges, &current) {
        if seen.contains(&caller) {
            break;
        }
        if let Some(owner) = lookup(&caller) {
            return Owner { team: owner.team, source: OwnerSource::ClimbedFrom(component.to_string()) };
        }
        seen.push(caller.clone());
        current = caller;
    }
    context.ownership.default_owner()
}

/// The caller of `component` along which most blame flowed.
fn closest_caller(edges: &[CausalEdge], component: &str) -> Option<String> {
    edges
        .iter()
        .filter(|edge| edge.to == component && edge.from != component)
        .max_by(|a, b| a.share.total_cmp(&b.share).then(b.from.cmp(&a.from)))
        .map(|edge| edge.from.clone())
}

/// The deepest component that lies on the blame paths to every candidate.
fn closest_common_caller(edges: &[CausalEdge], candidates: &[&RankedCandidate], entry: Option<&str>) -> Option<String> {
    if candidates.is_empty() {
        return None;
    }
    let chains: Vec<Vec<String>> = candidates
        .iter()
        .map(|candidate| {
            let mut chain = vec![candidate.component.clone()];
            let mut current = candidate.component.clone();
            while let Some(caller) = closest_caller(edges, &current) {
                if chain.contains(&caller) {
                    break;
                }
                chain.push(caller.clone());
                current = caller;
            }
            chain
        })
        .collect();
    // Walk the first chain from the candidate upwards; the first node every chain contains
    // (as a strict caller of the other candidates) is the closest common caller.
    chains[0]
        .iter()
        .find(|node| {
            chains.iter().all(|chain| chain.contains(node))
                && candidates.iter().filter(|c| &c.component == *node).count() < candidates.len()
        })
        .cloned()
        .or_else(|| entry.and_then(|entry| entry.split_whitespace().next()).map(str::to_string))
}
