//! `serve --record DIR` writes a bundle that `replay` reads back, and replay reproduces the
//! decisions `serve` made live.

use std::time::Duration;

use causeway::server::ServeOptions;
use serde_json::{Value, json};

use crate::common::{TestServer, fixture, metric_value, python};

const CONFIG: &str = r#"
version: 1
ownership:
  owners: owners.yaml
journeys:
  - name: checkout
    entry: { service: frontend, operation: "POST /api/checkout" }
    owner: web
    slo: {}
routing:
  evidence_wait: 5s
  resolve_grace: 2s
"#;

const OWNERS: &str = r#"
services:
  frontend: { team: web }
  checkout: { team: shop }
  payments: { team: payments }
  postgresql/payments: { team: dba }
default_team: sre
"#;

fn webhook(status: &str) -> Value {
    let now = jiff::Timestamp::now().to_string();
    json!({
        "version": "4", "receiver": "causeway", "status": status, "groupKey": "{}", "truncatedAlerts": 0,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "CheckoutErrors", "journey": "checkout", "severity": "page", "sli": "error"},
            "annotations": {"summary": "checkout errors"},
            "startsAt": now,
            "endsAt": if status == "firing" { "0001-01-01T00:00:00Z".to_string() } else { now.clone() },
        }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_recording_reproduces_the_live_decisions() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("causeway.yaml"), CONFIG).expect("config");
    std::fs::write(dir.path().join("owners.yaml"), OWNERS).expect("owners");
    let recording = dir.path().join("recording");
    let options = ServeOptions {
        record: Some(recording.clone()),
        config_path: Some(dir.path().join("causeway.yaml")),
        ..ServeOptions::default()
    };
    let server = TestServer::start_from(&dir.path().join("causeway.yaml"), options).await;

    let output = tokio::process::Command::new(python())
        .arg(fixture("sdk/checkout_traffic.py"))
        .args(["http", &server.otlp_http(), "15", "20"])
        .output()
        .await
        .expect("python runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for _ in 0..200 {
        let metrics = reqwest::get(server.api("/metrics")).await.expect("metrics").text().await.expect("text");
        if metric_value(&metrics, "causeway_window_spans") >= 210.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(server.api("/api/v1/alerts/alertmanager")).json(&body).send();
    assert_eq!(post(webhook("firing")).await.expect("post").status(), 200);
    let mut live: Value = Value::Null;
    for _ in 0..100 {
        live = reqwest::get(server.api("/api/v1/incidents")).await.expect("list").json().await.expect("json");
        if live["incidents"].as_array().is_some_and(|incidents| !incidents.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(post(webhook("resolved")).await.expect("post").status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.stop().await;

    let live_incidents = live["incidents"].as_array().expect("incidents").clone();
    assert_eq!(live_incidents.len(), 1, "{live}");
    assert_eq!(live_incidents[0]["causes"], json!(["postgresql/payments"]));
    assert_eq!(live_incidents[0]["paged_teams"], json!(["dba"]));

    // The recording is a bundle: configuration and ownership copied, traces and alerts recorded.
    for name in ["causeway.yaml", "owners.yaml", "traces.jsonl", "alerts.jsonl"] {
        assert!(recording.join(name).exists(), "{name} missing from the recording");
    }
    let bundle = causeway::replay::Bundle::open(&recording).expect("the recording opens as a bundle");
    let outcome = causeway::replay::run(&bundle, &causeway::replay::ReplayOptions::default()).expect("replay runs");
    let report = &outcome.report;
    assert_eq!(report.spans, 210, "every recorded span is replayed");
    assert_eq!(report.incidents.len(), 1, "{:?}", report.incidents);
    let replayed = &report.incidents[0];
    assert_eq!(replayed.root_cause.service.as_deref(), Some("postgresql/payments"));
    assert_eq!(replayed.paged_teams, vec!["dba".to_string()]);
    assert_eq!(replayed.outcome, live_incidents[0]["outcome"].as_str().expect("outcome"));
    assert!(replayed.resolved_at.is_some(), "the recorded resolve resolves the replayed incident");
    let brief = replayed.brief.as_ref().expect("the report carries the brief");
    assert!(brief.summary.contains("postgresql/payments"), "{}", brief.summary);
}
