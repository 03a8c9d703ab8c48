//! What Prometheus and Alertmanager would have sent for the simulated traffic: `alerts.jsonl`.
//!
//! [`Metrics`] counts what Prometheus would scrape (requests and errors per service from SERVER
//! spans, requests, errors and slow requests per journey from entry spans) in 10-second buckets.
//! [`alerts`] then evaluates two rule sets every minute, as Prometheus would:
//! - symptom rules per journey (Sloth-style multi-window multi-burn-rate, the page tiers of
//!   SPEC §3: 14.4x over 1h and 5m, or 6x over 6h and 30m), one for errors and one for latency,
//!   labels `alertname`, `journey`, `sli`, `severity: page`;
//! - cause rules per service, the kind that produce alert storms: `ServiceErrorRateHigh`
//!   (over 5% of requests failing for 2m, `severity: warning`) and `ServiceErrorRateCritical`
//!   (over 25% for 2m, `severity: page`), with at least 20 requests in the 5-minute window.
//!
//! and runs their alerts through a model of Alertmanager: grouped by `alertname` plus `journey`
//! or `service`, `group_wait` 30s, `group_interval` 5m, `repeat_interval` 5m (so firing groups
//! are re-sent every 5 minutes), `send_resolved: true`, and two replicas in a cluster that
//! sometimes both deliver (an HA duplicate: the same payload twice). Payloads are shaped exactly
//! like Alertmanager 0.25's webhook (version 4), see `shared/samples/`.
//!
//! The system ran before the bundle starts: a window reaching back before the start is filled
//! with the baseline (the average of the fault-free minutes the run begins with), as Prometheus
//! would have that history. Without it the long windows (1h, 6h) would hold only minutes of data
//! and keep every symptom firing for half an hour after a three-minute fault.
//!
//! Simplifications, stated: windows are sums of whole 10-second buckets (not `rate()`
//! extrapolation); every group holds one alert; notifications carry no delivery delay beyond
//! the rule timing.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::Nanos;
use super::world::World;

/// Width of a counter bucket.
pub const BUCKET: Nanos = 10_000_000_000;
const SECOND: Nanos = 1_000_000_000;
const MINUTE: Nanos = 60 * SECOND;

const EVALUATION_INTERVAL: Nanos = MINUTE;
/// Where in the minute the rule group evaluates (Prometheus spreads groups over the interval).
const EVALUATION_OFFSET: Nanos = 4_935_000_000;
const GROUP_WAIT: Nanos = 30 * SECOND;
const GROUP_INTERVAL: Nanos = 5 * MINUTE;
/// Share of notifications both Alertmanager replicas deliver.
const HA_DUPLICATE_SHARE: f64 = 0.3;

const SERVICE_WARNING_RATIO: f64 = 0.05;
const SERVICE_PAGE_RATIO: f64 = 0.25;
const SERVICE_FOR: Nanos = 2 * MINUTE;
const SERVICE_MIN_REQUESTS: u64 = 20;

const EXTERNAL_URL: &str = "http://alertmanager.monitoring.svc:9093";
const PROMETHEUS_URL: &str = "http://prometheus.monitoring.svc:9090";

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    total: u32,
    errors: u32,
    slow: u32,
}

/// Counters Prometheus would have scraped, in 10-second buckets from the run's start.
#[derive(Debug, Clone)]
pub struct Metrics {
    start: Nanos,
    journeys: Vec<Vec<Counts>>,
    services: Vec<Vec<Counts>>,
}

impl Metrics {
    pub fn new(world: &World, start: Nanos) -> Metrics {
        Metrics {
            start,
            journeys: vec![Vec::new(); world.journeys.len()],
            services: vec![Vec::new(); world.services.len()],
        }
    }

    fn slot(series: &mut Vec<Counts>, index: usize) -> &mut Counts {
        if series.len() <= index {
            series.resize(index + 1, Counts::default());
        }
        &mut series[index]
    }

    fn bucket(&self, at: Nanos) -> usize {
        ((at - self.start).max(0) / BUCKET) as usize
    }

