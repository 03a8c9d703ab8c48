//! Journey SLOs with multi-window, multi-burn-rate alerting (SPEC §3; Google SRE Workbook).
//!
//! Every entry span of a journey is counted as it arrives (before any sampling), per minute of
//! its end time: requests, errors (availability SLI) and slow requests (latency SLI). On each
//! evaluation every tier of every SLI is checked: a tier fires when the burn rate over both its
//! long and its short window is at least its factor, and the short window saw at least
//! `min_requests` requests. A page tier firing raises a paging symptom; a ticket tier only a
//! notice. A symptom resolves when none of its tiers fires any more.
//!
//! Counters live in a ring of minutes as long as the SLO period (for the error budget) and the
//! longest window; the binary persists them so a restart keeps days of history.

use serde::Serialize;

use crate::analysis::SymptomKind;
use crate::incident::{Symptom, SymptomSource, SymptomTarget};
use crate::journey::{BurnTier, Journey};
use crate::model::{Dictionary, IncomingSpan, NANOS_PER_MIN, Nanos, SpanKind};
use crate::trace::span_is_error;

/// Requests counted in one minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MinuteCounts {
    pub total: u32,
    pub errors: u32,
    pub slow: u32,
}

/// At most this many minutes are kept per journey (90 days).
const MAX_MINUTES: usize = 90 * 24 * 60;

/// Per-journey counters and alert state.
#[derive(Clone, Debug)]
pub struct JourneySli {
    /// Index into the ring is `minute % ring.len()`; `minutes[i]` says which minute slot `i` holds.
    ring: Vec<MinuteCounts>,
    minutes: Vec<i64>,
    /// Active symptom ids: (kind, page?) pairs currently firing.
    firing: Vec<(SymptomKind, bool)>,
    /// The first minute counted: windows reaching before it are scaled (see `effective`).
    first_minute: Option<i64>,
}

impl JourneySli {
    fn new(journey: &Journey) -> JourneySli {
        let longest_window = journey.slo.tiers.iter().map(|tier| tier.long).max().unwrap_or(0);
        let minutes = ((journey.slo.period.max(longest_window) / NANOS_PER_MIN) as usize + 2).clamp(60, MAX_MINUTES);
        JourneySli {
            ring: vec![MinuteCounts::default(); minutes],
            minutes: vec![i64::MIN; minutes],
            firing: Vec::new(),
            first_minute: None,
        }
    }

    fn slot(&mut self, minute: i64) -> &mut MinuteCounts {
        self.first_minute = Some(self.first_minute.map_or(minute, |first| first.min(minute)));
        let index = minute.rem_euclid(self.ring.len() as i64) as usize;
        if self.minutes[index] != minute {
            self.minutes[index] = minute;
            self.ring[index] = MinuteCounts::default();
        }
        &mut self.ring[index]
    }

    /// Sums minutes in `(now - window, now]`.
    pub fn sum(&self, now: Nanos, window: Nanos) -> MinuteCounts {
        let last = now.div_euclid(NANOS_PER_MIN);
        let n = ((window + NANOS_PER_MIN - 1) / NANOS_PER_MIN).clamp(1, self.ring.len() as i64);
        let mut sum = MinuteCounts::default();
        for minute in (last - n + 1)..=last {
            let index = minute.rem_euclid(self.ring.len() as i64) as usize;
            if self.minutes[index] == minute {
                let counts = self.ring[index];
                sum.total += counts.total;
                sum.errors += counts.errors;
                sum.slow += counts.slow;
            }
        }
        sum
    }

    /// A window's counts as if the time before the first counted minute had been healthy
    /// traffic at the observed rate: right after a cold start, a window of an hour holding a
    /// minute of data would otherwise turn two stray errors into a page. (With a full history,
    /// as Prometheus would have it, this changes nothing.)
    pub fn effective(&self, now: Nanos, window: Nanos, counts: MinuteCounts) -> MinuteCounts {
        let Some(first) = self.first_minute else { return counts };
        let history = now.div_euclid(NANOS_PER_MIN) - first + 1;
        let window_minutes = (window + NANOS_PER_MIN - 1) / NANOS_PER_MIN;
        if history <= 0 || window_minutes <= history {
            return counts;
        }
        let scaled = (f64::from(counts.total) * window_minutes as f64 / history as f64).min(f64::from(u32::MAX));
        MinuteCounts { total: scaled as u32, ..counts }
    }

