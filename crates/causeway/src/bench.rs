//! `causeway bench ingest|route`: reproducible measurements on synthetic but realistic OTLP
//! (written up in BENCHMARKS.md). Single-threaded on purpose: figures are per core.
//!
//! * `ingest`: the same protobuf payloads are decoded only (the baseline), then decoded,
//!   validated, converted and inserted into a trace window; both rates come from the same run,
//!   so their ratio is meaningful on a noisy machine. Memory per retained span is the window's
//!   own capacity-based accounting after the insert.
//! * `route`: a window of traces for one journey with a fault deep in the graph; one routing
//!   decision (analysis + decision) and the brief are timed many times; median and p99.

use std::time::{Duration, Instant};

use causeway_engine::analysis::SymptomKind;
use causeway_engine::incident::{Symptom, SymptomSource, SymptomTarget};
use causeway_engine::journey::{BurnTier, Journey, LatencySlo, Slo};
use causeway_engine::ownership::{OwnerSource, Ownership};
use causeway_engine::{Engine, EngineConfig, IncomingSpan, NANOS_PER_MIN, NANOS_PER_MS, Nanos, WindowConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;

use crate::receivers::otlp::{self, ConvertOptions};

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..KeyValue::default()
    }
}

/// The services of the synthetic shop: (name, operation, callee attributes of its client call).
const SERVICES: [(&str, &str); 8] = [
    ("frontend", "POST /api/checkout"),
    ("checkout", "POST /checkout"),
    ("cart", "GET /cart"),
    ("pricing", "GET /price"),
    ("payments", "POST /charge"),
    ("inventory", "GET /stock"),
    ("shipping", "POST /quote"),
    ("ledger", "POST /entries"),
];

/// One export request per service instance: `n_traces` traces of 10 spans (a frontend entry,
/// client/server pairs down four services, a database call), the way an SDK batches them —
/// each trace's spans are spread over several requests. `failing(trace)` makes the ledger fail.
pub fn synthetic_requests(
    n_traces: usize,
    start: Nanos,
    spacing: Nanos,
    seed: u64,
    failing: impl Fn(usize) -> bool,
    slow_instead: bool,
) -> Vec<ExportTraceServiceRequest> {
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    for trace in 0..n_traces {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&seed.to_be_bytes());
        trace_id[8..].copy_from_slice(&(trace as u64 + 1).to_be_bytes());
        let t0 = start + (trace as i64) * spacing;
        // A "failing" trace either errs in the ledger's database or, with `slow_instead`, waits
        // 900 ms on it (every span from the database call up grows by that much).
        let (fail, slow) = if slow_instead { (false, failing(trace)) } else { (failing(trace), false) };
        let extra = if slow { 900 * NANOS_PER_MS } else { 0 };
        let chain = [0usize, 1, 4, 7]; // frontend -> checkout -> payments -> ledger
        let mut parent: Vec<u8> = Vec::new();
        let mut checkout_server: Vec<u8> = Vec::new();
        let mut span_number = 0u64;
        let mut next_id = || {
            span_number += 1;
            let mut id = [0u8; 8];
            id[..4].copy_from_slice(&(trace as u32).to_be_bytes());
            id[4..].copy_from_slice(&(span_number as u32).to_be_bytes());
            id.to_vec()
        };
        for (depth, service) in chain.iter().enumerate() {
            let (_, operation) = SERVICES[*service];
            let offset = depth as i64 * 2 * NANOS_PER_MS;
            let duration = (120 - depth as i64 * 25) * NANOS_PER_MS + (trace as i64 % 7) * NANOS_PER_MS + extra;
            let status = if fail { 500 } else { 200 };
            let server_id = next_id();
            if depth == 1 {
                checkout_server = server_id.clone();
            }
            by_service[*service].push(Span {
                trace_id: trace_id.to_vec(),
                span_id: server_id.clone(),
                parent_span_id: parent.clone(),
                name: operation.to_string(),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: (t0 + offset) as u64,
                end_time_unix_nano: (t0 + offset + duration) as u64,
                attributes: vec![
                    text("http.route", operation),
                    int("http.response.status_code", status),
                    text("http.request.method", "POST"),
                ],
                status: fail.then(|| Status { code: 2, message: "upstream failed".into() }),
                ..Span::default()
            });
            let client_id = next_id();
            let callee = chain.get(depth + 1).map(|next| SERVICES[*next].0);
            let mut attributes = vec![text("http.request.method", "POST")];
            match callee {
                Some(callee) => {
                    attributes.push(text("service.peer.name", callee));
                    attributes.push(int("http.response.status_code", status));
                }
                None => {
                    attributes.push(text("db.system.name", "postgresql"));
                    attributes.push(text("db.namespace", "ledger"));
                    attributes.push(text("db.query.text", "INSERT INTO entries VALUES ($1, $2)"));
                    if fail {
                        attributes.push(text("error.type", "53300"));
                    }
                }
            }
            let mut events = Vec::new();
            if fail && callee.is_none() {
                events.push(span::Event {
                    name: "exception".into(),
                    time_unix_nano: (t0 + offset + 10 * NANOS_PER_MS) as u64,
                    attributes: vec![
                        text("exception.type", "PSQLException"),
                        text("exception.message", "too many connections for role ledger 4711"),
                    ],
                    ..span::Event::default()
                });
            }
            by_service[*service].push(Span {
                trace_id: trace_id.to_vec(),
                span_id: client_id.clone(),
                parent_span_id: server_id,
                name: if callee.is_some() { "POST".to_string() } else { "INSERT entries".to_string() },
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: (t0 + offset + NANOS_PER_MS) as u64,
                end_time_unix_nano: (t0 + offset + duration - NANOS_PER_MS) as u64,
                attributes,
                events,
                status: (fail && callee.is_none()).then(|| Status { code: 2, message: "too many connections".into() }),
                ..Span::default()
            });
            parent = client_id;
        }
        // Two more side calls from checkout (cart, pricing) keep traces at 10 spans.
        for side in [2usize, 3] {
            let (callee, _) = SERVICES[side];
            by_service[1].push(Span {
                trace_id: trace_id.to_vec(),
                span_id: next_id(),
                parent_span_id: checkout_server.clone(),
                name: format!("GET {callee}"),
                kind: span::SpanKind::Internal as i32,
                start_time_unix_nano: (t0 + 3 * NANOS_PER_MS) as u64,
                end_time_unix_nano: (t0 + 6 * NANOS_PER_MS) as u64,
                attributes: vec![text("cache.hit", "true")],
                ..Span::default()
            });
        }
    }
    // Batches of 512 spans per service instance, like the SDK's batch processor.
    let mut requests = Vec::new();
    for (service, spans) in by_service.into_iter().enumerate() {
        let (name, _) = SERVICES[service];
        for (batch_number, chunk) in spans.chunks(512).enumerate() {
            let instance = format!("{name}-{}", batch_number % 3);
            requests.push(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![
                            text("service.name", name),
                            text("service.version", "1.4.2"),
                            text("service.instance.id", &instance),
                            text("k8s.pod.name", &format!("{instance}-7d9f")),
                            text("host.name", &format!("node-{}", batch_number % 5)),
                            text(
                                "cloud.availability_zone",
                                if batch_number % 2 == 0 { "eu-west-1a" } else { "eu-west-1b" },
                            ),
                            text("telemetry.sdk.language", "python"),
                        ],
                        ..Resource::default()
                    }),
                    scope_spans: vec![ScopeSpans { spans: chunk.to_vec(), ..ScopeSpans::default() }],
                    schema_url: String::new(),
                }],
            });
        }
    }
    requests
}