    pub fn record_entry(&mut self, journey: usize, end: Nanos, failed: bool, slow: bool) {
        let bucket = self.bucket(end);
        let counts = Self::slot(&mut self.journeys[journey], bucket);
        counts.total += 1;
        counts.errors += u32::from(failed);
        counts.slow += u32::from(slow);
    }

    pub fn record_server(&mut self, service: usize, end: Nanos, failed: bool) {
        let bucket = self.bucket(end);
        let counts = Self::slot(&mut self.services[service], bucket);
        counts.total += 1;
        counts.errors += u32::from(failed);
    }

    /// `(requests, errors, slow)` of a journey in `[from, to)`, by whole buckets.
    pub fn journey_counts(&self, journey: usize, from: Nanos, to: Nanos) -> (u64, u64, u64) {
        sum(&self.journeys[journey], self.bucket(from), self.bucket(to))
    }

    /// `(requests, errors)` of a service's SERVER spans in `[from, to)`, by whole buckets.
    pub fn service_counts(&self, service: usize, from: Nanos, to: Nanos) -> (u64, u64) {
        let (total, errors, _) = sum(&self.services[service], self.bucket(from), self.bucket(to));
        (total, errors)
    }
}

fn sum(series: &[Counts], from: usize, to: usize) -> (u64, u64, u64) {
    let to = to.min(series.len());
    let from = from.min(to);
    series[from..to].iter().fold((0, 0, 0), |(total, errors, slow), counts| {
        (total + u64::from(counts.total), errors + u64::from(counts.errors), slow + u64::from(counts.slow))
    })
}

/// One Alertmanager webhook delivery.
#[derive(Debug, Clone)]
pub struct Notification {
    pub at: Nanos,
    pub payload: Webhook,
}

/// Alertmanager's webhook payload, version 4 (field order as Alertmanager writes it).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<WebhookAlert>,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// A rule instance: one alert series (one label set).
struct Series {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    group_by: [&'static str; 2],
    receiver: String,
    expression: String,
    hold: Nanos,
    condition: Condition,
}

enum Condition {
    /// Multi-window multi-burn-rate over a journey's errors (`latency: false`) or slow requests.
    Burn { journey: usize, latency: bool, budget: f64 },
    /// A service's 5-minute error ratio above a threshold.
    ServiceErrors { service: usize, ratio: f64 },
}

/// Every notification Alertmanager would have delivered in `[start, end)`, in delivery order,
/// HA duplicates included. `[start, baseline_end)` is fault-free traffic that stands for the
/// history before the start.
pub fn alerts(
    world: &World,
    metrics: &Metrics,
    start: Nanos,
    end: Nanos,
    baseline_end: Nanos,
    seed: u64,
) -> Vec<Notification> {
    let history = History::new(metrics, start, baseline_end.clamp(start + BUCKET, end.max(start + BUCKET)));
    let series = rules(world);
    let mut notifications: Vec<(Nanos, usize, Webhook)> = Vec::new();
    for (index, one) in series.iter().enumerate() {
        let episodes = evaluate(one, &history, start, end);
        for (at, payload) in alertmanager(one, &episodes, end) {
            notifications.push((at, index, payload));
        }
    }
    notifications.sort_by_key(|(at, index, _)| (*at, *index));
    let mut rng = StdRng::seed_from_u64(seed ^ 0x616c_6572_7473);
    let mut out = Vec::with_capacity(notifications.len() * 4 / 3);
    for (at, _, payload) in notifications {
        let duplicate = rng.random::<f64>() < HA_DUPLICATE_SHARE;
        if duplicate {
            out.push(Notification { at, payload: payload.clone() });
        }
        out.push(Notification { at, payload });
    }
    out
}

/// Window sums over the recorded buckets, with the baseline standing in before the start.
struct History<'a> {
    metrics: &'a Metrics,
    start: Nanos,
    /// Per journey: average `(requests, errors, slow)` per bucket of the baseline.
    journeys: Vec<(f64, f64, f64)>,
    /// Per service: average `(requests, errors)` per bucket of the baseline.
    services: Vec<(f64, f64)>,
}

