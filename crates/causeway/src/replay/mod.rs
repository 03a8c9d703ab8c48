//! `causeway replay BUNDLE`: folds a recorded bundle through a fresh engine on event time and
//! reports what it would have paged, against static routing (SPEC §7).
//!
//! A span becomes visible at its end time, an alert at its `startsAt` (firing) or `endsAt`
//! (resolved), a change at `at`. Spans are read line by line and held in a small time-ordered
//! buffer until the watermark (the latest end time read minus `lateness`) passes them, so a
//! bundle of any size replays in bounded memory as long as its lines are roughly in export
//! order, which is how collectors write them.

pub mod bundle;
pub mod report;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::BufRead;

use anyhow::Context;
use causeway_engine::change::Change;
use causeway_engine::{Engine, IncomingSpan, NANOS_PER_MIN, NANOS_PER_SEC, Nanos};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::receivers::alertmanager::{self, AlertMapping};
use crate::receivers::otlp::{self, ConvertOptions};
pub use bundle::Bundle;
pub use report::Report;

#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// How far behind the latest span end the replay clock stays (out-of-order tolerance).
    pub lateness: Nanos,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { lateness: 60 * NANOS_PER_SEC, progress: false }
    }
}

/// What a replay produced.
pub struct ReplayOutcome {
    pub report: Report,
    pub engine: Engine,
}

/// Inputs besides spans, on one time line.
enum Event {
    Fire(causeway_engine::incident::Symptom),
    Clear(String),
    Change(Change),
}

/// Counters of what was read, for the report and for honesty about dropped input.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReadStats {
    pub lines: u64,
    pub bad_lines: u64,
    pub spans: u64,
    pub rejected_spans: u64,
    pub traces: u64,
    pub alert_lines: u64,
    pub bad_alert_lines: u64,
    pub problems: Vec<String>,
}

const TICK: Nanos = NANOS_PER_SEC;

pub fn run(bundle: &Bundle, options: &ReplayOptions) -> anyhow::Result<ReplayOutcome> {
    let config = &bundle.config;
    let mut engine_config = config.engine_config(&bundle.dir.join("causeway.yaml"))?;
    engine_config.routing.keep_resolved = usize::MAX;
    // SPEC §7: without alerts.jsonl, symptoms come from the journeys' SLOs.
    engine_config.slo_symptoms = bundle.optional("alerts.jsonl").is_none();
    let loaded = config.load_ownership();
    if let Some(error) = loaded.errors.first() {
        anyhow::bail!("{error}");
    }
    let mapping = AlertMapping {
        journeys: engine_config.journeys.iter().map(|journey| journey.name.clone()).collect(),
        paging_severities: config.alerts.paging_severities.clone(),
    };
    let mut engine = Engine::new(engine_config, loaded.ownership.clone());
    let convert = ConvertOptions { team_keys: config.ownership.team_keys.clone() };
    let mut stats = ReadStats::default();

    let (mut events, static_pages) = load_events(bundle, &mapping, &mut stats)?;
    events.sort_by_key(|(at, order, _)| (*at, *order));
    let mut events = events.into_iter().peekable();

    let bar = progress_bar(options.progress, bundle.traces_bytes());
    let bar_handle = bar.clone();
    let mut lines = bundle.trace_lines(move |bytes| bar_handle.set_position(bytes))?;
    let mut pending: BinaryHeap<Reverse<PendingSpan>> = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut max_end = Nanos::MIN;
    let mut clock: Option<Nanos> = None;
    let mut trace_ids: hashbrown::HashSet<u64> = hashbrown::HashSet::new();
    let mut line = String::new();
    let mut eof = false;
    let mut converted: Vec<IncomingSpan> = Vec::new();
    loop {
        if !eof {
            line.clear();
            let n = lines.read_line(&mut line).with_context(|| format!("cannot read {}", bundle.traces.display()))?;
            if n == 0 {
                eof = true;
            } else {
                stats.lines += 1;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<ExportTraceServiceRequest>(&line) {
                    Ok(mut request) => {
                        let validation = otlp::validate(&mut request);
                        stats.rejected_spans += validation.rejected;
                        if validation.rejected > 0 && stats.problems.len() < 10 {
                            stats.problems.push(format!("line {}: {}", stats.lines, validation.message()));
                        }
                        converted.clear();
                        otlp::convert(&request, &convert, engine.dictionary_mut(), &mut converted);
                        for incoming in converted.drain(..) {
                            stats.spans += 1;
                            trace_ids.insert(incoming.trace_id.low_u64());
                            max_end = max_end.max(incoming.span.end);
                            sequence += 1;
                            pending.push(Reverse(PendingSpan { end: incoming.span.end, sequence, span: incoming }));
                        }
                    }
                    Err(error) => {
                        stats.bad_lines += 1;
                        if stats.problems.len() < 10 {
                            stats.problems.push(format!("{} line {}: {error}", bundle.traces.display(), stats.lines));
                        }
                    }
                }
            }
        }
        let first_event = events.peek().map(|(at, _, _)| *at);
        let first_span = pending.peek().map(|Reverse(span)| span.end);
        if clock.is_none() {
            let start = match (first_span, first_event) {
                (Some(span), Some(event)) => span.min(event),
                (Some(span), None) => span,
                (None, Some(event)) if eof => event,
                _ => {
                    if eof {
                        break;
                    }
                    continue;
                }
            };
            clock = Some(start - start.rem_euclid(TICK));
        }
        let watermark = if eof { Nanos::MAX } else { max_end.saturating_sub(options.lateness) };
        let Some(mut now) = clock else { continue };
        while now <= watermark {
            let mut batch = Vec::new();
            while pending.peek().is_some_and(|Reverse(span)| span.end <= now) {
                if let Some(Reverse(span)) = pending.pop() {
                    batch.push(span.span);
                }
            }
            if !batch.is_empty() {
                engine.ingest(now, batch);
            }
            while events.peek().is_some_and(|(at, _, _)| *at <= now) {
                if let Some((_, _, event)) = events.next() {
                    match event {
                        Event::Fire(symptom) => engine.fire(symptom),
                        Event::Clear(id) => engine.clear(&id, now),
                        Event::Change(change) => engine.record_change(change),
                    }
                }
            }
            engine.tick(now);
            now += TICK;
            if eof && pending.is_empty() && events.peek().is_none() {
                break;
            }
        }
        clock = Some(now);
        if eof && pending.is_empty() && events.peek().is_none() {
            // Let waiting decisions and resolutions finish.
            let routing = engine.config().routing.clone();
            let end = now + routing.evidence_wait + routing.resolve_grace + NANOS_PER_MIN;
            while now <= end {
                engine.tick(now);
                now += TICK;
            }
            break;
        }
    }
    bar.finish_and_clear();
    stats.traces = trace_ids.len() as u64;
    if stats.bad_lines > 0 {
        tracing::warn!(
            bad_lines = stats.bad_lines,
            "some trace lines could not be decoded; see the report's diagnostics"
        );
    }
    let report = report::build(&engine, bundle.truth.as_ref(), stats, static_pages);
    Ok(ReplayOutcome { report, engine })
}

