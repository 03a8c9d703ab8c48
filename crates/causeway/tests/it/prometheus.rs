//! The real Prometheus and Alertmanager from Debian's packages: a rule fires, Alertmanager
//! delivers to Causeway's webhook, Causeway turns it into a symptom on the right journey, and
//! the resolved notification resolves it. Then Prometheus pointed straight at Causeway's
//! `/api/v2/alerts`. Everything on 127.0.0.1, with one-second intervals.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::TestServer;

fn binary(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|path| path.exists()));
    found.unwrap_or_else(|| {
        panic!(
            "{name} is missing: install Debian's packages with `apt-get install -y --no-install-recommends prometheus \
             prometheus-alertmanager` (scripts/test does it when run as root)"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// A child process killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(binary: &Path, args: &[String], log: &Path) -> Running {
    let log = std::fs::File::create(log).expect("log file");
    let child = std::process::Command::new(binary)
        .args(args)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    Running(child)
}

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
  evidence_wait: 1s
  resolve_grace: 1s
"#;

async fn causeway(dir: &Path) -> TestServer {
    std::fs::write(dir.join("causeway.yaml"), CONFIG).expect("config");
    std::fs::write(dir.join("owners.yaml"), "services:\n  frontend: { team: web }\ndefault_team: sre\n")
        .expect("owners");
    TestServer::start_from(&dir.join("causeway.yaml"), causeway::server::ServeOptions::default()).await
}

/// A rule that fires now and stops firing after `seconds`.
fn rules(dir: &Path, seconds: u64) -> PathBuf {
    let end = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() + seconds;
    let path = dir.join("rules.yml");
    std::fs::write(
        &path,
        format!(
            "groups:\n  - name: journeys\n    interval: 1s\n    rules:\n      - alert: CheckoutErrorBudgetBurn\n        expr: vector(1) and on() (vector(time()) < {end})\n        labels: {{ journey: checkout, severity: page, sli: error }}\n        annotations: {{ summary: checkout burns its error budget }}\n"
        ),
    )
    .expect("rules");
    path
}

fn start_prometheus(dir: &Path, rules: &Path, alertmanager: &str, api_version: &str) -> Running {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  evaluation_interval: 1s\n  scrape_interval: 1s\nrule_files: [{}]\nalerting:\n  alertmanagers:\n    - api_version: {api_version}\n      static_configs:\n        - targets: [\"{alertmanager}\"]\n",
            rules.display()
        ),
    )
    .expect("prometheus.yml");
    spawn(
        &binary("prometheus"),
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--rules.alert.resend-delay=1s".to_string(),
        ],
        &dir.join("prometheus.log"),
    )
}

async fn journey_symptoms(server: &TestServer) -> Vec<Value> {
    let journeys: Value =
        reqwest::get(server.api("/api/v1/journeys")).await.expect("journeys").json().await.expect("json");
    journeys["journeys"]
        .as_array()
        .and_then(|journeys| journeys.iter().find(|journey| journey["name"] == "checkout"))
        .and_then(|journey| journey["active_symptoms"].as_array().cloned())
        .unwrap_or_default()
}

async fn wait_for(what: &str, timeout: Duration, dir: &Path, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let logs: Vec<String> = ["prometheus.log", "alertmanager.log"]
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(name)).unwrap_or_default())
        .collect();
    panic!("timed out waiting for {what}\n{}", logs.join("\n---\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_rule_reaches_causeway_through_alertmanager_and_resolves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = causeway(dir.path()).await;
    let port = free_port();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: causeway\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: causeway\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
            server.api("/api/v1/alerts/alertmanager")
        ),
    )
    .expect("alertmanager.yml");
    let _alertmanager = spawn(
        &binary("prometheus-alertmanager"),
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.external-url=http://127.0.0.1:{port}"),
            "--cluster.listen-address=".to_string(),
        ],
        &dir.path().join("alertmanager.log"),
    );
    let rules = rules(dir.path(), 12);
    let _prometheus = start_prometheus(dir.path(), &rules, &format!("127.0.0.1:{port}"), "v2");

    wait_for("the symptom on the checkout journey", Duration::from_secs(40), dir.path(), async || {
        !journey_symptoms(&server).await.is_empty()
    })
    .await;
    let symptoms = journey_symptoms(&server).await;
    assert_eq!(symptoms.len(), 1, "one symptom however often Alertmanager sends the group: {symptoms:?}");
    assert_eq!(symptoms[0]["kind"], "error");
    let incidents: Value =
        reqwest::get(server.api("/api/v1/incidents")).await.expect("list").json().await.expect("json");
    assert_eq!(incidents["incidents"].as_array().map(Vec::len), Some(1));
    assert_eq!(incidents["incidents"][0]["journeys"][0], "checkout");

    // The rule stops firing; Alertmanager sends the resolved notification; the symptom clears.
    wait_for("the resolved notification", Duration::from_secs(60), dir.path(), async || {
        journey_symptoms(&server).await.is_empty()
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_can_send_straight_to_causeway() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = causeway(dir.path()).await;
    let rules = rules(dir.path(), 8);
    let _prometheus = start_prometheus(dir.path(), &rules, &server.addresses.http.to_string(), "v2");
    wait_for("the symptom from /api/v2/alerts", Duration::from_secs(40), dir.path(), async || {
        !journey_symptoms(&server).await.is_empty()
    })
    .await;
    let symptoms = journey_symptoms(&server).await;
    assert_eq!(symptoms.len(), 1, "re-sends are one symptom: {symptoms:?}");
    wait_for("the resolved alert (endsAt in the past)", Duration::from_secs(60), dir.path(), async || {
        journey_symptoms(&server).await.is_empty()
    })
    .await;
    server.stop().await;
}
