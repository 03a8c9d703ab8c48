//! One request at a time: walks a journey's call graph from its entry operation and produces
//! the spans every instrumented service would record, with faults and background noise applied.
//!
//! Time here is *true* time; each span's recorded timestamps add its service's clock skew.
//! Timing model: an operation's own work (log-normal) is split around its calls; a call costs a
//! network hop each way (plus pod delay under `network_delay`); a failed call is retried after a
//! short backoff when the call site allows it; a call slower than its timeout ends at the timeout
//! on the client side while the server carries on. Failures propagate to the caller unless the
//! call site has a fallback. A consumed message starts a new trace, linked to its producer span.

use opentelemetry_proto::tonic::trace::v1 as otlp;
use rand::Rng;
use rand::rngs::StdRng;

use super::Nanos;
use super::alerts::Metrics;
use super::faults::{Effect, Fault};
use super::spans::{self, Exception, Failure, SpanBase};
use super::world::{Call, Component, DependencyKind, LatencyModel, Protocol, Service, Step, Target, World};

/// A finished span and where it came from; the simulation batches it per instance.
pub struct SpanOut {
    pub service: u32,
    pub instance: u32,
    /// True (unskewed) start and end: the exporter's clock.
    pub true_start: Nanos,
    pub true_end: Nanos,
    pub span: otlp::Span,
}

/// Everything one request needs. Borrowed from the simulation for the duration of a trace.
pub struct TraceGenerator<'a> {
    pub world: &'a World,
    pub rng: &'a mut StdRng,
    /// Faults whose window may overlap the traces being generated.
    pub faults: &'a [Fault],
    pub out: &'a mut Vec<SpanOut>,
    pub metrics: Option<&'a mut Metrics>,
    /// Traces started (journey requests plus consumed messages).
    pub n_traces: &'a mut u64,
}

/// What an operation answered.
struct Served {
    end: Nanos,
    failure: Option<Failure>,
}

/// What a caller saw of a call.
struct Called {
    end: Nanos,
    failure: Option<Failure>,
}