impl<'a> History<'a> {
    fn new(metrics: &'a Metrics, start: Nanos, baseline_end: Nanos) -> History<'a> {
        let n_buckets = ((baseline_end - start) / BUCKET).max(1) as f64;
        let journeys = (0..metrics.journeys.len())
            .map(|journey| {
                let (total, errors, slow) = metrics.journey_counts(journey, start, baseline_end);
                (total as f64 / n_buckets, errors as f64 / n_buckets, slow as f64 / n_buckets)
            })
            .collect();
        let services = (0..metrics.services.len())
            .map(|service| {
                let (total, errors) = metrics.service_counts(service, start, baseline_end);
                (total as f64 / n_buckets, errors as f64 / n_buckets)
            })
            .collect();
        History { metrics, start, journeys, services }
    }

    fn before_start(&self, from: Nanos) -> f64 {
        ((self.start - from).max(0) / BUCKET) as f64
    }

    fn journey(&self, journey: usize, from: Nanos, to: Nanos) -> (f64, f64, f64) {
        let (total, errors, slow) = self.metrics.journey_counts(journey, from.max(self.start), to);
        let missing = self.before_start(from);
        let (average_total, average_errors, average_slow) = self.journeys[journey];
        (
            total as f64 + missing * average_total,
            errors as f64 + missing * average_errors,
            slow as f64 + missing * average_slow,
        )
    }

    fn service(&self, service: usize, from: Nanos, to: Nanos) -> (f64, f64) {
        let (total, errors) = self.metrics.service_counts(service, from.max(self.start), to);
        let missing = self.before_start(from);
        let (average_total, average_errors) = self.services[service];
        (total as f64 + missing * average_total, errors as f64 + missing * average_errors)
    }
}

/// `add-to-cart` -> `AddToCart`.
pub fn camel_case(name: &str) -> String {
    name.split(['-', '_', ' '])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| first.to_ascii_uppercase().to_string() + chars.as_str())
        })
        .collect()
}

