//! The simulation clock: request arrivals, the fault timeline, service versions, and the
//! per-instance exporters that turn spans into OTLP export requests.
//!
//! [`Simulation`] is an iterator of [`SimEvent`]s in event-time order: export batches (one
//! `ExportTraceServiceRequest` holding one instance's spans, as an SDK's batch span processor
//! sends them every 1-5 s) and fault starts and ends. Requests are generated in arrival order;
//! an exporter sends the spans that *ended* before its flush, so one trace spreads over several
//! batches, out of order, as it does in production. Memory stays bounded by what is in flight.
//!
//! Determinism: separate seeded generators for arrivals, traces, exporters and the planner;
//! ordered maps only; the same options give the same events.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::alerts::Metrics;
use super::faults::{Fault, FaultKind, FaultPlan, Planner, ROLLING_STEP, VersionChange, spread_windows};
use super::spans::{int, string};
use super::traces::{SpanOut, TraceGenerator};
use super::world::{Component, Protocol, Semconv, World};
use super::{Nanos, Options};

/// Most spans in one export request (the SDKs' default `maxExportBatchSize`).
const MAX_BATCH: usize = 512;
/// Faults are planned this far ahead of the clock (deploys come 90 s before some faults).
const LOOKAHEAD: Nanos = 5 * 60 * 1_000_000_000;
/// After the last request, exporters keep flushing this long so every span gets out.
const DRAIN: Nanos = 2 * 60 * 1_000_000_000;
/// A benign deploy lands this long before some faults: a red herring for change correlation.
const DEPLOY_LEAD: Nanos = 90 * 1_000_000_000;

/// Something that happened, at event time.
#[derive(Debug, Clone)]
pub enum SimEvent {
    Batch(Batch),
    FaultStarted(Fault),
    FaultEnded(Fault),
}

/// One export request, as one SDK instance sends it.
#[derive(Debug, Clone)]
pub struct Batch {
    /// When it is sent (event time).
    pub at: Nanos,
    pub request: ExportTraceServiceRequest,
    pub n_spans: usize,
}

/// Counts of what was generated.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub n_traces: u64,
    pub n_spans: u64,
    pub n_lost_spans: u64,
    pub n_batches: u64,
}

enum Timed {
    Flush(usize),
    FaultStarted(usize),
    FaultEnded(usize),
}

struct Exporter {
    service: usize,
    instance: usize,
    interval: Nanos,
    buffer: Vec<SpanOut>,
}

/// The fault schedule's progress (a cycle is planned as the clock advances).
enum Schedule {
    Done,
    Cycle { kinds: Vec<FaultKind>, next_index: usize, first_at: Nanos, duration: Nanos, every: Nanos },
}

pub struct Simulation {
    world: Arc<World>,
    options: Options,
    start: Nanos,
    end: Option<Nanos>,
    clock: Nanos,
    traffic_rng: StdRng,
    trace_rng: StdRng,
    loss_rng: StdRng,
    arrivals: BinaryHeap<Reverse<(Nanos, usize)>>,
    /// Per journey: the minute the walk was last stepped, and its current factor.
    walks: Vec<(i64, f64)>,
    planner: Planner,
    schedule: Schedule,
    faults: Vec<Fault>,
    changes: Vec<VersionChange>,
    /// `[service][instance]`: version timeline, sorted by time.
    versions: Vec<Vec<Vec<(Nanos, String)>>>,
    timed: BTreeMap<(Nanos, u64), Timed>,
    n_timed: u64,
    exporters: Vec<Exporter>,
    exporter_of: Vec<Vec<usize>>,
    scratch: Vec<SpanOut>,
    queue: VecDeque<SimEvent>,
    metrics: Option<Metrics>,
    stats: Stats,
    finished: bool,
    skipped: Vec<FaultKind>,
}