#[derive(Debug, serde::Serialize)]
pub struct IngestFigures {
    pub spans: u64,
    pub payload_bytes: u64,
    pub decode_spans_per_s: f64,
    pub ingest_spans_per_s: f64,
    pub ingest_to_decode_ratio: f64,
    pub bytes_per_span: f64,
}

/// Decode-only against decode + validate + convert + insert, on the same payloads.
pub fn ingest(n_traces: usize, rounds: usize) -> IngestFigures {
    let requests = synthetic_requests(
        n_traces,
        1_700_000_000 * 1_000_000_000,
        10 * NANOS_PER_MS,
        7,
        |trace| trace % 20 == 0,
        false,
    );
    let payloads: Vec<Vec<u8>> = requests.iter().map(Message::encode_to_vec).collect();
    let n_spans: u64 = requests.iter().map(otlp::count_spans).sum();
    let payload_bytes: u64 = payloads.iter().map(|payload| payload.len() as u64).sum();

    // Interleave the two measurements so both see the same machine state.
    let mut decode_time = Duration::ZERO;
    let mut ingest_time = Duration::ZERO;
    let mut bytes_per_span = 0.0;
    let options = ConvertOptions::default();
    for _ in 0..rounds {
        let started = Instant::now();
        let mut decoded = 0usize;
        for payload in &payloads {
            let request = ExportTraceServiceRequest::decode(payload.as_slice()).expect("synthetic payloads decode");
            decoded += request.resource_spans.len();
        }
        std::hint::black_box(decoded);
        decode_time += started.elapsed();

        let mut engine = Engine::new(
            EngineConfig {
                window: WindowConfig { retention: 24 * 60 * NANOS_PER_MIN, max_memory: usize::MAX },
                ..EngineConfig::default()
            },
            Ownership::default(),
        );
        let started = Instant::now();
        let mut converted: Vec<IncomingSpan> = Vec::new();
        for payload in &payloads {
            let mut request = ExportTraceServiceRequest::decode(payload.as_slice()).expect("synthetic payloads decode");
            otlp::validate(&mut request);
            converted.clear();
            otlp::convert(&request, &options, engine.dictionary_mut(), &mut converted);
            engine.ingest(1_700_000_000 * 1_000_000_000, std::mem::take(&mut converted));
        }
        ingest_time += started.elapsed();
        let window = engine.window();
        bytes_per_span = window.memory_bytes() as f64 / window.n_spans().max(1) as f64;
    }
    let total = (n_spans * rounds as u64) as f64;
    let decode = total / decode_time.as_secs_f64();
    let ingest = total / ingest_time.as_secs_f64();
    IngestFigures {
        spans: n_spans,
        payload_bytes,
        decode_spans_per_s: decode.round(),
        ingest_spans_per_s: ingest.round(),
        ingest_to_decode_ratio: (ingest / decode * 1000.0).round() / 1000.0,
        bytes_per_span: (bytes_per_span * 10.0).round() / 10.0,
    }
}

