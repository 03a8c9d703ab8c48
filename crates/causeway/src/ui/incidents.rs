//! The incident list and the incident page: the brief, the causal chain, the timeline with
//! delivery status, exemplar traces as waterfalls, and the actions (acknowledge, resolve,
//! reroute). The components that also appear in replay reports (`causal_graph`, `brief`) are
//! functions of the incident alone.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use causeway_engine::decide::Decision;
use causeway_engine::incident::{Action, Incident, IncidentState};
use causeway_engine::{TraceId, TraceSource, TraceView};
use causeway_store::Delivery;
use maud::{Markup, html};

use super::graph::{self, Direction, GraphEdge, GraphNode};
use super::{Content, ListFilter, age, clock, encode_path_segment, encode_query_value, percent};
use crate::api::{ApiError, ApiState, SpanBody, with_core, with_store};
use crate::pipeline::wall_clock_nanos;

/// How many exemplar traces the incident page draws.
const MAX_EXEMPLARS: usize = 3;
/// Spans drawn per waterfall; the rest are counted.
const MAX_WATERFALL_SPANS: usize = 80;

pub(super) async fn list(state: &ApiState, filter: ListFilter) -> Result<Content, ApiError> {
    let open_only = filter.state.as_deref() == Some("open");
    let records = with_store(state, move |store| store.incidents(open_only, 1000)).await?;
    let mut incidents: Vec<Incident> =
        records.iter().filter_map(|record| serde_json::from_str(&record.body).ok()).collect();
    incidents.retain(|incident| {
        filter.service.as_deref().is_none_or(|service| involves(incident, service))
            && filter.team.as_deref().is_none_or(|team| {
                incident.paged_teams.iter().any(|paged| paged == team)
                    || incident.effects.iter().any(|effect| effect.action == Action::Page && effect.team == team)
            })
    });
    // Open first, then newest.
    incidents.sort_by_key(|incident| (!incident.state.is_active(), std::cmp::Reverse(incident.opened_at)));
    let now = wall_clock_nanos();
    let n_open = incidents.iter().filter(|incident| incident.state.is_active()).count();
    let scope = match (&filter.service, &filter.team) {
        (Some(service), _) => format!(" involving {service}"),
        (None, Some(team)) => format!(" that paged {team}"),
        (None, None) => String::new(),
    };
    let body = html! {
        div.page-head {
            h1 { "Incidents" (scope) }
            p.muted { (n_open) " open · " (incidents.len()) " shown" }
        }
        div.filters {
            a href="/" class=[(filter.state.as_deref() != Some("open") && filter.service.is_none() && filter.team.is_none()).then_some("active")] { "All" }
            a href="/?state=open" class=[(filter.state.as_deref() == Some("open")).then_some("active")] { "Open" }
            @if filter.service.is_some() || filter.team.is_some() { a href="/" { "Clear filter" } }
        }
        @if incidents.is_empty() {
            p.empty { "No incidents" (scope) ". Causeway opens one when a journey's SLO burns or an alert arrives, and pages the team closest to the cause." }
        } @else {
            div.table-wrap {
                table.list #incidents {
                    thead { tr { th { "Incident" } th { "Journey" } th { "Cause" } th { "Team" } th { "Age" } th { "State" } } }
                    tbody {
                        @for incident in &incidents {
                            (list_row(incident, now))
                        }
                    }
                }
            }
        }
    };
    Ok(Content { title: format!("Incidents{scope}"), body, status: StatusCode::OK })
}

fn involves(incident: &Incident, service: &str) -> bool {
    incident.cause_components.iter().any(|component| component == service)
        || incident.decisions.iter().any(|decision| {
            decision.candidates.iter().any(|candidate| candidate.component == service)
                || entry_service(decision).is_some_and(|entry| entry == service)
        })
        || incident.symptoms.iter().any(|record| record.symptom.service() == Some(service))
}

