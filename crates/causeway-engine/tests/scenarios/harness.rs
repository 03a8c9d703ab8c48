//! The scenario harness: parse a fixture, generate its traffic, run the engine, check, snapshot.

use std::collections::BTreeMap;
use std::path::Path;

use causeway_engine::analysis::SymptomKind;
use causeway_engine::engine::{Engine, EngineConfig, RoutingConfig};
use causeway_engine::incident::{Symptom, SymptomSource, SymptomTarget};
use causeway_engine::journey::{BurnTier, Journey, LatencySlo, Slo};
use causeway_engine::model::{
    CalleeKind, IncomingSpan, Link, NANOS_PER_MIN, NANOS_PER_MS, Nanos, Resource, Span, SpanId, SpanKind, StatusCode,
    TraceId,
};
use causeway_engine::ownership::{OwnerSource, Ownership};
use causeway_engine::{Symbol, WindowConfig};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    /// component -> team
    #[serde(default)]
    owners: BTreeMap<String, String>,
    #[serde(default = "default_team")]
    default_team: String,
    #[serde(default)]
    journeys: Vec<JourneyFixture>,
    traces: BTreeMap<String, String>,
    traffic: Vec<Traffic>,
    #[serde(default)]
    events: Vec<Event>,
    #[serde(default)]
    routing: RoutingFixture,
    expect: Expect,
}

fn default_team() -> String {
    "sre".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JourneyFixture {
    name: String,
    service: String,
    operation: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    latency_ms: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RoutingFixture {
    #[serde(default)]
    min_traces: Option<usize>,
}

/// Traces started every `every_ms` in `[from_min, to_min)`, templates mixed by weight.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Traffic {
    from_min: f64,
    to_min: f64,
    every_ms: i64,
    mix: BTreeMap<String, u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "do", rename_all = "snake_case")]
enum Event {
    Fire {
        at_min: f64,
        id: String,
        #[serde(default)]
        journey: Option<String>,
        #[serde(default)]
        service: Option<String>,
        #[serde(default)]
        kind: Option<SymptomKind>,
        #[serde(default = "yes")]
        may_page: bool,
        #[serde(default)]
        team: Option<String>,
    },
    Clear {
        at_min: f64,
        id: String,
    },
    Reroute {
        at_min: f64,
        incident: String,
        team: String,
    },
    Acknowledge {
        at_min: f64,
        incident: String,
    },
    Change {
        at_min: f64,
        service: String,
        version: String,
    },
}

fn yes() -> bool {
    true
}

