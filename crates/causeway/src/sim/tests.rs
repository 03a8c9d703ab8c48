//! Scenario tests of the simulator's own claims: determinism, faults visible where (and only
//! where) their ground truth says, noise that stays harmless, and bundle files other tools parse.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::trace::v1 as otlp;

use super::faults::{Effect, Fault, FaultKind, FaultPlan};
use super::simulation::{SimEvent, Simulation};
use super::spans::{KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, KIND_UNSPECIFIED};
use super::world::{self, Component};
use super::{BundleSettings, Nanos, Options, write_bundle};

const SECOND: Nanos = 1_000_000_000;

fn options(world_name: &str, minutes: u64, faults: FaultPlan, rate_scale: f64) -> Options {
    let mut options = Options::new(world::load(world_name).expect("built-in world"));
    options.duration = Some(Duration::from_secs(minutes * 60));
    options.faults = faults;
    options.rate_scale = rate_scale;
    options
}

fn only(kind: FaultKind) -> FaultPlan {
    FaultPlan::Spread { kinds: vec![kind], fill: false }
}

/// A span with the resource it was exported under.
struct Seen {
    service: String,
    version: String,
    pod: String,
    span: otlp::Span,
}

impl Seen {
    fn start(&self) -> Nanos {
        self.span.start_time_unix_nano as Nanos
    }

    fn duration(&self) -> Nanos {
        (self.span.end_time_unix_nano - self.span.start_time_unix_nano) as Nanos
    }

    fn failed(&self) -> bool {
        self.span.status.as_ref().is_some_and(|status| status.code == 2)
    }

    fn attribute(&self, key: &str) -> Option<&AnyValue> {
        self.span
            .attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .and_then(|attribute| attribute.value.as_ref())
    }

    fn text(&self, key: &str) -> Option<String> {
        self.attribute(key).map(super::super::receivers::otlp::value_text)
    }
}

struct Run {
    spans: Vec<Seen>,
    faults: Vec<Fault>,
    n_batches: usize,
    /// Trace ids seen per export request line.
    lines_per_trace: BTreeMap<Vec<u8>, BTreeSet<usize>>,
}

impl Run {
    fn by_id(&self) -> BTreeMap<&[u8], usize> {
        self.spans.iter().enumerate().map(|(index, seen)| (seen.span.span_id.as_slice(), index)).collect()
    }

    fn children(&self) -> BTreeMap<&[u8], Vec<usize>> {
        let mut children: BTreeMap<&[u8], Vec<usize>> = BTreeMap::new();
        for (index, seen) in self.spans.iter().enumerate() {
            if !seen.span.parent_span_id.is_empty() {
                children.entry(seen.span.parent_span_id.as_slice()).or_default().push(index);
            }
        }
        children
    }

    fn fault(&self) -> &Fault {
        assert_eq!(self.faults.len(), 1, "one fault planned");
        &self.faults[0]
    }
}

fn run(options: Options) -> Run {
    let simulation = Simulation::new(options).expect("simulation starts");
    let mut spans = Vec::new();
    let mut faults = Vec::new();
    let mut n_batches = 0;
    let mut lines_per_trace: BTreeMap<Vec<u8>, BTreeSet<usize>> = BTreeMap::new();
    for event in simulation {
        match event {
            SimEvent::Batch(batch) => {
                n_batches += 1;
                assert_eq!(batch.request.resource_spans.len(), 1, "one resource per request");
                for resource_spans in batch.request.resource_spans {
                    let attributes = resource_spans.resource.expect("resource").attributes;
                    let get = |key: &str| {
                        attributes
                            .iter()
                            .find(|attribute| attribute.key == key)
                            .and_then(|attribute| attribute.value.as_ref())
                            .map(super::super::receivers::otlp::value_text)
                            .unwrap_or_default()
                    };
                    let (service, version, pod) = (get("service.name"), get("service.version"), get("k8s.pod.name"));
                    for scope_spans in resource_spans.scope_spans {
                        for span in scope_spans.spans {
                            lines_per_trace.entry(span.trace_id.clone()).or_default().insert(n_batches);
                            spans.push(Seen {
                                service: service.clone(),
                                version: version.clone(),
                                pod: pod.clone(),
                                span,
                            });
                        }
                    }
                }
            }
            SimEvent::FaultStarted(fault) => faults.push(fault),
            SimEvent::FaultEnded(_) => {}
        }
    }
    Run { spans, faults, n_batches, lines_per_trace }
}

fn share(values: impl Iterator<Item = bool>) -> (f64, usize) {
    let (mut yes, mut total) = (0usize, 0usize);
    for value in values {
        total += 1;
        yes += usize::from(value);
    }
    (if total == 0 { 0.0 } else { yes as f64 / total as f64 }, total)
}

