//! Causality analysis: from a symptom on an entry to candidate causes with votes (SPEC §4.1-4.3).
//!
//! * Evidence: bad traces of the entry in the evidence window, and a baseline sample from
//!   before the onset, both bounded by `max_traces`.
//! * Errors: CRISP's propagate-to-root walk: blame flows from an erroring span into its erroring
//!   children and lands on an erroring span none of whose children err; the landing span maps to
//!   a component by the table of SPEC §4.2. Components already failing at the same per-request
//!   rate in the baseline are discounted.
//! * Latency: the critical path of each slow trace (clipped to parents to absorb clock skew),
//!   exclusive time per component and per edge, compared against the baseline; edges that grew
//!   are resolved to the endpoint they have in common.
//!
//! **Invariant:** deterministic: the same window and query give the same result (ordered maps,
//! no randomness, ties broken by name).

use std::collections::BTreeMap;

use hashbrown::HashMap;
use serde::Serialize;

use crate::intern::Symbol;
use crate::model::{Nanos, Span, SpanKind, TraceId};
use crate::trace::{TraceView, span_is_error};
use crate::window::TraceSource;

/// What kind of symptom is analysed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymptomKind {
    Error,
    Latency,
}

/// How a component is failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// It answers with errors.
    Error,
    /// It does not answer at all (timeouts, refused connections): down, network, overload.
    NoResponse,
    /// It refuses for capacity (429 / 503).
    Capacity,
    /// It is slow.
    Latency,
    /// Nothing in the traces explains it (alerts routed by labels).
    Unknown,
}

impl CauseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CauseKind::Error => "error",
            CauseKind::NoResponse => "no_response",
            CauseKind::Capacity => "capacity",
            CauseKind::Latency => "latency",
            CauseKind::Unknown => "unknown",
        }
    }
}

/// Where to look.
#[derive(Clone, Debug)]
pub struct EvidenceQuery {
    pub entry_service: String,
    /// Span name or `http.route`; `None` means every incoming span of the service.
    pub entry_operation: Option<String>,
    pub kind: SymptomKind,
    /// Bad traces are those whose entry ended in `[from, to]`.
    pub from: Nanos,
    pub to: Nanos,
    /// Baseline traces ended in `[baseline_from, baseline_to]`.
    pub baseline_from: Nanos,
    pub baseline_to: Nanos,
    /// Latency symptom: an entry longer than this is bad (else the baseline's p95 is used).
    pub latency_threshold: Option<Nanos>,
    pub max_traces: usize,
}

/// One candidate cause with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub component: String,
    pub kind: CauseKind,
    /// The operation (span name) most often blamed on it.
    pub operation: String,
    /// Votes from bad traces (fractional when a trace blames several components).
    pub votes: f64,
    /// Votes left after the baseline contrast.
    pub adjusted_votes: f64,
    /// Share of all adjusted votes.
    pub share: f64,
    /// Blamed fraction of requests now and in the baseline.
    pub rate: f64,
    pub baseline_rate: f64,
    /// For edge blame: the callee the caller's calls failed against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_callee: Option<String>,
    pub exemplars: Vec<TraceId>,
    /// Blamed spans, for the brief (bounded).
    #[serde(skip)]
    pub blamed_spans: Vec<(TraceId, u32)>,
}

/// The result of analysing one symptom.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Analysis {
    pub n_total: usize,
    pub n_bad: usize,
    /// Bad traces actually analysed (bounded by `max_traces`).
    pub n_bad_sampled: usize,
    pub n_baseline: usize,
    pub n_baseline_bad: usize,
    /// Ranked best first.
    pub candidates: Vec<Candidate>,
    /// Service-level edges on the paths from the entry to blamed components, with the share
    /// of votes that crossed them.
    pub causal_edges: Vec<CausalEdge>,
    /// Latency: the threshold that made a trace slow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_threshold_ms: Option<f64>,
    /// Sum of adjusted votes: how many bad traces the candidates explain beyond the baseline.
    pub explained: f64,
    pub notes: Vec<String>,
    /// Sampled bad traces whose root (the request a user or client made) failed too: for a
    /// service's own alert, zero means its callers absorb its failures.
    pub user_visible: usize,
    /// What naive routers would blame on the same bad traces (for comparison, never for routing).
    pub naive: NaivePicks,
}

