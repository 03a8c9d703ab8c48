//! The service map, journeys (SLO status, error budget, burn-rate charts) and teams (pages
//! received, and the pages absorbed for failures caused elsewhere).

use axum::http::StatusCode;
use causeway_engine::analysis::SymptomKind;
use causeway_engine::slo::{MinuteCounts, burn};
use causeway_engine::topology::Topology;
use causeway_engine::{NANOS_PER_MIN, TraceSource, TraceView};
use maud::{Markup, html};

use super::chart::{self, BurnSeries};
use super::graph::{self, Direction, GraphEdge, GraphNode};
use super::{Content, encode_path_segment, encode_query_value, percent, trusted};
use crate::api::{ApiError, ApiState, with_core};
use crate::pipeline::wall_clock_nanos;

/// How far back the burn-rate charts reach.
const CHART_HOURS: i64 = 6;

struct ServiceRow {
    name: String,
    owner: String,
    uninstrumented: bool,
    requests: u64,
    errors: u64,
}

impl ServiceRow {
    fn error_ratio(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }

    /// Health bands an SRE reads at a glance: <1% errors healthy, <5% degraded, else failing.
    fn health(&self) -> &'static str {
        match self.error_ratio() {
            _ if self.requests == 0 => "idle",
            ratio if ratio < 0.01 => "ok",
            ratio if ratio < 0.05 => "warn",
            _ => "bad",
        }
    }
}

pub(super) async fn services(state: &ApiState) -> Result<Content, ApiError> {
    let (rows, calls) = with_core(state, |core| {
        let engine = &core.engine;
        let window = engine.window();
        let mut topology = Topology::default();
        for (_, spans) in window.traces() {
            topology.observe(&TraceView::new(spans, window.dictionary()));
        }
        let dictionary = window.dictionary();
        let ownership = engine.ownership();
        let rows: Vec<ServiceRow> = topology
            .nodes
            .iter()
            .map(|(name, stats)| {
                let name = dictionary.str(*name).to_string();
                let owner = ownership
                    .owner(&name, "error", None)
                    .map_or_else(|| format!("{} (default)", ownership.default_team), |owner| owner.team);
                ServiceRow {
                    name,
                    owner,
                    uninstrumented: stats.uninstrumented,
                    requests: stats.requests,
                    errors: stats.errors,
                }
            })
            .collect();
        let calls: Vec<(String, String, u64, u64)> = topology
            .edges
            .iter()
            .map(|((caller, callee), stats)| {
                (dictionary.str(*caller).to_string(), dictionary.str(*callee).to_string(), stats.calls, stats.errors)
            })
            .collect();
        (rows, calls)
    })
    .await?;
    // Failing first, so the table answers "what is broken" before "what exists".
    let mut rows = rows;
    rows.sort_by(|a, b| {
        let rank = |row: &ServiceRow| match row.health() {
            "bad" => 0,
            "warn" => 1,
            "ok" => 2,
            _ => 3,
        };
        rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
    });
    let nodes: Vec<GraphNode> = rows
        .iter()
        .map(|row| {
            let mut lines = vec![row.name.clone(), format!("owner: {}", row.owner)];
            if row.requests > 0 {
                lines.push(format!("{} errors of {}", percent(row.error_ratio()), row.requests));
            }
            GraphNode {
                lines,
                class: format!("health-{}{}", row.health(), if row.uninstrumented { " uninstrumented" } else { "" }),
                attributes: vec![
                    ("data-service", row.name.clone()),
                    ("data-health", row.health().to_string()),
                    ("data-owner", row.owner.clone()),
                ],
                link: Some(format!("/?service={}", encode_query_value(&row.name))),
                title: format!("{}: incidents involving it", row.name),
            }
        })
        .collect();
    let index = |name: &str| rows.iter().position(|row| row.name == name);
    let edges: Vec<GraphEdge> = calls
        .iter()
        .filter_map(|(caller, callee, _, errors)| {
            Some(GraphEdge {
                from: index(caller)?,
                to: index(callee)?,
                label: String::new(),
                class: if *errors > 0 { "call failing" } else { "call" },
            })
        })
        .collect();
    let map = graph::render("service-map", &nodes, &edges, Direction::LeftRight, "Service map coloured by health");
    let body = html! {
        div.page-head {
            h1 { "Services" }
            p.muted { "Learned from the traces in the window: services and the uninstrumented dependencies they call, coloured by error ratio, each with its owner. Click one for its incidents." }
        }
        @if rows.is_empty() {
            p.empty { "No traces in the window yet. Point an OpenTelemetry SDK or Collector at the OTLP receivers." }
        } @else {
            section.card #service-map-card {
                div.legend {
                    span.swatch.health-ok { "healthy (<1% errors)" }
                    span.swatch.health-warn { "degraded (<5%)" }
                    span.swatch.health-bad { "failing" }
                    span.swatch.uninstrumented { "uninstrumented dependency" }
                }
                @match map {
                    Some(svg) => div.graph-wrap.scroll { (svg) },
                    None => p.empty { "The map could not be laid out; the table lists every service." },
                }
            }
            section.card {
                div.table-wrap { table.list #services {
                    thead { tr { th { "Service" } th { "Owner" } th { "Requests" } th { "Errors" } th { "Health" } } }
                    tbody {
                        @for row in &rows {
                            tr data-service=(row.name) {
                                td { a href=(format!("/?service={}", encode_query_value(&row.name))) { (row.name) }
                                    @if row.uninstrumented { " " span.tag { "uninstrumented" } } }
                                td { (row.owner) }
                                td { (row.requests) }
                                td { (row.errors) " " span.muted { "(" (percent(row.error_ratio())) ")" } }
                                td { span class=(format!("dot health-{}", row.health())) {} " " (row.health()) }
                            }
                        }
                    }
                } }
            }
        }
    };
    Ok(Content { title: "Services".into(), body, status: StatusCode::OK })
}