fn median(mut values: Vec<Nanos>) -> Nanos {
    assert!(!values.is_empty(), "median of nothing");
    values.sort_unstable();
    values[values.len() / 2]
}

fn inside(fault: &Fault, at: Nanos) -> bool {
    fault.start <= at && at < fault.end
}

/// Outside the fault window, with a margin for traces that straddle its edges.
fn well_outside(fault: &Fault, at: Nanos) -> bool {
    at < fault.start - 10 * SECOND || at > fault.end + 10 * SECOND
}

// ---- determinism ----------------------------------------------------------------------------

#[test]
fn the_same_seed_writes_the_same_bundle() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let write = |name: &str, seed: u64| {
        let mut options = options(
            "webshop",
            10,
            FaultPlan::Spread { kinds: vec![FaultKind::DbErrors, FaultKind::BadDeploy], fill: false },
            0.3,
        );
        options.seed = seed;
        let path = directory.path().join(name);
        write_bundle(options, &path, &BundleSettings::default()).expect("bundle written");
        path
    };
    let first = write("first", 7);
    let second = write("second", 7);
    let other = write("other", 8);
    for file in ["traces.jsonl", "alerts.jsonl", "changes.jsonl", "causeway.yaml", "owners.yaml", "truth.json"] {
        let a = std::fs::read(first.join(file)).expect("file written");
        let b = std::fs::read(second.join(file)).expect("file written");
        assert!(a == b, "{file} differs between two runs with the same seed");
    }
    let a = std::fs::read(first.join("traces.jsonl")).expect("traces");
    let c = std::fs::read(other.join("traces.jsonl")).expect("traces");
    assert!(a != c, "another seed gives other traces");
}

// ---- faults are where the truth says --------------------------------------------------------

#[test]
fn network_delay_shows_as_gaps_around_the_pod_not_in_its_own_work() {
    let run = run(options("webshop", 10, only(FaultKind::NetworkDelay), 1.0));
    let fault = run.fault();
    let Effect::PodDelay { service, instance, .. } = fault.causes[0].effect else {
        panic!("network_delay has a pod delay: {fault:?}");
    };
    let world = world::load("webshop").expect("world");
    let service_name = &world.services[service].name;
    let pod = &world.services[service].instances[instance].pod;
    assert_eq!(&fault.causes[0].name, service_name);

    let by_id = run.by_id();
    let children = run.children();
    // A server span's own work: its duration minus the time covered by its direct children.
    let own_work = |index: usize| -> Nanos {
        let seen = &run.spans[index];
        let mut intervals: Vec<(Nanos, Nanos)> = children
            .get(seen.span.span_id.as_slice())
            .into_iter()
            .flatten()
            .map(|child| (run.spans[*child].start(), run.spans[*child].span.end_time_unix_nano as Nanos))
            .collect();
        intervals.sort_unstable();
        let mut covered = 0;
        let mut until = Nanos::MIN;
        for (from, to) in intervals {
            let from = from.max(until);
            if to > from {
                covered += to - from;
                until = to;
            }
        }
        seen.duration() - covered
    };
    let pod_servers: Vec<usize> = (0..run.spans.len())
        .filter(|index| run.spans[*index].pod == *pod && run.spans[*index].span.kind == KIND_SERVER)
        .collect();
    let own_inside =
        median(pod_servers.iter().filter(|i| inside(fault, run.spans[**i].start())).map(|i| own_work(*i)).collect());
    let own_outside = median(
        pod_servers.iter().filter(|i| well_outside(fault, run.spans[**i].start())).map(|i| own_work(*i)).collect(),
    );
    assert!(
        (own_inside as f64) < 1.5 * own_outside as f64,
        "the pod's own work does not grow: {own_inside} vs {own_outside} ns"
    );

    // Calls into the pod: the client span outlasts the pod's server span by the delay.
    let gap_into = |keep: &dyn Fn(Nanos) -> bool| -> Vec<Nanos> {
        pod_servers
            .iter()
            .filter_map(|index| {
                let server = &run.spans[*index];
                let client = &run.spans[*by_id.get(server.span.parent_span_id.as_slice())?];
                keep(client.start()).then(|| client.duration() - server.duration())
            })
            .collect()
    };
    let into_inside = median(gap_into(&|at| inside(fault, at)));
    let into_outside = median(gap_into(&|at| well_outside(fault, at)));
    assert!(into_inside > 50 * SECOND / 1000, "gap into the pod under the fault: {into_inside} ns");
    assert!(into_outside < 5 * SECOND / 1000, "gap into the pod otherwise: {into_outside} ns");

    // Calls out of the pod: its client spans outlast their server children.
    let gap_out = |keep: &dyn Fn(Nanos) -> bool| -> Vec<Nanos> {
        run.spans
            .iter()
            .filter(|seen| seen.pod == *pod && seen.span.kind == KIND_CLIENT && keep(seen.start()))
            .filter_map(|client| {
                let child = children.get(client.span.span_id.as_slice())?.first()?;
                Some(client.duration() - run.spans[*child].duration())
            })
            .collect()
    };
    let out_inside = median(gap_out(&|at| inside(fault, at)));
    let out_outside = median(gap_out(&|at| well_outside(fault, at)));
    assert!(out_inside > 50 * SECOND / 1000, "gap out of the pod under the fault: {out_inside} ns");
    assert!(out_outside < 5 * SECOND / 1000, "gap out of the pod otherwise: {out_outside} ns");

    // The service's other pods are untouched.
    let other_gaps: Vec<Nanos> = run
        .spans
        .iter()
        .filter(|seen| seen.service == *service_name && seen.pod != *pod && seen.span.kind == KIND_SERVER)
        .filter(|seen| inside(fault, seen.start()))
        .filter_map(|server| {
            let client = &run.spans[*by_id.get(server.span.parent_span_id.as_slice())?];
            Some(client.duration() - server.duration())
        })
        .collect();
    assert!(median(other_gaps) < 5 * SECOND / 1000, "other pods keep short gaps");
}

