//! Alerts from the alerting stack teams already run (SPEC §2.2): the Alertmanager webhook
//! (payload version 4) and the Alertmanager-compatible `POST /api/v2/alerts` that Prometheus
//! and Grafana send to.
//!
//! Both become [`AlertEvent`]s: a firing or resolved alert with its labels, which
//! [`AlertMapping`] turns into engine symptoms — `journey` label first, then `service` plus
//! `operation`/`span_name`/`http_route`, then `service` alone, else labels only (SPEC §4.6).
//! Identity is a hash of the label set, so Alertmanager HA pairs, periodic re-sends and the
//! same alert arriving over both APIs are one symptom.

use std::collections::BTreeMap;

use causeway_engine::Nanos;
use causeway_engine::analysis::SymptomKind;
use causeway_engine::incident::{Symptom, SymptomSource, SymptomTarget};
use serde::Deserialize;

/// Alertmanager webhook payload, version 4. Unknown fields are ignored (Grafana adds some).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub version: String,
    #[serde(default)]
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<WebhookAlert>,
    #[serde(default)]
    pub group_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// One alert of `POST /api/v2/alerts` (Alertmanager's own API shape).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
}

/// A firing or resolved alert, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Nanos,
    /// Firing: when it expires unless re-sent (v2 API), if known. Resolved: when it ended.
    pub ends_at: Option<Nanos>,
    pub firing: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AlertError {
    #[error("malformed alert payload: {0}")]
    Json(String),
    #[error("unsupported webhook payload version {0:?} (this causeway reads version 4)")]
    Version(String),
    #[error("alert {index}: {message}")]
    Alert { index: usize, message: String },
}

/// Parses an Alertmanager webhook v4 body.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<AlertEvent>, AlertError> {
    let payload: WebhookPayload = serde_json::from_slice(body).map_err(|error| AlertError::Json(error.to_string()))?;
    webhook_events(&payload)
}

pub fn webhook_events(payload: &WebhookPayload) -> Result<Vec<AlertEvent>, AlertError> {
    if payload.version != "4" {
        return Err(AlertError::Version(payload.version.clone()));
    }
    payload
        .alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| {
            let invalid = |message: String| AlertError::Alert { index, message };
            validate_labels(&alert.labels).map_err(invalid)?;
            let starts_at = parse_time(&alert.starts_at).map_err(|error| invalid(format!("startsAt: {error}")))?;
            let ends_at = match alert.ends_at.as_deref() {
                None | Some("") | Some("0001-01-01T00:00:00Z") => None,
                Some(text) => Some(parse_time(text).map_err(|error| invalid(format!("endsAt: {error}")))?),
            };
            let firing = match alert.status.as_str() {
                "firing" => true,
                "resolved" => false,
                other => return Err(invalid(format!("status {other:?} is neither firing nor resolved"))),
            };
            Ok(AlertEvent {
                id: fingerprint(&alert.labels),
                labels: alert.labels.clone(),
                annotations: alert.annotations.clone(),
                starts_at,
                ends_at: if firing { None } else { ends_at.or(Some(starts_at)) },
                firing,
            })
        })
        .collect()
}

/// Parses a `POST /api/v2/alerts` body; `now` decides firing (endsAt in the future or absent)
/// from resolved (endsAt in the past), as Alertmanager does.
pub fn parse_v2(body: &[u8], now: Nanos) -> Result<Vec<AlertEvent>, AlertError> {
    let alerts: Vec<PostableAlert> =
        serde_json::from_slice(body).map_err(|error| AlertError::Json(error.to_string()))?;
    alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| {
            let invalid = |message: String| AlertError::Alert { index, message };
            validate_labels(&alert.labels).map_err(invalid)?;
            let starts_at = match alert.starts_at.as_deref() {
                None | Some("") => now,
                Some(text) => parse_time(text).map_err(|error| invalid(format!("startsAt: {error}")))?,
            };
            let ends_at = match alert.ends_at.as_deref() {
                None | Some("") | Some("0001-01-01T00:00:00Z") => None,
                Some(text) => Some(parse_time(text).map_err(|error| invalid(format!("endsAt: {error}")))?),
            };
            let firing = ends_at.is_none_or(|ends| ends > now);
            Ok(AlertEvent {
                id: fingerprint(&alert.labels),
                labels: alert.labels.clone(),
                annotations: alert.annotations.clone(),
                starts_at,
                ends_at,
                firing,
            })
        })
        .collect()
}

fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    if labels.is_empty() {
        return Err("no labels".to_string());
    }
    if !labels.contains_key("alertname") {
        return Err("missing the alertname label".to_string());
    }
    for name in labels.keys() {
        let valid = !name.is_empty()
            && name
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if !valid {
            return Err(format!("invalid label name {name:?}"));
        }
    }
    Ok(())
}

/// RFC 3339 with any fraction (Alertmanager sends nanoseconds on resolved alerts).
pub fn parse_time(text: &str) -> Result<Nanos, String> {
    let timestamp: jiff::Timestamp = text.parse().map_err(|error| format!("invalid time {text:?}: {error}"))?;
    i64::try_from(timestamp.as_nanosecond()).map_err(|_| format!("time {text:?} out of range"))
}

/// A stable identity for a label set (FNV-1a over sorted `name=value` pairs).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for (name, value) in labels {
        for byte in name.bytes().chain([0xff]).chain(value.bytes()).chain([0xfe]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x100000001b3);
        }
    }
    format!("alert-{hash:016x}")
}

/// How alerts map to symptoms (SPEC §2.2).
#[derive(Debug, Clone)]
pub struct AlertMapping {
    pub journeys: Vec<String>,
    pub paging_severities: Vec<String>,
}

impl AlertMapping {
    pub fn symptom(&self, event: &AlertEvent) -> Symptom {
        let labels = &event.labels;
        let alertname = labels.get("alertname").cloned().unwrap_or_default();
        let target = match labels.get("journey").filter(|journey| self.journeys.contains(journey)) {
            Some(journey) => SymptomTarget::Journey { journey: journey.clone() },
            None => match labels.get("service") {
                Some(service) => SymptomTarget::Service {
                    service: service.clone(),
                    operation: labels
                        .get("operation")
                        .or_else(|| labels.get("span_name"))
                        .or_else(|| labels.get("http_route"))
                        .cloned(),
                },
                None => SymptomTarget::Labels,
            },
        };
        let may_page = match labels.get("severity") {
            // No severity label: an alert routed to Causeway is assumed to be meant to page.
            None => true,
            Some(severity) => self.paging_severities.iter().any(|paging| paging.eq_ignore_ascii_case(severity)),
        };
        let summary = event.annotations.get("summary").cloned().unwrap_or_else(|| {
            let details: Vec<String> = labels
                .iter()
                .filter(|(name, _)| name.as_str() != "alertname")
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            format!("{alertname} {{{}}}", details.join(", "))
        });
        Symptom {
            id: event.id.clone(),
            target,
            kind: symptom_kind(labels),
            may_page,
            fired_at: event.starts_at,
            source: SymptomSource::Alert { alertname, labels: labels.clone() },
            team_label: labels.get("team").cloned(),
            summary,
        }
    }
}