impl Event {
    fn at(&self) -> Nanos {
        let minutes = match self {
            Event::Fire { at_min, .. }
            | Event::Clear { at_min, .. }
            | Event::Reroute { at_min, .. }
            | Event::Acknowledge { at_min, .. }
            | Event::Change { at_min, .. } => *at_min,
        };
        minutes_to_nanos(minutes)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Incidents opened over the whole scenario.
    incidents: usize,
    /// Teams paged (the `page` action), in order, over the whole scenario.
    pages: Vec<String>,
    /// Cause components of the first incident (empty when none).
    #[serde(default)]
    causes: Vec<String>,
    #[serde(default)]
    outcome: Option<String>,
    /// Teams notified, in order.
    #[serde(default)]
    notified: Option<Vec<String>>,
    /// Components that must not be among the first incident's top candidates.
    #[serde(default)]
    not_blamed: Vec<String>,
    /// Texts the first incident's brief must contain (its JSON form).
    #[serde(default)]
    brief_contains: Vec<String>,
    /// Texts the first incident's brief must not contain.
    #[serde(default)]
    brief_lacks: Vec<String>,
    /// Texts some incident's timeline must contain.
    #[serde(default)]
    timeline_contains: Vec<String>,
}

const START: Nanos = 1_700_000_000 * 1_000_000_000;

fn minutes_to_nanos(minutes: f64) -> Nanos {
    START + (minutes * NANOS_PER_MIN as f64) as Nanos
}

pub fn check(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/fixtures").join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let fixture: Fixture = serde_norway::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let templates: BTreeMap<String, Vec<TemplateSpan>> =
        fixture.traces.iter().map(|(name, text)| (name.clone(), parse_template(name, text))).collect();

    let mut ownership = Ownership::new(&fixture.default_team);
    for (component, team) in &fixture.owners {
        ownership.assign(component, team, OwnerSource::OwnersFile);
    }
    let journeys = fixture
        .journeys
        .iter()
        .map(|journey| Journey {
            name: journey.name.clone(),
            entry_service: journey.service.clone(),
            entry_operation: journey.operation.clone(),
            owner: journey.owner.clone(),
            slo: Slo {
                availability: Some(0.999),
                latency: journey.latency_ms.map(|ms| LatencySlo { threshold: ms * NANOS_PER_MS, target: 0.99 }),
                period: 28 * 24 * 60 * NANOS_PER_MIN,
                tiers: BurnTier::google(28 * 24 * 60 * NANOS_PER_MIN),
                min_requests: 10,
            },
        })
        .collect();
    let mut routing = RoutingConfig::default();
    if let Some(min_traces) = fixture.routing.min_traces {
        routing.thresholds.min_traces = min_traces;
    }
    let config = EngineConfig {
        window: WindowConfig { retention: 60 * NANOS_PER_MIN, max_memory: 1 << 30 },
        routing,
        journeys,
        // Scenarios inject their symptoms; the SLO detector has its own tests.
        slo_symptoms: false,
    };
    let mut engine = Engine::new(config, ownership);

    // Generate every trace, then feed spans in end-time order, interleaved with events and
    // ticks: spans become visible at their end time, as in replay.
    let mut spans = generate(&fixture, &templates, &mut engine);
    spans.sort_by_key(|(visible, _)| *visible);
    let mut events: Vec<&Event> = fixture.events.iter().collect();
    events.sort_by_key(|event| event.at());
    let end = spans.last().map_or(START, |(visible, _)| *visible).max(events.last().map_or(START, |e| e.at()))
        + 20 * NANOS_PER_MIN;
    let mut span_cursor = 0;
    let mut event_cursor = 0;
    let mut now = START;
    let mut incident_ids: Vec<String> = Vec::new();
    while now <= end {
        let mut batch = Vec::new();
        while span_cursor < spans.len() && spans[span_cursor].0 <= now {
            batch.push(spans[span_cursor].1.clone());
            span_cursor += 1;
        }
        if !batch.is_empty() {
            engine.ingest(now, batch);
        }
        while event_cursor < events.len() && events[event_cursor].at() <= now {
            apply_event(&mut engine, events[event_cursor], now, &incident_ids);
            event_cursor += 1;
        }
        engine.tick(now);
        for incident in engine.incidents() {
            if !incident_ids.contains(&incident.id) {
                incident_ids.push(incident.id.clone());
            }
        }
        now += 1_000 * NANOS_PER_MS;
    }

    let incidents = engine.incidents();
    let effects: Vec<_> = incidents.iter().flat_map(|incident| incident.effects.iter()).collect();
    let pages: Vec<String> =
        effects.iter().filter(|effect| effect.action.as_str() == "page").map(|effect| effect.team.clone()).collect();
    let notified: Vec<String> =
        effects.iter().filter(|effect| effect.action.as_str() == "notify").map(|effect| effect.team.clone()).collect();
    let summary = ScenarioSummary {
        incidents: incidents.iter().map(IncidentSummary::from).collect(),
        pages: pages.clone(),
        notified: notified.clone(),
    };

    let expect = &fixture.expect;
    assert_eq!(incidents.len(), expect.incidents, "{name}: incidents\n{}", describe(&summary));
    assert_eq!(pages, expect.pages, "{name}: pages\n{}", describe(&summary));
    if let Some(first) = incidents.first() {
        let mut causes = first.cause_components.clone();
        causes.sort();
        let mut expected = expect.causes.clone();
        expected.sort();
        assert_eq!(causes, expected, "{name}: causes\n{}", describe(&summary));
        if let Some(outcome) = &expect.outcome {
            let actual = serde_json::to_value(first.decision().outcome).expect("outcome serializes");
            assert_eq!(actual.as_str(), Some(outcome.as_str()), "{name}: outcome\n{}", describe(&summary));
        }
        let top: Vec<&str> = first.decision().candidates.iter().take(2).map(|c| c.component.as_str()).collect();
        let brief = serde_json::to_string(&first.brief).expect("brief serializes");
        for text in &expect.brief_contains {
            assert!(brief.contains(text.as_str()), "{name}: the brief must mention {text:?}: {brief}");
        }
        for text in &expect.brief_lacks {
            assert!(!brief.contains(text.as_str()), "{name}: the brief must not mention {text:?}: {brief}");
        }
        for component in &expect.not_blamed {
            assert!(
                !first.decision().causes.iter().any(|cause| &cause.component == component),
                "{name}: {component} must not be blamed (top candidates {top:?})\n{}",
                describe(&summary)
            );
        }
    }
    for text in &expect.timeline_contains {
        let found =
            incidents.iter().flat_map(|incident| &incident.timeline).any(|event| event.text.contains(text.as_str()));
        assert!(found, "{name}: a timeline must mention {text:?}\n{}", describe(&summary));
    }
    if let Some(expected) = &expect.notified {
        assert_eq!(&notified, expected, "{name}: notified\n{}", describe(&summary));
    }
    insta::with_settings!({snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_yaml_snapshot!(name, summary);
    });
}

fn describe(summary: &ScenarioSummary) -> String {
    serde_json::to_string_pretty(summary).unwrap_or_default()
}

fn apply_event(engine: &mut Engine, event: &Event, now: Nanos, incident_ids: &[String]) {
    let incident_id = |reference: &str| -> String {
        // `#1` is the first incident opened in the scenario.
        reference
            .strip_prefix('#')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| incident_ids.get(n - 1).cloned())
            .unwrap_or_else(|| reference.to_string())
    };
    match event {
        Event::Fire { id, journey, service, kind, may_page, team, .. } => {
            let target = match (journey, service) {
                (Some(journey), _) => SymptomTarget::Journey { journey: journey.clone() },
                (None, Some(service)) => SymptomTarget::Service { service: service.clone(), operation: None },
                (None, None) => SymptomTarget::Labels,
            };
            engine.fire(Symptom {
                id: id.clone(),
                target,
                kind: *kind,
                may_page: *may_page,
                fired_at: now,
                source: SymptomSource::Manual,
                team_label: team.clone(),
                summary: id.clone(),
            });
        }
        Event::Clear { id, .. } => engine.clear(id, now),
        Event::Reroute { incident, team, .. } => {
            engine.reroute(&incident_id(incident), team, "scenario reroute", "tester", now).expect("reroute applies");
        }
        Event::Acknowledge { incident, .. } => {
            engine.acknowledge(&incident_id(incident), "tester", now).expect("acknowledge applies");
        }
        Event::Change { service, version, .. } => engine.record_change(causeway_engine::change::Change {
            service: service.clone(),
            version: Some(version.clone()),
            kind: "deploy".to_string(),
            at: now,
            summary: format!("deploy {service} {version}"),
            links: Vec::new(),
            source: "api".to_string(),
            previous_version: None,
        }),
    }
}