/// The components two naive routers would blame, by majority over the bad traces:
/// the deepest erroring span, and the span with the longest exclusive time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NaivePicks {
    pub deepest_error: Option<String>,
    pub slowest_span: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct CausalEdge {
    pub from: String,
    pub to: String,
    pub share: f64,
}

const MAX_EXEMPLARS: usize = 5;
const MAX_BLAMED_SPANS: usize = 500;

/// Analyses one symptom over a trace source.
pub fn analyze(source: &dyn TraceSource, query: &EvidenceQuery) -> Analysis {
    let dictionary = source.dictionary();
    let Some(service) = dictionary.strings.get(&query.entry_service) else {
        return Analysis {
            notes: vec![format!("no spans of {} in the window", query.entry_service)],
            ..Analysis::default()
        };
    };
    let operation = match &query.entry_operation {
        Some(operation) => match dictionary.strings.get(operation) {
            Some(symbol) => Some(symbol),
            None => {
                return Analysis {
                    notes: vec![format!("no spans of {} {} in the window", query.entry_service, operation)],
                    ..Analysis::default()
                };
            }
        },
        None => None,
    };

    let baseline =
        collect_entries(source, service, operation, query.baseline_from, query.baseline_to, query.max_traces);
    let threshold = match query.kind {
        SymptomKind::Error => None,
        SymptomKind::Latency => {
            Some(query.latency_threshold.unwrap_or_else(|| baseline.p95_duration().unwrap_or(Nanos::MAX)))
        }
    };
    let is_bad = |span: &Span| match threshold {
        None => span_is_error(span, SpanKind::Server),
        Some(threshold) => span.duration() > threshold,
    };
    let evidence = collect_entries(source, service, operation, query.from, query.to, usize::MAX);
    let n_total = evidence.entries.len();
    let bad: Vec<&EntryRef> = evidence.entries.iter().filter(|entry| entry.is_bad(source, &is_bad)).collect();
    let n_bad = bad.len();
    let sampled: Vec<&EntryRef> = bad.iter().take(query.max_traces).copied().collect();
    let baseline_sample: Vec<&EntryRef> = baseline.entries.iter().take(query.max_traces).collect();
    let n_baseline_bad = baseline_sample.iter().filter(|entry| entry.is_bad(source, &is_bad)).count();

    let mut analysis = match query.kind {
        SymptomKind::Error => {
            let baseline_bad: Vec<&EntryRef> =
                baseline_sample.iter().filter(|entry| entry.is_bad(source, &is_bad)).copied().collect();
            analyze_errors(source, &sampled, &baseline_bad, baseline_sample.len(), n_total, n_bad)
        }
        SymptomKind::Latency => analyze_latency(source, &sampled, &baseline_sample),
    };
    analysis.naive = naive_picks(source, &sampled);
    analysis.user_visible = sampled
        .iter()
        .filter(|entry| {
            source.trace(&entry.trace_id).is_some_and(|spans| {
                let view = TraceView::new(spans, source.dictionary());
                view.roots().any(|root| match query.kind {
                    SymptomKind::Error => view.is_error(root),
                    SymptomKind::Latency => true,
                })
            })
        })
        .count();
    analysis.n_total = n_total;
    analysis.n_bad = n_bad;
    analysis.n_bad_sampled = sampled.len();
    analysis.n_baseline = baseline_sample.len();
    analysis.n_baseline_bad = n_baseline_bad;
    analysis.latency_threshold_ms = threshold.filter(|t| *t != Nanos::MAX).map(|t| t as f64 / 1e6);
    if threshold == Some(Nanos::MAX) {
        analysis.notes.push("no latency threshold and no baseline to derive one from".to_string());
    }
    analysis
}

#[derive(Clone, Copy)]
struct EntryRef {
    trace_id: TraceId,
    span_index: u32,
    duration: Nanos,
}