#[derive(Debug, serde::Serialize)]
pub struct RouteFigures {
    pub kind: SymptomKind,
    pub traces: usize,
    pub spans: usize,
    pub runs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub brief_p50_ms: f64,
    pub brief_p99_ms: f64,
    pub decided: String,
}

/// One routing decision over a window of `n_traces` traces of the checkout journey, 10% failing
/// in the ledger in the evidence window; timed `runs` times.
pub fn route(n_traces: usize, runs: usize, kind: SymptomKind) -> RouteFigures {
    let start = 1_700_000_000 * 1_000_000_000;
    let mut ownership = Ownership::new("sre");
    for (service, team) in [("frontend", "web"), ("checkout", "shop"), ("payments", "payments"), ("ledger", "finance")]
    {
        ownership.assign(service, team, OwnerSource::OwnersFile);
    }
    let period = 28 * 24 * 60 * NANOS_PER_MIN;
    let journey = Journey {
        name: "checkout".into(),
        entry_service: "frontend".into(),
        entry_operation: "POST /api/checkout".into(),
        owner: Some("web".into()),
        slo: Slo {
            availability: Some(0.999),
            latency: Some(LatencySlo { threshold: 800 * NANOS_PER_MS, target: 0.99 }),
            period,
            tiers: BurnTier::google(period),
            min_requests: 10,
        },
    };
    let mut config = EngineConfig { journeys: vec![journey], slo_symptoms: false, ..EngineConfig::default() };
    config.window.retention = 24 * 60 * NANOS_PER_MIN;
    config.routing.max_traces = n_traces;
    let mut engine = Engine::new(config, ownership);
    // Traces every 100 ms (10k traces cover about 17 minutes): the last 2 minutes are the
    // evidence window with 10% failing in the ledger's database; the rest is the baseline.
    let spacing = 100 * NANOS_PER_MS;
    let span_of_window = n_traces as i64 * spacing;
    let lookback = 2 * NANOS_PER_MIN;
    let evidence_from = n_traces.saturating_sub((lookback / spacing) as usize);
    let requests = synthetic_requests(
        n_traces,
        start,
        spacing,
        11,
        |trace| trace >= evidence_from && trace % 10 == 0,
        kind == SymptomKind::Latency,
    );
    let options = ConvertOptions::default();
    let mut converted = Vec::new();
    for request in &requests {
        converted.clear();
        otlp::convert(request, &options, engine.dictionary_mut(), &mut converted);
        engine.ingest(start + span_of_window, std::mem::take(&mut converted));
    }
    let fired_at = start + span_of_window;
    let symptom = Symptom {
        id: "bench".into(),
        target: SymptomTarget::Journey { journey: "checkout".into() },
        kind: Some(kind),
        may_page: true,
        fired_at,
        source: SymptomSource::Slo {
            tier: "page-fast".into(),
            long_window: 3600 * 1_000_000_000,
            short_window: lookback,
            burn_long: 20.0,
            burn_short: 100.0,
            threshold: 14.4,
        },
        team_label: None,
        summary: "bench".into(),
    };
    engine.tick(fired_at);
    let mut decisions = Vec::with_capacity(runs);
    let mut briefs = Vec::with_capacity(runs);
    let mut decided = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        let (analysis, decision) = engine.analyse(&symptom);
        decisions.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        let brief = engine.preview_brief(&symptom, analysis.as_ref(), &decision);
        briefs.push(started.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(&brief);
        decided = format!(
            "{:?} {:?}",
            decision.outcome,
            decision.causes.iter().map(|cause| &cause.component).collect::<Vec<_>>()
        );
    }
    let percentile = |samples: &mut Vec<f64>, p: f64| {
        samples.sort_by(f64::total_cmp);
        let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
        (samples[index] * 100.0).round() / 100.0
    };
    RouteFigures {
        kind,
        traces: n_traces,
        spans: engine.window().n_spans(),
        runs,
        p50_ms: percentile(&mut decisions, 0.5),
        p99_ms: percentile(&mut decisions, 0.99),
        brief_p50_ms: percentile(&mut briefs, 0.5),
        brief_p99_ms: percentile(&mut briefs, 0.99),
        decided,
    }
}

pub fn print(value: &impl serde::Serialize, json_only: bool) {
    let line = serde_json::to_string(value).unwrap_or_default();
    if !json_only {
        if let Ok(pretty) = serde_json::to_string_pretty(value) {
            println!("{pretty}");
        }
    }
    println!("{line}");
}