#[derive(Serialize)]
struct ScenarioSummary {
    incidents: Vec<IncidentSummary>,
    pages: Vec<String>,
    notified: Vec<String>,
}

#[derive(Serialize)]
struct IncidentSummary {
    id: String,
    state: String,
    causes: Vec<String>,
    paged_teams: Vec<String>,
    symptoms: Vec<String>,
    decisions: Vec<DecisionSummary>,
    effects: Vec<String>,
    brief: Option<causeway_engine::brief::Brief>,
}

#[derive(Serialize)]
struct DecisionSummary {
    outcome: String,
    kind: String,
    page: Vec<String>,
    notify: Vec<String>,
    confidence: f64,
    bad_traces: String,
    candidates: Vec<String>,
    reasons: Vec<String>,
}

impl From<&causeway_engine::incident::Incident> for IncidentSummary {
    fn from(incident: &causeway_engine::incident::Incident) -> Self {
        IncidentSummary {
            id: incident.id.clone(),
            state: format!("{:?}", incident.state).to_lowercase(),
            causes: incident.cause_components.clone(),
            paged_teams: incident.paged_teams.clone(),
            symptoms: incident.symptoms.iter().map(|record| record.symptom.id.clone()).collect(),
            decisions: incident
                .decisions
                .iter()
                .map(|decision| DecisionSummary {
                    outcome: serde_json::to_value(decision.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    kind: decision.symptom_kind.map(|kind| format!("{kind:?}").to_lowercase()).unwrap_or_default(),
                    page: decision.page.clone(),
                    notify: decision.notify.clone(),
                    confidence: decision.confidence,
                    bad_traces: format!(
                        "{} of {} (baseline {})",
                        decision.n_bad, decision.n_total, decision.n_baseline
                    ),
                    candidates: decision
                        .candidates
                        .iter()
                        .take(3)
                        .map(|c| {
                            format!(
                                "{} {} team={} score={:.2} votes={:.1}",
                                c.component,
                                c.kind.as_str(),
                                c.team,
                                c.score,
                                c.votes
                            )
                        })
                        .collect(),
                    reasons: decision.reasons.clone(),
                })
                .collect(),
            effects: incident
                .effects
                .iter()
                .map(|effect| format!("{} {}", effect.action.as_str(), effect.team))
                .collect(),
            brief: incident.brief.clone(),
        }
    }
}

/// A span of a template, with its depth-first position and parent.
#[derive(Clone, Debug)]
struct TemplateSpan {
    parent: Option<usize>,
    service: String,
    kind: SpanKind,
    name: String,
    start_ms: f64,
    duration_ms: f64,
    attributes: Vec<(String, String)>,
}

fn parse_template(template: &str, text: &str) -> Vec<TemplateSpan> {
    let mut spans: Vec<TemplateSpan> = Vec::new();
    let mut stack: Vec<(usize, usize)> = Vec::new(); // (indent, index)
    for (line_number, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let fail = |what: &str| -> ! { panic!("template {template} line {}: {what}: {line:?}", line_number + 1) };
        let rest = line.trim();
        let (head, rest) = rest.split_once('"').unwrap_or_else(|| fail("missing quoted span name"));
        let (name, rest) = rest.split_once('"').unwrap_or_else(|| fail("unterminated span name"));
        let mut head = head.split_whitespace();
        let service = head.next().unwrap_or_else(|| fail("missing service")).to_string();
        let kind = match head.next().unwrap_or_else(|| fail("missing kind")) {
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "internal" => SpanKind::Internal,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            "unset" => SpanKind::Unspecified,
            _ => fail("unknown kind"),
        };
        let mut words = rest.split_whitespace();
        let start_ms: f64 = words.next().and_then(|w| w.parse().ok()).unwrap_or_else(|| fail("missing start_ms"));
        let duration_ms: f64 = words.next().and_then(|w| w.parse().ok()).unwrap_or_else(|| fail("missing duration_ms"));
        let attributes = words
            .map(|word| match word.split_once('=') {
                Some((key, value)) => (key.to_string(), value.to_string()),
                None => (word.to_string(), String::new()),
            })
            .collect();
        while stack.last().is_some_and(|(open_indent, _)| *open_indent >= indent) {
            stack.pop();
        }
        let parent = stack.last().map(|(_, index)| *index);
        spans.push(TemplateSpan { parent, service, kind, name: name.to_string(), start_ms, duration_ms, attributes });
        stack.push((indent, spans.len() - 1));
    }
    spans
}

/// Deterministic jitter in [0.98, 1.02] for span `index` of trace `n`.
fn jitter(n: u64, index: usize) -> f64 {
    let mut x = n.wrapping_mul(6364136223846793005).wrapping_add(index as u64 * 1442695040888963407 + 1);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    0.98 + (x % 401) as f64 / 10_000.0
}

fn generate(
    fixture: &Fixture,
    templates: &BTreeMap<String, Vec<TemplateSpan>>,
    engine: &mut Engine,
) -> Vec<(Nanos, IncomingSpan)> {
    let mut out = Vec::new();
    let mut trace_counter: u64 = 0;
    for traffic in &fixture.traffic {
        let total_weight: u32 = traffic.mix.values().sum();
        let mut credits: BTreeMap<&str, f64> = traffic.mix.keys().map(|name| (name.as_str(), 0.0)).collect();
        let mut t = minutes_to_nanos(traffic.from_min);
        let end = minutes_to_nanos(traffic.to_min);
        while t < end {
            // Weighted round robin: deterministic, exact proportions.
            for (name, weight) in &traffic.mix {
                *credits.get_mut(name.as_str()).expect("credit") += f64::from(*weight) / f64::from(total_weight);
            }
            let chosen = credits
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(name, _)| name.to_string())
                .expect("a template");
            *credits.get_mut(chosen.as_str()).expect("credit") -= 1.0;
            let template = templates.get(&chosen).unwrap_or_else(|| panic!("no trace template {chosen}"));
            trace_counter += 1;
            instantiate(template, trace_counter, t, engine, &mut out);
            t += traffic.every_ms * NANOS_PER_MS;
        }
    }
    out
}