impl EntryRef {
    fn is_bad(&self, source: &dyn TraceSource, is_bad: &dyn Fn(&Span) -> bool) -> bool {
        source.trace(&self.trace_id).and_then(|spans| spans.get(self.span_index as usize)).is_some_and(is_bad)
    }
}

struct Entries {
    entries: Vec<EntryRef>,
}

impl Entries {
    fn p95_duration(&self) -> Option<Nanos> {
        if self.entries.len() < 20 {
            return None;
        }
        let mut durations: Vec<Nanos> = self.entries.iter().map(|entry| entry.duration).collect();
        durations.sort_unstable();
        Some(durations[(durations.len() * 95 / 100).min(durations.len() - 1)])
    }
}

/// Entry spans of `service` (one operation, or all incoming spans) ended in `[from, to]`,
/// newest first, one per trace, at most `limit`.
fn collect_entries(
    source: &dyn TraceSource,
    service: Symbol,
    operation: Option<Symbol>,
    from: Nanos,
    to: Nanos,
    limit: usize,
) -> Entries {
    let mut entries = Vec::new();
    let mut seen: hashbrown::HashSet<TraceId> = hashbrown::HashSet::new();
    let mut visit = |trace_id: TraceId, spans: &[Span], index: usize| {
        let span = &spans[index];
        if seen.insert(trace_id) {
            entries.push(EntryRef { trace_id, span_index: index as u32, duration: span.duration() });
        }
        entries.len() < limit
    };
    match operation {
        Some(operation) => source.visit_entries(service, operation, from, to, &mut visit),
        None => source.visit_service_entries(service, from, to, &mut visit),
    }
    Entries { entries }
}

/// One vote: a blamed component in one trace.
#[derive(Clone, Debug)]
struct Blame {
    component: Symbol,
    kind: CauseKind,
    operation: Symbol,
    via_callee: Symbol,
    /// The trace holding the blamed span (a linked consumer may live in another trace).
    trace: TraceId,
    span_index: u32,
    /// Services from the entry to the blamed component.
    path: Vec<Symbol>,
}

#[derive(Default)]
struct Tally {
    votes: f64,
    operations: BTreeMap<Symbol, f64>,
    via: BTreeMap<Symbol, f64>,
    exemplars: Vec<TraceId>,
    blamed_spans: Vec<(TraceId, u32)>,
}

type CandidateKey = (Symbol, CauseKind);

fn analyze_errors(
    source: &dyn TraceSource,
    bad: &[&EntryRef],
    baseline_bad: &[&EntryRef],
    n_baseline: usize,
    n_total: usize,
    n_bad: usize,
) -> Analysis {
    let dictionary = source.dictionary();
    let mut tallies: BTreeMap<CandidateKey, Tally> = BTreeMap::new();
    let mut edges: BTreeMap<(Symbol, Symbol), f64> = BTreeMap::new();
    for entry in bad {
        let Some(spans) = source.trace(&entry.trace_id) else {
            continue;
        };
        let view = TraceView::new(spans, dictionary);
        let blames = blame_errors(source, &view, entry.trace_id, entry.span_index as usize, 0);
        let weight = 1.0 / blames.len().max(1) as f64;
        for blame in blames {
            record(&mut tallies, &mut edges, entry.trace_id, &blame, weight);
        }
    }
    let mut baseline_votes: BTreeMap<CandidateKey, f64> = BTreeMap::new();
    for entry in baseline_bad {
        let Some(spans) = source.trace(&entry.trace_id) else {
            continue;
        };
        let view = TraceView::new(spans, dictionary);
        let blames = blame_errors(source, &view, entry.trace_id, entry.span_index as usize, 0);
        let weight = 1.0 / blames.len().max(1) as f64;
        for blame in blames {
            *baseline_votes.entry((blame.component, blame.kind)).or_default() += weight;
        }
    }
    // Per-request blame rates: now (scaled from the sample to all bad traces) and in the baseline.
    let scale_now = if bad.is_empty() || n_total == 0 { 0.0 } else { n_bad as f64 / n_total as f64 / bad.len() as f64 };
    let rate = |votes: f64| votes * scale_now;
    let baseline_rate = |key: &CandidateKey| {
        if n_baseline == 0 {
            0.0
        } else {
            // Failures of a component are counted whatever kind they took in the baseline.
            baseline_votes.iter().filter(|(other, _)| other.0 == key.0).map(|(_, votes)| *votes).sum::<f64>()
                / n_baseline as f64
        }
    };
    finish(dictionary, tallies, edges, bad.len(), |key, tally| {
        let now = rate(tally.votes);
        let before = baseline_rate(key);
        let adjusted = if now <= 0.0 { 0.0 } else { tally.votes * ((now - before) / now).clamp(0.0, 1.0) };
        (adjusted, now, before)
    })
}

