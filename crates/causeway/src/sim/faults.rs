//! The fault catalogue: what each kind of fault does to traffic, how it is placed on a world,
//! when it happens (schedules), and the ground truth it leaves behind.
//!
//! A fault is data: a window and one or two [`Cause`]s, each a component and an [`Effect`] the
//! trace generator applies to spans in the window. The planner picks targets from the world's
//! structure (depth, fan-in, fallbacks), never from a list of answers, spreading consecutive
//! faults over different journeys so their symptoms do not blur into one another.
//!
//! Magnitudes are fixed here and documented: error faults fail 50-95% of the target's work;
//! latency faults are sized from the latency thresholds of the journeys they reach (a delay of
//! about the threshold), because a slowdown nobody feels is not a fault worth routing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::Nanos;
use super::world::{Component, LatencyModel, Reach, Step, Target, World};

/// The kinds of fault the simulator injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A service three or more levels deep returns 5xx; errors propagate up through its callers.
    DeepErrors,
    /// An uninstrumented PostgreSQL database answers errors.
    DbErrors,
    /// A dependency stops answering: client spans time out, no response status, no server span.
    NoResponse,
    /// One instance of a service runs a new version that fails.
    BadDeploy,
    /// A leaf service's own work gets much slower.
    CpuSaturation,
    /// One pod of a mid-graph service gets network delay on everything it sends.
    NetworkDelay,
    /// Two independent error faults at once, owned by different teams.
    TwoCauses,
    /// A dependency used by several journeys fails.
    SharedDependency,
    /// A failure callers absorb (fallbacks): no journey suffers, nobody should be paged.
    Harmless,
}