    /// Sums for several windows in one walk back from `now` (windows in any order).
    pub fn sums(&self, now: Nanos, windows: &[Nanos]) -> Vec<MinuteCounts> {
        let last = now.div_euclid(NANOS_PER_MIN);
        let lengths: Vec<i64> = windows
            .iter()
            .map(|window| ((window + NANOS_PER_MIN - 1) / NANOS_PER_MIN).clamp(1, self.ring.len() as i64))
            .collect();
        let longest = lengths.iter().copied().max().unwrap_or(1);
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.sort_by_key(|index| lengths[*index]);
        let mut sums = vec![MinuteCounts::default(); lengths.len()];
        let mut running = MinuteCounts::default();
        let mut next = 0;
        for back in 0..longest {
            let minute = last - back;
            let index = minute.rem_euclid(self.ring.len() as i64) as usize;
            if self.minutes[index] == minute {
                let counts = self.ring[index];
                running.total += counts.total;
                running.errors += counts.errors;
                running.slow += counts.slow;
            }
            while next < order.len() && lengths[order[next]] == back + 1 {
                sums[order[next]] = running;
                next += 1;
            }
        }
        sums
    }

    /// Every minute held, oldest first (for persistence).
    pub fn minutes(&self) -> Vec<(i64, MinuteCounts)> {
        let mut held: Vec<(i64, MinuteCounts)> = self
            .minutes
            .iter()
            .zip(&self.ring)
            .filter(|(minute, _)| **minute != i64::MIN)
            .map(|(m, c)| (*m, *c))
            .collect();
        held.sort_by_key(|(minute, _)| *minute);
        held
    }

    /// Restores a persisted minute (replacing what the slot held).
    pub fn restore(&mut self, minute: i64, counts: MinuteCounts) {
        *self.slot(minute) = counts;
    }
}