struct PendingSpan {
    end: Nanos,
    sequence: u64,
    span: IncomingSpan,
}

impl PartialEq for PendingSpan {
    fn eq(&self, other: &Self) -> bool {
        (self.end, self.sequence) == (other.end, other.sequence)
    }
}
impl Eq for PendingSpan {}
impl PartialOrd for PendingSpan {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PendingSpan {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.end, self.sequence).cmp(&(other.end, other.sequence))
    }
}

/// Reads alerts.jsonl and changes.jsonl into time-stamped events. Returns the events and the
/// number of pages static routing would have sent (one per paging alert firing episode).
fn load_events(
    bundle: &Bundle,
    mapping: &AlertMapping,
    stats: &mut ReadStats,
) -> anyhow::Result<(Vec<(Nanos, u64, Event)>, u64)> {
    let mut events = Vec::new();
    let mut order = 0u64;
    let mut static_pages = 0u64;
    if let Some(path) = bundle.optional("alerts.jsonl") {
        let file = std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        // Episodes: (alert id, startsAt) fired once; HA duplicates and re-sends repeat them.
        let mut episodes: std::collections::BTreeSet<(String, Nanos)> = std::collections::BTreeSet::new();
        for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            stats.alert_lines += 1;
            let alerts = match alertmanager::parse_webhook(line.as_bytes()) {
                Ok(alerts) => alerts,
                Err(error) => {
                    stats.bad_alert_lines += 1;
                    if stats.problems.len() < 10 {
                        stats.problems.push(format!("{} line {}: {error}", path.display(), number + 1));
                    }
                    continue;
                }
            };
            for alert in alerts {
                order += 1;
                if alert.firing {
                    let symptom = mapping.symptom(&alert);
                    if episodes.insert((alert.id.clone(), alert.starts_at)) && symptom.may_page {
                        static_pages += 1;
                    }
                    events.push((alert.starts_at, order, Event::Fire(symptom)));
                } else {
                    let at = alert.ends_at.unwrap_or(alert.starts_at);
                    events.push((at, order, Event::Clear(alert.id.clone())));
                }
            }
        }
    }
    if let Some(path) = bundle.optional("changes.jsonl") {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let change = crate::receivers::changes::parse_change(line.as_bytes())
                .with_context(|| format!("{} line {}", path.display(), number + 1))?;
            order += 1;
            events.push((change.at, order, Event::Change(change)));
        }
    }
    Ok((events, static_pages))
}

fn progress_bar(enabled: bool, total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("replay {bar:40} {bytes}/{total_bytes} {elapsed} (eta {eta})")
    {
        bar.set_style(style);
    }
    bar
}