#[test]
fn db_errors_fail_the_client_spans_to_the_database() {
    let run = run(options("webshop", 10, only(FaultKind::DbErrors), 1.0));
    let fault = run.fault();
    let name = &fault.causes[0].name;
    let namespace = name.strip_prefix("postgresql/").expect("named postgresql/<database>");
    assert_eq!(fault.causes[0].team, "dba");
    let children = run.children();
    let to_database: Vec<&Seen> = run
        .spans
        .iter()
        .filter(|seen| seen.span.kind == KIND_CLIENT)
        .filter(|seen| {
            let system = seen.text("db.system.name").or_else(|| seen.text("db.system"));
            let database = seen.text("db.namespace").or_else(|| seen.text("db.name"));
            system.as_deref() == Some("postgresql") && database.as_deref() == Some(namespace)
        })
        .collect();
    let (failed_inside, n_inside) = share(to_database.iter().filter(|s| inside(fault, s.start())).map(|s| s.failed()));
    let (failed_outside, n_outside) =
        share(to_database.iter().filter(|s| well_outside(fault, s.start())).map(|s| s.failed()));
    assert!(n_inside > 100 && n_outside > 100, "calls to {name}: {n_inside} inside, {n_outside} outside");
    assert!((0.35..0.65).contains(&failed_inside), "{failed_inside} of calls fail under the fault");
    assert!(failed_outside < 0.01, "{failed_outside} of calls fail otherwise");
    for span in to_database.iter().filter(|s| s.failed()) {
        assert!(span.text("error.type").is_some(), "a failed database call says why");
        assert!(
            span.span.events.iter().any(|event| event.name == "exception"),
            "a failed database call records the driver's exception"
        );
        assert!(!children.contains_key(span.span.span_id.as_slice()), "a database has no server span");
    }
}

#[test]
fn bad_deploy_changes_one_instance_which_then_fails() {
    let run = run(options("webshop", 10, only(FaultKind::BadDeploy), 1.0));
    let fault = run.fault();
    let Effect::ServerErrors { service, instance: Some(instance), .. } = fault.causes[0].effect else {
        panic!("bad_deploy fails one instance: {fault:?}");
    };
    let world = world::load("webshop").expect("world");
    let service_ref = &world.services[service];
    let bad_pod = &service_ref.instances[instance].pod;
    let servers: Vec<&Seen> =
        run.spans.iter().filter(|seen| seen.service == service_ref.name && seen.span.kind == KIND_SERVER).collect();
    // Versions: the bad pod runs a new version from the start of the fault, and only then.
    let versions_of = |keep: &dyn Fn(&Seen) -> bool| -> BTreeSet<String> {
        servers.iter().filter(|seen| keep(seen)).map(|seen| seen.version.clone()).collect()
    };
    let bad_inside = versions_of(&|seen| seen.pod == *bad_pod && inside(fault, seen.start()));
    let bad_outside = versions_of(&|seen| seen.pod == *bad_pod && well_outside(fault, seen.start()));
    let others = versions_of(&|seen| seen.pod != *bad_pod);
    assert_eq!(bad_inside.len(), 1, "{bad_inside:?}");
    assert_eq!(bad_outside, BTreeSet::from([service_ref.version.clone()]));
    assert_eq!(others, BTreeSet::from([service_ref.version.clone()]), "the other instances keep their version");
    assert!(!bad_inside.contains(&service_ref.version));
    // Failures: the bad pod fails, the others do not.
    let (bad_failing, n_bad) = share(
        servers.iter().filter(|seen| seen.pod == *bad_pod && inside(fault, seen.start())).map(|seen| seen.failed()),
    );
    let (other_failing, n_other) = share(
        servers.iter().filter(|seen| seen.pod != *bad_pod && inside(fault, seen.start())).map(|seen| seen.failed()),
    );
    assert!(n_bad > 30 && n_other > 30, "{n_bad} and {n_other} requests");
    assert!(bad_failing > 0.85, "the bad pod fails {bad_failing}");
    assert!(other_failing < 0.05, "the other pods fail {other_failing}");
}