/// Why an operation failed, which decides its status and exception.
#[derive(Clone, Copy)]
enum Cause<'a> {
    /// Its own code failed (noise, or an error fault on it).
    Own,
    /// New code crashing (a bad deploy).
    Crash,
    /// A callee answered an error the caller did not absorb.
    Downstream(&'a str),
    /// A callee did not answer in time.
    DownstreamTimeout(&'a str),
}

impl TraceGenerator<'_> {
    /// Generates one request of `journey` arriving at `start`.
    pub fn journey(&mut self, journey: usize, start: Nanos) {
        let world = self.world;
        let journey_ref = &world.journeys[journey];
        let service = journey_ref.service;
        if self.no_response(Component::Service(service), start) {
            // Nobody records a request a dead entry service never saw; the planner never
            // targets entry services with no_response, so this only guards custom worlds.
            return;
        }
        let trace_id = self.trace_id();
        let instance = self.rng.random_range(0..world.services[service].instances.len());
        let served = self.serve(trace_id, service, journey_ref.operation, instance, None, start, None);
        let duration_ms = (served.end - start) as f64 / 1e6;
        if let Some(metrics) = self.metrics.as_deref_mut() {
            metrics.record_entry(
                journey,
                served.end,
                served.failure.is_some(),
                duration_ms > journey_ref.latency_threshold_ms,
            );
        }
    }

    fn trace_id(&mut self) -> [u8; 16] {
        *self.n_traces += 1;
        let mut id: [u8; 16] = self.rng.random();
        id[0] |= 1;
        id
    }

    fn span_id(&mut self) -> [u8; 8] {
        let mut id: [u8; 8] = self.rng.random();
        id[7] |= 1;
        id
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random::<f64>() < probability
    }

    /// A small pause between steps of an operation (scheduling, serialization).
    fn gap(&mut self) -> Nanos {
        self.rng.random_range(20_000..200_000)
    }

    fn serve(
        &mut self,
        trace_id: [u8; 16],
        service: usize,
        operation: usize,
        instance: usize,
        parent: Option<[u8; 8]>,
        start: Nanos,
        consumer_of: Option<(usize, [u8; 16], [u8; 8])>,
    ) -> Served {
        let world = self.world;
        let service_ref = &world.services[service];
        let operation_ref = &service_ref.operations[operation];
        let span_id = self.span_id();

        let mut own_work = operation_ref.latency.sample(self.rng);
        if let Some(extra) = self.slow_extra(service, start) {
            own_work += extra.sample(self.rng);
        }
        let pre = (own_work as f64 * self.rng.random_range(0.15..0.5)) as Nanos;
        let post = own_work - pre;

        let mut own_failure = None;
        if self.chance(operation_ref.error_rate) {
            own_failure = Some(Cause::Own);
        }
        if let Some((probability, crash)) = self.server_errors(service, instance, start)
            && self.chance(probability)
        {
            own_failure = Some(if crash { Cause::Crash } else { Cause::Own });
        }
        // A failing request stops somewhere along its steps.
        let n_steps = operation_ref.steps.len();
        let cut = if own_failure.is_some() { self.rng.random_range(0..=n_steps) } else { n_steps };

        let mut at = start + pre;
        let mut downstream: Option<Cause<'_>> = None;
        'steps: for step in &operation_ref.steps[..cut] {
            match step {
                Step::Single(call) => {
                    if !self.chance(call.probability) {
                        continue;
                    }
                    for _ in 0..call.repeat {
                        let called = self.call(trace_id, service, instance, span_id, call, at);
                        at = called.end + self.gap();
                        if let Some(failure) = called.failure
                            && !call.fallback
                        {
                            downstream = Some(downstream_cause(world, call, &failure));
                            break 'steps;
                        }
                    }
                }
                Step::Parallel(calls) => {
                    let mut step_end = at;
                    for call in calls {
                        if !self.chance(call.probability) {
                            continue;
                        }
                        let mut branch_at = at + self.rng.random_range(10_000..300_000);
                        for _ in 0..call.repeat {
                            let called = self.call(trace_id, service, instance, span_id, call, branch_at);
                            branch_at = called.end + self.gap();
                            if let Some(failure) = called.failure
                                && !call.fallback
                            {
                                downstream.get_or_insert(downstream_cause(world, call, &failure));
                                break;
                            }
                        }
                        step_end = step_end.max(branch_at);
                    }
                    at = step_end + self.gap();
                    if downstream.is_some() {
                        break 'steps;
                    }
                }
            }
        }
        let cause = own_failure.or(downstream);
        // Failing requests skip most of their remaining work.
        at += if cause.is_some() { post / 4 } else { post };
        let end = at;

        let failure = cause.map(|cause| self.server_failure(service_ref, cause));
        if let Some(metrics) = self.metrics.as_deref_mut() {
            metrics.record_server(service, end, failure.is_some());
        }
        let skew = service_ref.clock_skew;
        let base = SpanBase { trace_id, span_id, parent, start: start + skew, end: end + skew };
        let consumer = consumer_of.map(|(topic, link_trace, link_span)| (&world.topics[topic], link_trace, link_span));
        let span = spans::server(service_ref, operation_ref, base, failure.as_ref(), consumer);
        self.emit(service, instance, start, end, span);
        Served { end, failure }
    }

    fn call(
        &mut self,
        trace_id: [u8; 16],
        caller: usize,
        caller_instance: usize,
        parent: [u8; 8],
        call: &Call,
        start: Nanos,
    ) -> Called {
        let world = self.world;
        match &call.target {
            Target::Internal { name, latency } => {
                let end = start + latency.sample(self.rng);
                let skew = world.services[caller].clock_skew;
                let base = SpanBase {
                    trace_id,
                    span_id: self.span_id(),
                    parent: Some(parent),
                    start: start + skew,
                    end: end + skew,
                };
                let span = spans::internal(&world.services[caller], name, base);
                self.emit(caller, caller_instance, start, end, span);
                Called { end, failure: None }
            }
            Target::Publish { topic } => self.publish(trace_id, caller, caller_instance, parent, *topic, start),
            Target::Service { .. } | Target::Dependency { .. } => {
                let mut attempt_start = start;
                let mut attempt = 0;
                loop {
                    let called = self.attempt(trace_id, caller, caller_instance, parent, call, attempt_start, attempt);
                    if called.failure.is_none() || attempt >= call.retries {
                        return called;
                    }
                    attempt += 1;
                    attempt_start = called.end + self.rng.random_range(5_000_000..40_000_000);
                }
            }
        }
    }

    fn attempt(
        &mut self,
        trace_id: [u8; 16],
        caller: usize,
        caller_instance: usize,
        parent: [u8; 8],
        call: &Call,
        start: Nanos,
        attempt: u32,
    ) -> Called {
        let world = self.world;
        let caller_ref = &world.services[caller];
        let span_id = self.span_id();
        let request_delay = self.pod_delay_sample(caller, caller_instance, start);
        let (end, failure, span) = match &call.target {
            Target::Service { service, operation } => {
                let callee = &world.services[*service];
                let operation_ref = &callee.operations[*operation];
                if self.no_response(Component::Service(*service), start) {
                    let end = start + call.timeout;
                    let failure = self.timeout_failure(caller_ref, &callee.name, call.timeout);
                    let span = spans::client_to_service(
                        caller_ref,
                        callee,
                        operation_ref,
                        self.base(trace_id, span_id, parent, caller, start, end),
                        Some(&failure),
                        attempt,
                    );
                    (end, Some(failure), span)
                } else {
                    let callee_instance = self.rng.random_range(0..callee.instances.len());
                    let request = world.network.sample(self.rng) + request_delay;
                    let served = self.serve(
                        trace_id,
                        *service,
                        *operation,
                        callee_instance,
                        Some(span_id),
                        start + request,
                        None,
                    );
                    let response =
                        world.network.sample(self.rng) + self.pod_delay_sample(*service, callee_instance, served.end);
                    let mut end = served.end + response;
                    let failure = if end - start > call.timeout {
                        end = start + call.timeout;
                        Some(self.timeout_failure(caller_ref, &callee.name, call.timeout))
                    } else {
                        served.failure
                    };
                    let span = spans::client_to_service(
                        caller_ref,
                        callee,
                        operation_ref,
                        self.base(trace_id, span_id, parent, caller, start, end),
                        failure.as_ref(),
                        attempt,
                    );
                    (end, failure, span)
                }
            }
            Target::Dependency { dependency, operation, statement } => {
                let dependency_ref = &world.dependencies[*dependency];
                let (end, failure) = if self.no_response(Component::Dependency(*dependency), start) {
                    let failure = self.timeout_failure(caller_ref, &dependency_ref.host, call.timeout);
                    (start + call.timeout, Some(failure))
                } else {
                    let elapsed = world.network.sample(self.rng)
                        + request_delay
                        + dependency_ref.latency.sample(self.rng)
                        + world.network.sample(self.rng);
                    let noise = self.chance(dependency_ref.error_rate);
                    let faulty = match self.dependency_errors(*dependency, start) {
                        Some(probability) => self.chance(probability),
                        None => false,
                    };
                    if elapsed > call.timeout {
                        let failure = self.timeout_failure(caller_ref, &dependency_ref.host, call.timeout);
                        (start + call.timeout, Some(failure))
                    } else if noise || faulty {
                        let failure = self.dependency_failure(caller_ref, *dependency, faulty);
                        (start + elapsed, Some(failure))
                    } else {
                        (start + elapsed, None)
                    }
                };
                let span = spans::client_to_dependency(
                    caller_ref,
                    dependency_ref,
                    operation,
                    statement.as_deref(),
                    self.base(trace_id, span_id, parent, caller, start, end),
                    failure.as_ref(),
                    attempt,
                );
                (end, failure, span)
            }
            // `call` handles these without attempts.
            Target::Publish { .. } | Target::Internal { .. } => {
                return Called { end: start, failure: None };
            }
        };
        self.emit(caller, caller_instance, start, end, span);
        Called { end, failure }
    }

    fn publish(
        &mut self,
        trace_id: [u8; 16],
        caller: usize,
        caller_instance: usize,
        parent: [u8; 8],
        topic: usize,
        start: Nanos,
    ) -> Called {
        let world = self.world;
        let span_id = self.span_id();
        let end =
            start + self.rng.random_range(300_000..2_500_000) + self.pod_delay_sample(caller, caller_instance, start);
        let topic_ref = &world.topics[topic];
        let span = spans::producer(
            &world.services[caller],
            topic_ref,
            self.base(trace_id, span_id, parent, caller, start, end),
        );
        self.emit(caller, caller_instance, start, end, span);
        for &(service, operation) in &topic_ref.consumers {
            let consumed_at = end + topic_ref.delay.sample(self.rng);
            if self.no_response(Component::Service(service), consumed_at) {
                continue;
            }
            let consumer_trace = self.trace_id();
            let instance = self.rng.random_range(0..world.services[service].instances.len());
            self.serve(
                consumer_trace,
                service,
                operation,
                instance,
                None,
                consumed_at,
                Some((topic, trace_id, span_id)),
            );
        }
        Called { end, failure: None }
    }

    fn base(
        &self,
        trace_id: [u8; 16],
        span_id: [u8; 8],
        parent: [u8; 8],
        service: usize,
        start: Nanos,
        end: Nanos,
    ) -> SpanBase {
        let skew = self.world.services[service].clock_skew;
        SpanBase { trace_id, span_id, parent: Some(parent), start: start + skew, end: end + skew }
    }

    fn emit(&mut self, service: usize, instance: usize, true_start: Nanos, true_end: Nanos, span: otlp::Span) {
        self.out.push(SpanOut { service: service as u32, instance: instance as u32, true_start, true_end, span });
    }

    // ---- faults -------------------------------------------------------------------------------

    fn effects_at(&self, at: Nanos) -> impl Iterator<Item = &Effect> {
        self.faults
            .iter()
            .filter(move |fault| fault.is_active(at))
            .flat_map(|fault| fault.causes.iter().map(|cause| &cause.effect))
    }

    fn server_errors(&self, service: usize, instance: usize, at: Nanos) -> Option<(f64, bool)> {
        self.effects_at(at).find_map(|effect| match effect {
            Effect::ServerErrors { service: target, instance: target_instance, probability, crash }
                if *target == service && target_instance.is_none_or(|target_instance| target_instance == instance) =>
            {
                Some((*probability, *crash))
            }
            _ => None,
        })
    }

    fn dependency_errors(&self, dependency: usize, at: Nanos) -> Option<f64> {
        self.effects_at(at).find_map(|effect| match effect {
            Effect::DependencyErrors { dependency: target, probability } if *target == dependency => Some(*probability),
            _ => None,
        })
    }

    fn no_response(&self, component: Component, at: Nanos) -> bool {
        self.effects_at(at)
            .any(|effect| matches!(effect, Effect::NoResponse { component: target } if *target == component))
    }

    fn slow_extra(&self, service: usize, at: Nanos) -> Option<LatencyModel> {
        self.effects_at(at).find_map(|effect| match effect {
            Effect::Slow { service: target, extra } if *target == service => Some(*extra),
            _ => None,
        })
    }

    fn pod_delay_sample(&mut self, service: usize, instance: usize, at: Nanos) -> Nanos {
        let delay = self.effects_at(at).find_map(|effect| match effect {
            Effect::PodDelay { service: target, instance: target_instance, delay }
                if *target == service && *target_instance == instance =>
            {
                Some(*delay)
            }
            _ => None,
        });
        delay.map_or(0, |delay| delay.sample(self.rng))
    }

    // ---- failures -----------------------------------------------------------------------------

    fn server_failure(&mut self, service: &Service, cause: Cause<'_>) -> Failure {
        let language = language(&service.language);
        let (http, grpc, exception) = match cause {
            Cause::Own => {
                let id: u32 = self.rng.random_range(10_000..99_999_999);
                let message = match self.rng.random_range(0..3) {
                    0 => format!("failed to process request {id}: unexpected state"),
                    1 => format!("invariant violated for entity {id:x}"),
                    _ => format!("connection pool exhausted after {} ms", self.rng.random_range(500..3000)),
                };
                (500, 13, Exception { kind: language.internal.to_string(), message })
            }
            Cause::Crash => {
                (500, 13, Exception { kind: language.crash.to_string(), message: language.crash_message.to_string() })
            }
            Cause::Downstream(callee) => (
                502,
                14,
                Exception { kind: language.upstream.to_string(), message: format!("call to {callee} failed") },
            ),
            Cause::DownstreamTimeout(callee) => (
                504,
                4,
                Exception { kind: language.timeout.to_string(), message: format!("call to {callee} timed out") },
            ),
        };
        let grpc = if service.protocol == Protocol::Grpc { grpc } else { 2 };
        Failure::Answered { http, grpc, exception: Some(exception) }
    }

    fn timeout_failure(&mut self, caller: &Service, callee: &str, timeout: Nanos) -> Failure {
        let language = language(&caller.language);
        Failure::Timeout {
            exception: Exception {
                kind: language.timeout.to_string(),
                message: format!("Read timed out after {} ms calling {callee}", timeout / 1_000_000),
            },
        }
    }

    fn dependency_failure(&mut self, caller: &Service, dependency: usize, faulty: bool) -> Failure {
        let language = language(&caller.language);
        let dependency_ref = &self.world.dependencies[dependency];
        match dependency_ref.kind {
            DependencyKind::Postgresql => {
                // A fault has one signature; background errors vary.
                let message = if faulty {
                    "53300: sorry, too many clients already"
                } else {
                    [
                        "40001: could not serialize access due to concurrent update",
                        "57014: canceling statement due to statement timeout",
                    ][self.rng.random_range(0..2)]
                };
                Failure::Answered {
                    http: 500,
                    grpc: 13,
                    exception: Some(Exception { kind: language.database.to_string(), message: message.to_string() }),
                }
            }
            DependencyKind::Redis => Failure::Answered {
                http: 500,
                grpc: 13,
                exception: Some(Exception {
                    kind: language.redis.to_string(),
                    message: if faulty {
                        "OOM command not allowed when used memory > 'maxmemory'".to_string()
                    } else {
                        "LOADING Redis is loading the dataset in memory".to_string()
                    },
                }),
            },
            DependencyKind::Http => {
                let status = if faulty { 503 } else { 500 };
                Failure::Answered {
                    http: status,
                    grpc: 14,
                    exception: Some(Exception {
                        kind: language.upstream.to_string(),
                        message: format!("{status} from {}", dependency_ref.host),
                    }),
                }
            }
        }
    }
}

