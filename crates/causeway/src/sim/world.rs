//! Worlds: the simulated system described as data (YAML), parsed once into indexed types.
//!
//! A world names services, their instances, operations and call graphs, the uninstrumented
//! dependencies they use (databases, caches, external APIs), message topics, the journeys users
//! take, and the team that owns each part. The schema is documented in `sim/mod.rs` and by
//! example in `worlds/webshop.yaml`. Parsing rejects unknown keys; validation names the world,
//! the path inside it and the bad value. Nothing here is random: instance ids, pod and host names
//! derive from names by hashing, so a world looks the same under every seed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::Nanos;

/// The worlds shipped in the binary: `(name, YAML)`.
pub const BUILTIN_WORLDS: [(&str, &str); 2] =
    [("webshop", include_str!("worlds/webshop.yaml")), ("large", include_str!("worlds/large.yaml"))];

/// Loads a built-in world by name (`webshop`, `large`) or a world file by path.
pub fn load(name_or_path: &str) -> anyhow::Result<World> {
    if let Some((name, yaml)) = BUILTIN_WORLDS.iter().find(|(name, _)| *name == name_or_path) {
        return parse(yaml, &format!("built-in world {name}"));
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        let names: Vec<&str> = BUILTIN_WORLDS.iter().map(|(name, _)| *name).collect();
        bail!("world {name_or_path:?} is neither a built-in world ({}) nor a file", names.join(", "));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read world file {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates a world. `origin` names it in error messages.
pub fn parse(yaml: &str, origin: &str) -> anyhow::Result<World> {
    let deserializer = serde_norway::Deserializer::from_str(yaml);
    let raw: RawWorld = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        anyhow::anyhow!("{origin}: at {path}: {}", error.into_inner())
    })?;
    build(raw).with_context(|| format!("invalid world in {origin}"))
}

/// A validated world. Indices (`usize`) point into the vectors of this struct.
#[derive(Debug, Clone)]
pub struct World {
    pub name: String,
    /// `service.namespace` and the Kubernetes namespace of every service.
    pub namespace: String,
    pub environment: String,
    pub region: String,
    pub zones: Vec<String>,
    pub default_team: String,
    /// Sorted by name.
    pub teams: Vec<Team>,
    pub services: Vec<Service>,
    pub dependencies: Vec<Dependency>,
    pub topics: Vec<Topic>,
    pub journeys: Vec<Journey>,
    /// One-way latency of a network hop.
    pub network: LatencyModel,
    /// Default client timeout.
    pub timeout: Nanos,
    pub noise: Noise,
    pub traffic: Traffic,
}

#[derive(Debug, Clone)]
pub struct Team {
    pub name: String,
    pub pagerduty: bool,
    pub slack: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Http,
    Grpc,
}

/// Which generation of OpenTelemetry semantic-convention keys a service's instrumentation emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Semconv {
    #[default]
    New,
    Old,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub team: String,
    pub version: String,
    /// `telemetry.sdk.language`.
    pub language: String,
    pub protocol: Protocol,
    pub semconv: Semconv,
    /// False for a legacy service whose spans all carry `SPAN_KIND_UNSPECIFIED`.
    pub records_kind: bool,
    /// How far this service's clock is off (its spans' timestamps are shifted by it).
    pub clock_skew: Nanos,
    /// Whether its client spans name the callee with `peer.service` / `service.peer.name`.
    pub peer_attribute: bool,
    pub instances: Vec<Instance>,
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub pod: String,
    pub host: String,
    pub zone: String,
}

#[derive(Debug, Clone)]
pub struct Operation {
    /// The server span's name: `GET /api/cart` (HTTP), `shop.Cart/GetCart` (gRPC), or a
    /// consumer's `orders.placed process`.
    pub name: String,
    /// HTTP method and route, when the name has the form `METHOD /route`.
    pub http: Option<(String, String)>,
    /// gRPC service and method, for a gRPC service's operation.
    pub rpc: Option<(String, String)>,
    /// The operation's own work, excluding the calls it makes.
    pub latency: LatencyModel,
    /// How often the operation fails by itself (background noise).
    pub error_rate: f64,
    pub steps: Vec<Step>,
}

/// One step of an operation: a call, or calls made in parallel.
#[derive(Debug, Clone)]
pub enum Step {
    Single(Call),
    Parallel(Vec<Call>),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub target: Target,
    /// Probability that the call is made at all.
    pub probability: f64,
    /// Attempts after the first when a call fails.
    pub retries: u32,
    /// The caller absorbs a failure of this call (cached value, default, degraded answer).
    pub fallback: bool,
    pub timeout: Nanos,
    /// How many times the call is made in a row (N+1 queries, batches).
    pub repeat: u32,
}