/// The state of one tier for one SLI, for the API.
#[derive(Clone, Debug, Serialize)]
pub struct TierStatus {
    pub name: String,
    pub page: bool,
    pub long_window_s: i64,
    pub short_window_s: i64,
    pub threshold: f64,
    pub burn_long: f64,
    pub burn_short: f64,
    pub firing: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SliStatus {
    pub kind: SymptomKind,
    pub target: f64,
    /// Share of the period's error budget left (negative when overspent). Before a whole period
    /// has been counted, the period's requests are estimated from the observed rate.
    pub budget_remaining: f64,
    pub period_requests: u64,
    pub period_bad: u64,
    pub tiers: Vec<TierStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct JourneyStatus {
    pub journey: String,
    pub slis: Vec<SliStatus>,
}

/// What evaluation decided.
#[derive(Debug, Clone, PartialEq)]
pub enum SloEvent {
    Fire(Symptom),
    Clear(String),
}

/// All journeys' SLIs.
#[derive(Clone, Debug)]
pub struct SloTracker {
    journeys: Vec<Journey>,
    state: Vec<JourneySli>,
}

impl SloTracker {
    pub fn new(journeys: &[Journey]) -> SloTracker {
        SloTracker { journeys: journeys.to_vec(), state: journeys.iter().map(JourneySli::new).collect() }
    }

    pub fn journey_state(&self, name: &str) -> Option<&JourneySli> {
        self.journeys.iter().position(|journey| journey.name == name).map(|index| &self.state[index])
    }

    pub fn journey_state_mut(&mut self, name: &str) -> Option<&mut JourneySli> {
        self.journeys.iter().position(|journey| journey.name == name).map(|index| &mut self.state[index])
    }

    /// Counts the entry spans among `spans`.
    pub fn count(&mut self, dictionary: &Dictionary, spans: &[IncomingSpan]) {
        if self.journeys.is_empty() {
            return;
        }
        // Resolve the journeys' entry names once per batch: cheap, and symbols appear late.
        let keys: Vec<(Option<crate::Symbol>, Option<crate::Symbol>)> = self
            .journeys
            .iter()
            .map(|journey| {
                (dictionary.strings.get(&journey.entry_service), dictionary.strings.get(&journey.entry_operation))
            })
            .collect();
        for incoming in spans {
            let span = &incoming.span;
            if !matches!(span.kind, SpanKind::Server | SpanKind::Consumer | SpanKind::Unspecified) {
                continue;
            }
            let service = dictionary.service_of(span);
            for (index, (entry_service, entry_operation)) in keys.iter().enumerate() {
                let (Some(entry_service), Some(entry_operation)) = (entry_service, entry_operation) else { continue };
                if service != *entry_service || (span.name != *entry_operation && span.route != *entry_operation) {
                    continue;
                }
                let journey = &self.journeys[index];
                let slow = journey.slo.latency.is_some_and(|latency| span.duration() > latency.threshold);
                let error = span_is_error(span, SpanKind::Server);
                let counts = self.state[index].slot(span.end.div_euclid(NANOS_PER_MIN));
                counts.total += 1;
                counts.errors += u32::from(error);
                counts.slow += u32::from(slow);
            }
        }
    }

    /// Evaluates every tier at `now`; returns symptoms to fire and to clear.
    pub fn evaluate(&mut self, now: Nanos) -> Vec<SloEvent> {
        let mut events = Vec::new();
        for (index, journey) in self.journeys.iter().enumerate() {
            for (kind, target) in slis(journey) {
                let budget = 1.0 - target;
                let state = &self.state[index];
                let windows: Vec<Nanos> = journey.slo.tiers.iter().flat_map(|tier| [tier.long, tier.short]).collect();
                let sums = state.sums(now, &windows);
                let tiers: Vec<(&BurnTier, f64, f64, bool)> = journey
                    .slo
                    .tiers
                    .iter()
                    .enumerate()
                    .map(|(n, tier)| {
                        let long = state.effective(now, tier.long, sums[2 * n]);
                        let short = state.effective(now, tier.short, sums[2 * n + 1]);
                        let burn_long = burn(long, kind, budget);
                        let burn_short = burn(short, kind, budget);
                        let firing = u64::from(sums[2 * n + 1].total) >= journey.slo.min_requests
                            && burn_long >= tier.burn
                            && burn_short >= tier.burn;
                        (tier, burn_long, burn_short, firing)
                    })
                    .collect();
                for page in [true, false] {
                    let strongest = tiers
                        .iter()
                        .filter(|(tier, _, _, firing)| *firing && tier.page == page)
                        .max_by(|a, b| a.0.burn.total_cmp(&b.0.burn));
                    let id = symptom_id(&journey.name, kind, page);
                    let was_firing = self.state[index].firing.contains(&(kind, page));
                    match (strongest, was_firing) {
                        (Some((tier, burn_long, burn_short, _)), false) => {
                            self.state[index].firing.push((kind, page));
                            let what = match kind {
                                SymptomKind::Error => "error rate",
                                SymptomKind::Latency => "latency",
                            };
                            events.push(SloEvent::Fire(Symptom {
                                id,
                                target: SymptomTarget::Journey { journey: journey.name.clone() },
                                kind: Some(kind),
                                may_page: page,
                                fired_at: now,
                                source: SymptomSource::Slo {
                                    tier: tier.name.clone(),
                                    long_window: tier.long,
                                    short_window: tier.short,
                                    burn_long: round2(*burn_long),
                                    burn_short: round2(*burn_short),
                                    threshold: round2(tier.burn),
                                },
                                team_label: None,
                                summary: format!(
                                    "{} {what} burning the error budget {:.1}x over {} and {:.1}x over {} (tier {}, threshold {:.1}x)",
                                    journey.name,
                                    burn_long,
                                    human_window(tier.long),
                                    burn_short,
                                    human_window(tier.short),
                                    tier.name,
                                    tier.burn
                                ),
                            }));
                        }
                        (None, true) => {
                            self.state[index].firing.retain(|firing| *firing != (kind, page));
                            events.push(SloEvent::Clear(id));
                        }
                        _ => {}
                    }
                }
            }
        }
        events
    }

    /// SLO status of every journey at `now` (API).
    pub fn status(&self, now: Nanos) -> Vec<JourneyStatus> {
        self.journeys
            .iter()
            .zip(&self.state)
            .map(|(journey, state)| JourneyStatus {
                journey: journey.name.clone(),
                slis: slis(journey)
                    .into_iter()
                    .map(|(kind, target)| {
                        let budget = 1.0 - target;
                        let period = state.sum(now, journey.slo.period);
                        let bad = match kind {
                            SymptomKind::Error => period.errors,
                            SymptomKind::Latency => period.slow,
                        };
                        // The budget is (1 - target) of the period's requests. Until a whole
                        // period is counted, its requests are the observed rate over the period
                        // (the cold-start rule of the burn windows): an hour of history with
                        // 20% errors has spent part of a 28-day budget, not all of it.
                        let expected = state.effective(now, journey.slo.period, period);
                        let spent =
                            if expected.total == 0 { 0.0 } else { f64::from(bad) / f64::from(expected.total) / budget };
                        SliStatus {
                            kind,
                            target,
                            budget_remaining: round3(1.0 - spent),
                            period_requests: u64::from(period.total),
                            period_bad: u64::from(bad),
                            tiers: journey
                                .slo
                                .tiers
                                .iter()
                                .map(|tier| {
                                    let long = state.effective(now, tier.long, state.sum(now, tier.long));
                                    let short = state.effective(now, tier.short, state.sum(now, tier.short));
                                    let burn_long = burn(long, kind, budget);
                                    let burn_short = burn(short, kind, budget);
                                    TierStatus {
                                        name: tier.name.clone(),
                                        page: tier.page,
                                        long_window_s: tier.long / 1_000_000_000,
                                        short_window_s: tier.short / 1_000_000_000,
                                        threshold: round2(tier.burn),
                                        burn_long: round2(burn_long),
                                        burn_short: round2(burn_short),
                                        firing: state.firing.iter().any(|(k, page)| *k == kind && *page == tier.page)
                                            && burn_long >= tier.burn
                                            && burn_short >= tier.burn,
                                    }
                                })
                                .collect(),
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

pub fn symptom_id(journey: &str, kind: SymptomKind, page: bool) -> String {
    let kind = match kind {
        SymptomKind::Error => "error",
        SymptomKind::Latency => "latency",
    };
    format!("slo:{journey}:{kind}:{}", if page { "page" } else { "ticket" })
}

fn slis(journey: &Journey) -> Vec<(SymptomKind, f64)> {
    let mut slis = Vec::new();
    if let Some(availability) = journey.slo.availability {
        slis.push((SymptomKind::Error, availability));
    }
    if let Some(latency) = journey.slo.latency {
        slis.push((SymptomKind::Latency, latency.target));
    }
    slis
}

/// Burn rate: the bad ratio over the window divided by the error budget.
pub fn burn(counts: MinuteCounts, kind: SymptomKind, budget: f64) -> f64 {
    if counts.total == 0 || budget <= 0.0 {
        return 0.0;
    }
    let bad = match kind {
        SymptomKind::Error => counts.errors,
        SymptomKind::Latency => counts.slow,
    };
    f64::from(bad) / f64::from(counts.total) / budget
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn human_window(nanos: Nanos) -> String {
    let minutes = nanos / NANOS_PER_MIN;
    if minutes % (24 * 60) == 0 {
        format!("{}d", minutes / (24 * 60))
    } else if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::{LatencySlo, Slo};
    use crate::model::{CalleeKind, Resource, Span, SpanId, StatusCode, TraceId};

    const DAY: Nanos = 24 * 60 * NANOS_PER_MIN;

    fn journey(period: Nanos, min_requests: u64) -> Journey {
        Journey {
            name: "checkout".into(),
            entry_service: "frontend".into(),
            entry_operation: "POST /api/checkout".into(),
            owner: None,
            slo: Slo {
                availability: Some(0.999),
                latency: Some(LatencySlo { threshold: 800 * 1_000_000, target: 0.99 }),
                period,
                tiers: BurnTier::google(period),
                min_requests,
            },
        }
    }

    /// Feeds one request per second with the given error ratio (deterministic spacing) and
    /// returns the time the first paging error symptom fires, in seconds after `start`.
    fn detection_seconds(error_ratio: f64, period: Nanos) -> Option<i64> {
        let mut dictionary = Dictionary::default();
        let service = dictionary.strings.intern("frontend");
        let name = dictionary.strings.intern("POST /api/checkout");
        let resource = dictionary.resources.intern(Resource { service, ..Resource::default() });
        let mut tracker = SloTracker::new(&[journey(period, 10)]);
        let start: Nanos = 1_700_000_000 * 1_000_000_000;
        // Seven hours of healthy traffic first, so every paging window (up to 6 h) starts clean.
        let mut errors_owed = 0.0;
        for second in -7 * 3600..(4 * 3600) {
            let now = start + second * 1_000_000_000;
            let failing = if second >= 0 {
                errors_owed += error_ratio;
                if errors_owed >= 1.0 {
                    errors_owed -= 1.0;
                    true
                } else {
                    false
                }
            } else {
                false
            };
            let span = Span {
                span_id: SpanId(1),
                parent_span_id: SpanId::NONE,
                start: now - 50_000_000,
                end: now,
                resource,
                name,
                route: crate::Symbol::NONE,
                callee: crate::Symbol::NONE,
                error_type: crate::Symbol::NONE,
                exception_type: crate::Symbol::NONE,
                exception_message: crate::Symbol::NONE,
                db_statement: crate::Symbol::NONE,
                http_status: if failing { 500 } else { 200 },
                rpc_status: Span::NO_RPC_STATUS,
                kind: SpanKind::Server,
                status: if failing { StatusCode::Error } else { StatusCode::Unset },
                callee_kind: CalleeKind::None,
                links: None,
            };
            tracker.count(&dictionary, &[IncomingSpan { trace_id: TraceId([1; 16]), span }]);
            if second % 10 != 0 {
                continue; // the engine evaluates every 10 s of event time
            }
            for event in tracker.evaluate(now) {
                if let SloEvent::Fire(symptom) = event {
                    if symptom.may_page && symptom.kind == Some(SymptomKind::Error) {
                        return Some(second);
                    }
                }
            }
        }
        None
    }

    #[test]
    fn detection_time_matches_the_workbook_for_constant_error_ratios() {
        // 100% errors, 30-day SLO of 99.9%: the 14.4x / 1h tier needs 1.44% of the hour bad:
        // 0.0144 * 3600 s = 51.8 s (the Workbook's "0.86 minutes").
        let seconds = detection_seconds(1.0, 30 * DAY).expect("fires");
        assert!((50..=60).contains(&seconds), "detected after {seconds} s");
        // (evaluated every 10 s, so the figures carry up to 10 s of resolution)
        // 2% errors: burn 20x; the 1h window reaches 14.4x after 0.72 h = 43.2 min.
        let seconds = detection_seconds(0.02, 30 * DAY).expect("fires");
        // Minute buckets make the hour window up to a minute shorter: detection may come that much sooner.
        assert!((2520..=2670).contains(&seconds), "detected after {seconds} s");
        // 0.1% errors is exactly the budget: burn 1x never pages.
        assert_eq!(detection_seconds(0.001, 30 * DAY), None);
    }

    #[test]
    fn the_28_day_scaling_pages_slightly_earlier() {
        // 13.44x instead of 14.4x: 0.01344 * 3600 = 48.4 s at 100% errors.
        let seconds = detection_seconds(1.0, 28 * DAY).expect("fires");
        assert!((47..=60).contains(&seconds), "detected after {seconds} s");
    }

    #[test]
    fn a_cold_start_does_not_page_on_a_few_stray_errors() {
        // No history at all, then 2 errors in the first 60 requests (3%): an hour's window
        // holding one minute would read 3% (30x); counted as an hour of traffic at the same
        // rate it is 0.05% and nothing fires. A full outage still fires.
        let mut dictionary = Dictionary::default();
        let service = dictionary.strings.intern("frontend");
        let name = dictionary.strings.intern("POST /api/checkout");
        let resource = dictionary.resources.intern(Resource { service, ..Resource::default() });
        let mut tracker = SloTracker::new(&[journey(30 * DAY, 10)]);
        let start: Nanos = 1_700_000_000 * 1_000_000_000;
        let request = |n: i64, failing: bool| IncomingSpan {
            trace_id: TraceId([3; 16]),
            span: Span {
                span_id: SpanId(n as u64 + 1),
                parent_span_id: SpanId::NONE,
                start: start + n * 1_000_000_000 - 1,
                end: start + n * 1_000_000_000,
                resource,
                name,
                route: crate::Symbol::NONE,
                callee: crate::Symbol::NONE,
                error_type: crate::Symbol::NONE,
                exception_type: crate::Symbol::NONE,
                exception_message: crate::Symbol::NONE,
                db_statement: crate::Symbol::NONE,
                http_status: if failing { 500 } else { 200 },
                rpc_status: Span::NO_RPC_STATUS,
                kind: SpanKind::Server,
                status: StatusCode::Unset,
                callee_kind: CalleeKind::None,
                links: None,
            },
        };
        for n in 0..60 {
            tracker.count(&dictionary, &[request(n, n == 10 || n == 40)]);
        }
        assert!(tracker.evaluate(start + 60 * 1_000_000_000).is_empty(), "two stray errors must not page");
        for n in 60..240 {
            tracker.count(&dictionary, &[request(n, true)]);
        }
        let events = tracker.evaluate(start + 240 * 1_000_000_000);
        assert!(
            events.iter().any(|event| matches!(event, SloEvent::Fire(symptom) if symptom.may_page)),
            "an outage pages"
        );
    }

    #[test]
    fn low_traffic_never_fires_below_min_requests() {
        let mut dictionary = Dictionary::default();
        let service = dictionary.strings.intern("frontend");
        let name = dictionary.strings.intern("POST /api/checkout");
        let resource = dictionary.resources.intern(Resource { service, ..Resource::default() });
        let mut tracker = SloTracker::new(&[journey(30 * DAY, 10)]);
        let start: Nanos = 1_700_000_000 * 1_000_000_000;
        // Three failing requests in five minutes: 100% errors, but fewer than 10 requests.
        let mut fired = false;
        for n in 0..3 {
            let now = start + n * 60 * 1_000_000_000;
            let mut span = Span {
                span_id: SpanId(1),
                parent_span_id: SpanId::NONE,
                start: now - 1,
                end: now,
                resource,
                name,
                route: crate::Symbol::NONE,
                callee: crate::Symbol::NONE,
                error_type: crate::Symbol::NONE,
                exception_type: crate::Symbol::NONE,
                exception_message: crate::Symbol::NONE,
                db_statement: crate::Symbol::NONE,
                http_status: 500,
                rpc_status: Span::NO_RPC_STATUS,
                kind: SpanKind::Server,
                status: StatusCode::Error,
                callee_kind: CalleeKind::None,
                links: None,
            };
            span.span_id = SpanId(n as u64 + 1);
            tracker.count(&dictionary, &[IncomingSpan { trace_id: TraceId([2; 16]), span }]);
            fired |= tracker.evaluate(now).iter().any(|event| matches!(event, SloEvent::Fire(_)));
        }
        assert!(!fired, "3 requests are below min_requests = 10");
        let status = tracker.status(start + 3 * 60 * 1_000_000_000);
        assert_eq!(status[0].slis[0].period_requests, 3);
        // Four minutes counted at 0.75 requests a minute: about 32,400 requests in 30 days, of
        // which 0.1% (32.4) may fail. Three failures spend 9.3% of that budget.
        let remaining = status[0].slis[0].budget_remaining;
        assert!((remaining - 0.907).abs() < 0.001, "3 of an estimated 32,400 requests: {remaining}");
    }
}