fn record(
    tallies: &mut BTreeMap<CandidateKey, Tally>,
    edges: &mut BTreeMap<(Symbol, Symbol), f64>,
    trace_id: TraceId,
    blame: &Blame,
    weight: f64,
) {
    let tally = tallies.entry((blame.component, blame.kind)).or_default();
    tally.votes += weight;
    *tally.operations.entry(blame.operation).or_default() += weight;
    if blame.via_callee.is_some() {
        *tally.via.entry(blame.via_callee).or_default() += weight;
    }
    if tally.exemplars.len() < MAX_EXEMPLARS && !tally.exemplars.contains(&trace_id) {
        tally.exemplars.push(trace_id);
    }
    if tally.blamed_spans.len() < MAX_BLAMED_SPANS {
        let trace = if blame.trace == TraceId::default() { trace_id } else { blame.trace };
        tally.blamed_spans.push((trace, blame.span_index));
    }
    for pair in blame.path.windows(2) {
        *edges.entry((pair[0], pair[1])).or_default() += weight;
    }
}

/// Turns tallies into ranked candidates; `adjust` returns (adjusted votes, rate, baseline rate).
fn finish(
    dictionary: &crate::model::Dictionary,
    tallies: BTreeMap<CandidateKey, Tally>,
    edges: BTreeMap<(Symbol, Symbol), f64>,
    n_sampled: usize,
    adjust: impl Fn(&CandidateKey, &Tally) -> (f64, f64, f64),
) -> Analysis {
    let mut candidates: Vec<Candidate> = tallies
        .iter()
        .map(|(key, tally)| {
            let (adjusted_votes, rate, baseline_rate) = adjust(key, tally);
            let operation =
                heaviest(&tally.operations).map(|symbol| dictionary.str(symbol).to_string()).unwrap_or_default();
            let via_callee = heaviest(&tally.via).map(|symbol| dictionary.str(symbol).to_string());
            Candidate {
                component: dictionary.str(key.0).to_string(),
                kind: key.1,
                operation,
                votes: tally.votes,
                adjusted_votes,
                share: 0.0,
                rate,
                baseline_rate,
                via_callee,
                exemplars: tally.exemplars.clone(),
                blamed_spans: tally.blamed_spans.clone(),
            }
        })
        .collect();
    let explained: f64 = candidates.iter().map(|candidate| candidate.adjusted_votes).sum();
    for candidate in &mut candidates {
        candidate.share = if explained > 0.0 { candidate.adjusted_votes / explained } else { 0.0 };
    }
    candidates.sort_by(|a, b| {
        b.adjusted_votes
            .total_cmp(&a.adjusted_votes)
            .then(b.votes.total_cmp(&a.votes))
            .then_with(|| a.component.cmp(&b.component))
            .then(a.kind.cmp(&b.kind))
    });
    let total_votes = n_sampled.max(1) as f64;
    let causal_edges = edges
        .into_iter()
        .map(|((from, to), votes)| CausalEdge {
            from: dictionary.str(from).to_string(),
            to: dictionary.str(to).to_string(),
            share: votes / total_votes,
        })
        .collect();
    Analysis { candidates, causal_edges, explained, ..Analysis::default() }
}

fn heaviest(weights: &BTreeMap<Symbol, f64>) -> Option<Symbol> {
    weights.iter().max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0))).map(|(symbol, _)| *symbol)
}