#[derive(Debug, Clone)]
pub enum Target {
    Service { service: usize, operation: usize },
    Dependency { dependency: usize, operation: String, statement: Option<String> },
    Publish { topic: usize },
    Internal { name: String, latency: LatencyModel },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    /// A PostgreSQL database: named `postgresql/<namespace>` (SPEC §4.2).
    Postgresql,
    /// A Redis cache: named `redis/<host>`.
    Redis,
    /// An HTTP API outside the system: named by its host (`server.address`).
    Http,
}

/// An uninstrumented dependency: seen only through the CLIENT spans that call it.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub key: String,
    pub kind: DependencyKind,
    pub namespace: Option<String>,
    pub host: String,
    pub port: u16,
    pub team: String,
    pub latency: LatencyModel,
    pub error_rate: f64,
}

impl Dependency {
    /// The component name as SPEC §4.2 derives it from client-span attributes.
    pub fn component_name(&self) -> String {
        match self.kind {
            DependencyKind::Postgresql => {
                format!("postgresql/{}", self.namespace.as_deref().unwrap_or(&self.host))
            }
            DependencyKind::Redis => format!("redis/{}", self.host),
            DependencyKind::Http => self.host.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    /// `messaging.system`, e.g. `kafka`.
    pub system: String,
    pub team: String,
    /// Time a message waits before a consumer picks it up.
    pub delay: LatencyModel,
    pub consumers: Vec<(usize, usize)>,
}

impl Topic {
    pub fn component_name(&self) -> String {
        format!("{}/{}", self.system, self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Journey {
    pub name: String,
    pub service: usize,
    pub operation: usize,
    pub owner: String,
    /// Requests per second before variation and `--rate-scale`.
    pub rate: f64,
    pub availability: f64,
    pub latency_threshold_ms: f64,
    pub latency_target: f64,
}

#[derive(Debug, Clone)]
pub struct Noise {
    /// Default own error rate of an operation.
    pub error_rate: f64,
    /// Share of spans the pipeline loses.
    pub lost_spans: f64,
}

#[derive(Debug, Clone)]
pub struct Traffic {
    /// Relative amplitude of the daily cycle (0.15: ±15% around the mean).
    pub diurnal_amplitude: f64,
    /// Standard deviation of the per-minute log step of each journey's random walk.
    pub walk_step: f64,
}

/// A log-normal latency given by its median and 99th percentile.
#[derive(Debug, Clone, Copy)]
pub struct LatencyModel {
    pub median_ms: f64,
    pub p99_ms: f64,
    mu: f64,
    sigma: f64,
}

/// The 99th percentile of the standard normal distribution.
const Z_99: f64 = 2.326_347_874;

/// No sampled latency exceeds this (keeps the far tail of a log-normal finite).
const MAX_SAMPLE_MS: f64 = 60_000.0;

impl LatencyModel {
    pub fn new(median_ms: f64, p99_ms: f64) -> anyhow::Result<LatencyModel> {
        if !(median_ms.is_finite() && median_ms > 0.0) {
            bail!("latency median_ms must be a positive number, got {median_ms}");
        }
        if !(p99_ms.is_finite() && p99_ms >= median_ms) {
            bail!("latency p99_ms must be at least median_ms ({median_ms}), got {p99_ms}");
        }
        Ok(LatencyModel { median_ms, p99_ms, mu: (median_ms * 1e6).ln(), sigma: (p99_ms / median_ms).ln() / Z_99 })
    }

    /// A sample in nanoseconds.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Nanos {
        let z: f64 = rng.sample(rand_distr::StandardNormal);
        let nanos = (self.mu + self.sigma * z).exp();
        nanos.min(MAX_SAMPLE_MS * 1e6) as Nanos
    }
}

/// A part of the world a fault can hit and the truth can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Service(usize),
    Dependency(usize),
    Topic(usize),
}

impl World {
    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|service| service.name == name)
    }

    /// The component's name as SPEC §4.2 names it.
    pub fn component_name(&self, component: Component) -> String {
        match component {
            Component::Service(index) => self.services[index].name.clone(),
            Component::Dependency(index) => self.dependencies[index].component_name(),
            Component::Topic(index) => self.topics[index].component_name(),
        }
    }

    pub fn component_team(&self, component: Component) -> &str {
        match component {
            Component::Service(index) => &self.services[index].team,
            Component::Dependency(index) => &self.dependencies[index].team,
            Component::Topic(index) => &self.topics[index].team,
        }
    }

    /// Every call site in the world: `(caller service, operation, call)`.
    pub fn call_sites(&self) -> impl Iterator<Item = (usize, usize, &Call)> {
        self.services.iter().enumerate().flat_map(|(service_index, service)| {
            service.operations.iter().enumerate().flat_map(move |(operation_index, operation)| {
                operation
                    .steps
                    .iter()
                    .flat_map(|step| match step {
                        Step::Single(call) => std::slice::from_ref(call),
                        Step::Parallel(calls) => calls.as_slice(),
                    })
                    .map(move |call| (service_index, operation_index, call))
            })
        })
    }

    /// The operations a journey's requests can run (following every call, fallbacks included).
    pub fn operations_reached(&self, journey: usize) -> BTreeSet<(usize, usize)> {
        let mut reached = BTreeSet::new();
        let mut todo = vec![(self.journeys[journey].service, self.journeys[journey].operation)];
        while let Some(node) = todo.pop() {
            if !reached.insert(node) {
                continue;
            }
            for step in &self.services[node.0].operations[node.1].steps {
                let calls = match step {
                    Step::Single(call) => std::slice::from_ref(call),
                    Step::Parallel(calls) => calls.as_slice(),
                };
                for call in calls {
                    if let Target::Service { service, operation } = call.target {
                        todo.push((service, operation));
                    }
                }
            }
        }
        reached
    }

    /// What each journey reaches, and how: see [`Reach`].
    pub fn reach(&self) -> Vec<BTreeMap<Component, Reach>> {
        self.journeys
            .iter()
            .map(|journey| {
                let mut reached = BTreeMap::new();
                let path = Route { depth: 0, propagates: true, share: 1.0 };
                self.walk_reach(journey.service, journey.operation, path, &mut reached);
                reached
            })
            .collect()
    }

    fn walk_reach(&self, service: usize, operation: usize, path: Route, reached: &mut BTreeMap<Component, Reach>) {
        reached.entry(Component::Service(service)).or_default().add(path);
        for step in &self.services[service].operations[operation].steps {
            let calls = match step {
                Step::Single(call) => std::slice::from_ref(call),
                Step::Parallel(calls) => calls.as_slice(),
            };
            for call in calls {
                let next = Route {
                    depth: path.depth + 1,
                    propagates: path.propagates && !call.fallback,
                    share: path.share * call.probability,
                };
                match &call.target {
                    Target::Service { service, operation } => self.walk_reach(*service, *operation, next, reached),
                    Target::Dependency { dependency, .. } => {
                        reached.entry(Component::Dependency(*dependency)).or_default().add(next);
                    }
                    // A message is consumed in another trace: the journey's entry never waits for it.
                    Target::Publish { .. } | Target::Internal { .. } => {}
                }
            }
        }
    }
}

/// One way a journey's requests get to a component.
#[derive(Debug, Clone, Copy)]
struct Route {
    depth: u32,
    propagates: bool,
    share: f64,
}

/// How a journey reaches a component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// Fewest service hops from the entry service (the entry service is at depth 0).
    pub depth: u32,
    /// Some path reaches it without a fallback, so its failures can reach the user.
    pub propagates: bool,
    /// Share of the journey's requests that reach it without a fallback on the way (the
    /// product of the call probabilities along the likeliest such path): how much of the
    /// journey its failures can hurt.
    pub error_share: f64,
    /// Share of the journey's requests that reach it at all: how much of the journey waits for it.
    pub share: f64,
}