impl FaultKind {
    /// Every kind, in the order `--faults all` schedules them.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::DeepErrors,
        FaultKind::DbErrors,
        FaultKind::BadDeploy,
        FaultKind::NetworkDelay,
        FaultKind::NoResponse,
        FaultKind::CpuSaturation,
        FaultKind::TwoCauses,
        FaultKind::Harmless,
        FaultKind::SharedDependency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::DeepErrors => "deep_errors",
            FaultKind::DbErrors => "db_errors",
            FaultKind::NoResponse => "no_response",
            FaultKind::BadDeploy => "bad_deploy",
            FaultKind::CpuSaturation => "cpu_saturation",
            FaultKind::NetworkDelay => "network_delay",
            FaultKind::TwoCauses => "two_causes",
            FaultKind::SharedDependency => "shared_dependency",
            FaultKind::Harmless => "harmless",
        }
    }

    pub fn parse(text: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Parses `--faults`: `all`, `none`, or a comma-separated list of kinds.
    pub fn parse_list(text: &str) -> anyhow::Result<Option<Vec<FaultKind>>> {
        match text.trim() {
            "all" => return Ok(None),
            "none" | "" => return Ok(Some(Vec::new())),
            _ => {}
        }
        text.split(',')
            .map(|item| {
                let item = item.trim();
                FaultKind::parse(item).ok_or_else(|| {
                    let names: Vec<&str> = FaultKind::ALL.iter().map(|kind| kind.as_str()).collect();
                    anyhow::anyhow!("--faults: unknown fault kind {item:?} (known: {}, all, none)", names.join(", "))
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When faults happen.
#[derive(Clone, Debug)]
pub enum FaultPlan {
    /// Fault-free traffic.
    None,
    /// Spread over the run: a fault-free baseline first, then faults separated by quiet periods,
    /// then a quiet tail so the last one can resolve. With `fill`, the kinds repeat in turn until
    /// the run is full; without, each listed kind happens once.
    Spread { kinds: Vec<FaultKind>, fill: bool },
    /// The demo's mode: the first fault after `first_after`, then one every `every`, each lasting
    /// `duration`, kinds in turn. Runs as long as the simulation does.
    Cycle { kinds: Vec<FaultKind>, first_after: Duration, duration: Duration, every: Duration },
}

impl FaultPlan {
    /// Every kind, spread over the run: the default.
    pub fn all() -> FaultPlan {
        FaultPlan::Spread { kinds: FaultKind::ALL.to_vec(), fill: true }
    }

    /// The demo's schedule: a fault of about 2.5 minutes every 4 minutes, every kind in turn.
    pub fn demo() -> FaultPlan {
        FaultPlan::Cycle {
            kinds: FaultKind::ALL.to_vec(),
            first_after: Duration::from_secs(120),
            duration: Duration::from_secs(150),
            every: Duration::from_secs(240),
        }
    }
}

/// One injected fault (a `two_causes` fault has two causes).
#[derive(Clone, Debug)]
pub struct Fault {
    pub id: String,
    pub kind: FaultKind,
    pub start: Nanos,
    pub end: Nanos,
    pub causes: Vec<Cause>,
    /// One line for people: what was done to whom.
    pub description: String,
}

impl Fault {
    pub fn is_active(&self, at: Nanos) -> bool {
        self.start <= at && at < self.end
    }

    /// Whether this fault belongs in truth.json's `harmless` list rather than `faults`.
    pub fn is_harmless(&self) -> bool {
        self.kind == FaultKind::Harmless
    }

    /// Ground-truth entries: one per cause.
    pub fn truth(&self) -> Vec<TruthEntry> {
        let several = self.causes.len() > 1;
        self.causes
            .iter()
            .enumerate()
            .map(|(index, cause)| TruthEntry {
                id: if several { format!("{}{}", self.id, (b'a' + index as u8) as char) } else { self.id.clone() },
                start: super::rfc3339(self.start),
                end: super::rfc3339(self.end),
                service: cause.name.clone(),
                team: cause.team.clone(),
                kind: self.kind.as_str().to_string(),
            })
            .collect()
    }
}

/// What a fault does and where, named as SPEC §4.2 names the component closest to the cause.
#[derive(Clone, Debug)]
pub struct Cause {
    pub component: Component,
    pub name: String,
    pub team: String,
    pub effect: Effect,
}

/// The change a fault makes to traffic. The trace generator applies it to spans whose (true)
/// start time lies in the fault's window.
#[derive(Clone, Debug)]
pub enum Effect {
    /// The service's own work fails (HTTP 500 / gRPC INTERNAL) with this probability; on one
    /// instance only when `instance` is set (a bad deploy: the failures are crashes of new code).
    ServerErrors { service: usize, instance: Option<usize>, probability: f64, crash: bool },
    /// The dependency answers errors with this probability.
    DependencyErrors { dependency: usize, probability: f64 },
    /// Calls to the component get no answer: the client waits for its timeout.
    NoResponse { component: Component },
    /// The service's own work takes this much longer.
    Slow { service: usize, extra: LatencyModel },
    /// Every message the pod sends waits this long (like `tc netem delay` on its interface):
    /// responses of calls into it, requests of calls out of it. Its server spans' own work does
    /// not change; the time shows up as gaps (CLIENT span minus its SERVER child) on both sides.
    /// An operation of the pod that calls out still lasts longer in total, because it waits for
    /// those slower calls, exactly as it would under a real netem.
    PodDelay { service: usize, instance: usize, delay: LatencyModel },
}

/// One `truth.json` entry (SPEC §7).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TruthEntry {
    pub id: String,
    pub start: String,
    pub end: String,
    pub service: String,
    pub team: String,
    pub kind: String,
}

/// A version change of a service's instances: a deploy (benign or bad) or a rollback.
#[derive(Clone, Debug)]
pub struct VersionChange {
    pub service: usize,
    /// One instance (a canary, a bad deploy) or all of them, rolling.
    pub instance: Option<usize>,
    pub at: Nanos,
    pub version: String,
    pub summary: String,
}

/// Time between instances of a rolling deploy.
pub const ROLLING_STEP: Nanos = 15_000_000_000;

/// Places faults on a world.
pub struct Planner {
    world: Arc<World>,
    reach: Vec<BTreeMap<Component, Reach>>,
    rng: StdRng,
    /// Index of the last fault that hit each journey.
    last_hit: Vec<Option<usize>>,
    /// How often each component has been a target.
    used: BTreeMap<Component, usize>,
    /// Current version of each service (benign deploys move it).
    versions: Vec<String>,
    n_planned: usize,
}

/// A candidate target: its causes and the journeys it hurts.
struct Candidate {
    causes: Vec<(Component, Effect)>,
    journeys: BTreeSet<usize>,
}

const MINUTE: Nanos = 60_000_000_000;

/// An error fault must reach at least this share of a journey's requests: with half of those
/// failing, a third of the journey fails, which a 99.9% SLO pages on within a few minutes.
const MIN_ERROR_SHARE: f64 = 0.6;

impl Planner {
    pub fn new(world: Arc<World>, seed: u64) -> Planner {
        let reach = world.reach();
        let versions = world.services.iter().map(|service| service.version.clone()).collect();
        Planner {
            last_hit: vec![None; world.journeys.len()],
            world,
            reach,
            rng: StdRng::seed_from_u64(seed ^ 0x6661_756c_7473),
            used: BTreeMap::new(),
            versions,
            n_planned: 0,
        }
    }

    /// Places a fault of `kind` in `[start, end)`; `None` when the world offers no target for it.
    /// A bad deploy also returns its deploy and rollback.
    pub fn fault(&mut self, kind: FaultKind, start: Nanos, end: Nanos) -> Option<(Fault, Vec<VersionChange>)> {
        let candidates = self.candidates(kind);
        let chosen = self.choose(candidates)?;
        self.n_planned += 1;
        let index = self.n_planned;
        for journey in &chosen.journeys {
            self.last_hit[*journey] = Some(index);
        }
        let mut changes = Vec::new();
        let mut causes = Vec::new();
        for (component, effect) in chosen.causes {
            *self.used.entry(component).or_default() += 1;
            if let Effect::ServerErrors { service, instance: Some(instance), .. } = effect {
                let service_ref = &self.world.services[service];
                let old = self.versions[service].clone();
                let new = bump(&old, false);
                let pod = &service_ref.instances[instance].pod;
                changes.push(VersionChange {
                    service,
                    instance: Some(instance),
                    at: start,
                    version: new.clone(),
                    summary: format!(
                        "deploy {} {new} to {pod} (canary, 1 of {})",
                        service_ref.name,
                        service_ref.instances.len()
                    ),
                });
                changes.push(VersionChange {
                    service,
                    instance: Some(instance),
                    at: end,
                    version: old.clone(),
                    summary: format!("rollback {} on {pod} to {old}", service_ref.name),
                });
            }
            causes.push(Cause {
                component,
                name: self.world.component_name(component),
                team: self.world.component_team(component).to_string(),
                effect,
            });
        }
        let description = describe(&self.world, kind, &causes);
        Some((Fault { id: format!("f{index:02}"), kind, start, end, causes, description }, changes))
    }

    /// A benign rolling deploy of a service that is not in `avoid`.
    pub fn benign_deploy(&mut self, at: Nanos, avoid: &BTreeSet<usize>) -> Option<VersionChange> {
        let choices: Vec<usize> = (0..self.world.services.len()).filter(|service| !avoid.contains(service)).collect();
        if choices.is_empty() {
            return None;
        }
        let service = choices[self.rng.random_range(0..choices.len())];
        let version = bump(&self.versions[service], true);
        self.versions[service] = version.clone();
        let name = &self.world.services[service].name;
        Some(VersionChange {
            service,
            instance: None,
            at,
            version: version.clone(),
            summary: format!("deploy {name} {version} (rolling)"),
        })
    }

    fn choose(&mut self, mut candidates: Vec<Candidate>) -> Option<Candidate> {
        if candidates.is_empty() {
            return None;
        }
        // Least used first, then the ones whose journeys were hit least recently (a journey hit
        // by the previous fault weighs 1, two faults ago 1/4, ...), so that one fault's symptoms
        // have cleared before the next hits the same journey; pick among the best few at random
        // so seeds differ.
        let next = self.n_planned + 1;
        let key = |candidate: &Candidate| -> (usize, f64) {
            let used: usize =
                candidate.causes.iter().map(|(component, _)| self.used.get(component).copied().unwrap_or(0)).sum();
            let penalty: f64 = candidate
                .journeys
                .iter()
                .filter_map(|journey| self.last_hit[*journey])
                .map(|hit| 1.0 / ((next - hit) as f64).powi(2))
                .sum();
            (used, penalty)
        };
        candidates.sort_by(|a, b| {
            let (used_a, penalty_a) = key(a);
            let (used_b, penalty_b) = key(b);
            used_a.cmp(&used_b).then(penalty_a.total_cmp(&penalty_b))
        });
        let (best_used, best_penalty) = key(&candidates[0]);
        let n_best = candidates
            .iter()
            .take_while(|candidate| {
                let (used, penalty) = key(candidate);
                used == best_used && penalty <= best_penalty + 0.05
            })
            .count()
            .clamp(1, 4);
        let pick = self.rng.random_range(0..n_best);
        Some(candidates.swap_remove(pick))
    }

    /// Journeys on which failures of `component` reach at least `min_share` of the requests.
    fn journeys_hurt_by_errors(&self, component: Component, min_share: f64) -> BTreeSet<usize> {
        (0..self.reach.len())
            .filter(|journey| {
                self.reach[*journey]
                    .get(&component)
                    .is_some_and(|reach| reach.propagates && reach.error_share >= min_share)
            })
            .collect()
    }

    /// Journeys whose requests wait for `component` (fallbacks or not: slowness is felt either
    /// way), at least `min_share` of them.
    fn journeys_slowed_by(&self, component: Component, min_share: f64) -> BTreeSet<usize> {
        (0..self.reach.len())
            .filter(|journey| self.reach[*journey].get(&component).is_some_and(|reach| reach.share >= min_share))
            .collect()
    }

    fn is_entry(&self, service: usize) -> bool {
        self.world.journeys.iter().any(|journey| journey.service == service)
    }

    fn max_depth(&self, component: Component) -> u32 {
        self.reach
            .iter()
            .filter_map(|reached| reached.get(&component).filter(|reach| reach.propagates))
            .map(|reach| reach.depth)
            .max()
            .unwrap_or(0)
    }

    /// Shortest timeout among the call sites calling `component`.
    fn incoming_timeout(&self, component: Component) -> Nanos {
        self.world
            .call_sites()
            .filter(|(_, _, call)| match (&call.target, component) {
                (Target::Service { service, .. }, Component::Service(target)) => *service == target,
                (Target::Dependency { dependency, .. }, Component::Dependency(target)) => *dependency == target,
                _ => false,
            })
            .map(|(_, _, call)| call.timeout)
            .min()
            .unwrap_or(self.world.timeout)
    }

    /// A saturated service's extra work per request: 1.5 times the smallest latency threshold of
    /// the journeys it slows, so at least those feel it. `None` when its callers' timeouts would
    /// turn the slowness into errors first (that would be another kind of fault).
    fn saturation(&self, service: usize, journeys: &BTreeSet<usize>) -> Option<LatencyModel> {
        let threshold =
            journeys.iter().map(|journey| self.world.journeys[*journey].latency_threshold_ms).reduce(f64::min)?;
        let timeout_ms = self.incoming_timeout(Component::Service(service)) as f64 / 1e6;
        if timeout_ms < 3.0 * threshold {
            return None;
        }
        LatencyModel::new(1.5 * threshold, (3.0 * threshold).min(0.8 * timeout_ms)).ok()
    }

    /// Network delay per message sent by one pod of `service`: enough that the journey most
    /// sensitive to it crosses its latency threshold, counting the messages the pod sends for it
    /// (the response, plus one request per sequential call). `None` when the sum would hit the
    /// callers' timeouts.
    fn netem(&self, service: usize, journeys: &BTreeSet<usize>) -> Option<LatencyModel> {
        let world = &self.world;
        let messages = |operation: usize| -> f64 {
            let sequential: u32 = world.services[service].operations[operation]
                .steps
                .iter()
                .map(|step| match step {
                    Step::Single(call) if !matches!(call.target, Target::Internal { .. }) => call.repeat,
                    Step::Parallel(calls) => calls.iter().map(|call| call.repeat).max().unwrap_or(0),
                    Step::Single(_) => 0,
                })
                .sum();
            f64::from(1 + sequential)
        };
        let mut per_message = f64::INFINITY;
        let mut most_messages: f64 = 1.0;
        for journey in journeys {
            let operations: Vec<usize> = world
                .operations_reached(*journey)
                .into_iter()
                .filter(|(reached, _)| *reached == service)
                .map(|(_, operation)| operation)
                .collect();
            let Some(fewest) = operations.iter().map(|operation| messages(*operation)).reduce(f64::min) else {
                continue;
            };
            most_messages = operations.iter().map(|operation| messages(*operation)).fold(most_messages, f64::max);
            per_message = per_message.min(1.5 * world.journeys[*journey].latency_threshold_ms / fewest);
        }
        let timeout_ms = self.incoming_timeout(Component::Service(service)) as f64 / 1e6;
        if !per_message.is_finite() || 2.0 * per_message * most_messages > 0.8 * timeout_ms {
            return None;
        }
        LatencyModel::new(per_message, 2.0 * per_message).ok()
    }

    /// Of single-instance faults, the ones on services with the fewest instances: one bad pod of
    /// two hurts half the requests, one of four only a quarter (which a 99.9% SLO may not page on).
    fn fewest_instances(&self, candidates: Vec<Candidate>) -> Vec<Candidate> {
        let instances = |candidate: &Candidate| match candidate.causes[0].0 {
            Component::Service(service) => self.world.services[service].instances.len(),
            _ => usize::MAX,
        };
        let fewest = candidates.iter().map(instances).min().unwrap_or(0);
        candidates.into_iter().filter(|candidate| instances(candidate) == fewest).collect()
    }

    fn error_candidate(&self, component: Component, probability: f64) -> Option<Candidate> {
        let journeys = self.journeys_hurt_by_errors(component, MIN_ERROR_SHARE);
        if journeys.is_empty() {
            return None;
        }
        let effect = match component {
            Component::Service(service) => Effect::ServerErrors { service, instance: None, probability, crash: false },
            Component::Dependency(dependency) => Effect::DependencyErrors { dependency, probability },
            Component::Topic(_) => return None,
        };
        Some(Candidate { causes: vec![(component, effect)], journeys })
    }

    fn components(&self) -> Vec<Component> {
        (0..self.world.services.len())
            .map(Component::Service)
            .chain((0..self.world.dependencies.len()).map(Component::Dependency))
            .collect()
    }

    fn candidates(&self, kind: FaultKind) -> Vec<Candidate> {
        let world = &self.world;
        match kind {
            FaultKind::DeepErrors => (0..world.services.len())
                .filter(|service| self.max_depth(Component::Service(*service)) >= 3)
                .filter_map(|service| self.error_candidate(Component::Service(service), 0.6))
                .collect(),
            FaultKind::DbErrors => (0..world.dependencies.len())
                .filter(|dependency| world.dependencies[*dependency].kind == super::world::DependencyKind::Postgresql)
                .filter_map(|dependency| self.error_candidate(Component::Dependency(dependency), 0.5))
                .collect(),
            FaultKind::NoResponse => {
                // Prefer what an SRE means by "a dependency stops answering": something outside the
                // instrumented services (a cache, an external API, a database).
                let dependencies: Vec<Candidate> = (0..world.dependencies.len())
                    .map(Component::Dependency)
                    .filter_map(|component| {
                        let journeys = self.journeys_hurt_by_errors(component, 0.5);
                        (!journeys.is_empty()).then(|| Candidate {
                            causes: vec![(component, Effect::NoResponse { component })],
                            journeys,
                        })
                    })
                    .collect();
                if !dependencies.is_empty() {
                    return dependencies;
                }
                (0..world.services.len())
                    .filter(|service| !self.is_entry(*service))
                    .map(Component::Service)
                    .filter_map(|component| {
                        let journeys = self.journeys_hurt_by_errors(component, 0.5);
                        (!journeys.is_empty()).then(|| Candidate {
                            causes: vec![(component, Effect::NoResponse { component })],
                            journeys,
                        })
                    })
                    .collect()
            }
            FaultKind::BadDeploy => {
                let mut candidates = Vec::new();
                for service in 0..world.services.len() {
                    let n_instances = world.services[service].instances.len();
                    if !(2..=4).contains(&n_instances) || self.is_entry(service) {
                        continue;
                    }
                    let journeys = self.journeys_hurt_by_errors(Component::Service(service), 0.9);
                    if journeys.is_empty() {
                        continue;
                    }
                    let instance =
                        (super::world::name_hash(&world.services[service].name) % n_instances as u64) as usize;
                    candidates.push(Candidate {
                        causes: vec![(
                            Component::Service(service),
                            Effect::ServerErrors { service, instance: Some(instance), probability: 0.95, crash: true },
                        )],
                        journeys,
                    });
                }
                self.fewest_instances(candidates)
            }
            FaultKind::CpuSaturation => (0..world.services.len())
                .filter(|service| !calls_services(world, *service) && !self.is_entry(*service))
                .filter_map(|service| {
                    let journeys = self.journeys_slowed_by(Component::Service(service), 0.5);
                    let extra = self.saturation(service, &journeys)?;
                    (!journeys.is_empty()).then(|| Candidate {
                        causes: vec![(Component::Service(service), Effect::Slow { service, extra })],
                        journeys,
                    })
                })
                .collect(),
            FaultKind::NetworkDelay => self.fewest_instances(
                (0..world.services.len())
                    .filter(|service| calls_services(world, *service) && !self.is_entry(*service))
                    .filter(|service| (2..=4).contains(&world.services[*service].instances.len()))
                    .filter_map(|service| {
                        let journeys = self.journeys_slowed_by(Component::Service(service), 0.8);
                        let n_instances = world.services[service].instances.len();
                        let instance = (super::world::name_hash(&format!("{}/netem", world.services[service].name))
                            % n_instances as u64) as usize;
                        let delay = self.netem(service, &journeys)?;
                        (!journeys.is_empty()).then(|| Candidate {
                            causes: vec![(Component::Service(service), Effect::PodDelay { service, instance, delay })],
                            journeys,
                        })
                    })
                    .collect(),
            ),
            FaultKind::TwoCauses => {
                let singles: Vec<Candidate> = self
                    .components()
                    .into_iter()
                    .filter(|component| !matches!(component, Component::Service(service) if self.is_entry(*service)))
                    .filter(|component| match component {
                        Component::Dependency(dependency) => {
                            world.dependencies[*dependency].kind == super::world::DependencyKind::Postgresql
                        }
                        _ => true,
                    })
                    .filter_map(|component| self.error_candidate(component, 0.5))
                    .collect();
                let mut pairs = Vec::new();
                for (first_index, first) in singles.iter().enumerate() {
                    for second in &singles[first_index + 1..] {
                        let (first_component, _) = &first.causes[0];
                        let (second_component, _) = &second.causes[0];
                        if world.component_team(*first_component) == world.component_team(*second_component) {
                            continue;
                        }
                        // Two causes on one journey make the page's decision interesting (two
                        // owners, one incident); require a shared journey when the world has any.
                        if first.journeys.is_disjoint(&second.journeys) {
                            continue;
                        }
                        pairs.push(Candidate {
                            causes: vec![first.causes[0].clone(), second.causes[0].clone()],
                            journeys: first.journeys.union(&second.journeys).copied().collect(),
                        });
                    }
                }
                pairs
            }
            FaultKind::SharedDependency => {
                let mut scored: Vec<(usize, Candidate)> = self
                    .components()
                    .into_iter()
                    .filter(|component| !matches!(component, Component::Service(service) if self.is_entry(*service)))
                    .filter_map(|component| self.error_candidate(component, 0.5))
                    .map(|candidate| (candidate.journeys.len(), candidate))
                    .filter(|(n_journeys, _)| *n_journeys >= 2)
                    .collect();
                let most = scored.iter().map(|(n_journeys, _)| *n_journeys).max().unwrap_or(0);
                // The widest few: "used by several journeys" is the point of this fault.
                scored.retain(|(n_journeys, _)| *n_journeys + 1 >= most);
                scored.into_iter().map(|(_, candidate)| candidate).collect()
            }
            FaultKind::Harmless => {
                // Components every caller reaches through a fallback: their failures are absorbed.
                let mut incoming: BTreeMap<Component, (usize, usize)> = BTreeMap::new();
                for (_, _, call) in world.call_sites() {
                    let component = match &call.target {
                        Target::Service { service, .. } => Component::Service(*service),
                        Target::Dependency { dependency, .. } => Component::Dependency(*dependency),
                        _ => continue,
                    };
                    let counts = incoming.entry(component).or_default();
                    counts.0 += 1;
                    if call.fallback {
                        counts.1 += 1;
                    }
                }
                incoming
                    .into_iter()
                    .filter(|(_, (n_calls, n_fallbacks))| n_calls == n_fallbacks)
                    .filter_map(|(component, _)| {
                        let journeys = self.journeys_slowed_by(component, 0.0);
                        if journeys.is_empty() || !self.journeys_hurt_by_errors(component, 0.0).is_empty() {
                            return None;
                        }
                        let effect = match component {
                            Component::Service(service) => {
                                Effect::ServerErrors { service, instance: None, probability: 0.8, crash: false }
                            }
                            Component::Dependency(dependency) => {
                                Effect::DependencyErrors { dependency, probability: 0.8 }
                            }
                            Component::Topic(_) => return None,
                        };
                        // No journey is hurt, so it counts against no journey's recency.
                        Some(Candidate { causes: vec![(component, effect)], journeys: BTreeSet::new() })
                    })
                    .collect()
            }
        }
    }
}

/// Whether any operation of the service calls another instrumented service.
fn calls_services(world: &World, service: usize) -> bool {
    world.services[service].operations.iter().any(|operation| {
        operation.steps.iter().any(|step| {
            let calls = match step {
                Step::Single(call) => std::slice::from_ref(call),
                Step::Parallel(calls) => calls.as_slice(),
            };
            calls.iter().any(|call| matches!(call.target, Target::Service { .. }))
        })
    })
}

fn describe(world: &World, kind: FaultKind, causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|cause| {
            let what = match &cause.effect {
                Effect::ServerErrors { instance: Some(instance), probability, service, .. } => format!(
                    "{} on pod {} fails {:.0}% of requests",
                    cause.name,
                    world.services[*service].instances[*instance].pod,
                    probability * 100.0
                ),
                Effect::ServerErrors { probability, .. } => {
                    format!("{} returns 5xx on {:.0}% of requests", cause.name, probability * 100.0)
                }
                Effect::DependencyErrors { probability, .. } => {
                    format!("{} answers errors on {:.0}% of calls", cause.name, probability * 100.0)
                }
                Effect::NoResponse { .. } => format!("{} stops answering", cause.name),
                Effect::Slow { extra, .. } => {
                    format!("{} is saturated (+{:.0} ms median per request)", cause.name, extra.median_ms)
                }
                Effect::PodDelay { service, instance, delay } => format!(
                    "pod {} of {} gets +{:.0} ms network delay",
                    world.services[*service].instances[*instance].pod, cause.name, delay.median_ms
                ),
            };
            format!("{what} (team {})", cause.team)
        })
        .collect();
    format!("{kind}: {}", parts.join(" and "))
}

/// The next version: patch bump for routine deploys, minor bump for a feature release.
fn bump(version: &str, patch: bool) -> String {
    let parts: Vec<&str> = version.split('.').collect();
    let numbers: Option<Vec<u64>> = parts.iter().map(|part| part.parse().ok()).collect();
    match numbers {
        Some(mut numbers) if numbers.len() >= 2 => {
            if patch && numbers.len() >= 3 {
                numbers[2] += 1;
            } else {
                numbers[1] += 1;
                for number in numbers.iter_mut().skip(2) {
                    *number = 0;
                }
            }
            numbers.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
        }
        _ => format!("{version}-next"),
    }
}

/// Fault windows of a spread plan, as offsets from the start of the run.
pub fn spread_windows(duration: Duration, n_kinds: usize, fill: bool) -> anyhow::Result<Vec<(Nanos, Nanos)>> {
    let total = duration.as_nanos() as Nanos;
    if n_kinds == 0 {
        return Ok(Vec::new());
    }
    let fault = (total / 8).clamp(MINUTE, 3 * MINUTE);
    let gap_min = fault;
    let baseline = (total * 8 / 100).clamp(2 * MINUTE, 10 * MINUTE);
    let tail = (total * 7 / 100).clamp(2 * MINUTE, 8 * MINUTE);
    let room = total - baseline - tail;
    let n_max = if room < fault { 0 } else { ((room + gap_min) / (fault + gap_min)) as usize };
    let n = if fill { n_max } else { n_kinds };
    if n == 0 || n > n_max {
        bail!(
            "--duration {} leaves room for {n_max} faults after a {}-minute baseline, but {} were asked for",
            humantime::format_duration(duration),
            baseline / MINUTE,
            n.max(1)
        );
    }
    let gap = if n > 1 { (room - n as Nanos * fault) / (n as Nanos - 1) } else { 0 };
    // Whole seconds make the truth easy to read.
    let second = 1_000_000_000;
    Ok((0..n as Nanos)
        .map(|index| {
            let start = (baseline + index * (fault + gap)) / second * second;
            (start, start + fault)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_holds_every_kind_with_quiet_gaps() {
        let windows = spread_windows(Duration::from_secs(3600), 9, true).expect("fits");
        assert!(windows.len() >= 9, "{}", windows.len());
        assert!(windows[0].0 >= 4 * MINUTE, "a baseline comes first");
        for pair in windows.windows(2) {
            assert!(pair[1].0 - pair[0].1 >= 3 * MINUTE, "quiet gap {pair:?}");
        }
        let last_end = windows.last().expect("some").1;
        assert!(3600 * 1_000_000_000 - last_end >= 2 * MINUTE);
    }

    #[test]
    fn explicit_lists_must_fit() {
        assert!(spread_windows(Duration::from_secs(600), 9, false).is_err());
        assert_eq!(spread_windows(Duration::from_secs(1200), 2, false).expect("fits").len(), 2);
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(FaultKind::parse_list("all").expect("ok"), None);
        assert_eq!(FaultKind::parse_list("none").expect("ok"), Some(vec![]));
        assert_eq!(
            FaultKind::parse_list("db_errors, harmless").expect("ok"),
            Some(vec![FaultKind::DbErrors, FaultKind::Harmless])
        );
        let error = FaultKind::parse_list("db_error").expect_err("typo").to_string();
        assert!(error.contains("db_error") && error.contains("db_errors"), "{error}");
    }

    #[test]
    fn versions_bump() {
        assert_eq!(bump("2.14.3", true), "2.14.4");
        assert_eq!(bump("2.14.3", false), "2.15.0");
        assert_eq!(bump("v7", true), "v7-next");
    }

    #[test]
    fn every_kind_finds_a_target_in_the_builtin_worlds() {
        for name in ["webshop", "large"] {
            let world = Arc::new(super::super::world::load(name).expect("world"));
            let mut planner = Planner::new(world.clone(), 1);
            for kind in FaultKind::ALL {
                let (fault, _) =
                    planner.fault(kind, 0, MINUTE).unwrap_or_else(|| panic!("{name}: no target for {kind}"));
                if kind == FaultKind::TwoCauses {
                    assert_eq!(fault.causes.len(), 2);
                    assert_ne!(fault.causes[0].team, fault.causes[1].team);
                }
            }
        }
    }
}