fn downstream_cause<'w>(world: &'w World, call: &'w Call, failure: &Failure) -> Cause<'w> {
    let callee = match &call.target {
        Target::Service { service, .. } => world.services[*service].name.as_str(),
        Target::Dependency { dependency, .. } => world.dependencies[*dependency].host.as_str(),
        Target::Publish { topic } => world.topics[*topic].name.as_str(),
        Target::Internal { name, .. } => name.as_str(),
    };
    match failure {
        Failure::Timeout { .. } => Cause::DownstreamTimeout(callee),
        Failure::Answered { .. } => Cause::Downstream(callee),
    }
}

/// Exception classes and messages as each language's runtime and libraries spell them.
struct Language {
    internal: &'static str,
    crash: &'static str,
    crash_message: &'static str,
    upstream: &'static str,
    timeout: &'static str,
    database: &'static str,
    redis: &'static str,
}

fn language(name: &str) -> &'static Language {
    const JAVA: Language = Language {
        internal: "java.lang.IllegalStateException",
        crash: "java.lang.NullPointerException",
        crash_message: "Cannot invoke \"Config.region()\" because \"this.config\" is null",
        upstream: "org.springframework.web.client.HttpServerErrorException",
        timeout: "java.net.SocketTimeoutException",
        database: "org.postgresql.util.PSQLException",
        redis: "io.lettuce.core.RedisCommandExecutionException",
    };
    const GO: Language = Language {
        internal: "*errors.errorString",
        crash: "runtime.Error",
        crash_message: "runtime error: invalid memory address or nil pointer dereference",
        upstream: "*url.Error",
        timeout: "*net.OpError",
        database: "*pgconn.PgError",
        redis: "redis.RedisError",
    };
    const NODE: Language = Language {
        internal: "Error",
        crash: "TypeError",
        crash_message: "Cannot read properties of undefined (reading 'region')",
        upstream: "HTTPError",
        timeout: "TimeoutError",
        database: "DatabaseError",
        redis: "ReplyError",
    };
    const PYTHON: Language = Language {
        internal: "RuntimeError",
        crash: "AttributeError",
        crash_message: "'NoneType' object has no attribute 'region'",
        upstream: "requests.exceptions.HTTPError",
        timeout: "requests.exceptions.ReadTimeout",
        database: "psycopg.errors.OperationalError",
        redis: "redis.exceptions.ResponseError",
    };
    const DOTNET: Language = Language {
        internal: "System.InvalidOperationException",
        crash: "System.NullReferenceException",
        crash_message: "Object reference not set to an instance of an object.",
        upstream: "System.Net.Http.HttpRequestException",
        timeout: "System.Threading.Tasks.TaskCanceledException",
        database: "Npgsql.PostgresException",
        redis: "StackExchange.Redis.RedisServerException",
    };
    match name {
        "go" => &GO,
        "nodejs" => &NODE,
        "python" => &PYTHON,
        "dotnet" => &DOTNET,
        _ => &JAVA,
    }
}
