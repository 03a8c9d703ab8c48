//! The replay report (SPEC §7): incidents, pages against static routing, and the score against
//! ground truth — field names exactly as the spec writes them; extra sections (`by_kind`,
//! `naive`, `diagnostics`) sit beside them.

use std::collections::BTreeMap;

use causeway_engine::analysis::CauseKind;
use causeway_engine::incident::{Action, Incident, SymptomTarget};
use causeway_engine::{Engine, Nanos};
use serde::Serialize;

use super::ReadStats;
use super::bundle::Truth;
use crate::receivers::alertmanager::parse_time;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub spans: u64,
    pub traces: u64,
    pub incidents: Vec<ReportIncident>,
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
    pub diagnostics: ReadStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportIncident {
    pub id: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    pub symptoms: Vec<ReportSymptom>,
    pub root_cause: RootCause,
    pub paged_team: Option<String>,
    /// Every team paged (two independent causes page two).
    pub paged_teams: Vec<String>,
    pub confidence: f64,
    pub candidates: Vec<ReportCandidate>,
    pub pages: Vec<ReportPage>,
    pub outcome: String,
    pub reasons: Vec<String>,
    pub brief: Option<ReportBrief>,
}

/// The brief in the report's shape (issue 7): fields as other tools read them.
#[derive(Debug, Clone, Serialize)]
pub struct ReportBrief {
    pub summary: String,
    pub probable_causes: Vec<serde_json::Value>,
    pub common_attributes: Vec<serde_json::Value>,
    pub changes: Vec<serde_json::Value>,
    pub remediations: Vec<serde_json::Value>,
    pub similar_incidents: Vec<serde_json::Value>,
    pub blast_radius: serde_json::Value,
}