#[test]
fn harmless_failures_leave_the_journeys_healthy() {
    let run = run(options("webshop", 10, only(FaultKind::Harmless), 1.0));
    let fault = run.fault();
    let Component::Service(target) = fault.causes[0].component else {
        panic!("the webshop's harmless target is a service: {fault:?}");
    };
    let world = world::load("webshop").expect("world");
    let target_name = &world.services[target].name;
    let (target_failing, _) = share(
        run.spans
            .iter()
            .filter(|seen| seen.service == *target_name && seen.span.kind == KIND_SERVER && inside(fault, seen.start()))
            .map(Seen::failed),
    );
    assert!(target_failing > 0.6, "the target fails {target_failing}");
    // Entry spans: the roots of journey traces.
    let entries: Vec<&Seen> =
        run.spans.iter().filter(|seen| seen.span.parent_span_id.is_empty() && seen.span.kind == KIND_SERVER).collect();
    let (failing_inside, n_inside) = share(entries.iter().filter(|s| inside(fault, s.start())).map(|s| s.failed()));
    let (failing_outside, _) = share(entries.iter().filter(|s| well_outside(fault, s.start())).map(|s| s.failed()));
    assert!(n_inside > 500, "{n_inside} requests during the fault");
    assert!(failing_inside < 0.005, "entry error rate under the fault: {failing_inside}");
    assert!(failing_outside < 0.005, "entry error rate otherwise: {failing_outside}");
    // The failures are there, handled: failed client spans under healthy parents.
    let by_id = run.by_id();
    let handled = run
        .spans
        .iter()
        .filter(|seen| seen.span.kind == KIND_CLIENT && seen.failed() && inside(fault, seen.start()))
        .filter(|seen| {
            by_id.get(seen.span.parent_span_id.as_slice()).is_some_and(|parent| !run.spans[*parent].failed())
        })
        .count();
    assert!(handled > 100, "{handled} handled errors");
    assert!(fault.is_harmless());
}

#[test]
fn no_response_times_out_without_a_status_or_a_server_span() {
    let run = run(options("webshop", 10, only(FaultKind::NoResponse), 1.0));
    let fault = run.fault();
    let Effect::NoResponse { component } = fault.causes[0].effect else {
        panic!("{fault:?}");
    };
    let world = world::load("webshop").expect("world");
    let Component::Dependency(dependency) = component else {
        panic!("the webshop's no_response target is a dependency: {fault:?}");
    };
    let host = &world.dependencies[dependency].host;
    let children = run.children();
    let calls: Vec<&Seen> = run
        .spans
        .iter()
        .filter(|seen| seen.span.kind == KIND_CLIENT && inside(fault, seen.start()))
        .filter(|seen| seen.text("server.address").or_else(|| seen.text("net.peer.name")).as_deref() == Some(host))
        .collect();
    assert!(calls.len() > 20, "{} calls to {host}", calls.len());
    for call in calls {
        assert!(call.failed());
        assert_eq!(call.text("error.type").as_deref(), Some("timeout"));
        assert!(call.attribute("http.response.status_code").is_none() && call.attribute("http.status_code").is_none());
        assert!(call.duration() >= SECOND / 10, "waits for its timeout");
        assert!(!children.contains_key(call.span.span_id.as_slice()));
    }
}

#[test]
fn cpu_saturation_slows_the_services_own_server_spans() {
    let run = run(options("webshop", 10, only(FaultKind::CpuSaturation), 1.0));
    let fault = run.fault();
    let name = &fault.causes[0].name;
    let by_id = run.by_id();
    // Its incoming spans: called from another service (works for a legacy service too).
    let durations = |keep: &dyn Fn(Nanos) -> bool| -> Vec<Nanos> {
        run.spans
            .iter()
            .filter(|seen| seen.service == *name && keep(seen.start()))
            .filter(|seen| {
                by_id.get(seen.span.parent_span_id.as_slice()).is_some_and(|parent| run.spans[*parent].service != *name)
            })
            .map(Seen::duration)
            .collect()
    };
    let slow = median(durations(&|at| inside(fault, at)));
    let normal = median(durations(&|at| well_outside(fault, at)));
    assert!(slow > 10 * normal && slow > SECOND / 5, "{name}: {slow} ns under the fault, {normal} ns otherwise");
}