impl Default for Reach {
    fn default() -> Self {
        Reach { depth: u32::MAX, propagates: false, error_share: 0.0, share: 0.0 }
    }
}

impl Reach {
    fn add(&mut self, path: Route) {
        self.depth = self.depth.min(path.depth);
        self.share = self.share.max(path.share);
        if path.propagates {
            self.propagates = true;
            self.error_share = self.error_share.max(path.share);
        }
    }
}

// ---- raw schema -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorld {
    name: String,
    #[serde(default = "default_namespace")]
    namespace: String,
    #[serde(default = "default_environment")]
    environment: String,
    #[serde(default = "default_region")]
    region: String,
    #[serde(default = "default_zones")]
    zones: Vec<String>,
    default_team: String,
    teams: BTreeMap<String, Vec<Channel>>,
    #[serde(default)]
    network: Option<RawLatency>,
    #[serde(default)]
    timeout_ms: Option<f64>,
    #[serde(default)]
    noise: RawNoise,
    #[serde(default)]
    traffic: RawTraffic,
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    dependencies: BTreeMap<String, RawDependency>,
    #[serde(default)]
    topics: BTreeMap<String, RawTopic>,
    journeys: Vec<RawJourney>,
}

fn default_namespace() -> String {
    "shop".to_string()
}
fn default_environment() -> String {
    "production".to_string()
}
fn default_region() -> String {
    "eu-west-1".to_string()
}
fn default_zones() -> Vec<String> {
    vec!["eu-west-1a".to_string(), "eu-west-1b".to_string(), "eu-west-1c".to_string()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Channel {
    Pagerduty,
    Slack,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    median_ms: f64,
    p99_ms: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoise {
    #[serde(default = "default_noise_error_rate")]
    error_rate: f64,
    #[serde(default = "default_lost_spans")]
    lost_spans: f64,
}

impl Default for RawNoise {
    fn default() -> Self {
        RawNoise { error_rate: default_noise_error_rate(), lost_spans: default_lost_spans() }
    }
}

fn default_noise_error_rate() -> f64 {
    0.0003
}
fn default_lost_spans() -> f64 {
    0.001
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraffic {
    #[serde(default = "default_diurnal")]
    diurnal_amplitude: f64,
    #[serde(default = "default_walk_step")]
    walk_step: f64,
}

impl Default for RawTraffic {
    fn default() -> Self {
        RawTraffic { diurnal_amplitude: default_diurnal(), walk_step: default_walk_step() }
    }
}

fn default_diurnal() -> f64 {
    0.15
}
fn default_walk_step() -> f64 {
    0.03
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    team: String,
    version: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default)]
    protocol: Protocol,
    #[serde(default)]
    semconv: Semconv,
    #[serde(default = "default_true")]
    span_kinds: bool,
    #[serde(default)]
    clock_skew_ms: f64,
    #[serde(default = "default_true")]
    peer_attribute: bool,
    instances: RawInstances,
    operations: BTreeMap<String, RawOperation>,
}

fn default_language() -> String {
    "java".to_string()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawInstances {
    Count(u32),
    List(Vec<RawInstance>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    #[serde(default)]
    id: Option<String>,
    pod: String,
    host: String,
    zone: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    latency: RawLatency,
    #[serde(default)]
    error_rate: Option<f64>,
    #[serde(default)]
    calls: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    dependency: Option<String>,
    #[serde(default)]
    statement: Option<String>,
    #[serde(default)]
    publish: Option<String>,
    #[serde(default)]
    internal: Option<String>,
    #[serde(default)]
    latency: Option<RawLatency>,
    #[serde(default)]
    parallel: Option<Vec<RawStep>>,
    #[serde(default = "default_probability")]
    p: f64,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    fallback: bool,
    #[serde(default)]
    timeout_ms: Option<f64>,
    #[serde(default = "default_repeat")]
    repeat: u32,
}

fn default_probability() -> f64 {
    1.0
}
fn default_repeat() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDependency {
    kind: DependencyKind,
    #[serde(default)]
    namespace: Option<String>,
    host: String,
    #[serde(default)]
    port: Option<u16>,
    team: String,
    latency: RawLatency,
    #[serde(default)]
    error_rate: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    #[serde(default = "default_messaging_system")]
    system: String,
    team: String,
    delay: RawLatency,
    consumers: Vec<RawOperationRef>,
}

fn default_messaging_system() -> String {
    "kafka".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperationRef {
    service: String,
    operation: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJourney {
    name: String,
    entry: RawOperationRef,
    #[serde(default)]
    owner: Option<String>,
    rate: f64,
    slo: RawSlo,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    availability: f64,
    latency: RawLatencySlo,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatencySlo {
    threshold_ms: f64,
    target: f64,
}

// ---- validation -------------------------------------------------------------------------------

fn latency(raw: RawLatency, path: &str) -> anyhow::Result<LatencyModel> {
    LatencyModel::new(raw.median_ms, raw.p99_ms).with_context(|| format!("{path}.latency"))
}

fn rate(value: f64, path: &str) -> anyhow::Result<f64> {
    if !(0.0..=1.0).contains(&value) {
        bail!("{path}: must be between 0 and 1, got {value}");
    }
    Ok(value)
}

fn build(raw: RawWorld) -> anyhow::Result<World> {
    if raw.zones.is_empty() {
        bail!("zones: at least one zone is needed");
    }
    let teams: Vec<Team> = raw
        .teams
        .iter()
        .map(|(name, channels)| Team {
            name: name.clone(),
            pagerduty: channels.contains(&Channel::Pagerduty),
            slack: channels.contains(&Channel::Slack),
        })
        .collect();
    let team_names: BTreeSet<&str> = raw.teams.keys().map(String::as_str).collect();
    let check_team = |team: &str, path: &str| -> anyhow::Result<()> {
        if !team_names.contains(team) {
            bail!("{path}: team {team:?} is not declared under teams");
        }
        Ok(())
    };
    check_team(&raw.default_team, "default_team")?;
    let network = match raw.network {
        Some(raw_network) => latency(raw_network, "network")?,
        None => LatencyModel::new(0.3, 2.5).expect("the default network latency is valid"),
    };
    let timeout_ms = raw.timeout_ms.unwrap_or(5_000.0);
    if !(timeout_ms.is_finite() && timeout_ms > 0.0) {
        bail!("timeout_ms: must be positive, got {timeout_ms}");
    }
    let noise = Noise {
        error_rate: rate(raw.noise.error_rate, "noise.error_rate")?,
        lost_spans: rate(raw.noise.lost_spans, "noise.lost_spans")?,
    };
    let traffic = Traffic {
        diurnal_amplitude: rate(raw.traffic.diurnal_amplitude, "traffic.diurnal_amplitude")?,
        walk_step: rate(raw.traffic.walk_step, "traffic.walk_step")?,
    };

    // Names first, so calls can refer to anything regardless of order.
    let service_names: Vec<&String> = raw.services.keys().collect();
    let dependency_names: Vec<&String> = raw.dependencies.keys().collect();
    let topic_names: Vec<&String> = raw.topics.keys().collect();
    let operation_names: Vec<Vec<&String>> =
        raw.services.values().map(|service| service.operations.keys().collect()).collect();
    let find_operation = |service: &str, operation: &str, path: &str| -> anyhow::Result<(usize, usize)> {
        let service_index = service_names
            .iter()
            .position(|name| name.as_str() == service)
            .with_context(|| format!("{path}: unknown service {service:?}"))?;
        let operation_index = operation_names[service_index]
            .iter()
            .position(|name| name.as_str() == operation)
            .with_context(|| format!("{path}: service {service:?} has no operation {operation:?}"))?;
        Ok((service_index, operation_index))
    };

    let mut dependencies = Vec::new();
    for (key, dependency) in &raw.dependencies {
        let path = format!("dependencies.{key}");
        check_team(&dependency.team, &format!("{path}.team"))?;
        if dependency.kind == DependencyKind::Postgresql && dependency.namespace.is_none() {
            bail!("{path}.namespace: a postgresql dependency needs its database name");
        }
        let port = dependency.port.unwrap_or(match dependency.kind {
            DependencyKind::Postgresql => 5432,
            DependencyKind::Redis => 6379,
            DependencyKind::Http => 443,
        });
        dependencies.push(Dependency {
            key: key.clone(),
            kind: dependency.kind,
            namespace: dependency.namespace.clone(),
            host: dependency.host.clone(),
            port,
            team: dependency.team.clone(),
            latency: latency(dependency.latency, &path)?,
            error_rate: rate(dependency.error_rate, &format!("{path}.error_rate"))?,
        });
    }

    let mut topics = Vec::new();
    for (name, topic) in &raw.topics {
        let path = format!("topics.{name}");
        check_team(&topic.team, &format!("{path}.team"))?;
        let consumers = topic
            .consumers
            .iter()
            .enumerate()
            .map(|(index, consumer)| {
                find_operation(&consumer.service, &consumer.operation, &format!("{path}.consumers[{index}]"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        topics.push(Topic {
            name: name.clone(),
            system: topic.system.clone(),
            team: topic.team.clone(),
            delay: LatencyModel::new(topic.delay.median_ms, topic.delay.p99_ms)
                .with_context(|| format!("{path}.delay"))?,
            consumers,
        });
    }

    let default_timeout = (timeout_ms * 1e6) as Nanos;
    let mut services = Vec::new();
    for (name, service) in &raw.services {
        let path = format!("services.{name}");
        check_team(&service.team, &format!("{path}.team"))?;
        let instances = match &service.instances {
            RawInstances::Count(0) => bail!("{path}.instances: at least one instance is needed"),
            RawInstances::Count(count) => (0..*count as usize)
                .map(|index| generated_instance(&raw.namespace, &raw.region, name, index, &raw.zones))
                .collect(),
            RawInstances::List(list) if list.is_empty() => bail!("{path}.instances: at least one instance is needed"),
            RawInstances::List(list) => list
                .iter()
                .enumerate()
                .map(|(index, instance)| Instance {
                    id: instance.id.clone().unwrap_or_else(|| uuid_like(&format!("{name}/{index}"))),
                    pod: instance.pod.clone(),
                    host: instance.host.clone(),
                    zone: instance.zone.clone(),
                })
                .collect(),
        };
        let mut operations = Vec::new();
        for (operation_name, operation) in &service.operations {
            let operation_path = format!("{path}.operations[{operation_name:?}]");
            let http = operation_name.split_once(' ').and_then(|(method, route)| {
                let is_method = matches!(method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS");
                (is_method && route.starts_with('/')).then(|| (method.to_string(), route.to_string()))
            });
            let rpc = match service.protocol {
                Protocol::Grpc => {
                    let parts = operation_name.split_once('/').filter(|(rpc_service, method)| {
                        !rpc_service.is_empty() && !method.is_empty() && !method.contains('/')
                    });
                    let consumes = raw.topics.values().any(|topic| {
                        topic
                            .consumers
                            .iter()
                            .any(|consumer| consumer.service == *name && consumer.operation == *operation_name)
                    });
                    if parts.is_none() && !consumes {
                        bail!("{operation_path}: a grpc operation is named `package.Service/Method`");
                    }
                    parts.map(|(rpc_service, method)| (rpc_service.to_string(), method.to_string()))
                }
                Protocol::Http => None,
            };
            let mut steps = Vec::new();
            for (index, raw_step) in operation.calls.iter().enumerate() {
                let step_path = format!("{operation_path}.calls[{index}]");
                let step = match &raw_step.parallel {
                    Some(branches) => {
                        if raw_step.service.is_some()
                            || raw_step.dependency.is_some()
                            || raw_step.publish.is_some()
                            || raw_step.internal.is_some()
                        {
                            bail!("{step_path}: a parallel step holds only its list of calls");
                        }
                        if branches.is_empty() {
                            bail!("{step_path}.parallel: empty");
                        }
                        let calls = branches
                            .iter()
                            .enumerate()
                            .map(|(branch, raw_call)| {
                                let branch_path = format!("{step_path}.parallel[{branch}]");
                                if raw_call.parallel.is_some() {
                                    bail!("{branch_path}: parallel steps do not nest");
                                }
                                call(
                                    raw_call,
                                    &branch_path,
                                    default_timeout,
                                    &find_operation,
                                    &dependency_names,
                                    &topic_names,
                                )
                            })
                            .collect::<anyhow::Result<Vec<_>>>()?;
                        Step::Parallel(calls)
                    }
                    None => Step::Single(call(
                        raw_step,
                        &step_path,
                        default_timeout,
                        &find_operation,
                        &dependency_names,
                        &topic_names,
                    )?),
                };
                steps.push(step);
            }
            operations.push(Operation {
                name: operation_name.clone(),
                http,
                rpc,
                latency: latency(operation.latency, &operation_path)?,
                error_rate: rate(
                    operation.error_rate.unwrap_or(noise.error_rate),
                    &format!("{operation_path}.error_rate"),
                )?,
                steps,
            });
        }
        if operations.is_empty() {
            bail!("{path}.operations: a service needs at least one operation");
        }
        services.push(Service {
            name: name.clone(),
            team: service.team.clone(),
            version: service.version.clone(),
            language: service.language.clone(),
            protocol: service.protocol,
            semconv: service.semconv,
            records_kind: service.span_kinds,
            clock_skew: (service.clock_skew_ms * 1e6) as Nanos,
            peer_attribute: service.peer_attribute,
            instances,
            operations,
        });
    }

    let mut journeys = Vec::new();
    let mut journey_names = BTreeSet::new();
    for (index, journey) in raw.journeys.iter().enumerate() {
        let path = format!("journeys[{index}]");
        if !journey_names.insert(journey.name.clone()) {
            bail!("{path}.name: journey {:?} is defined twice", journey.name);
        }
        if journey.name.is_empty() || !journey.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            bail!("{path}.name: use letters, digits and dashes, got {:?}", journey.name);
        }
        let (service, operation) =
            find_operation(&journey.entry.service, &journey.entry.operation, &format!("{path}.entry"))?;
        let owner = journey.owner.clone().unwrap_or_else(|| services[service].team.clone());
        check_team(&owner, &format!("{path}.owner"))?;
        if !(journey.rate.is_finite() && journey.rate > 0.0) {
            bail!("{path}.rate: must be a positive number of requests per second, got {}", journey.rate);
        }
        let slo = &journey.slo;
        if !(slo.availability > 0.0 && slo.availability < 100.0) {
            bail!("{path}.slo.availability: must be a percentage below 100, got {}", slo.availability);
        }
        if !(slo.latency.target > 0.0 && slo.latency.target < 100.0) {
            bail!("{path}.slo.latency.target: must be a percentage below 100, got {}", slo.latency.target);
        }
        if !(slo.latency.threshold_ms.is_finite() && slo.latency.threshold_ms > 0.0) {
            bail!("{path}.slo.latency.threshold_ms: must be positive, got {}", slo.latency.threshold_ms);
        }
        journeys.push(Journey {
            name: journey.name.clone(),
            service,
            operation,
            owner,
            rate: journey.rate,
            availability: slo.availability,
            latency_threshold_ms: slo.latency.threshold_ms,
            latency_target: slo.latency.target,
        });
    }
    if journeys.is_empty() {
        bail!("journeys: at least one journey is needed");
    }

    let world = World {
        name: raw.name,
        namespace: raw.namespace,
        environment: raw.environment,
        region: raw.region,
        zones: raw.zones,
        default_team: raw.default_team,
        teams,
        services,
        dependencies,
        topics,
        journeys,
        network,
        timeout: default_timeout,
        noise,
        traffic,
    };
    check_acyclic(&world)?;
    Ok(world)
}

fn call(
    raw: &RawStep,
    path: &str,
    default_timeout: Nanos,
    find_operation: &dyn Fn(&str, &str, &str) -> anyhow::Result<(usize, usize)>,
    dependency_names: &[&String],
    topic_names: &[&String],
) -> anyhow::Result<Call> {
    let n_targets = [raw.service.is_some(), raw.dependency.is_some(), raw.publish.is_some(), raw.internal.is_some()]
        .iter()
        .filter(|set| **set)
        .count();
    if n_targets != 1 {
        bail!("{path}: a call names exactly one of service, dependency, publish, internal, parallel");
    }
    let target = if let Some(service) = &raw.service {
        let operation = raw
            .operation
            .as_deref()
            .with_context(|| format!("{path}: a call to service {service:?} needs its operation"))?;
        let (service, operation) = find_operation(service, operation, path)?;
        Target::Service { service, operation }
    } else if let Some(dependency) = &raw.dependency {
        let index = dependency_names
            .iter()
            .position(|name| name.as_str() == dependency)
            .with_context(|| format!("{path}: unknown dependency {dependency:?}"))?;
        let operation = raw
            .operation
            .clone()
            .with_context(|| format!("{path}: a call to dependency {dependency:?} needs its operation"))?;
        Target::Dependency { dependency: index, operation, statement: raw.statement.clone() }
    } else if let Some(topic) = &raw.publish {
        let index = topic_names
            .iter()
            .position(|name| name.as_str() == topic)
            .with_context(|| format!("{path}: unknown topic {topic:?}"))?;
        Target::Publish { topic: index }
    } else {
        let name = raw.internal.clone().expect("exactly one target is set");
        let raw_latency = raw.latency.with_context(|| format!("{path}: internal step {name:?} needs a latency"))?;
        Target::Internal { name, latency: latency(raw_latency, path)? }
    };
    if raw.latency.is_some() && !matches!(target, Target::Internal { .. }) {
        bail!("{path}.latency: only internal steps have their own latency (a callee's latency is its own)");
    }
    if !(0.0..=1.0).contains(&raw.p) {
        bail!("{path}.p: must be between 0 and 1, got {}", raw.p);
    }
    if raw.repeat == 0 {
        bail!("{path}.repeat: must be at least 1");
    }
    let timeout = match raw.timeout_ms {
        Some(timeout_ms) if timeout_ms.is_finite() && timeout_ms > 0.0 => (timeout_ms * 1e6) as Nanos,
        Some(timeout_ms) => bail!("{path}.timeout_ms: must be positive, got {timeout_ms}"),
        None => default_timeout,
    };
    Ok(Call { target, probability: raw.p, retries: raw.retries, fallback: raw.fallback, timeout, repeat: raw.repeat })
}

/// Rejects call cycles (including through topics): they would generate endless traces.
fn check_acyclic(world: &World) -> anyhow::Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(world: &World, node: (usize, usize), marks: &mut BTreeMap<(usize, usize), Mark>) -> anyhow::Result<()> {
        match marks.get(&node).copied().unwrap_or(Mark::New) {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let service = &world.services[node.0];
                bail!("calls: a cycle runs through {} {:?}", service.name, service.operations[node.1].name);
            }
            Mark::New => {}
        }
        marks.insert(node, Mark::Active);
        for step in &world.services[node.0].operations[node.1].steps {
            let calls = match step {
                Step::Single(call) => std::slice::from_ref(call),
                Step::Parallel(calls) => calls.as_slice(),
            };
            for call in calls {
                match &call.target {
                    Target::Service { service, operation } => visit(world, (*service, *operation), marks)?,
                    Target::Publish { topic } => {
                        for consumer in &world.topics[*topic].consumers {
                            visit(world, *consumer, marks)?;
                        }
                    }
                    Target::Dependency { .. } | Target::Internal { .. } => {}
                }
            }
        }
        marks.insert(node, Mark::Done);
        Ok(())
    }
    let mut marks = BTreeMap::new();
    for (service_index, service) in world.services.iter().enumerate() {
        for operation_index in 0..service.operations.len() {
            visit(world, (service_index, operation_index), &mut marks)?;
        }
    }
    Ok(())
}

/// FNV-1a, for names that must look random but stay the same for every seed.
pub(crate) fn name_hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // One round of splitmix64 spreads FNV's weak low bits.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

fn uuid_like(seed: &str) -> String {
    let high = name_hash(seed);
    let low = name_hash(&format!("{seed}#low"));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        ((low >> 48) & 0x3fff) | 0x8000,
        low & 0xffff_ffff_ffff
    )
}

fn generated_instance(namespace: &str, region: &str, service: &str, index: usize, zones: &[String]) -> Instance {
    const POD_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let replica_set = name_hash(&format!("{namespace}/{service}"));
    let pod_hash = name_hash(&format!("{namespace}/{service}/{index}"));
    let pick = |mut value: u64, length: usize| -> String {
        (0..length)
            .map(|_| {
                let c = POD_ALPHABET[(value % POD_ALPHABET.len() as u64) as usize] as char;
                value /= POD_ALPHABET.len() as u64;
                c
            })
            .collect()
    };
    let zone = zones[index % zones.len()].clone();
    let host_bits = name_hash(&format!("host/{namespace}/{service}/{index}"));
    Instance {
        id: uuid_like(&format!("{namespace}/{service}/{index}")),
        pod: format!("{service}-{}-{}", pick(replica_set, 10), pick(pod_hash, 5)),
        host: format!(
            "ip-10-{}-{}-{}.{region}.compute.internal",
            index % zones.len(),
            (host_bits >> 8) % 256,
            host_bits % 254 + 1
        ),
        zone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_worlds_parse() {
        for (name, _) in BUILTIN_WORLDS {
            let world = load(name).expect("built-in world is valid");
            assert_eq!(world.name, name);
        }
    }

    #[test]
    fn builtin_worlds_have_the_promised_size() {
        let webshop = load("webshop").expect("webshop");
        assert!((13..=18).contains(&webshop.services.len()), "{}", webshop.services.len());
        let owning: BTreeSet<&str> = webshop.services.iter().map(|service| service.team.as_str()).collect();
        assert!(owning.len() >= 5, "{owning:?}");
        assert_eq!(webshop.teams.len(), 6);
        let large = load("large").expect("large");
        assert!(large.services.len() >= 40, "{}", large.services.len());
        assert!(large.teams.len() >= 10, "{}", large.teams.len());
    }

    #[test]
    fn errors_name_the_path_and_value() {
        let yaml = r#"
name: tiny
default_team: a
teams: { a: [slack] }
services:
  front:
    team: a
    version: "1"
    instances: 1
    operations:
      "GET /":
        latency: { median_ms: 1, p99_ms: 2 }
        calls:
          - { service: back, operation: "GET /x" }
journeys:
  - { name: home, entry: { service: front, operation: "GET /" }, rate: 1,
      slo: { availability: 99.9, latency: { threshold_ms: 100, target: 99 } } }
"#;
        let error = format!("{:#}", parse(yaml, "tiny.yaml").expect_err("unknown service"));
        assert!(error.contains("tiny.yaml"), "{error}");
        assert!(error.contains("calls[0]"), "{error}");
        assert!(error.contains("\"back\""), "{error}");

        let unknown_key = yaml.replace("version: \"1\"", "version: \"1\"\n    colour: blue");
        let error = format!("{:#}", parse(&unknown_key, "tiny.yaml").expect_err("unknown key"));
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn cycles_are_rejected() {
        let yaml = r#"
name: loop
default_team: a
teams: { a: [slack] }
services:
  front:
    team: a
    version: "1"
    instances: 1
    operations:
      "GET /":
        latency: { median_ms: 1, p99_ms: 2 }
        calls: [ { service: back, operation: "GET /x" } ]
  back:
    team: a
    version: "1"
    instances: 1
    operations:
      "GET /x":
        latency: { median_ms: 1, p99_ms: 2 }
        calls: [ { service: front, operation: "GET /" } ]
journeys:
  - { name: home, entry: { service: front, operation: "GET /" }, rate: 1,
      slo: { availability: 99.9, latency: { threshold_ms: 100, target: 99 } } }
"#;
        let error = format!("{:#}", parse(yaml, "loop.yaml").expect_err("cycle"));
        assert!(error.contains("cycle"), "{error}");
    }

    #[test]
    fn log_normal_matches_its_median_and_p99() {
        use rand::SeedableRng;
        let model = LatencyModel::new(10.0, 50.0).expect("valid");
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut samples: Vec<Nanos> = (0..20_000).map(|_| model.sample(&mut rng)).collect();
        samples.sort_unstable();
        let median_ms = samples[samples.len() / 2] as f64 / 1e6;
        let p99_ms = samples[samples.len() * 99 / 100] as f64 / 1e6;
        assert!((median_ms - 10.0).abs() < 0.5, "median {median_ms}");
        assert!((p99_ms - 50.0).abs() < 5.0, "p99 {p99_ms}");
    }
}