/// The propagate-to-root walk from an erroring entry span. Returns one blame per landing span.
///
/// Two refinements keep handled errors out: a failed call followed by a successful call to the
/// same callee from the same parent was retried successfully (no blame), and an erroring
/// PRODUCER/CLIENT span with no erroring child hands the blame to erroring spans linked to it
/// (a consumer processing the message, possibly in another trace).
fn blame_errors(
    source: &dyn TraceSource,
    view: &TraceView<'_>,
    trace_id: TraceId,
    entry: usize,
    depth: usize,
) -> Vec<Blame> {
    let mut blames = Vec::new();
    let mut stack: Vec<(usize, Vec<Symbol>)> = vec![(entry, vec![view.service(entry)])];
    let mut visited = 0usize;
    while let Some((index, path)) = stack.pop() {
        visited += 1;
        if visited > view.len() * 2 + 16 {
            break; // cycles in malformed parent links
        }
        let erring: Vec<usize> = view
            .children(index)
            .filter(|child| view.is_error(*child) && !retried_successfully(view, index, *child))
            .collect();
        if erring.is_empty() {
            if depth < 2 && view.kind(index).is_outgoing() {
                let linked = follow_links(source, view, trace_id, index, &path, depth);
                if !linked.is_empty() {
                    blames.extend(linked);
                    continue;
                }
            }
            let mut blame = land(view, index, path);
            blame.trace = trace_id;
            blames.push(blame);
            continue;
        }
        for child in erring {
            let mut child_path = path.clone();
            let service = view.service(child);
            if child_path.last() != Some(&service) {
                child_path.push(service);
            }
            stack.push((child, child_path));
        }
    }
    blames
}

/// Erroring spans elsewhere that link to this span (a consumer of the message it produced).
fn follow_links(
    source: &dyn TraceSource,
    view: &TraceView<'_>,
    trace_id: TraceId,
    index: usize,
    path: &[Symbol],
    depth: usize,
) -> Vec<Blame> {
    let span_id = view.span(index).span_id;
    let mut linked: Vec<(TraceId, usize)> = Vec::new();
    source.visit_linked(&trace_id, span_id, &mut |linked_trace, spans, linked_index| {
        if span_is_error(&spans[linked_index], SpanKind::Consumer) {
            linked.push((linked_trace, linked_index));
        }
    });
    let mut blames = Vec::new();
    for (linked_trace, linked_index) in linked {
        let Some(spans) = source.trace(&linked_trace) else {
            continue;
        };
        let linked_view = TraceView::new(spans, view.dictionary);
        for mut blame in blame_errors(source, &linked_view, linked_trace, linked_index, depth + 1) {
            let mut full_path = path.to_vec();
            for service in blame.path {
                if full_path.last() != Some(&service) {
                    full_path.push(service);
                }
            }
            blame.path = full_path;
            blames.push(blame);
        }
    }
    blames
}

/// `child` failed but a later sibling call to the same callee succeeded: a successful retry.
fn retried_successfully(view: &TraceView<'_>, parent: usize, child: usize) -> bool {
    if !view.kind(child).is_outgoing() {
        return false;
    }
    let target = callee_identity(view, child);
    let failed_end = view.span(child).end;
    view.children(parent).any(|sibling| {
        sibling != child
            && view.kind(sibling).is_outgoing()
            && view.span(sibling).start >= failed_end
            && !view.is_error(sibling)
            && callee_identity(view, sibling) == target
    })
}

fn callee_identity(view: &TraceView<'_>, index: usize) -> Symbol {
    match view.server_child(index) {
        Some(child) => view.service(child),
        None if view.span(index).callee.is_some() => view.span(index).callee,
        None => view.span(index).name,
    }
}