#[test]
fn truth_windows_match_the_spans_that_carry_the_faults() {
    let plan = FaultPlan::Spread {
        kinds: vec![FaultKind::DeepErrors, FaultKind::SharedDependency, FaultKind::TwoCauses],
        fill: false,
    };
    let run = run(options("webshop", 20, plan, 0.6));
    assert_eq!(run.faults.len(), 3);
    for fault in &run.faults {
        for cause in &fault.causes {
            let Component::Service(_) = cause.component else {
                continue;
            };
            let failures: Vec<Nanos> = run
                .spans
                .iter()
                .filter(|seen| seen.service == cause.name && seen.span.kind == KIND_SERVER && seen.failed())
                .map(Seen::start)
                .collect();
            let n_inside = failures.iter().filter(|at| inside(fault, **at)).count();
            assert!(n_inside > 50, "{}: {n_inside} failures of {} in its window", fault.id, cause.name);
            let count = |from: Nanos, to: Nanos| failures.iter().filter(|at| (from..to).contains(*at)).count();
            let minute = 60 * SECOND;
            assert!(count(fault.start - minute, fault.start) <= 3, "{}: few failures just before", cause.name);
            assert!(count(fault.end, fault.end + minute) <= 3, "{}: few failures just after", cause.name);
            assert!(count(fault.start, fault.start + 15 * SECOND) > 0, "{}: failures from the start", cause.name);
            assert!(count(fault.end - 15 * SECOND, fault.end) > 0, "{}: failures until the end", cause.name);
            // Outside every window of this service, failures stay at background levels.
            let n_outside = failures
                .iter()
                .filter(|at| {
                    run.faults
                        .iter()
                        .all(|other| !other.causes.iter().any(|c| c.name == cause.name) || well_outside(other, **at))
                })
                .count();
            let n_requests =
                run.spans.iter().filter(|seen| seen.service == cause.name && seen.span.kind == KIND_SERVER).count();
            assert!(
                (n_outside as f64) < 0.03 * n_requests as f64,
                "{}: {n_outside} failures outside its windows",
                cause.name
            );
        }
        if fault.kind == FaultKind::TwoCauses {
            let truth = fault.truth();
            assert_eq!(truth.len(), 2);
            assert_ne!(truth[0].team, truth[1].team);
            assert_eq!((&truth[0].start, &truth[0].end), (&truth[1].start, &truth[1].end));
            assert!(truth.iter().all(|entry| entry.kind == "two_causes"));
        }
    }
}

// ---- noise and realism ----------------------------------------------------------------------

#[test]
fn traffic_carries_the_promised_messiness() {
    let run = run(options("webshop", 6, FaultPlan::None, 1.0));
    let world = world::load("webshop").expect("world");
    let by_id = run.by_id();
    let keys: BTreeSet<&str> =
        run.spans.iter().flat_map(|seen| seen.span.attributes.iter().map(|attribute| attribute.key.as_str())).collect();
    for key in [
        "http.response.status_code",
        "http.status_code",
        "service.peer.name",
        "peer.service",
        "db.system.name",
        "db.system",
        "db.namespace",
        "db.name",
        "rpc.grpc.status_code",
        "rpc.response.status_code",
        "server.address",
        "net.peer.name",
        "messaging.system",
        "messaging.destination.name",
        "error.type",
    ] {
        assert!(keys.contains(key), "some span carries {key}");
    }
    // The legacy service records no kinds; the others do.
    let legacy: Vec<&str> =
        world.services.iter().filter(|service| !service.records_kind).map(|service| service.name.as_str()).collect();
    assert_eq!(legacy.len(), 1);
    for seen in &run.spans {
        assert_eq!(seen.span.kind == KIND_UNSPECIFIED, legacy.contains(&seen.service.as_str()), "{}", seen.service);
    }
    // Clock skew: some child starts before its parent.
    let early = run
        .spans
        .iter()
        .filter(|seen| {
            by_id
                .get(seen.span.parent_span_id.as_slice())
                .is_some_and(|parent| run.spans[*parent].start() > seen.start())
        })
        .count();
    assert!(early > 10, "{early} children start before their parents");
    // Lost spans: some parents are missing.
    let orphans = run
        .spans
        .iter()
        .filter(|seen| !seen.span.parent_span_id.is_empty() && !by_id.contains_key(seen.span.parent_span_id.as_slice()))
        .count();
    assert!(orphans > 0, "lost spans leave orphans");
    assert!(orphans * 100 < run.spans.len(), "but few: {orphans}");
    // Exceptions on errors.
    assert!(run.spans.iter().filter(|seen| seen.failed()).any(|seen| {
        seen.span.events.iter().any(|event| {
            event.name == "exception" && event.attributes.iter().any(|attribute| attribute.key == "exception.type")
        })
    }));
    // One trace spreads over several export requests.
    let spread = run.lines_per_trace.values().filter(|lines| lines.len() >= 3).count();
    assert!(spread * 2 > run.lines_per_trace.len(), "most traces span several requests");
    assert!(run.n_batches > 100);
}