fn list_row(incident: &Incident, now: i64) -> Markup {
    let href = format!("/incidents/{}", encode_path_segment(&incident.id));
    let decision = incident.decision();
    let title = incident.symptoms.first().map(|record| record.symptom.summary.as_str()).unwrap_or("");
    let kind = decision.causes.first().map(|cause| cause.kind.as_str());
    let age_seconds = (incident.resolved_at.unwrap_or(now) - incident.opened_at) / 1_000_000_000;
    html! {
        tr data-incident=(incident.id) data-state=(state_name(incident.state)) {
            td.title { a href=(href) { strong { (incident.id) } } br; span.muted { (title) } }
            td data-label="Journey" { (incident.journeys().join(", ")) }
            td.cause data-label="Cause" {
                @if incident.cause_components.is_empty() { span.muted { "no single cause" } }
                @for component in &incident.cause_components { a href=(format!("/?service={}", encode_query_value(component))) { (component) } " " }
                @if let Some(kind) = kind { span.tag { (kind) } }
            }
            td data-label="Team" { (incident.paged_teams.join(", ")) }
            td data-label="Age" title=(clock(incident.opened_at)) { (age(age_seconds)) }
            td data-label="State" { span class=(format!("state state-{}", state_name(incident.state))) { (state_name(incident.state)) } }
        }
    }
}

pub(crate) fn state_name(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Open => "open",
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Resolving => "resolving",
        IncidentState::Resolved => "resolved",
    }
}

/// The service of a decision's entry (`"frontend POST /api/checkout"` -> `frontend`).
pub(crate) fn entry_service(decision: &Decision) -> Option<&str> {
    decision.entry.as_deref().and_then(|entry| entry.split(' ').next()).filter(|service| !service.is_empty())
}

/// What the page needs from the engine besides the stored incident.
struct Live {
    teams: Vec<String>,
    owners: BTreeMap<String, String>,
    traces: Vec<Exemplar>,
}

struct Exemplar {
    trace_id: String,
    component: String,
    kind: &'static str,
    /// `None`: the trace has left the window.
    spans: Option<Vec<SpanBody>>,
}

pub(super) async fn detail(state: &ApiState, id: &str) -> Result<Content, ApiError> {
    let lookup = id.to_string();
    let (record, deliveries) = with_store(state, move |store| {
        let record = store.incident(&lookup)?;
        let deliveries = store.deliveries(&lookup)?;
        Ok((record, deliveries))
    })
    .await?;
    let Some(record) = record else {
        return Ok(Content {
            title: "Not found".into(),
            body: html! { h1 { "No incident " (id) } p { a href="/" { "All incidents" } } },
            status: StatusCode::NOT_FOUND,
        });
    };
    let incident: Incident = serde_json::from_str(&record.body)
        .map_err(|error| ApiError::internal(format!("unreadable incident snapshot: {error}")))?;
    let components: BTreeSet<String> = incident
        .decisions
        .iter()
        .flat_map(|decision| {
            decision
                .causal_edges
                .iter()
                .flat_map(|edge| [edge.from.clone(), edge.to.clone()])
                .chain(entry_service(decision).map(str::to_string))
        })
        .collect();
    let mut wanted: Vec<(String, String, &'static str)> = Vec::new();
    for candidate in incident.decision().candidates.iter() {
        for trace in &candidate.exemplars {
            let trace = trace.to_string();
            if wanted.len() < MAX_EXEMPLARS && !wanted.iter().any(|(id, _, _)| *id == trace) {
                wanted.push((trace, candidate.component.clone(), candidate.kind.as_str()));
            }
        }
    }
    let live = with_core(state, move |core| {
        let engine = &core.engine;
        let ownership = engine.ownership();
        let owners = components
            .iter()
            .map(|component| {
                let team = ownership
                    .owner(component, "error", None)
                    .map_or_else(|| format!("{} (default)", ownership.default_team), |owner| owner.team);
                (component.clone(), team)
            })
            .collect();
        let window = engine.window();
        let traces = wanted
            .into_iter()
            .map(|(trace_id, component, kind)| {
                let spans = TraceId::from_hex(&trace_id).and_then(|parsed| window.trace(&parsed)).map(|spans| {
                    let view = TraceView::new(spans, window.dictionary());
                    (0..view.len()).map(|index| SpanBody::new(&view, index)).collect()
                });
                Exemplar { trace_id, component, kind, spans }
            })
            .collect();
        Live { teams: ownership.teams.iter().cloned().collect(), owners, traces }
    })
    .await?;
    let now = wall_clock_nanos();
    let body = incident_body(&incident, &deliveries, &live, now);
    let title = format!("{} · {}", incident.id, incident.cause_components.join(" + "));
    Ok(Content { title, body, status: StatusCode::OK })
}

fn incident_body(incident: &Incident, deliveries: &[Delivery], live: &Live, now: i64) -> Markup {
    let decision = incident.decision();
    let title = incident.symptoms.first().map(|record| record.symptom.summary.as_str()).unwrap_or("");
    let state = state_name(incident.state);
    let owner = |component: &str| -> Option<String> {
        decision
            .candidates
            .iter()
            .find(|candidate| candidate.component == component)
            .map(|candidate| candidate.team.clone())
            .or_else(|| live.owners.get(component).cloned())
    };
    html! {
        article.incident data-incident=(incident.id) data-state=(state) {
            div.page-head {
                p.muted { a href="/" { "Incidents" } " / " (incident.id) }
                h1 { (title) }
                p.facts {
                    span class=(format!("state state-{state}")) { (state) }
                    " opened " span title=(clock(incident.opened_at)) { (age((now - incident.opened_at) / 1_000_000_000)) " ago" }
                    @if let Some(resolved) = incident.resolved_at { " · resolved " (clock(resolved)) }
                    " · journeys: " (incident.journeys().join(", "))
                    " · paged: " strong #paged-teams { (incident.paged_teams.join(", ")) }
                    @if !incident.notified_teams.is_empty() { " · notified: " (incident.notified_teams.join(", ")) }
                }
            }
            @if incident.state.is_active() { (actions(incident, &live.teams)) }
            p #action-status role="status" {}
            (brief_summary(incident))
            section.card #causal-chain {
                h2 { "Causal chain" }
                p.muted { "From the journey's entry down the failing calls to the component closest to the cause; edges carry their share of the blame." }
                @match causal_graph(&format!("chain-{}", incident.id), decision, &owner, true) {
                    Some(svg) => div.graph-wrap { (svg) },
                    None => p.empty { "No causal chain: " (decision.reasons.last().map(String::as_str).unwrap_or("no trace evidence")) },
                }
            }
            (brief_sections(incident, true))
            section.card #timeline {
                h2 { "Timeline" }
                (timeline(incident, deliveries))
            }
            section.card #traces {
                h2 { "Exemplar traces" }
                @if live.traces.is_empty() { p.empty { "No exemplar traces were recorded for this decision." } }
                @for exemplar in &live.traces { (waterfall(exemplar)) }
            }
        }
    }
}

