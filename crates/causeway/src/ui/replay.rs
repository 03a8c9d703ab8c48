//! `causeway replay --format html`: the replay report as one self-contained HTML file, built
//! from the same components as the served UI (causal chain graph, brief, pages-per-team
//! chart). Styles are inlined; there is no script and nothing to fetch, so the file can be
//! mailed, attached to a ticket or opened offline.

use causeway_engine::Engine;
use causeway_engine::incident::Incident;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::incidents::{brief_sections, brief_summary, causal_graph, state_name};
use super::{STYLE, chart, clock, percent, trusted};
use crate::replay::Report;

pub fn html(report: &Report, engine: &Engine) -> String {
    let mut incidents: Vec<&Incident> = engine.incidents().iter().collect();
    incidents.sort_by_key(|incident| (incident.opened_at, incident.id.clone()));
    let teams: Vec<(String, u64, u64)> = report
        .summary
        .pages_by_team
        .iter()
        .map(|(team, pages)| (team.clone(), pages.adaptive, pages.static_routing))
        .collect();
    let chart = if teams.is_empty() {
        None
    } else {
        chart::pages_by_team("Pages per team: Causeway (adaptive) against static routing", &teams)
            .map_err(|error| tracing::warn!(%error, "cannot draw the pages chart"))
            .ok()
    };
    let ownership = engine.ownership();
    let markup: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Causeway replay report" }
                style { (PreEscaped(STYLE)) }
            }
            body.report {
                header.top { span.brand { "Causeway" } nav { span { "replay report" } } }
                main #main {
                    div.page-head {
                        h1 { "Replay report" }
                        p.muted { (report.spans) " spans in " (report.traces) " traces · " (report.summary.incidents) " incidents" }
                    }
                    section.card #pages {
                        h2 { "Pages: adaptive against static routing" }
                        p.summary {
                            "Causeway paged " strong { (report.summary.pages) } " times; static routing (every symptom to its journey owner or alert receiver) would have paged "
                            strong { (report.summary.static_pages) } " times."
                        }
                        @if let Some(svg) = chart { div.chart-wrap { (trusted(svg)) } }
                        div.table-wrap { table.list {
                            thead { tr { th { "Team" } th { "Causeway" } th { "Static routing" } } }
                            tbody { @for (team, adaptive, fixed) in &teams { tr { td { (team) } td { (adaptive) } td { (fixed) } } } }
                        } }
                    }
                    @if let Some(score) = &report.score {
                        section.card #score {
                            h2 { "Score against ground truth" }
                            p.summary {
                                (score.faults) " faults, " (score.detected) " detected; team top-1 " (percent(score.team_top1))
                                ", service top-1 " (percent(score.service_top1)) ", service top-3 " (percent(score.service_top3))
                                "; " (score.false_pages) " false pages."
                            }
                            div.table-wrap { table.list {
                                thead { tr { th { "Fault kind" } th { "Faults" } th { "Detected" } th { "Team top-1" } th { "Service top-1" } th { "Static" } th { "Deepest error" } th { "Slowest span" } } }
                                tbody { @for (kind, figures) in &score.by_kind {
                                    @let naive = |name: &str| score.naive.get(name).and_then(|n| n.by_kind.get(kind)).copied().unwrap_or(0.0);
                                    tr {
                                        td { (kind) } td { (figures.faults) } td { (figures.detected) }
                                        td { (percent(figures.team_top1)) } td { (percent(figures.service_top1)) }
                                        td { (percent(naive("static"))) } td { (percent(naive("deepest_error"))) } td { (percent(naive("slowest_span"))) }
                                    }
                                } }
                            } }
                        }
                    }
                    section.card #incident-list {
                        h2 { "Incidents" }
                        @if incidents.is_empty() { p.empty { "The replay opened no incident." } }
                        div.table-wrap { table.list {
                            thead { tr { th { "Incident" } th { "Opened" } th { "Cause" } th { "Paged" } th { "Confidence" } th { "State" } } }
                            tbody { @for incident in &incidents {
                                tr {
                                    td { a href=(format!("#{}", incident.id)) { (incident.id) } }
                                    td { (clock(incident.opened_at)) }
                                    td { (incident.cause_components.join(" + ")) }
                                    td { (incident.paged_teams.join(", ")) }
                                    td { (percent(incident.decision().confidence)) }
                                    td { (state_name(incident.state)) }
                                }
                            } }
                        } }
                    }
                    @for incident in &incidents {
                        @let decision = incident.decision();
                        @let owner = |component: &str| -> Option<String> {
                            decision.candidates.iter().find(|c| c.component == component).map(|c| c.team.clone())
                                .or_else(|| ownership.owner(component, "error", None).map(|owner| owner.team))
                        };
                        article.incident.report-incident id=(incident.id) {
                            h2 { (incident.id) " · " (incident.symptoms.first().map(|r| r.symptom.summary.as_str()).unwrap_or("")) }
                            p.facts { "opened " (clock(incident.opened_at)) " · paged " strong { (incident.paged_teams.join(", ")) } " · " (state_name(incident.state)) }
                            (brief_summary(incident))
                            section.card {
                                h2 { "Causal chain" }
                                @match causal_graph(&format!("chain-{}", incident.id), decision, &owner, false) {
                                    Some(svg) => div.graph-wrap { (svg) },
                                    None => p.empty { "No causal chain: routed without trace evidence." },
                                }
                            }
                            (brief_sections(incident, false))
                        }
                    }
                    @if !report.diagnostics.problems.is_empty() {
                        section.card #problems {
                            h2 { "Input problems" }
                            ul { @for problem in &report.diagnostics.problems { li { (problem) } } }
                        }
                    }
                }
            }
        }
    };
    markup.into_string()
}