/// Where blame lands (the table of SPEC §4.2).
fn land(view: &TraceView<'_>, index: usize, mut path: Vec<Symbol>) -> Blame {
    let span = view.span(index);
    let service = view.service(index);
    let mut blame = Blame {
        component: service,
        kind: CauseKind::Error,
        operation: span.name,
        via_callee: Symbol::NONE,
        trace: TraceId::default(),
        span_index: index as u32,
        path: Vec::new(),
    };
    if view.kind(index).is_outgoing() {
        let capacity = matches!(span.http_status, 429 | 503) || span.rpc_status == 8;
        match view.server_child(index) {
            Some(child) => {
                let callee = view.service(child);
                if capacity {
                    blame.component = callee;
                    blame.kind = CauseKind::Capacity;
                    blame.operation = view.span(child).name;
                } else {
                    // The callee answered fine: the call failed on the caller's side (a timeout
                    // shorter than the callee's work, a proxy). Blame the caller, name the callee.
                    blame.via_callee = callee;
                }
            }
            None if span.callee.is_some() => {
                if capacity {
                    blame.component = span.callee;
                    blame.kind = CauseKind::Capacity;
                } else if !span.has_response_status() && looks_like_no_response(view, span) {
                    // Timeouts, refused connections, DNS: the callee never answered.
                    blame.component = span.callee;
                    blame.kind = CauseKind::NoResponse;
                } else {
                    // The callee answered with an error (a response status, or a described
                    // failure such as a database error code).
                    blame.component = span.callee;
                }
            }
            None => {}
        }
    }
    if path.last() != Some(&blame.component) {
        path.push(blame.component);
    }
    blame.path = path;
    blame
}

/// A client span that failed without any response: network-like error types, or no
/// explanation at all (the callee never answered).
fn looks_like_no_response(view: &TraceView<'_>, span: &Span) -> bool {
    let dictionary = view.dictionary;
    let describe = [span.error_type, span.exception_type, span.exception_message]
        .into_iter()
        .filter(|symbol| symbol.is_some())
        .map(|symbol| dictionary.str(symbol).to_ascii_lowercase())
        .collect::<Vec<_>>();
    if describe.is_empty() {
        return false;
    }
    const NETWORK: [&str; 14] = [
        "timeout",
        "timed out",
        "refused",
        "reset",
        "unreachable",
        "dns",
        "name resolution",
        "unavailable",
        "deadline",
        "eof",
        "broken pipe",
        "no route",
        "connect",
        "socket",
    ];
    describe.iter().any(|text| NETWORK.iter().any(|word| text.contains(word)))
}

/// A critical-path key: a component's own time, or the gap on a call between two components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum PathKey {
    Node(Symbol),
    Edge(Symbol, Symbol),
}

/// Exclusive critical-path time per key in one trace, plus the first span of each node on it.
struct PathProfile {
    times: HashMap<PathKey, Nanos>,
    first_span: HashMap<Symbol, u32>,
    operations: HashMap<Symbol, (Symbol, Nanos)>,
}