fn actions(incident: &Incident, teams: &[String]) -> Markup {
    let id = &incident.id;
    html! {
        section.card.actions #actions data-incident=(id) {
            h2 { "Actions" }
            div.buttons {
                @if incident.state == IncidentState::Open {
                    button #ack type="button" data-action="ack" { "Acknowledge" }
                }
                button #resolve type="button" data-action="resolve" { "Resolve" }
            }
            div.reroute {
                h3 { "Reroute" }
                p.muted { "Page another team and remember the correction for this component and failure kind." }
                div.field {
                    label for="reroute-team" { "Team" }
                    select #reroute-team {
                        @for team in teams {
                            option value=(team) selected[incident.paged_teams.first() == Some(team)] { (team) }
                        }
                    }
                }
                div.field {
                    label for="reroute-reason" { "Reason" }
                    input #reroute-reason type="text" placeholder="why this is that team's" maxlength="500";
                }
                button #reroute type="button" data-action="reroute" { "Reroute" }
            }
        }
    }
}

/// The causal chain as a graph: entry -> ... -> cause, edges labelled with blame shares, the
/// cause highlighted (`data-cause="true"`) with its owner.
pub(crate) fn causal_graph(
    id: &str,
    decision: &Decision,
    owner: &dyn Fn(&str) -> Option<String>,
    linked: bool,
) -> Option<Markup> {
    let entry = entry_service(decision);
    let causes: Vec<&str> = decision.causes.iter().map(|cause| cause.component.as_str()).collect();
    let mut names: Vec<&str> = Vec::new();
    for name in entry
        .into_iter()
        .chain(decision.causal_edges.iter().flat_map(|edge| [edge.from.as_str(), edge.to.as_str()]))
        .chain(causes.iter().copied())
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.len() <= 1 && decision.causal_edges.is_empty() && causes.is_empty() {
        return None;
    }
    let nodes: Vec<GraphNode> = names
        .iter()
        .map(|name| {
            let is_cause = causes.contains(name);
            let is_entry = entry == Some(*name);
            let team = owner(name);
            let share = decision.causes.iter().find(|cause| cause.component == *name).map(|cause| cause.share);
            let mut lines = vec![name.to_string(), format!("owner: {}", team.as_deref().unwrap_or("unknown"))];
            if let Some(share) = share {
                lines.push(format!("cause · {} of blame", percent(share)));
            } else if is_entry {
                lines.push("journey entry".into());
            }
            let mut attributes = vec![("data-component", name.to_string())];
            if is_cause {
                attributes.push(("data-cause", "true".into()));
            }
            if let Some(team) = &team {
                attributes.push(("data-owner", team.clone()));
            }
            let class = match (is_cause, is_entry) {
                (true, _) => "cause",
                (false, true) => "entry",
                _ => "hop",
            };
            GraphNode {
                lines,
                class: class.into(),
                attributes,
                link: linked.then(|| format!("/?service={}", encode_query_value(name))),
                title: format!("{name}: owner {}", team.as_deref().unwrap_or("unknown")),
            }
        })
        .collect();
    let index = |name: &str| names.iter().position(|candidate| *candidate == name);
    let edges: Vec<GraphEdge> = decision
        .causal_edges
        .iter()
        .filter_map(|edge| {
            Some(GraphEdge {
                from: index(&edge.from)?,
                to: index(&edge.to)?,
                label: percent(edge.share),
                class: if causes.contains(&edge.to.as_str()) { "blame to-cause" } else { "blame" },
            })
        })
        .collect();
    graph::render(id, &nodes, &edges, Direction::TopDown, "Causal chain from the journey entry to the cause")
}