#[test]
fn retries_and_fallbacks_absorb_failures() {
    let run = run(options("webshop", 10, FaultPlan::None, 1.0));
    let by_id = run.by_id();
    let children = run.children();
    // A retried call: two sibling client spans of the same name, the first failed, the second
    // not, and the parent fine.
    let mut n_retried = 0;
    for (parent, kids) in &children {
        let Some(parent_index) = by_id.get(parent) else {
            continue;
        };
        if run.spans[*parent_index].failed() {
            continue;
        }
        let clients: Vec<&Seen> =
            kids.iter().map(|kid| &run.spans[*kid]).filter(|seen| seen.span.kind == KIND_CLIENT).collect();
        for pair in clients.windows(2) {
            if pair[0].span.name == pair[1].span.name && pair[0].failed() && !pair[1].failed() {
                n_retried += 1;
            }
        }
    }
    assert!(n_retried > 0, "some failed calls succeed on retry");
    // Background noise stays far below what pages: under 0.3% at every journey entry.
    let entries: Vec<&Seen> =
        run.spans.iter().filter(|seen| seen.span.parent_span_id.is_empty() && seen.span.kind == KIND_SERVER).collect();
    let mut by_journey: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
    for entry in entries {
        by_journey.entry(entry.span.name.as_str()).or_default().push(entry.failed());
    }
    for (name, outcomes) in by_journey {
        let (failing, n) = share(outcomes.into_iter());
        assert!(failing < 0.01, "{name}: {failing} of {n} fail without any fault");
    }
}

#[test]
fn a_consumed_message_starts_a_linked_trace() {
    let run = run(options("webshop", 4, FaultPlan::None, 1.0));
    let by_id = run.by_id();
    let consumers: Vec<&Seen> = run.spans.iter().filter(|seen| seen.span.kind == KIND_CONSUMER).collect();
    assert!(!consumers.is_empty());
    let mut linked = 0;
    for consumer in consumers {
        assert!(consumer.span.parent_span_id.is_empty(), "a consumer starts its own trace");
        let link = consumer.span.links.first().expect("a consumer links to its producer");
        assert_ne!(link.trace_id, consumer.span.trace_id);
        if let Some(producer) = by_id.get(link.span_id.as_slice()) {
            let producer = &run.spans[*producer];
            assert_eq!(producer.span.kind, KIND_PRODUCER);
            assert_eq!(producer.span.trace_id, link.trace_id);
            assert_eq!(producer.text("messaging.system").as_deref(), Some("kafka"));
            linked += 1;
        }
    }
    assert!(linked > 0);
}

#[test]
fn the_demo_cycle_injects_a_different_kind_each_time() {
    let mut options = options("webshop", 40, FaultPlan::demo(), 0.02);
    options.record_metrics = false;
    let run = run(options);
    assert!(run.faults.len() >= 8, "{} faults in 40 minutes", run.faults.len());
    for pair in run.faults.windows(2) {
        assert_ne!(pair[0].kind, pair[1].kind);
        assert!(pair[1].start >= pair[0].end, "faults do not overlap");
    }
    let kinds: BTreeSet<FaultKind> = run.faults.iter().map(|fault| fault.kind).collect();
    assert!(kinds.len() >= 8, "{kinds:?}");
}

// ---- bundle files ---------------------------------------------------------------------------

fn small_bundle() -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("temporary directory");
    let plan = FaultPlan::Spread {
        kinds: vec![FaultKind::NoResponse, FaultKind::BadDeploy, FaultKind::Harmless],
        fill: false,
    };
    let options = options("webshop", 30, plan, 0.5);
    let summary = write_bundle(options, directory.path(), &BundleSettings::default()).expect("bundle");
    assert_eq!(summary.faults.len(), 3);
    directory
}