fn analyze_latency(source: &dyn TraceSource, slow: &[&EntryRef], baseline: &[&EntryRef]) -> Analysis {
    let dictionary = source.dictionary();
    let profile = |entry: &EntryRef| {
        let spans = source.trace(&entry.trace_id)?;
        let view = TraceView::new(spans, dictionary);
        Some((critical_path(&view, entry.span_index as usize), view))
    };
    let mut baseline_mean: BTreeMap<PathKey, f64> = BTreeMap::new();
    let mut n_baseline = 0usize;
    for entry in baseline {
        let Some((path, _)) = profile(entry) else { continue };
        n_baseline += 1;
        for (key, time) in path.times {
            *baseline_mean.entry(key).or_default() += time as f64;
        }
    }
    for value in baseline_mean.values_mut() {
        *value /= n_baseline.max(1) as f64;
    }

    let profiles: Vec<(TraceId, PathProfile)> =
        slow.iter().filter_map(|entry| profile(entry).map(|(path, _)| (entry.trace_id, path))).collect();
    let mut slow_mean: BTreeMap<PathKey, f64> = BTreeMap::new();
    for (_, path) in &profiles {
        for (key, time) in &path.times {
            *slow_mean.entry(*key).or_default() += *time as f64;
        }
    }
    for value in slow_mean.values_mut() {
        *value /= profiles.len().max(1) as f64;
    }
    let growth =
        |key: &PathKey| slow_mean.get(key).copied().unwrap_or(0.0) - baseline_mean.get(key).copied().unwrap_or(0.0);
    let total_growth: f64 = slow_mean.keys().map(growth).filter(|g| *g > 0.0).sum();
    // Edges whose gap grew notably: their common endpoint is the suspect.
    let anomalous_edges: Vec<(Symbol, Symbol)> = slow_mean
        .keys()
        .filter_map(|key| match key {
            PathKey::Edge(caller, callee) if growth(key) > (total_growth * 0.05).max(1_000_000.0) => {
                Some((*caller, *callee))
            }
            _ => None,
        })
        .collect();
    let edge_counts = {
        let mut counts: BTreeMap<Symbol, usize> = BTreeMap::new();
        for (caller, callee) in &anomalous_edges {
            *counts.entry(*caller).or_default() += 1;
            *counts.entry(*callee).or_default() += 1;
        }
        counts
    };

    let mut tallies: BTreeMap<CandidateKey, Tally> = BTreeMap::new();
    let mut edges: BTreeMap<(Symbol, Symbol), f64> = BTreeMap::new();
    let mut notes = Vec::new();
    if !anomalous_edges.is_empty() {
        let names: Vec<String> = anomalous_edges
            .iter()
            .map(|(caller, callee)| format!("{} -> {}", dictionary.str(*caller), dictionary.str(*callee)))
            .collect();
        notes.push(format!("network gaps grew on {}", names.join(", ")));
    }
    for (trace_id, path) in &profiles {
        let mut scores: BTreeMap<Symbol, f64> = BTreeMap::new();
        for (key, time) in &path.times {
            let delta = *time as f64 - baseline_mean.get(key).copied().unwrap_or(0.0);
            match key {
                PathKey::Node(node) => *scores.entry(*node).or_default() += delta,
                PathKey::Edge(caller, callee) => {
                    if anomalous_edges.contains(&(*caller, *callee)) {
                        *scores.entry(*caller).or_default() += delta;
                        *scores.entry(*callee).or_default() += delta;
                    }
                }
            }
        }
        // The endpoint common to more anomalous edges wins a tie; then the callee side (the
        // deeper node), then the name.
        let winner = scores
            .iter()
            .filter(|(_, score)| **score > 0.0)
            .max_by(|a, b| {
                a.1.total_cmp(b.1)
                    .then(edge_counts.get(a.0).unwrap_or(&0).cmp(edge_counts.get(b.0).unwrap_or(&0)))
                    .then(b.0.cmp(a.0))
            })
            .map(|(node, _)| *node);
        let Some(winner) = winner else { continue };
        let Some(spans) = source.trace(trace_id) else { continue };
        let view = TraceView::new(spans, dictionary);
        let span_index = path.first_span.get(&winner).copied().unwrap_or(0);
        let operation = path.operations.get(&winner).map_or(Symbol::NONE, |(operation, _)| *operation);
        let blame = Blame {
            component: winner,
            kind: CauseKind::Latency,
            operation,
            via_callee: Symbol::NONE,
            trace: *trace_id,
            span_index,
            path: service_path(&view, span_index as usize, winner),
        };
        record(&mut tallies, &mut edges, *trace_id, &blame, 1.0);
    }
    let mut analysis = finish(dictionary, tallies, edges, profiles.len(), |key, tally| {
        let node = PathKey::Node(key.0);
        (
            tally.votes,
            slow_mean.get(&node).copied().unwrap_or(0.0) / 1e6,
            baseline_mean.get(&node).copied().unwrap_or(0.0) / 1e6,
        )
    });
    analysis.notes = notes;
    analysis
}