fn report_brief(brief: &causeway_engine::brief::Brief) -> ReportBrief {
    use serde_json::json;
    ReportBrief {
        summary: brief.summary.clone(),
        probable_causes: brief
            .probable_causes
            .iter()
            .map(|cause| json!({"service": cause.service, "team": cause.team, "kind": cause.kind, "score": cause.score, "why": cause.why}))
            .collect(),
        common_attributes: brief
            .common_attributes
            .iter()
            .map(|attribute| {
                json!({
                    "component": attribute.component,
                    "key": attribute.key,
                    "value": attribute.value,
                    "share_bad": attribute.share_bad,
                    "share_baseline": attribute.share_baseline,
                })
            })
            .collect(),
        changes: brief
            .changes
            .iter()
            .map(|change| {
                json!({
                    "service": change.service,
                    "kind": change.kind,
                    "version": change.version,
                    "previous_version": change.previous_version,
                    "at": time(change.at),
                    "source": change.source,
                })
            })
            .collect(),
        remediations: brief
            .remediations
            .iter()
            .map(|remediation| json!({"action": remediation.action, "target": remediation.target, "why": remediation.why}))
            .collect(),
        similar_incidents: brief
            .similar_incidents
            .iter()
            .map(|similar| {
                json!({
                    "id": similar.id,
                    "opened_at": time(similar.opened_at),
                    "duration_minutes": similar.duration_minutes,
                    "paged_teams": similar.paged_teams,
                    "ended": similar.ended,
                })
            })
            .collect(),
        blast_radius: serde_json::to_value(&brief.blast_radius).unwrap_or_default(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportSymptom {
    pub journey: Option<String>,
    pub service: Option<String>,
    pub kind: Option<String>,
    pub fired_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RootCause {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportCandidate {
    pub service: String,
    pub team: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportPage {
    pub team: String,
    pub at: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub pages: u64,
    pub static_pages: u64,
    pub incidents: u64,
    /// Pages per team: adaptive (Causeway) and static routing.
    pub pages_by_team: BTreeMap<String, TeamPages>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TeamPages {
    pub adaptive: u64,
    #[serde(rename = "static")]
    pub static_routing: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub faults: u64,
    pub detected: u64,
    pub team_top1: f64,
    pub service_top1: f64,
    pub service_top3: f64,
    pub false_pages: u64,
    /// The same figures per fault kind.
    pub by_kind: BTreeMap<String, KindScore>,
    /// Team accuracy of naive routers on the same detected faults, per kind and overall.
    pub naive: BTreeMap<String, NaiveScore>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KindScore {
    pub faults: u64,
    pub detected: u64,
    pub team_top1: f64,
    pub service_top1: f64,
    pub service_top3: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NaiveScore {
    /// Fraction of faults whose team the router would have paged.
    pub team_top1: f64,
    pub by_kind: BTreeMap<String, f64>,
}

/// Faults are matched to the first incident opened in `[start, end + 5m]`.
const MATCH_SLACK: Nanos = 5 * 60 * 1_000_000_000;

pub fn build(engine: &Engine, truth: Option<&Truth>, stats: ReadStats, static_pages: u64) -> Report {
    let mut incidents: Vec<&Incident> = engine.incidents().iter().collect();
    incidents.sort_by_key(|incident| (incident.opened_at, incident.id.clone()));
    let report_incidents: Vec<ReportIncident> = incidents.iter().map(|incident| report_incident(incident)).collect();
    let pages: u64 = report_incidents
        .iter()
        .map(|incident| incident.pages.iter().filter(|page| page.kind == "page").count() as u64)
        .sum();

    let mut pages_by_team: BTreeMap<String, TeamPages> = BTreeMap::new();
    for incident in &incidents {
        for effect in incident.effects.iter().filter(|effect| effect.action == Action::Page) {
            pages_by_team.entry(effect.team.clone()).or_default().adaptive += 1;
        }
        for (record, decision) in incident.symptoms.iter().zip(&incident.decisions) {
            if record.symptom.may_page {
                pages_by_team.entry(decision.naive.static_team.clone()).or_default().static_routing += 1;
            }
        }
    }
    // Static routing pages once per firing symptom; with alerts.jsonl, once per alert episode.
    let static_total = if static_pages > 0 {
        static_pages
    } else {
        incidents.iter().flat_map(|incident| &incident.symptoms).filter(|record| record.symptom.may_page).count() as u64
    };

    let score = truth.map(|truth| score(truth, &incidents));
    Report {
        spans: stats.spans,
        traces: stats.traces,
        summary: Summary { pages, static_pages: static_total, incidents: report_incidents.len() as u64, pages_by_team },
        incidents: report_incidents,
        score,
        diagnostics: stats,
    }
}

pub fn time(nanos: Nanos) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(nanos)).map(|t| t.to_string()).unwrap_or_else(|_| nanos.to_string())
}

fn cause_kind(kind: CauseKind) -> &'static str {
    match kind {
        CauseKind::Error | CauseKind::Capacity => "error",
        CauseKind::NoResponse => "no_response",
        CauseKind::Latency => "latency",
        CauseKind::Unknown => "unknown",
    }
}

fn report_incident(incident: &Incident) -> ReportIncident {
    let decision = incident.decision();
    let cause = decision.causes.first();
    let paged_teams: Vec<String> =
        incident.effects.iter().filter(|effect| effect.action == Action::Page).map(|effect| effect.team.clone()).fold(
            Vec::new(),
            |mut teams, team| {
                if !teams.contains(&team) {
                    teams.push(team);
                }
                teams
            },
        );
    ReportIncident {
        id: incident.id.clone(),
        opened_at: time(incident.opened_at),
        resolved_at: incident.resolved_at.map(time),
        symptoms: incident
            .symptoms
            .iter()
            .zip(&incident.decisions)
            .map(|(record, decision)| {
                let symptom = &record.symptom;
                let (journey, service) = match &symptom.target {
                    SymptomTarget::Journey { journey } => (
                        Some(journey.clone()),
                        decision.entry.as_ref().and_then(|e| e.split(' ').next()).map(str::to_string),
                    ),
                    SymptomTarget::Service { service, .. } => (None, Some(service.clone())),
                    SymptomTarget::Labels => (None, None),
                };
                ReportSymptom {
                    journey,
                    service,
                    kind: record.analysed_kind.or(symptom.kind).map(|kind| format!("{kind:?}").to_lowercase()),
                    fired_at: time(symptom.fired_at),
                }
            })
            .collect(),
        root_cause: RootCause {
            service: cause.map(|cause| cause.component.clone()),
            operation: cause.map(|cause| cause.operation.clone()).filter(|operation| !operation.is_empty()),
            kind: cause.map_or("unknown", |cause| cause_kind(cause.kind)).to_string(),
        },
        paged_team: paged_teams.first().cloned(),
        paged_teams,
        confidence: decision.confidence,
        candidates: decision
            .candidates
            .iter()
            .map(|candidate| ReportCandidate {
                service: candidate.component.clone(),
                team: candidate.team.clone(),
                score: candidate.score,
            })
            .collect(),
        pages: incident
            .effects
            .iter()
            .filter(|effect| matches!(effect.action, Action::Page | Action::Notify))
            .map(|effect| ReportPage {
                team: effect.team.clone(),
                at: time(effect.at),
                kind: effect.action.as_str().to_string(),
            })
            .collect(),
        outcome: serde_json::to_value(decision.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        reasons: decision.reasons.clone(),
        brief: incident.brief.as_ref().map(report_brief),
    }
}

fn score(truth: &Truth, incidents: &[&Incident]) -> Score {
    let windows: Vec<(Nanos, Nanos)> = truth
        .faults
        .iter()
        .filter_map(|fault| Some((parse_time(&fault.start).ok()?, parse_time(&fault.end).ok()? + MATCH_SLACK)))
        .collect();
    let mut score = Score { faults: truth.faults.len() as u64, ..Score::default() };
    let mut team_hits = 0u64;
    let mut service_hits = 0u64;
    let mut top3_hits = 0u64;
    let mut naive_hits: BTreeMap<&str, (u64, BTreeMap<String, (u64, u64)>)> = BTreeMap::new();
    for fault in &truth.faults {
        let (Ok(start), Ok(end)) = (parse_time(&fault.start), parse_time(&fault.end)) else { continue };
        let kind = score.by_kind.entry(fault.kind.clone()).or_default();
        kind.faults += 1;
        let matched =
            incidents.iter().find(|incident| incident.opened_at >= start && incident.opened_at <= end + MATCH_SLACK);
        for name in ["static", "deepest_error", "slowest_span"] {
            naive_hits.entry(name).or_default().1.entry(fault.kind.clone()).or_default().1 += 1;
        }
        let Some(incident) = matched else { continue };
        score.detected += 1;
        kind.detected += 1;
        let decision = incident.decision();
        let paged: Vec<&str> = incident
            .effects
            .iter()
            .filter(|effect| effect.action == Action::Page)
            .map(|effect| effect.team.as_str())
            .take_while(|_| true)
            .collect();
        let first_pages: Vec<&str> =
            if decision.page.is_empty() { paged.clone() } else { decision.page.iter().map(String::as_str).collect() };
        let causes: Vec<&str> = decision.causes.iter().map(|cause| cause.component.as_str()).collect();
        let top3: Vec<&str> =
            decision.candidates.iter().take(3).map(|candidate| candidate.component.as_str()).collect();
        if first_pages.contains(&fault.team.as_str()) {
            team_hits += 1;
            kind.team_top1 += 1.0;
        }
        if causes.contains(&fault.service.as_str())
            || decision.candidates.first().is_some_and(|top| top.component == fault.service)
        {
            service_hits += 1;
            kind.service_top1 += 1.0;
        }
        if top3.contains(&fault.service.as_str()) || causes.contains(&fault.service.as_str()) {
            top3_hits += 1;
            kind.service_top3 += 1.0;
        }
        let naive = &decision.naive;
        for (name, team) in [
            ("static", Some(&naive.static_team)),
            ("deepest_error", naive.deepest_error.as_ref()),
            ("slowest_span", naive.slowest_span.as_ref()),
        ] {
            if team.is_some_and(|team| *team == fault.team) {
                let entry = naive_hits.entry(name).or_default();
                entry.0 += 1;
                entry.1.entry(fault.kind.clone()).or_default().0 += 1;
            }
        }
    }
    let faults = score.faults.max(1) as f64;
    score.team_top1 = round3(team_hits as f64 / faults);
    score.service_top1 = round3(service_hits as f64 / faults);
    score.service_top3 = round3(top3_hits as f64 / faults);
    for kind in score.by_kind.values_mut() {
        let n = kind.faults.max(1) as f64;
        kind.team_top1 = round3(kind.team_top1 / n);
        kind.service_top1 = round3(kind.service_top1 / n);
        kind.service_top3 = round3(kind.service_top3 / n);
    }
    for (name, (hits, by_kind)) in naive_hits {
        score.naive.insert(
            name.to_string(),
            NaiveScore {
                team_top1: round3(hits as f64 / faults),
                by_kind: by_kind
                    .into_iter()
                    .map(|(kind, (hits, n))| (kind, round3(hits as f64 / n.max(1) as f64)))
                    .collect(),
            },
        );
    }
    score.false_pages = incidents
        .iter()
        .flat_map(|incident| incident.effects.iter())
        .filter(|effect| effect.action == Action::Page)
        .filter(|effect| !windows.iter().any(|(start, end)| effect.at >= *start && effect.at <= *end))
        .count() as u64;
    score
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// A report for people.
pub fn markdown(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "# Causeway replay report\n");
    let _ =
        writeln!(out, "{} spans in {} traces. {} incidents.\n", report.spans, report.traces, report.summary.incidents);
    let _ = writeln!(out, "## Pages: adaptive against static routing\n");
    let _ = writeln!(out, "| team | adaptive | static |\n|---|---:|---:|");
    for (team, pages) in &report.summary.pages_by_team {
        let _ = writeln!(out, "| {team} | {} | {} |", pages.adaptive, pages.static_routing);
    }
    let _ = writeln!(out, "| **total** | **{}** | **{}** |\n", report.summary.pages, report.summary.static_pages);
    if let Some(score) = &report.score {
        let _ = writeln!(out, "## Score against ground truth\n");
        let _ = writeln!(
            out,
            "{} faults, {} detected; team top-1 {:.0}%, service top-1 {:.0}%, service top-3 {:.0}%; {} false pages.\n",
            score.faults,
            score.detected,
            score.team_top1 * 100.0,
            score.service_top1 * 100.0,
            score.service_top3 * 100.0,
            score.false_pages
        );
        let _ = writeln!(
            out,
            "| fault kind | faults | detected | team top-1 | service top-1 | static | deepest error | slowest span |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for (kind, figures) in &score.by_kind {
            let naive = |name: &str| score.naive.get(name).and_then(|n| n.by_kind.get(kind)).copied().unwrap_or(0.0);
            let _ = writeln!(
                out,
                "| {kind} | {} | {} | {:.0}% | {:.0}% | {:.0}% | {:.0}% | {:.0}% |",
                figures.faults,
                figures.detected,
                figures.team_top1 * 100.0,
                figures.service_top1 * 100.0,
                naive("static") * 100.0,
                naive("deepest_error") * 100.0,
                naive("slowest_span") * 100.0
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Incidents\n");
    for incident in &report.incidents {
        let _ = writeln!(
            out,
            "### {} — {} ({})\n",
            incident.id,
            incident.root_cause.service.as_deref().unwrap_or("no single cause"),
            incident.root_cause.kind
        );
        let _ = writeln!(
            out,
            "- opened {}, resolved {}",
            incident.opened_at,
            incident.resolved_at.as_deref().unwrap_or("—")
        );
        let _ = writeln!(
            out,
            "- paged: {} (confidence {:.2}, {})",
            incident.paged_teams.join(", "),
            incident.confidence,
            incident.outcome
        );
        for symptom in &incident.symptoms {
            let _ = writeln!(
                out,
                "- symptom: {} {} at {}",
                symptom.journey.as_deref().or(symptom.service.as_deref()).unwrap_or("alert"),
                symptom.kind.as_deref().unwrap_or(""),
                symptom.fired_at
            );
        }
        for reason in &incident.reasons {
            let _ = writeln!(out, "- why: {reason}");
        }
        if let Some(brief) = &incident.brief {
            let _ = writeln!(out, "- brief: {}", brief.summary);
            for attribute in &brief.common_attributes {
                let _ = writeln!(
                    out,
                    "  - common: {}={} ({} of failing, {} of baseline)",
                    attribute["key"].as_str().unwrap_or(""),
                    attribute["value"].as_str().unwrap_or(""),
                    attribute["share_bad"],
                    attribute["share_baseline"]
                );
            }
            for remediation in &brief.remediations {
                let _ = writeln!(
                    out,
                    "  - option: {} {} — {}",
                    remediation["action"].as_str().unwrap_or(""),
                    remediation["target"].as_str().unwrap_or(""),
                    remediation["why"].as_str().unwrap_or("")
                );
            }
        }
        let _ = writeln!(out);
    }
    if report.diagnostics.bad_lines > 0
        || report.diagnostics.rejected_spans > 0
        || report.diagnostics.bad_alert_lines > 0
    {
        let _ = writeln!(out, "## Input problems\n");
        for problem in &report.diagnostics.problems {
            let _ = writeln!(out, "- {problem}");
        }
    }
    out
}