fn receiver(world: &World, team: &str, page: bool) -> String {
    let has_pager = world.teams.iter().any(|candidate| candidate.name == team && candidate.pagerduty);
    if page && has_pager { format!("{team}-pagerduty") } else { format!("{team}-slack") }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

fn rules(world: &World) -> Vec<Series> {
    let mut series = Vec::new();
    for (index, journey) in world.journeys.iter().enumerate() {
        for latency in [false, true] {
            let (sli, noun, budget) = if latency {
                ("latency", "Latency", 1.0 - journey.latency_target / 100.0)
            } else {
                ("error", "Error", 1.0 - journey.availability / 100.0)
            };
            let alertname = format!("{}{noun}BudgetBurn", camel_case(&journey.name));
            let metric = format!("slo:sli_{sli}:ratio_rate");
            let selector = format!("{{journey=\"{}\"}}", journey.name);
            let expression = format!(
                "({metric}1h{selector} > (14.4 * {budget:.4}) and {metric}5m{selector} > (14.4 * {budget:.4})) or ({metric}6h{selector} > (6 * {budget:.4}) and {metric}30m{selector} > (6 * {budget:.4}))"
            );
            let objective = if latency {
                format!("{}% of requests under {} ms", journey.latency_target, journey.latency_threshold_ms)
            } else {
                format!("{}% of requests without error", journey.availability)
            };
            series.push(Series {
                labels: labels(&[
                    ("alertname", &alertname),
                    ("journey", &journey.name),
                    ("severity", "page"),
                    ("sli", sli),
                ]),
                annotations: labels(&[
                    ("summary", &format!("{} {sli} budget is burning too fast", journey.name)),
                    (
                        "description",
                        &format!(
                            "The {} journey (SLO: {objective} over 28d) burns its {sli} budget faster than 14.4x over 1h and 5m, or 6x over 6h and 30m.",
                            journey.name
                        ),
                    ),
                    ("runbook_url", &format!("https://runbooks.example.com/journeys/{}", journey.name)),
                ]),
                group_by: ["alertname", "journey"],
                receiver: receiver(world, &journey.owner, true),
                expression,
                hold: 0,
                condition: Condition::Burn {
                    journey: index,
                    latency,
                    budget,
                },
            });
        }
    }
    for (index, service) in world.services.iter().enumerate() {
        for (alertname, ratio, severity) in [
            ("ServiceErrorRateHigh", SERVICE_WARNING_RATIO, "warning"),
            ("ServiceErrorRateCritical", SERVICE_PAGE_RATIO, "page"),
        ] {
            let name = &service.name;
            let expression = format!(
                "sum by (service) (rate(http_server_request_duration_seconds_count{{service=\"{name}\",http_response_status_code=~\"5..\"}}[5m])) / sum by (service) (rate(http_server_request_duration_seconds_count{{service=\"{name}\"}}[5m])) > {ratio}"
            );
            series.push(Series {
                labels: labels(&[("alertname", alertname), ("service", name), ("severity", severity)]),
                annotations: labels(&[
                    ("summary", &format!("High error rate on {name}")),
                    (
                        "description",
                        &format!(
                            "More than {:.0}% of {name}'s requests failed over the last 5 minutes.",
                            ratio * 100.0
                        ),
                    ),
                    ("runbook_url", &format!("https://runbooks.example.com/services/{name}")),
                ]),
                group_by: ["alertname", "service"],
                receiver: receiver(world, &service.team, severity == "page"),
                expression,
                hold: SERVICE_FOR,
                condition: Condition::ServiceErrors { service: index, ratio },
            });
        }
    }
    series
}

/// A firing period of an alert: fired at, resolved at (if it resolved within the run).
type Episode = (Nanos, Option<Nanos>);

/// Runs Prometheus's rule evaluation for one series: pending for `hold`, then firing, until the
/// condition is false at an evaluation.
fn evaluate(series: &Series, history: &History<'_>, start: Nanos, end: Nanos) -> Vec<Episode> {
    let mut episodes = Vec::new();
    let mut pending_since: Option<Nanos> = None;
    let mut firing_since: Option<Nanos> = None;
    let mut at = start + EVALUATION_INTERVAL + EVALUATION_OFFSET;
    while at < end {
        let active = holds(&series.condition, history, at);
        if active {
            if firing_since.is_none() {
                let since = *pending_since.get_or_insert(at);
                if at - since >= series.hold {
                    firing_since = Some(at);
                }
            }
        } else {
            pending_since = None;
            if let Some(fired) = firing_since.take() {
                episodes.push((fired, Some(at)));
            }
        }
        at += EVALUATION_INTERVAL;
    }
    if let Some(fired) = firing_since {
        episodes.push((fired, None));
    }
    episodes
}

fn holds(condition: &Condition, history: &History<'_>, at: Nanos) -> bool {
    match *condition {
        Condition::Burn { journey, latency, budget } => {
            let burn = |window: Nanos| -> f64 {
                let (total, errors, slow) = history.journey(journey, at - window, at);
                if total <= 0.0 {
                    return 0.0;
                }
                let bad = if latency { slow } else { errors };
                bad / total / budget
            };
            (burn(60 * MINUTE) > 14.4 && burn(5 * MINUTE) > 14.4)
                || (burn(360 * MINUTE) > 6.0 && burn(30 * MINUTE) > 6.0)
        }
        Condition::ServiceErrors { service, ratio } => {
            let (total, errors) = history.service(service, at - 5 * MINUTE, at);
            total >= SERVICE_MIN_REQUESTS as f64 && errors / total > ratio
        }
    }
}

/// Alertmanager's notification pipeline for one group holding this series' alert.
fn alertmanager(series: &Series, episodes: &[Episode], end: Nanos) -> Vec<(Nanos, Webhook)> {
    let mut out = Vec::new();
    // The alert as Alertmanager knows it at time `at`: the latest episode that fired by then.
    let state_at = |at: Nanos| -> Option<&Episode> { episodes.iter().rev().find(|(fired, _)| *fired <= at) };
    let mut episode_index = 0;
    while episode_index < episodes.len() {
        // A group starts when an alert fires and no group exists.
        let (fired, _) = episodes[episode_index];
        let mut tick = fired + GROUP_WAIT;
        loop {
            if tick >= end {
                return out;
            }
            let Some(&(starts, resolved)) = state_at(tick) else {
                break;
            };
            match resolved {
                Some(resolved_at) if resolved_at <= tick => {
                    out.push((tick, webhook(series, starts, Some(resolved_at))));
                    break;
                }
                _ => out.push((tick, webhook(series, starts, None))),
            }
            tick += GROUP_INTERVAL;
        }
        // The group is gone; the next group starts with the first episode firing after `tick`.
        episode_index = episodes.iter().position(|(fired, _)| *fired > tick).unwrap_or(episodes.len());
    }
    out
}

fn webhook(series: &Series, starts: Nanos, resolved: Option<Nanos>) -> Webhook {
    let status = if resolved.is_some() { "resolved" } else { "firing" };
    let group_labels: BTreeMap<String, String> = series
        .group_by
        .iter()
        .filter_map(|key| series.labels.get(*key).map(|value| (key.to_string(), value.clone())))
        .collect();
    let group_key = format!(
        "{{}}:{{{}}}",
        group_labels.iter().map(|(key, value)| format!("{key}={value:?}")).collect::<Vec<_>>().join(", ")
    );
    Webhook {
        receiver: series.receiver.clone(),
        status: status.to_string(),
        alerts: vec![WebhookAlert {
            status: status.to_string(),
            labels: series.labels.clone(),
            annotations: series.annotations.clone(),
            starts_at: super::rfc3339(starts),
            ends_at: resolved.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), super::rfc3339),
            generator_url: format!("{PROMETHEUS_URL}/graph?g0.expr={}&g0.tab=1", query_escape(&series.expression)),
            fingerprint: format!("{:016x}", fingerprint(&series.labels)),
        }],
        group_labels,
        common_labels: series.labels.clone(),
        common_annotations: series.annotations.clone(),
        external_url: EXTERNAL_URL.to_string(),
        version: "4".to_string(),
        group_key,
        truncated_alerts: 0,
    }
}