/// `sli` label, else the alert's name; `None` when neither says (both analyses run).
pub fn symptom_kind(labels: &BTreeMap<String, String>) -> Option<SymptomKind> {
    match labels.get("sli").map(|sli| sli.to_ascii_lowercase()).as_deref() {
        Some("error") | Some("errors") | Some("availability") => return Some(SymptomKind::Error),
        Some("latency") => return Some(SymptomKind::Latency),
        _ => {}
    }
    let name = labels.get("alertname").map(|name| name.to_ascii_lowercase()).unwrap_or_default();
    const LATENCY: [&str; 5] = ["latency", "slow", "duration", "p99", "p95"];
    const ERROR: [&str; 6] = ["error", "availability", "5xx", "fail", "budget", "unavailable"];
    if LATENCY.iter().any(|word| name.contains(word)) {
        Some(SymptomKind::Latency)
    } else if ERROR.iter().any(|word| name.contains(word)) {
        Some(SymptomKind::Error)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples").join(name);
        std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    fn mapping() -> AlertMapping {
        AlertMapping { journeys: vec!["checkout".into()], paging_severities: vec!["page".into(), "critical".into()] }
    }

    #[test]
    fn captured_webhook_samples_parse_and_map() {
        let firing = parse_webhook(&sample("alertmanager_webhook_sample.json")).expect("firing sample parses");
        assert_eq!(firing.len(), 1);
        assert!(firing[0].firing);
        assert_eq!(firing[0].ends_at, None, "0001-01-01 means no end");
        let symptom = mapping().symptom(&firing[0]);
        assert_eq!(symptom.target, SymptomTarget::Service { service: "checkout".into(), operation: None });
        assert!(symptom.may_page, "severity critical pages");
        assert_eq!(symptom.summary, "probe alert from prometheus rule");

        let resolved =
            parse_webhook(&sample("alertmanager_webhook_sample_resolved.json")).expect("resolved sample parses");
        assert!(!resolved[0].firing);
        assert!(resolved[0].ends_at.is_some_and(|end| end > resolved[0].starts_at), "nanosecond endsAt parsed");
        let manual =
            parse_webhook(&sample("alertmanager_webhook_sample_manual_v2_post.json")).expect("manual sample parses");
        assert_eq!(resolved[0].id, manual[0].id, "the resolved notification matches the alert it resolves");
        let symptom = mapping().symptom(&manual[0]);
        assert!(!symptom.may_page, "severity warning only notifies");
        assert_eq!(symptom.service(), Some("payments"));
    }

    #[test]
    fn captured_v2_posts_parse_with_expiry() {
        let starts = parse_time("2026-12-03T16:19:24.935Z").expect("time");
        let events = parse_v2(&sample("prometheus_to_alertmanager_api_v2_alerts_sample.json"), starts + 1_000_000_000)
            .expect("parses");
        assert!(events[0].firing, "endsAt in the future: firing");
        assert!(events[0].ends_at.is_some());
        let later = parse_time("2026-12-03T16:30:00Z").expect("time");
        let events = parse_v2(&sample("prometheus_to_alertmanager_api_v2_alerts_sample.json"), later).expect("parses");
        assert!(!events[0].firing, "endsAt in the past: resolved");
        let manual = parse_v2(&sample("alertmanager_api_v2_alerts_manual_request.json"), later).expect("parses");
        assert!(manual[0].firing, "no endsAt: firing");
    }

    #[test]
    fn identity_ignores_label_order_and_delivery_path() {
        let webhook = parse_webhook(&sample("alertmanager_webhook_sample.json")).expect("parses");
        let v2 = parse_v2(&sample("prometheus_to_alertmanager_api_v2_alerts_sample.json"), 0).expect("parses");
        assert_eq!(webhook[0].id, v2[0].id);
    }

    #[test]
    fn mapping_follows_the_spec_order() {
        let event = |pairs: &[(&str, &str)]| AlertEvent {
            id: "x".into(),
            labels: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            annotations: BTreeMap::new(),
            starts_at: 0,
            ends_at: None,
            firing: true,
        };
        let m = mapping();
        let journey =
            m.symptom(&event(&[("alertname", "CheckoutSlow"), ("journey", "checkout"), ("service", "frontend")]));
        assert_eq!(journey.target, SymptomTarget::Journey { journey: "checkout".into() });
        assert_eq!(journey.kind, Some(SymptomKind::Latency));
        let unknown_journey =
            m.symptom(&event(&[("alertname", "X"), ("journey", "nope"), ("service", "a"), ("span_name", "GET /x")]));
        assert_eq!(
            unknown_journey.target,
            SymptomTarget::Service { service: "a".into(), operation: Some("GET /x".into()) }
        );
        assert_eq!(unknown_journey.kind, None);
        let labels_only = m.symptom(&event(&[("alertname", "DiskFull"), ("team", "infra"), ("sli", "error")]));
        assert_eq!(labels_only.target, SymptomTarget::Labels);
        assert_eq!(labels_only.team_label.as_deref(), Some("infra"));
        assert_eq!(labels_only.kind, Some(SymptomKind::Error));
        let ticket = m.symptom(&event(&[("alertname", "HighErrorRate"), ("severity", "ticket")]));
        assert!(!ticket.may_page);
        assert_eq!(ticket.kind, Some(SymptomKind::Error));
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        assert!(matches!(parse_webhook(b"{"), Err(AlertError::Json(_))));
        let wrong_version = br#"{"version":"3","status":"firing","alerts":[]}"#;
        assert_eq!(parse_webhook(wrong_version), Err(AlertError::Version("3".into())));
        let no_name = br#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-12-03T16:19:24Z"}]}"#;
        let error = parse_webhook(no_name).expect_err("alertname required").to_string();
        assert!(error.contains("alert 0") && error.contains("alertname"), "{error}");
        let bad_time = br#"[{"labels":{"alertname":"x"},"startsAt":"yesterday"}]"#;
        assert!(parse_v2(bad_time, 0).expect_err("bad time").to_string().contains("startsAt"));
    }
}