/// The brief's summary and, when present, the AI narration, marked as such.
pub(crate) fn brief_summary(incident: &Incident) -> Markup {
    let Some(brief) = &incident.brief else {
        return html! { section.card #summary { h2 { "Summary" } p.empty { "No brief was built for this incident." } } };
    };
    html! {
        section.card #summary {
            h2 { "Summary" }
            p.summary { (brief.summary) }
            @if let Some(narration) = &brief.narration {
                aside.ai #ai-narration data-ai-generated="true" {
                    p.ai-label { "AI-written summary (" (narration.model) ") — it narrates the evidence below and may be wrong; check the cited evidence." }
                    p { (narration.text) }
                    @if !narration.cites.is_empty() { p.muted { "cites " (narration.cites.join(", ")) } }
                }
            }
            h3 { "Why these teams" }
            ul.reasons {
                @for reason in &incident.decision().reasons { li { (reason) } }
            }
        }
    }
}

/// The rest of the brief: probable causes, common attributes, changes, blast radius,
/// remediations, similar incidents.
/// `linked`: similar incidents link to their pages (served UI) or to anchors (a report file).
pub(crate) fn brief_sections(incident: &Incident, linked: bool) -> Markup {
    let Some(brief) = &incident.brief else { return html! {} };
    html! {
        section.card #probable-causes {
            h2 { "Probable causes" }
            @if brief.probable_causes.is_empty() { p.empty { "No candidate stood out." } } @else {
                ol.causes {
                    @for cause in &brief.probable_causes {
                        li {
                            strong { (cause.service) } " " span.tag { (cause.kind.as_str()) } " " span.muted { "owner " (cause.team) " · score " (percent(cause.score)) }
                            br; span { (cause.why) } " " span.evidence { (cause.evidence.join(" ")) }
                        }
                    }
                }
            }
        }
        section.card #common-attributes {
            h2 { "What the failing requests have in common" }
            @if brief.common_attributes.is_empty() {
                p.empty { (brief.common_attributes_note.as_deref().unwrap_or("Nothing stands out.")) }
            } @else {
                div.table-wrap { table {
                    thead { tr { th { "Component" } th { "Attribute" } th { "In failures" } th { "In baseline" } } }
                    tbody {
                        @for attribute in &brief.common_attributes {
                            tr {
                                td { (attribute.component) }
                                td { code { (attribute.key) "=" (attribute.value) } }
                                td { (percent(attribute.share_bad)) " " span.muted { "(" (attribute.n_bad) ")" } }
                                td { (percent(attribute.share_baseline)) " " span.muted { "(" (attribute.n_baseline) ")" } }
                            }
                        }
                    }
                } }
            }
        }
        section.card #changes {
            h2 { "Changes near the onset" }
            @if brief.changes.is_empty() { p.empty { "No deploy or config change of the blamed component or its dependencies near the onset." } } @else {
                ul { @for change in &brief.changes {
                    li {
                        strong { (change.service) } " " span.tag { (change.kind) } " "
                        @if let Some(version) = &change.version {
                            (change.previous_version.as_deref().unwrap_or("?")) " → " (version) " "
                        }
                        span.muted { (format!("{:.0}", change.minutes_before_onset)) " min before onset · " (change.source) } " " (change.summary)
                    }
                } }
            }
        }
        section.card #blast-radius {
            h2 { "Blast radius" }
            @if brief.blast_radius.journeys.is_empty() && brief.blast_radius.callers.is_empty() { p.empty { "No other journey or caller affected." } }
            ul {
                @for journey in &brief.blast_radius.journeys {
                    li { strong { (journey.journey) } ": " (percent(journey.bad_share)) " of " (journey.requests) " requests bad (" (format!("{:?}", journey.kind).to_lowercase()) ")" }
                }
                @if !brief.blast_radius.callers.is_empty() { li { "callers affected: " (brief.blast_radius.callers.join(", ")) } }
            }
        }
        section.card #remediations {
            h2 { "Remediation options" }
            @if brief.remediations.is_empty() { p.empty { "None suggested by the evidence." } }
            ul { @for remediation in &brief.remediations {
                li {
                    strong { (remediation.action) } " "
                    @if remediation.target.starts_with("https://") || remediation.target.starts_with("http://") {
                        a href=(remediation.target) rel="noopener noreferrer" { (remediation.target) }
                    } @else { (remediation.target) }
                    br; span.muted { (remediation.why) }
                }
            } }
        }
        section.card #similar {
            h2 { "Similar past incidents" }
            @if brief.similar_incidents.is_empty() { p.empty { "None with the same component and failure kind." } }
            ul { @for similar in &brief.similar_incidents {
                li {
                    a href=(if linked { format!("/incidents/{}", encode_path_segment(&similar.id)) } else { format!("#{}", similar.id) }) { (similar.id) } " "
                    (clock(similar.opened_at))
                    @if let Some(minutes) = similar.duration_minutes { " · " (format!("{minutes:.0}")) " min" }
                    " · paged " (similar.paged_teams.join(", ")) " · " (similar.ended)
                }
            } }
        }
    }
}