struct JourneyView {
    name: String,
    entry: String,
    owner: String,
    status: Option<causeway_engine::slo::JourneyStatus>,
    charts: Vec<(SymptomKind, Vec<BurnSeries>)>,
    drawn: Vec<(SymptomKind, String)>,
    active: Vec<(String, String, String)>,
}

pub(super) async fn journeys(state: &ApiState) -> Result<Content, ApiError> {
    let views = with_core(state, |core| {
        let engine = &core.engine;
        let now = wall_clock_nanos();
        let statuses = engine.slo().status(now);
        engine
            .journeys()
            .iter()
            .map(|journey| {
                let owner = journey
                    .owner
                    .clone()
                    .or_else(|| engine.ownership().owner(&journey.entry_service, "error", None).map(|owner| owner.team))
                    .unwrap_or_else(|| engine.ownership().default_team.clone());
                let mut slis = Vec::new();
                if let Some(target) = journey.slo.availability {
                    slis.push((SymptomKind::Error, target));
                }
                if let Some(latency) = journey.slo.latency {
                    slis.push((SymptomKind::Latency, latency.target));
                }
                // Series under the lock; drawing them waits until the core is released.
                let charts = match engine.slo().journey_state(&journey.name) {
                    Some(sli) => slis
                        .into_iter()
                        .map(|(kind, target)| (kind, burn_series(sli, journey, kind, 1.0 - target, now)))
                        .collect(),
                    None => Vec::new(),
                };
                let active = engine
                    .incidents()
                    .iter()
                    .filter(|incident| incident.state.is_active())
                    .flat_map(|incident| {
                        incident
                            .symptoms
                            .iter()
                            .filter(|record| {
                                record.resolved_at.is_none() && record.symptom.journey() == Some(journey.name.as_str())
                            })
                            .map(|record| {
                                (
                                    incident.id.clone(),
                                    record.symptom.summary.clone(),
                                    super::clock(record.symptom.fired_at),
                                )
                            })
                    })
                    .collect();
                JourneyView {
                    name: journey.name.clone(),
                    entry: format!("{} {}", journey.entry_service, journey.entry_operation),
                    owner,
                    status: statuses.iter().find(|status| status.journey == journey.name).cloned(),
                    charts,
                    drawn: Vec::new(),
                    active,
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    let mut views = views;
    // Burning journeys first: they are why someone opened this page.
    views.sort_by_key(|view| view.active.is_empty());
    for view in &mut views {
        for (kind, series) in std::mem::take(&mut view.charts) {
            let title = format!("{} {} burn rate per tier", view.name, kind_name(kind));
            match chart::burn_rates(&title, &series) {
                Ok(svg) => view.drawn.push((kind, svg)),
                Err(error) => tracing::warn!(journey = %view.name, %error, "cannot draw a burn-rate chart"),
            }
        }
    }
    let body = html! {
        div.page-head {
            h1 { "Journeys" }
            p.muted { "The operations users care about, their SLOs, error budgets and burn rates. A page tier fires when both its long and short windows burn faster than its threshold." }
        }
        @if views.is_empty() { p.empty { "No journeys configured (" code { "journeys:" } " in causeway.yaml)." } }
        @for view in &views { (journey_card(view)) }
    };
    Ok(Content { title: "Journeys".into(), body, status: StatusCode::OK })
}

fn kind_name(kind: SymptomKind) -> &'static str {
    match kind {
        SymptomKind::Error => "availability",
        SymptomKind::Latency => "latency",
    }
}

/// One point per minute over the chart's hours: each tier's burn over its long window, as the
/// engine computes it (the same sums, the same cold-start scaling, the same formula).
fn burn_series(
    sli: &causeway_engine::slo::JourneySli,
    journey: &causeway_engine::journey::Journey,
    kind: SymptomKind,
    budget: f64,
    now: i64,
) -> Vec<BurnSeries> {
    let last = now.div_euclid(NANOS_PER_MIN);
    // Six hours, or from shortly before the first counted minute when the history is younger
    // (a fresh server would otherwise draw hours of nothing), but never less than an hour.
    let counted_since = sli.minutes().first().map_or(last, |(minute, _)| *minute);
    let first = (last - CHART_HOURS * 60).max(counted_since - 5).min(last - 60);
    let longest = journey.slo.tiers.iter().map(|tier| tier.long / NANOS_PER_MIN).max().unwrap_or(60).max(1);
    let origin = first - longest;
    // Prefix sums over [origin, last] so every window is two lookups.
    let length = (last - origin + 1) as usize;
    let mut minutes = vec![MinuteCounts::default(); length];
    for (minute, counts) in sli.minutes() {
        if minute >= origin && minute <= last {
            minutes[(minute - origin) as usize] = counts;
        }
    }
    let mut prefix = vec![(0u64, 0u64, 0u64); length + 1];
    for (index, counts) in minutes.iter().enumerate() {
        let (total, errors, slow) = prefix[index];
        prefix[index + 1] =
            (total + u64::from(counts.total), errors + u64::from(counts.errors), slow + u64::from(counts.slow));
    }
    let window_sum = |end: i64, window_minutes: i64| {
        let hi = (end - origin + 1) as usize;
        let lo = (end - window_minutes + 1 - origin).max(0) as usize;
        let clamp = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
        MinuteCounts {
            total: clamp(prefix[hi].0 - prefix[lo].0),
            errors: clamp(prefix[hi].1 - prefix[lo].1),
            slow: clamp(prefix[hi].2 - prefix[lo].2),
        }
    };
    journey
        .slo
        .tiers
        .iter()
        .map(|tier| {
            let window_minutes = ((tier.long + NANOS_PER_MIN - 1) / NANOS_PER_MIN).max(1);
            let points = (first..=last)
                .map(|minute| {
                    let at = minute * NANOS_PER_MIN;
                    let counts = sli.effective(at, tier.long, window_sum(minute, window_minutes));
                    (minute, (burn(counts, kind, budget) * 100.0).round() / 100.0)
                })
                .collect();
            BurnSeries { name: tier.name.clone(), points, threshold: tier.burn, page: tier.page }
        })
        .collect()
}

fn journey_card(view: &JourneyView) -> Markup {
    let healthy = view.active.is_empty();
    html! {
        section.card.journey data-journey=(view.name) {
            h2 { (view.name) " " span class=(if healthy { "state state-resolved" } else { "state state-open" }) { (if healthy { "healthy" } else { "burning" }) } }
            p.muted { "entry " code { (view.entry) } " · owner " (view.owner) }
            @for (incident, summary, fired) in &view.active {
                p.alert { a href=(format!("/incidents/{}", encode_path_segment(incident))) { (incident) } ": " (summary) " " span.muted { "since " (fired) } }
            }
            @if let Some(status) = &view.status {
                @for sli in &status.slis {
                    div.sli data-kind=(kind_name(sli.kind)) {
                        h3 { (kind_name(sli.kind)) " SLO " (format!("{:.2}%", sli.target * 100.0)) }
                        div.budget {
                            span { "error budget left: " strong { (percent(sli.budget_remaining.max(0.0))) } }
                            div.meter { div.fill style=(format!("width:{:.1}%", (sli.budget_remaining.clamp(0.0, 1.0) * 100.0))) {} }
                            span.muted title="Until a whole SLO period is counted, the period's requests are estimated from the rate so far." { (sli.period_bad) " bad of " (sli.period_requests) " requests counted this period" }
                        }
                        div.table-wrap { table.tiers {
                            thead { tr { th { "Tier" } th { "Windows" } th { "Burn (long)" } th { "Burn (short)" } th { "Alert at" } th { "" } } }
                            tbody { @for tier in &sli.tiers {
                                tr class=[tier.firing.then_some("firing")] {
                                    td { (tier.name) " " span.tag { (if tier.page { "page" } else { "ticket" }) } }
                                    td { (window(tier.long_window_s)) " / " (window(tier.short_window_s)) }
                                    td { (format!("{:.2}×", tier.burn_long)) }
                                    td { (format!("{:.2}×", tier.burn_short)) }
                                    td { (format!("{}×", tier.threshold)) }
                                    td { @if tier.firing { strong { "firing" } } }
                                }
                            } }
                        } }
                        @if let Some((_, svg)) = view.drawn.iter().find(|(kind, _)| *kind == sli.kind) {
                            div.chart-wrap { (trusted(svg.clone())) }
                        }
                    }
                }
            }
        }
    }
}

fn window(seconds: i64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{}m", s / 60),
    }
}

pub(super) async fn teams(state: &ApiState) -> Result<Content, ApiError> {
    let rows = crate::api::team_summaries(state).await?;
    let chart_rows: Vec<(String, u64, u64)> = rows
        .iter()
        .filter(|row| row.pages + row.static_pages > 0)
        .map(|row| (row.team.clone(), row.pages, row.static_pages))
        .collect();
    let total_absorbed: u64 = rows.iter().map(|row| row.absorbed).sum();
    let chart = if chart_rows.is_empty() {
        None
    } else {
        chart::pages_by_team("Pages per team: Causeway against static routing", &chart_rows)
            .map_err(|error| tracing::warn!(%error, "cannot draw the pages chart"))
            .ok()
    };
    let body = html! {
        div.page-head {
            h1 { "Teams" }
            p.muted { "Pages each team received from Causeway, what static routing (every symptom to the journey's owner) would have sent, and how many of those were for failures caused elsewhere: the pages adaptive paging took off that team." }
        }
        p.summary #absorbed-total { strong { (total_absorbed) } " pages absorbed for failures caused downstream." }
        @if let Some(svg) = chart { section.card { div.chart-wrap { (trusted(svg)) } } }
        section.card {
            div.table-wrap { table.list #teams {
                thead { tr { th { "Team" } th { "Pages received" } th { "Static routing" } th { "Absorbed (caused elsewhere)" } th { "Channels" } th { "Owns" } } }
                tbody { @for crate::api::TeamSummary { team, pages: received, static_pages, absorbed, channels, owns, .. } in &rows {
                    tr data-team=(team) {
                        td { a href=(format!("/?team={}", encode_query_value(team))) { (team) } }
                        td.pages { (received) }
                        td { (static_pages) }
                        td.absorbed { (absorbed) }
                        td { @if channels.is_empty() { span.error { "none configured" } } @else { (channels.join(", ")) } }
                        td { (owns.len()) @if !owns.is_empty() { " " span.muted { "(" (owns.iter().take(6).cloned().collect::<Vec<_>>().join(", ")) @if owns.len() > 6 { ", …" } ")" } } }
                    }
                } }
            } }
        }
    };
    Ok(Content { title: "Teams".into(), body, status: StatusCode::OK })
}