#[test]
fn bundle_files_parse_with_the_documented_keys() {
    let directory = small_bundle();
    let path = directory.path();
    let read = |name: &str| std::fs::read_to_string(path.join(name)).expect("file");

    let config: serde_json::Value = serde_norway::from_str(&read("causeway.yaml")).expect("causeway.yaml is YAML");
    assert_eq!(config["version"], 1);
    assert_eq!(config["ownership"]["owners"], "owners.yaml");
    let journeys = config["journeys"].as_array().expect("journeys");
    assert_eq!(journeys.len(), 6);
    for journey in journeys {
        assert!(journey["name"].is_string());
        assert!(journey["entry"]["service"].is_string() && journey["entry"]["operation"].is_string());
        assert!(journey["owner"].is_string());
        assert!(journey["slo"]["availability"].is_number());
        assert!(journey["slo"]["latency"]["threshold_ms"].is_number());
        assert!(journey["slo"]["latency"]["target"].is_number());
        assert_eq!(journey["slo"]["period"], "28d");
        assert_eq!(journey["slo"]["windows"], "google");
    }

    let owners: serde_json::Value = serde_norway::from_str(&read("owners.yaml")).expect("owners.yaml is YAML");
    assert_eq!(owners["default_team"], "platform");
    let teams = owners["teams"].as_object().expect("teams");
    assert_eq!(teams.len(), 6);
    for (name, team) in teams {
        let routing = team["pagerduty"]["routing_key_env"].as_str().expect("routing key variable");
        assert_eq!(routing, format!("PD_{}", name.to_uppercase()));
        assert!(team["slack"]["webhook_env"].as_str().is_some_and(|variable| variable.starts_with("SLACK_")));
    }
    let services = owners["services"].as_object().expect("services");
    assert_eq!(services["postgresql/orders"]["team"], "dba");
    assert_eq!(services["redis/sessions-cache"]["team"], "platform");
    assert_eq!(services["api.paygate.example"]["team"], "payments");
    assert_eq!(services["checkout"]["team"], "orders");

    let truth: serde_json::Value = serde_json::from_str(&read("truth.json")).expect("truth.json is JSON");
    let faults = truth["faults"].as_array().expect("faults");
    let harmless = truth["harmless"].as_array().expect("harmless");
    assert_eq!((faults.len(), harmless.len()), (2, 1));
    for entry in faults.iter().chain(harmless) {
        let keys: BTreeSet<&str> = entry.as_object().expect("entry").keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["id", "start", "end", "service", "team", "kind"]));
        let start = super::parse_time(entry["start"].as_str().expect("start")).expect("RFC 3339");
        let end = super::parse_time(entry["end"].as_str().expect("end")).expect("RFC 3339");
        assert!(start < end);
    }
    assert_eq!(harmless[0]["kind"], "harmless");

    let changes = read("changes.jsonl");
    let mut deploys = 0;
    for line in changes.lines() {
        let change: serde_json::Value = serde_json::from_str(line).expect("a change is JSON");
        assert_eq!(change["kind"], "deploy");
        for key in ["service", "version", "at", "summary"] {
            assert!(change[key].is_string(), "{key} in {line}");
        }
        deploys += 1;
    }
    assert!(deploys >= 3, "the bad deploy, its rollback and a routine deploy: {deploys}");

    // Every trace line is an OTLP/JSON export request the receiver accepts whole.
    let traces = read("traces.jsonl");
    let mut n_spans = 0;
    for line in traces.lines().take(3000) {
        let mut request = crate::receivers::otlp::decode(crate::receivers::otlp::Encoding::Json, line.as_bytes())
            .expect("OTLP/JSON decodes");
        let validation = crate::receivers::otlp::validate(&mut request);
        assert_eq!(validation.rejected, 0, "{:?}", validation.reasons);
        n_spans += validation.accepted;
    }
    assert!(n_spans > 1000);
    assert!(traces.contains("\"traceId\":\"") && traces.contains("\"kind\":2"), "hex ids, integer enums");
}

#[test]
fn alerts_are_alertmanager_webhooks_with_duplicates_and_resolutions() {
    let directory = small_bundle();
    let text = std::fs::read_to_string(directory.path().join("alerts.jsonl")).expect("alerts.jsonl");
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(directory.path().join("truth.json")).expect("truth"))
            .expect("json");
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty());
    // The fields of shared/samples/alertmanager_webhook_sample.json (Alertmanager 0.25).
    let payload_keys = BTreeSet::from([
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    ]);
    let alert_keys =
        BTreeSet::from(["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"]);
    let mut n_resolved = 0;
    let mut journey_pages = Vec::new();
    for line in &lines {
        let payload: serde_json::Value = serde_json::from_str(line).expect("a payload is JSON");
        let keys: BTreeSet<&str> = payload.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, payload_keys, "the same fields as Alertmanager's");
        let keys: BTreeSet<&str> =
            payload["alerts"][0].as_object().expect("alert").keys().map(String::as_str).collect();
        assert_eq!(keys, alert_keys);
        assert_eq!(payload["version"], "4");
        let status = payload["status"].as_str().expect("status");
        let alert = &payload["alerts"][0];
        assert_eq!(alert["status"], status);
        let labels = alert["labels"].as_object().expect("labels");
        assert!(labels.contains_key("alertname") && labels.contains_key("severity"));
        assert!(labels.contains_key("journey") || labels.contains_key("service"));
        assert_eq!(payload["commonLabels"], alert["labels"]);
        assert!(payload["groupKey"].as_str().expect("group key").starts_with("{}:{alertname=\""));
        assert_eq!(alert["fingerprint"].as_str().expect("fingerprint").len(), 16);
        let starts = super::parse_time(alert["startsAt"].as_str().expect("startsAt")).expect("RFC 3339");
        match status {
            "firing" => assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z"),
            "resolved" => {
                n_resolved += 1;
                let ends = super::parse_time(alert["endsAt"].as_str().expect("endsAt")).expect("RFC 3339");
                assert!(ends > starts);
            }
            other => panic!("status {other}"),
        }
        if labels.contains_key("journey") {
            assert!(matches!(labels["sli"].as_str(), Some("error" | "latency")));
            assert_eq!(labels["severity"], "page");
            if status == "firing" {
                journey_pages.push(starts);
            }
        }
    }
    assert!(n_resolved > 0, "resolved notifications");
    let duplicates = lines.windows(2).filter(|pair| pair[0] == pair[1]).count();
    assert!(duplicates > 0, "HA duplicates");
    // Symptoms fire during the faults that should page, not during the harmless one.
    let window = |entry: &serde_json::Value| {
        (
            super::parse_time(entry["start"].as_str().expect("start")).expect("time"),
            super::parse_time(entry["end"].as_str().expect("end")).expect("time"),
        )
    };
    for fault in truth["faults"].as_array().expect("faults") {
        let (start, end) = window(fault);
        assert!(
            journey_pages.iter().any(|at| *at >= start && *at <= end + 60 * SECOND),
            "a journey symptom fires for {fault}"
        );
    }
    let (start, end) = window(&truth["harmless"][0]);
    assert!(
        !journey_pages.iter().any(|at| *at >= start && *at <= end + 5 * 60 * SECOND),
        "no journey symptom fires for the harmless fault"
    );
}