/// Majority votes of the naive routers over the bad traces.
fn naive_picks(source: &dyn TraceSource, bad: &[&EntryRef]) -> NaivePicks {
    let dictionary = source.dictionary();
    let mut deepest: BTreeMap<Symbol, usize> = BTreeMap::new();
    let mut slowest: BTreeMap<Symbol, usize> = BTreeMap::new();
    for entry in bad {
        let Some(spans) = source.trace(&entry.trace_id) else { continue };
        let view = TraceView::new(spans, dictionary);
        let depth = |mut index: usize| {
            let mut depth = 0;
            while let Some(parent) = view.parent(index) {
                depth += 1;
                index = parent;
                if depth > view.len() {
                    break;
                }
            }
            depth
        };
        let deepest_error =
            (0..view.len()).filter(|index| view.is_error(*index)).max_by_key(|index| (depth(*index), *index));
        if let Some(index) = deepest_error {
            *deepest.entry(naive_component(&view, index)).or_default() += 1;
        }
        let exclusive = |index: usize| {
            let span = view.span(index);
            let mut covered: Vec<(Nanos, Nanos)> = view
                .children(index)
                .map(|child| {
                    let child = view.span(child);
                    (child.start.clamp(span.start, span.end), child.end.clamp(span.start, span.end))
                })
                .collect();
            covered.sort_unstable();
            let mut busy = 0;
            let mut cursor = span.start;
            for (start, end) in covered {
                let start = start.max(cursor);
                if end > start {
                    busy += end - start;
                    cursor = end;
                }
            }
            span.duration() - busy
        };
        if let Some(index) = (0..view.len()).max_by_key(|index| (exclusive(*index), *index)) {
            *slowest.entry(naive_component(&view, index)).or_default() += 1;
        }
    }
    let top = |votes: BTreeMap<Symbol, usize>| {
        votes
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(symbol, _)| dictionary.str(symbol).to_string())
    };
    NaivePicks { deepest_error: top(deepest), slowest_span: top(slowest) }
}

/// A naive router's component for a span: a client span without a server child names its callee.
fn naive_component(view: &TraceView<'_>, index: usize) -> Symbol {
    let span = view.span(index);
    if view.kind(index).is_outgoing() && view.server_child(index).is_none() && span.callee.is_some() {
        span.callee
    } else {
        view.service(index)
    }
}

/// Services on the way from the trace's entry down to `index`, ending with `component`.
fn service_path(view: &TraceView<'_>, index: usize, component: Symbol) -> Vec<Symbol> {
    let mut chain = vec![view.service(index)];
    let mut cursor = index;
    let mut steps = 0;
    while let Some(parent) = view.parent(cursor) {
        steps += 1;
        if steps > view.len() {
            break;
        }
        let service = view.service(parent);
        if chain.last() != Some(&service) {
            chain.push(service);
        }
        cursor = parent;
    }
    chain.reverse();
    if chain.last() != Some(&component) {
        chain.push(component);
    }
    chain
}

/// The critical path from `root` (Jaeger/CRISP): from the end, repeatedly take the last
/// child finishing before the cursor; children are clipped to their parent.
fn critical_path(view: &TraceView<'_>, root: usize) -> PathProfile {
    let mut profile = PathProfile { times: HashMap::new(), first_span: HashMap::new(), operations: HashMap::new() };
    let span = view.span(root);
    let mut stack = vec![(root, span.start, span.end, 0usize)];
    while let Some((index, start, end, depth)) = stack.pop() {
        if end <= start || depth > 256 {
            continue;
        }
        let mut children: Vec<(usize, Nanos, Nanos)> = view
            .children(index)
            .map(|child| {
                let span = view.span(child);
                (child, span.start.clamp(start, end), span.end.clamp(start, end))
            })
            .filter(|(_, child_start, child_end)| child_end > child_start)
            .collect();
        children.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
        let mut cursor = end;
        let mut own = 0;
        for (child, child_start, child_end) in children {
            if child_end > cursor {
                continue;
            }
            own += cursor - child_end;
            stack.push((child, child_start, child_end, depth + 1));
            cursor = child_start;
        }
        own += cursor - start;
        if own > 0 {
            let key = path_key(view, index);
            *profile.times.entry(key).or_default() += own;
            if let PathKey::Node(node) = key {
                profile.first_span.entry(node).or_insert(index as u32);
                let entry = profile.operations.entry(node).or_insert((view.span(index).name, 0));
                if own > entry.1 {
                    *entry = (view.span(index).name, own);
                }
            }
        }
    }
    profile
}

/// Whose time a span's exclusive time is.
fn path_key(view: &TraceView<'_>, index: usize) -> PathKey {
    let service = view.service(index);
    if view.kind(index).is_outgoing() {
        if let Some(child) = view.server_child(index) {
            return PathKey::Edge(service, view.service(child));
        }
        let span = view.span(index);
        if span.callee.is_some() && span.callee != service {
            return PathKey::Node(span.callee);
        }
    }
    PathKey::Node(service)
}