struct Entry {
    at: i64,
    kind: String,
    text: String,
    class: &'static str,
}

fn timeline(incident: &Incident, deliveries: &[Delivery]) -> Markup {
    let mut entries: Vec<Entry> = incident
        .timeline
        .iter()
        .map(|event| Entry {
            at: event.at,
            kind: event.kind.replace('_', " "),
            text: event.text.clone(),
            class: match event.kind.as_str() {
                "symptom" => "symptom",
                "decision" => "decision",
                "rerouted" => "reroute",
                "acknowledged" => "ack",
                _ => "event",
            },
        })
        .collect();
    for effect in &incident.effects {
        let text = match effect.action {
            Action::Page => format!("paged {}", effect.team),
            Action::Notify => format!("notified {}", effect.team),
            Action::Update => format!("updated {}", effect.team),
            Action::Acknowledge => format!("acknowledgement sent to {}", effect.team),
            Action::Resolve => format!("resolve sent to {}", effect.team),
        };
        let note = if effect.note.is_empty() { String::new() } else { format!(": {}", effect.note) };
        entries.push(Entry { at: effect.at, kind: effect.action.as_str().into(), text: text + &note, class: "page" });
    }
    for delivery in deliveries {
        let status = format!("{:?}", delivery.status).to_lowercase();
        let mut text = format!(
            "{} via {} to {}: {status} after {} attempt{}",
            delivery.new.action,
            delivery.new.channel,
            delivery.new.team,
            delivery.attempts,
            if delivery.attempts == 1 { "" } else { "s" }
        );
        if let Some(error) = &delivery.last_error {
            text.push_str(&format!(" (last error: {error})"));
        }
        let at = delivery.delivered_at.unwrap_or(delivery.new.created_at);
        let class = if status == "failed" { "delivery failed" } else { "delivery" };
        entries.push(Entry { at, kind: "delivery".into(), text, class });
    }
    if let Some(brief) = &incident.brief {
        for change in &brief.changes {
            let version = change.version.as_deref().map(|version| format!(" {version}")).unwrap_or_default();
            entries.push(Entry {
                at: change.at,
                kind: "change".into(),
                text: format!("{} {}{version}: {}", change.service, change.kind, change.summary),
                class: "change",
            });
        }
    }
    entries.sort_by_key(|entry| entry.at);
    html! {
        ol.timeline {
            @for entry in &entries {
                li class=(entry.class) data-kind=(entry.kind) {
                    time { (clock(entry.at)) }
                    span.kind { (entry.kind) }
                    span.text { (entry.text) }
                }
            }
        }
    }
}