impl Simulation {
    pub fn new(options: Options) -> anyhow::Result<Simulation> {
        if !(options.rate_scale.is_finite() && options.rate_scale > 0.0) {
            anyhow::bail!("--rate-scale must be a positive number, got {}", options.rate_scale);
        }
        let world = options.world.clone();
        let start = options.start;
        let end = options.duration.map(|duration| start + duration.as_nanos() as Nanos);
        let seed = options.seed;
        let mut export_rng = StdRng::seed_from_u64(seed ^ 0x6578_706f_7274);
        let mut exporters = Vec::new();
        let mut exporter_of = Vec::new();
        let mut timed = BTreeMap::new();
        let mut n_timed = 0;
        for (service_index, service) in world.services.iter().enumerate() {
            let mut ids = Vec::new();
            for instance in 0..service.instances.len() {
                // Each SDK flushes on its own schedule, between 1 and 5 seconds.
                let interval = export_rng.random_range(1_000..=5_000) * 1_000_000;
                let first = start + export_rng.random_range(0..interval);
                ids.push(exporters.len());
                timed.insert((first, n_timed), Timed::Flush(exporters.len()));
                n_timed += 1;
                exporters.push(Exporter { service: service_index, instance, interval, buffer: Vec::new() });
            }
            exporter_of.push(ids);
        }
        let versions = world
            .services
            .iter()
            .map(|service| service.instances.iter().map(|_| vec![(Nanos::MIN, service.version.clone())]).collect())
            .collect();
        let metrics = options.record_metrics.then(|| Metrics::new(&world, start));
        let mut simulation = Simulation {
            planner: Planner::new(world.clone(), seed),
            traffic_rng: StdRng::seed_from_u64(seed ^ 0x0074_7261_6666_6963),
            trace_rng: StdRng::seed_from_u64(seed ^ 0x7472_6163_6573),
            loss_rng: StdRng::seed_from_u64(seed ^ 0x6c6f_7373),
            arrivals: BinaryHeap::new(),
            walks: vec![(i64::MIN, 1.0); world.journeys.len()],
            schedule: Schedule::Done,
            faults: Vec::new(),
            changes: Vec::new(),
            versions,
            timed,
            n_timed,
            exporters,
            exporter_of,
            scratch: Vec::new(),
            queue: VecDeque::new(),
            metrics,
            stats: Stats::default(),
            finished: false,
            skipped: Vec::new(),
            world,
            start,
            end,
            clock: start,
            options,
        };
        simulation.plan()?;
        for journey in 0..simulation.world.journeys.len() {
            let first = simulation.next_arrival(journey, start);
            simulation.arrivals.push(Reverse((first, journey)));
        }
        Ok(simulation)
    }

    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn start(&self) -> Nanos {
        self.start
    }

    /// End of traffic (`None`: runs until dropped).
    pub fn end(&self) -> Option<Nanos> {
        self.end
    }