// ---- streaming ------------------------------------------------------------------------------

#[derive(Default)]
struct Received {
    requests: std::sync::atomic::AtomicU64,
    spans: std::sync::atomic::AtomicU64,
    protobuf: std::sync::atomic::AtomicBool,
}

async fn receive(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<Received>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use prost::Message;
    use std::sync::atomic::Ordering;
    // The first two requests are refused: the client must wait as told and retry.
    if state.requests.fetch_add(1, Ordering::SeqCst) < 2 {
        return (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response();
    }
    if headers.get("content-type").and_then(|value| value.to_str().ok()) == Some("application/x-protobuf") {
        state.protobuf.store(true, Ordering::SeqCst);
    }
    let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body)
        .expect("protobuf body");
    state.spans.fetch_add(crate::receivers::otlp::count_spans(&request), Ordering::SeqCst);
    let response = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::default();
    ([("content-type", "application/x-protobuf")], response.encode_to_vec()).into_response()
}

async fn receiver() -> (String, std::sync::Arc<Received>) {
    let state = std::sync::Arc::new(Received::default());
    let router = axum::Router::new().route("/v1/traces", axum::routing::post(receive)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}/v1/traces"), state)
}

#[tokio::test]
async fn streaming_posts_protobuf_retries_when_told_and_announces_faults() {
    use std::sync::atomic::Ordering;
    let (url, state) = receiver().await;
    let mut simulation = options(
        "webshop",
        2,
        FaultPlan::Cycle {
            kinds: vec![FaultKind::DbErrors, FaultKind::Harmless],
            first_after: Duration::from_secs(20),
            duration: Duration::from_secs(20),
            every: Duration::from_secs(40),
        },
        0.2,
    );
    simulation.start = super::stream::wall_clock_now();
    simulation.record_metrics = false;
    let (sender, mut notices) = tokio::sync::mpsc::unbounded_channel();
    let options = super::StreamOptions { simulation, speed: 400.0, notices: Some(sender) };
    let summary = super::stream(options, &url, std::future::pending()).await.expect("stream runs");
    assert!(summary.n_spans > 500, "{} spans sent", summary.n_spans);
    assert_eq!(summary.n_spans, state.spans.load(Ordering::SeqCst), "every span arrived once");
    assert_eq!(summary.n_retries, 2);
    assert_eq!(summary.n_dropped_requests, 0);
    assert!(state.protobuf.load(Ordering::SeqCst), "sent as application/x-protobuf");
    let (mut started, mut ended) = (Vec::new(), Vec::new());
    while let Ok(notice) = notices.try_recv() {
        match notice {
            super::FaultNotice::Started(fault) => started.push(fault.kind),
            super::FaultNotice::Ended(fault) => ended.push(fault.kind),
        }
    }
    assert_eq!(started, vec![FaultKind::DbErrors, FaultKind::Harmless, FaultKind::DbErrors]);
    assert_eq!(ended, started);
    assert_eq!(summary.faults.len(), 3);
}

#[tokio::test]
async fn an_endless_stream_stops_on_shutdown() {
    let (url, _state) = receiver().await;
    let options = super::StreamOptions::live(world::load("webshop").expect("world"), 3);
    let began = std::time::Instant::now();
    let summary =
        super::stream(options, &url, tokio::time::sleep(Duration::from_millis(1500))).await.expect("stream runs");
    assert!(began.elapsed() < Duration::from_secs(10), "stopped promptly");
    assert!(summary.n_requests > 0, "sent at real speed until stopped");
}