/// Prometheus's label-set fingerprint: FNV-1a 64 over sorted `name 0xff value 0xff`.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    hash
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_prometheus() {
        // From shared/samples/alertmanager_webhook_sample.json (a real Prometheus 2.42).
        let labels = labels(&[("alertname", "ProbeAlwaysFiring"), ("service", "checkout"), ("severity", "critical")]);
        assert_eq!(format!("{:016x}", fingerprint(&labels)), "306a73b3e3295921");
    }

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("vector(1) > 0"), "vector%281%29+%3E+0");
    }

    #[test]
    fn names_become_camel_case() {
        assert_eq!(camel_case("add-to-cart"), "AddToCart");
        assert_eq!(camel_case("checkout"), "Checkout");
    }

    #[test]
    fn alertmanager_resends_every_group_interval_and_resolves() {
        let series = Series {
            labels: labels(&[("alertname", "X"), ("service", "a"), ("severity", "page")]),
            annotations: BTreeMap::new(),
            group_by: ["alertname", "service"],
            receiver: "a-pagerduty".to_string(),
            expression: "up".to_string(),
            hold: 0,
            condition: Condition::ServiceErrors { service: 0, ratio: 0.1 },
        };
        let fired = 10 * MINUTE;
        let resolved = fired + 12 * MINUTE;
        let sent = alertmanager(&series, &[(fired, Some(resolved))], 60 * MINUTE);
        let times: Vec<Nanos> = sent.iter().map(|(at, _)| at - fired).collect();
        assert_eq!(
            times,
            vec![GROUP_WAIT, GROUP_WAIT + 5 * MINUTE, GROUP_WAIT + 10 * MINUTE, GROUP_WAIT + 15 * MINUTE]
        );
        assert!(sent[..3].iter().all(|(_, payload)| payload.status == "firing"));
        assert_eq!(sent[3].1.status, "resolved");
        assert_eq!(sent[3].1.alerts[0].ends_at, super::super::rfc3339(resolved));
        assert_eq!(sent[0].1.group_key, "{}:{alertname=\"X\", service=\"a\"}");
    }
}