    /// Event time reached by request generation.
    pub fn clock(&self) -> Nanos {
        self.clock
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Faults planned so far (all of them for a spread plan), in start order.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// Deploys and rollbacks planned so far, in time order.
    pub fn changes(&self) -> Vec<&VersionChange> {
        let mut changes: Vec<&VersionChange> = self.changes.iter().collect();
        changes.sort_by_key(|change| (change.at, change.service));
        changes
    }

    /// Kinds the world offered no target for (they were left out).
    pub fn skipped_kinds(&self) -> &[FaultKind] {
        &self.skipped
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()
    }

    fn plan(&mut self) -> anyhow::Result<()> {
        match self.options.faults.clone() {
            FaultPlan::None => {}
            FaultPlan::Spread { kinds, fill } => {
                let Some(duration) = self.options.duration else {
                    anyhow::bail!("a spread fault plan needs a duration");
                };
                if kinds.is_empty() {
                    return Ok(());
                }
                let windows = spread_windows(duration, kinds.len(), fill)?;
                let mut planned = Vec::new();
                for (index, (from, to)) in windows.into_iter().enumerate() {
                    let kind = kinds[index % kinds.len()];
                    match self.planner.fault(kind, self.start + from, self.start + to) {
                        Some(fault) => planned.push(fault),
                        None => {
                            if !self.skipped.contains(&kind) {
                                self.skipped.push(kind);
                            }
                        }
                    }
                }
                let targets: BTreeSet<usize> = planned
                    .iter()
                    .flat_map(|(fault, _)| fault.causes.iter())
                    .filter_map(|cause| match cause.component {
                        Component::Service(service) => Some(service),
                        _ => None,
                    })
                    .collect();
                // A routine deploy in the baseline, and one shortly before every third fault.
                let first_fault = planned.first().map(|(fault, _)| fault.start);
                if let Some(first) = first_fault {
                    let at = self.start + (first - self.start) / 2;
                    if let Some(change) = self.planner.benign_deploy(at, &targets) {
                        self.apply_change(change);
                    }
                }
                for (index, (fault, changes)) in planned.into_iter().enumerate() {
                    if index % 3 == 1
                        && let Some(change) = self.planner.benign_deploy(fault.start - DEPLOY_LEAD, &targets)
                    {
                        self.apply_change(change);
                    }
                    self.add_fault(fault, changes);
                }
            }
            FaultPlan::Cycle { kinds, first_after, duration, every } => {
                if kinds.is_empty() {
                    return Ok(());
                }
                let duration = duration.as_nanos() as Nanos;
                let every = every.as_nanos() as Nanos;
                if duration <= 0 || every < duration {
                    anyhow::bail!("a fault cycle needs 0 < duration <= every");
                }
                self.schedule = Schedule::Cycle {
                    kinds,
                    next_index: 0,
                    first_at: self.start + first_after.as_nanos() as Nanos,
                    duration,
                    every,
                };
                self.plan_ahead(self.start + LOOKAHEAD);
            }
        }
        Ok(())
    }

    /// Plans cycle faults starting before `horizon`.
    fn plan_ahead(&mut self, horizon: Nanos) {
        loop {
            let Schedule::Cycle { kinds, next_index, first_at, duration, every } = &mut self.schedule else {
                return;
            };
            let start = *first_at + *next_index as Nanos * *every;
            if start > horizon || self.end.is_some_and(|end| start + *duration > end) {
                return;
            }
            let index = *next_index;
            let end = start + *duration;
            *next_index += 1;
            // Try the kinds in turn until one has a target in this world.
            let n_kinds = kinds.len();
            let kinds = kinds.clone();
            let mut planned = None;
            for offset in 0..n_kinds {
                let candidate = kinds[(index + offset) % n_kinds];
                if let Some(fault) = self.planner.fault(candidate, start, end) {
                    planned = Some(fault);
                    break;
                }
                if !self.skipped.contains(&candidate) {
                    self.skipped.push(candidate);
                }
            }
            let Some((fault, changes)) = planned else {
                return;
            };
            if index % 3 == 1 {
                let targets: BTreeSet<usize> = fault
                    .causes
                    .iter()
                    .filter_map(|cause| match cause.component {
                        Component::Service(service) => Some(service),
                        _ => None,
                    })
                    .collect();
                if let Some(change) = self.planner.benign_deploy(start - DEPLOY_LEAD, &targets) {
                    self.apply_change(change);
                }
            }
            self.add_fault(fault, changes);
        }
    }

    fn add_fault(&mut self, fault: Fault, changes: Vec<VersionChange>) {
        for change in changes {
            self.apply_change(change);
        }
        let index = self.faults.len();
        self.push_timed(fault.start, Timed::FaultStarted(index));
        self.push_timed(fault.end, Timed::FaultEnded(index));
        self.faults.push(fault);
    }

    fn apply_change(&mut self, change: VersionChange) {
        let n_instances = self.world.services[change.service].instances.len();
        let instances: Vec<(usize, Nanos)> = match change.instance {
            Some(instance) => vec![(instance, change.at)],
            None => (0..n_instances).map(|instance| (instance, change.at + instance as Nanos * ROLLING_STEP)).collect(),
        };
        for (instance, at) in instances {
            let timeline = &mut self.versions[change.service][instance];
            let position = timeline.partition_point(|(from, _)| *from <= at);
            timeline.insert(position, (at, change.version.clone()));
        }
        self.changes.push(change);
    }

    fn push_timed(&mut self, at: Nanos, event: Timed) {
        self.timed.insert((at, self.n_timed), event);
        self.n_timed += 1;
    }

    /// Requests per second of a journey at `at`: base rate, scale, daily cycle, random walk.
    fn rate(&mut self, journey: usize, at: Nanos) -> f64 {
        let world = &self.world;
        let traffic = &world.traffic;
        let seconds_of_day = at.rem_euclid(86_400 * 1_000_000_000) as f64 / 1e9;
        let diurnal = 1.0
            + traffic.diurnal_amplitude * (std::f64::consts::TAU * (seconds_of_day - 6.0 * 3600.0) / 86_400.0).sin();
        let minute = at.div_euclid(60 * 1_000_000_000);
        let (last_minute, mut factor) = self.walks[journey];
        if last_minute == i64::MIN {
            self.walks[journey] = (minute, 1.0);
        } else if minute > last_minute {
            // A mean-reverting walk of the log rate, one step per minute (bounded to ±25%).
            let steps = (minute - last_minute).min(120);
            let mut log = factor.ln();
            for _ in 0..steps {
                let step: f64 = self.traffic_rng.sample(rand_distr::StandardNormal);
                log = (log * 0.9 + step * traffic.walk_step).clamp(-0.25, 0.25);
            }
            factor = log.exp();
            self.walks[journey] = (minute, factor);
        }
        world.journeys[journey].rate * self.options.rate_scale * diurnal * self.walks[journey].1
    }

    fn next_arrival(&mut self, journey: usize, after: Nanos) -> Nanos {
        let rate = self.rate(journey, after).max(1e-6);
        let uniform: f64 = self.traffic_rng.random_range(f64::EPSILON..1.0);
        after + ((-uniform.ln() / rate) * 1e9) as Nanos
    }

    /// Handles flushes and fault boundaries up to `until`, in time order.
    fn advance_to(&mut self, until: Nanos) {
        while let Some(entry) = self.timed.first_entry() {
            let (at, _) = *entry.key();
            if at > until {
                break;
            }
            let event = entry.remove();
            match event {
                Timed::Flush(exporter) => {
                    self.flush(exporter, at, false);
                    let next = at + self.exporters[exporter].interval;
                    self.push_timed(next, Timed::Flush(exporter));
                }
                Timed::FaultStarted(index) => self.queue.push_back(SimEvent::FaultStarted(self.faults[index].clone())),
                Timed::FaultEnded(index) => self.queue.push_back(SimEvent::FaultEnded(self.faults[index].clone())),
            }
        }
    }

    /// Sends an exporter's finished spans (all of them with `everything`).
    fn flush(&mut self, exporter: usize, at: Nanos, everything: bool) {
        let buffer = &mut self.exporters[exporter].buffer;
        if buffer.is_empty() {
            return;
        }
        let (mut ready, waiting): (Vec<SpanOut>, Vec<SpanOut>) =
            std::mem::take(buffer).into_iter().partition(|span| everything || span.true_end <= at);
        *buffer = waiting;
        if ready.is_empty() {
            return;
        }
        ready.sort_by_key(|span| span.true_end);
        let (service, instance) = (self.exporters[exporter].service, self.exporters[exporter].instance);
        // One request per version the process ran (a deploy restarts it with new resource attributes).
        let timeline = &self.versions[service][instance];
        let mut by_version: BTreeMap<usize, Vec<otlp::Span>> = BTreeMap::new();
        for span in ready {
            let version = timeline.partition_point(|(from, _)| *from <= span.true_start).max(1) - 1;
            by_version.entry(version).or_default().push(span.span);
        }
        for (version, spans) in by_version {
            let version_name = self.versions[service][instance][version].1.clone();
            let mut spans = spans;
            while !spans.is_empty() {
                let rest = if spans.len() > MAX_BATCH { spans.split_off(MAX_BATCH) } else { Vec::new() };
                let n_spans = spans.len();
                let request = ExportTraceServiceRequest {
                    resource_spans: vec![otlp::ResourceSpans {
                        resource: Some(self.resource(service, instance, &version_name)),
                        scope_spans: vec![otlp::ScopeSpans {
                            scope: Some(scope(
                                &self.world.services[service].language,
                                self.world.services[service].protocol,
                            )),
                            spans,
                            schema_url: String::new(),
                        }],
                        schema_url: String::new(),
                    }],
                };
                self.stats.n_batches += 1;
                self.queue.push_back(SimEvent::Batch(Batch { at, request, n_spans }));
                spans = rest;
            }
        }
    }

    fn resource(&self, service: usize, instance: usize, version: &str) -> Resource {
        let world = &self.world;
        let service_ref = &world.services[service];
        let instance_ref = &service_ref.instances[instance];
        let environment_key = match service_ref.semconv {
            Semconv::New => "deployment.environment.name",
            Semconv::Old => "deployment.environment",
        };
        let attributes: Vec<KeyValue> = vec![
            string("service.name", &service_ref.name),
            string("service.namespace", &world.namespace),
            string("service.version", version),
            string("service.instance.id", &instance_ref.id),
            string(environment_key, &world.environment),
            string("k8s.namespace.name", &world.namespace),
            string("k8s.deployment.name", &service_ref.name),
            string("k8s.pod.name", &instance_ref.pod),
            string("host.name", &instance_ref.host),
            string("cloud.provider", "aws"),
            string("cloud.region", &world.region),
            string("cloud.availability_zone", &instance_ref.zone),
            string("telemetry.sdk.name", "opentelemetry"),
            string("telemetry.sdk.language", &service_ref.language),
            string("telemetry.sdk.version", sdk_version(&service_ref.language)),
            int("process.pid", 1),
        ];
        Resource { attributes, dropped_attributes_count: 0, entity_refs: Vec::new() }
    }

    fn generate(&mut self, journey: usize, at: Nanos) {
        // Faults are in start order and last equally long within a plan, so their ends are
        // ordered too: skip the ones long over.
        let first = self.faults.partition_point(|fault| fault.end < at - 120 * 1_000_000_000);
        let mut n_traces = self.stats.n_traces;
        let mut out = std::mem::take(&mut self.scratch);
        {
            let mut generator = TraceGenerator {
                world: &self.world,
                rng: &mut self.trace_rng,
                faults: &self.faults[first..],
                out: &mut out,
                metrics: self.metrics.as_mut(),
                n_traces: &mut n_traces,
            };
            generator.journey(journey, at);
        }
        self.stats.n_traces = n_traces;
        let lost_share = self.world.noise.lost_spans;
        for span in out.drain(..) {
            self.stats.n_spans += 1;
            if lost_share > 0.0 && self.loss_rng.random::<f64>() < lost_share {
                self.stats.n_lost_spans += 1;
                continue;
            }
            let exporter = self.exporter_of[span.service as usize][span.instance as usize];
            self.exporters[exporter].buffer.push(span);
        }
        self.scratch = out;
    }

    fn fill_queue(&mut self) {
        while self.queue.is_empty() && !self.finished {
            self.plan_ahead(self.clock + LOOKAHEAD);
            let next = self.arrivals.peek().map(|Reverse(arrival)| *arrival);
            match next {
                Some((at, journey)) if self.end.is_none_or(|end| at < end) => {
                    self.advance_to(at);
                    self.clock = at;
                    self.arrivals.pop();
                    self.generate(journey, at);
                    let following = self.next_arrival(journey, at);
                    self.arrivals.push(Reverse((following, journey)));
                }
                _ => {
                    let end = self.end.unwrap_or(self.clock);
                    self.clock = end;
                    self.advance_to(end + DRAIN);
                    for exporter in 0..self.exporters.len() {
                        let last =
                            self.exporters[exporter].buffer.iter().map(|span| span.true_end).max().unwrap_or(end);
                        self.flush(exporter, last.max(end + DRAIN), true);
                    }
                    self.finished = true;
                }
            }
        }
    }
}

impl Iterator for Simulation {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        self.fill_queue();
        self.queue.pop_front()
    }
}

fn scope(language: &str, protocol: Protocol) -> InstrumentationScope {
    let (name, version) = match (language, protocol) {
        ("java", Protocol::Grpc) => ("io.opentelemetry.grpc-1.6", "2.9.0-alpha"),
        ("java", Protocol::Http) => ("io.opentelemetry.spring-webmvc-6.0", "2.9.0-alpha"),
        ("go", Protocol::Grpc) => {
            ("go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc", "0.56.0")
        }
        ("go", Protocol::Http) => ("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.56.0"),
        ("nodejs", _) => ("@opentelemetry/instrumentation-http", "0.54.0"),
        ("python", _) => ("opentelemetry.instrumentation.flask", "0.48b0"),
        ("dotnet", _) => ("OpenTelemetry.Instrumentation.AspNetCore", "1.9.0"),
        _ => ("io.opentelemetry.instrumentation", "2.9.0"),
    };
    InstrumentationScope {
        name: name.to_string(),
        version: version.to_string(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    }
}

fn sdk_version(language: &str) -> &'static str {
    match language {
        "go" => "1.31.0",
        "nodejs" => "1.27.0",
        "python" => "1.27.0",
        "dotnet" => "1.9.0",
        _ => "1.43.0",
    }
}