fn waterfall(exemplar: &Exemplar) -> Markup {
    let Some(spans) = &exemplar.spans else {
        return html! {
            div.waterfall data-trace=(exemplar.trace_id) {
                h3 { code { (exemplar.trace_id) } }
                p.empty { "This trace is no longer in the trace window (it keeps the last minutes of traffic); its evidence is summarised above." }
            }
        };
    };
    let start = spans.iter().map(|span| span.start_unix_nano).min().unwrap_or(0);
    let end = spans.iter().map(|span| span.end_unix_nano).max().unwrap_or(start).max(start + 1);
    let total = (end - start) as f64;
    // Depth-first order under each root, children by start time.
    let mut children: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    let ids: BTreeSet<&str> = spans.iter().map(|span| span.span_id.as_str()).collect();
    for (index, span) in spans.iter().enumerate() {
        let parent = span.parent_span_id.as_deref().filter(|parent| ids.contains(parent));
        children.entry(parent).or_default().push(index);
    }
    for list in children.values_mut() {
        list.sort_by_key(|index| spans[*index].start_unix_nano);
    }
    let mut order: Vec<(usize, usize)> = Vec::new();
    let mut stack: Vec<(usize, usize)> =
        children.get(&None).map(|roots| roots.iter().rev().map(|index| (*index, 0)).collect()).unwrap_or_default();
    while let Some((index, depth)) = stack.pop() {
        order.push((index, depth));
        if let Some(kids) = children.get(&Some(spans[index].span_id.as_str())) {
            stack.extend(kids.iter().rev().map(|kid| (*kid, depth + 1)));
        }
    }
    let error_kind = exemplar.kind != "latency";
    let blamed = |span: &SpanBody| {
        let of_component = span.service == exemplar.component || span.callee.as_deref() == Some(&exemplar.component);
        of_component && (!error_kind || span.error)
    };
    let hidden = order.len().saturating_sub(MAX_WATERFALL_SPANS);
    html! {
        div.waterfall data-trace=(exemplar.trace_id) {
            h3 { "trace " code { (exemplar.trace_id) } }
            p.muted { (spans.len()) " spans · " (format!("{:.1}", total / 1e6)) " ms · spans of the blamed component " strong { (exemplar.component) } " are marked" }
            div.spans {
                @for (index, depth) in order.iter().take(MAX_WATERFALL_SPANS) {
                    @let span = &spans[*index];
                    @let left = (span.start_unix_nano - start) as f64 / total * 100.0;
                    @let width = ((span.end_unix_nano - span.start_unix_nano) as f64 / total * 100.0).max(0.5);
                    @let is_blamed = blamed(span);
                    div class=(format!("span-row{}{}", if span.error { " error" } else { "" }, if is_blamed { " blamed" } else { "" }))
                        data-blamed=[is_blamed.then_some("true")] {
                        div.span-name style=(format!("padding-left:{}px", (depth * 10).min(120))) title=(format!("{} {}", span.service, span.name)) {
                            @if is_blamed { span.marker title="blamed component" { "▶ " } }
                            span.service { (span.service) } " " (span.name)
                            @if let Some(callee) = &span.callee { span.muted { " → " (callee) } }
                        }
                        div.span-track {
                            div.span-bar style=(format!("left:{left:.2}%;width:{:.2}%", width.min(100.0 - left).max(0.5))) {}
                        }
                        div.span-duration { (format!("{:.1}", span.duration_ms)) " ms"
                            @if let Some(status) = span.http_status { " · " (status) }
                        }
                    }
                }
            }
            @if hidden > 0 { p.muted { (hidden) " more spans not drawn" } }
        }
    }
}