fn instantiate(
    template: &[TemplateSpan],
    n: u64,
    start: Nanos,
    engine: &mut Engine,
    out: &mut Vec<(Nanos, IncomingSpan)>,
) {
    let trace_id_for = |variant: u64| {
        let mut bytes = [0u8; 16];
        bytes[0..8].copy_from_slice(&n.to_be_bytes());
        bytes[8..16].copy_from_slice(&(variant + 1).to_be_bytes());
        TraceId(bytes)
    };
    let mut trace_of: Vec<TraceId> = Vec::with_capacity(template.len());
    let mut labels: BTreeMap<String, (TraceId, SpanId)> = BTreeMap::new();
    for (index, span) in template.iter().enumerate() {
        let attribute = |key: &str| span.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let trace_id = match (span.parent, attribute("trace")) {
            (_, Some(variant)) => trace_id_for(variant.parse().expect("trace=N")),
            (Some(parent), None) => trace_of[parent],
            (None, None) => trace_id_for(0),
        };
        trace_of.push(trace_id);
        let span_id = SpanId(n * 1000 + index as u64 + 1);
        if let Some(label) = attribute("label") {
            labels.insert(label.to_string(), (trace_id, span_id));
        }
    }
    for (index, span) in template.iter().enumerate() {
        let attribute = |key: &str| span.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let has = |key: &str| span.attributes.iter().any(|(k, _)| k == key);
        let dictionary = engine.dictionary_mut();
        let strings = &mut dictionary.strings;
        let service = strings.intern(&span.service);
        let pod_name = attribute("pod").map(str::to_string).unwrap_or_else(|| format!("{}-pod-1", span.service));
        let resource = Resource {
            service,
            version: strings.intern(attribute("version").unwrap_or("1.0.0")),
            instance: strings.intern(&pod_name),
            pod: strings.intern(&pod_name),
            team: attribute("team").map_or(Symbol::NONE, |team| strings.intern(team)),
            ..Resource::default()
        };
        let scale = jitter(n, index);
        let span_start = start + (span.start_ms * NANOS_PER_MS as f64) as Nanos;
        let span_end = span_start + (span.duration_ms * scale * NANOS_PER_MS as f64) as Nanos;
        let (callee_kind, callee) = if let Some(peer) = attribute("peer") {
            (CalleeKind::PeerService, strings.intern(peer))
        } else if let Some(db) = attribute("db") {
            (CalleeKind::Database, strings.intern(db))
        } else if let Some(msg) = attribute("msg") {
            (CalleeKind::Messaging, strings.intern(msg))
        } else if let Some(addr) = attribute("addr") {
            (CalleeKind::Address, strings.intern(addr))
        } else {
            (CalleeKind::None, Symbol::NONE)
        };
        let links = attribute("link")
            .and_then(|label| labels.get(label))
            .map(|(trace_id, span_id)| Box::new(vec![Link { trace_id: *trace_id, span_id: *span_id }]));
        let parent_span_id = match (span.parent, attribute("trace")) {
            (Some(parent), None) => SpanId(n * 1000 + parent as u64 + 1),
            _ => SpanId::NONE,
        };
        let incoming = IncomingSpan {
            trace_id: trace_of[index],
            span: Span {
                span_id: SpanId(n * 1000 + index as u64 + 1),
                parent_span_id,
                start: span_start,
                end: span_end,
                resource: dictionary.resources.intern(resource),
                name: dictionary.strings.intern(&span.name),
                route: attribute("route").map_or(Symbol::NONE, |route| dictionary.strings.intern(route)),
                callee,
                error_type: attribute("etype").map_or(Symbol::NONE, |etype| dictionary.strings.intern(etype)),
                exception_type: attribute("exc").map_or(Symbol::NONE, |exc| dictionary.strings.intern(exc)),
                exception_message: Symbol::NONE,
                db_statement: Symbol::NONE,
                http_status: attribute("http").map_or(0, |status| status.parse().expect("http=N")),
                rpc_status: attribute("rpc").map_or(Span::NO_RPC_STATUS, |code| code.parse().expect("rpc=N")),
                kind: span.kind,
                status: if has("err") {
                    StatusCode::Error
                } else if has("ok") {
                    StatusCode::Ok
                } else {
                    StatusCode::Unset
                },
                callee_kind,
                links,
            },
        };
        out.push((span_end, incoming));
    }
}
