//! `causeway audit`: routing identical to the real `amtool`, the planted problems of a fixture
//! shop found (and nothing else), bad inputs reported with file and line while the rest is
//! audited, the command's formats and exit codes, and pages absorbed for downstream failures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use causeway::audit::alertmanager::{LabelSet, RoutingTree};
use causeway::audit::report::{AuditReport, Finding};
use causeway::audit::{AuditInputs, audit};

use crate::common::fixture;

fn audit_fixture(name: &str) -> PathBuf {
    fixture("audit").join(name)
}

fn inputs(rules: &[PathBuf], alertmanager: PathBuf) -> AuditInputs {
    AuditInputs {
        rules: rules.iter().map(|path| path.display().to_string()).collect(),
        alertmanager,
        owners: None,
        catalog: None,
        config: None,
        traces: None,
        label_names: ["service", "job", "app", "namespace", "k8s_deployment"].into_iter().map(String::from).collect(),
        show_progress: false,
    }
}

fn shop_inputs() -> AuditInputs {
    let shop = audit_fixture("shop");
    let mut inputs = inputs(&[shop.join("rules/*.yml")], shop.join("alertmanager.yml"));
    inputs.config = Some(shop.join("causeway.yaml"));
    inputs
}

/// A finding as a comparable tuple: kind, severity, rule, service, team, journey, receiver.
type Key = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

fn keys(report: &AuditReport) -> BTreeSet<(String, String, Vec<Option<String>>)> {
    report.findings.iter().map(finding_key).collect()
}

fn finding_key(finding: &Finding) -> (String, String, Vec<Option<String>>) {
    (
        finding.kind.as_str().to_string(),
        finding.severity.as_str().to_string(),
        vec![
            finding.rule.clone(),
            finding.service.clone(),
            finding.team.clone(),
            finding.journey.clone(),
            finding.receiver.clone(),
        ],
    )
}

fn expected(keys: &[Key]) -> BTreeSet<(String, String, Vec<Option<String>>)> {
    keys.iter()
        .map(|(kind, severity, rule, service, team, journey, receiver)| {
            (
                kind.to_string(),
                severity.to_string(),
                [rule, service, team, journey, receiver].into_iter().map(|value| value.map(str::to_string)).collect(),
            )
        })
        .collect()
}

#[test]
fn audit_finds_exactly_the_planted_problems() {
    let report = audit(&shop_inputs()).expect("valid usage");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        keys(&report),
        expected(&[
            ("misrouted", "error", Some("CheckoutSlow"), Some("frontend"), Some("web"), None, Some("payments-chat")),
            ("unowned_service", "warning", None, Some("legacy-batch"), None, None, None),
            ("cause_alert", "warning", Some("PostgresDown"), Some("postgresql/payments"), Some("dba"), None, None),
            ("cause_alert", "info", Some("LegacyBatchFailed"), Some("legacy-batch"), None, None, None),
            ("journey_without_symptom", "warning", None, Some("search-api"), Some("search"), Some("search"), None),
        ]),
        "{}",
        report.to_table()
    );
    let rule = |alert: &str| {
        report.rules.iter().find(|rule| rule.alert == alert).unwrap_or_else(|| panic!("rule {alert} audited"))
    };
    assert_eq!(report.rules.len(), 4, "recording rules are skipped");
    let burn = rule("CheckoutErrorBudgetBurn");
    assert_eq!(burn.group, "journeys");
    assert_eq!(burn.services, vec!["frontend"]);
    assert_eq!(burn.receivers, vec!["web-pager"]);
    assert_eq!(burn.teams, vec!["web"]);
    assert_eq!(burn.owners, vec!["web"]);
    let slow = rule("CheckoutSlow");
    assert_eq!(slow.receivers, vec!["payments-chat"]);
    assert_eq!(slow.teams, vec!["payments"]);
    assert_eq!(slow.owners, vec!["web"]);
    let postgres = rule("PostgresDown");
    assert_eq!(postgres.receivers, vec!["dba-pager"]);
    assert_eq!(postgres.teams, vec!["dba"], "team from the Backstage Group annotation");
    assert_eq!(postgres.owners, vec!["dba"], "owner through the catalog alias");
    let batch = rule("LegacyBatchFailed");
    assert_eq!(batch.receivers, vec!["sre-default"]);
    assert!(batch.owners.is_empty());
}

#[test]
fn bad_inputs_are_reported_with_file_and_line_and_the_rest_is_audited() {
    let bad = audit_fixture("bad");
    let missing = bad.join("rules/missing.yml");
    let mut inputs = inputs(&[bad.join("rules/*.yml"), missing.clone()], bad.join("alertmanager-bad-matcher.yml"));
    inputs.owners = Some(bad.join("owners.yaml"));
    inputs.catalog = Some(bad.join("no-catalog"));
    let report = audit(&inputs).expect("valid usage");
    let errors = report.errors.join("\n");
    let has = |needle: &str| report.errors.iter().any(|error| error.contains(needle));

    let broken = bad.join("rules/broken.yml").display().to_string();
    assert!(has(&format!("{broken}:6:")), "broken YAML named with its line:\n{errors}");
    let bad_expr = bad.join("rules/bad-expr.yml").display().to_string();
    assert!(
        report.errors.iter().any(|error| error.starts_with(&format!("{bad_expr}:8: "))
            && error.contains("group \"mixed\"")
            && error.contains("alert \"NotPromQL\"")
            && error.contains("invalid PromQL expression")),
        "invalid PromQL named with file, line, group and alert:\n{errors}"
    );
    let matcher_file = bad.join("alertmanager-bad-matcher.yml").display().to_string();
    assert!(
        report.errors.iter().any(|error| error.starts_with(&format!("{matcher_file}:6:"))
            && error.contains("route.routes[1].matchers[0]")
            && error.contains("invalid matcher")),
        "invalid matcher named with file, line and key:\n{errors}"
    );
    assert!(has(&format!("cannot read {}", missing.display())), "missing rule file:\n{errors}");
    assert!(has("no-catalog"), "missing catalog:\n{errors}");
    assert_eq!(report.errors.len(), 5, "{errors}");

    // The valid rules of every readable file were still audited.
    let alerts: Vec<&str> = report.rules.iter().map(|rule| rule.alert.as_str()).collect();
    assert_eq!(alerts, vec!["CheckoutApiDown", "FrontendErrors"]);
    assert_eq!(report.rules[0].services, vec!["checkout-api"]);
    assert_eq!(report.rules[0].owners, vec!["web"]);
    assert!(report.rules[0].receivers.is_empty(), "routing was not checked");

    // An unknown receiver: refused like Alertmanager refuses it, with the route's line.
    let mut inputs = inputs.clone();
    inputs.alertmanager = bad.join("alertmanager-unknown-receiver.yml");
    let report = audit(&inputs).expect("valid usage");
    let file = bad.join("alertmanager-unknown-receiver.yml").display().to_string();
    assert!(
        report.errors.iter().any(|error| error
            == &format!("{file}:7: route.routes[1].receiver: undefined receiver \"payments-pager\" used in route (routing is not checked)")),
        "{:?}",
        report.errors
    );
    assert_eq!(report.rules.len(), 2);

    // A missing Alertmanager file.
    let mut inputs = inputs.clone();
    inputs.alertmanager = bad.join("nowhere.yml");
    let report = audit(&inputs).expect("valid usage");
    assert!(
        report.errors.iter().any(|error| error.contains(&format!("cannot read {}", bad.join("nowhere.yml").display()))),
        "{:?}",
        report.errors
    );
    assert_eq!(report.rules.len(), 2);
}

/// The real amtool (Debian's prometheus-alertmanager), or a failure saying how to get it.
fn amtool() -> PathBuf {
    let candidates = [std::env::var_os("CAUSEWAY_TEST_AMTOOL").map(PathBuf::from), which("amtool")];
    candidates.into_iter().flatten().find(|path| path.is_file()).unwrap_or_else(|| {
        panic!(
            "amtool is missing: install Debian's Alertmanager (as root: `apt-get install -y --no-install-recommends \
             prometheus-alertmanager`, which `scripts/test` does) or set CAUSEWAY_TEST_AMTOOL to an amtool binary"
        )
    })
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|directory| directory.join(program)).find(|path| path.is_file())
    })
}

/// Quotes a label value for amtool's `name="value"` argument syntax.
fn amtool_label(name: &str, value: &str) -> String {
    format!("{name}=\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn amtool_routes(amtool: &Path, config: &Path, labels: &LabelSet) -> Vec<String> {
    let output = Command::new(amtool)
        .arg("config")
        .arg("routes")
        .arg("test")
        .arg(format!("--config.file={}", config.display()))
        .args(labels.iter().map(|(name, value)| amtool_label(name, value)))
        .output()
        .expect("amtool runs");
    assert!(output.status.success(), "amtool failed on {labels:?}: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().next().unwrap_or("").trim();
    if line.is_empty() { Vec::new() } else { line.split(',').map(str::to_string).collect() }
}

/// Every combination of these values (`None`: the label is absent), in a fixed order.
fn label_product() -> Vec<LabelSet> {
    let dimensions: [(&str, &[Option<&str>]); 5] = [
        ("alertname", &[Some("HighErrorRate"), Some("Watchdog")]),
        (
            "service",
            &[
                None,
                Some("payments-api"),
                Some("payments-"),
                Some("postgresql/payments"),
                Some("frontend"),
                Some("search-api"),
            ],
        ),
        ("severity", &[None, Some("page"), Some("critical"), Some("warning"), Some("ticket")]),
        ("team", &[None, Some("dba"), Some("payments")]),
        ("env", &[None, Some("prod"), Some("staging"), Some("dev")]),
    ];
    let mut sets = vec![LabelSet::new()];
    for (name, values) in dimensions {
        let mut next = Vec::new();
        for set in &sets {
            for value in values {
                let mut extended = set.clone();
                if let Some(value) = value {
                    extended.insert(name.to_string(), value.to_string());
                }
                next.push(extended);
            }
        }
        sets = next;
    }
    sets
}

#[test]
fn routing_is_identical_to_amtool() {
    let amtool = amtool();
    let config = audit_fixture("amtool/alertmanager.yml");
    let tree = RoutingTree::load(&config).expect("the fixture is a valid Alertmanager configuration");
    let label_sets = label_product();
    assert_eq!(label_sets.len(), 2 * 6 * 5 * 3 * 4);
    let n_workers = 4;
    let mismatches: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n_workers)
            .map(|worker| {
                let (amtool, config, tree, label_sets) = (&amtool, &config, &tree, &label_sets);
                scope.spawn(move || {
                    let mut mismatches = Vec::new();
                    for labels in label_sets.iter().skip(worker).step_by(n_workers) {
                        let theirs = amtool_routes(amtool, config, labels);
                        let ours = tree.receivers_for(labels);
                        if ours != theirs {
                            mismatches.push(format!("{labels:?}: causeway {ours:?}, amtool {theirs:?}"));
                        }
                    }
                    mismatches
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("worker")).collect()
    });
    assert!(
        mismatches.is_empty(),
        "{} of {} label sets route differently:\n{}",
        mismatches.len(),
        label_sets.len(),
        mismatches.join("\n")
    );
    // The product reaches every receiver, so every branch of the tree was compared.
    let reached: BTreeSet<String> = label_sets.iter().flat_map(|labels| tree.receivers_for(labels)).collect();
    assert_eq!(reached.len(), tree.receivers.len(), "reached {reached:?}");
}

#[test]
fn configurations_amtool_refuses_are_refused() {
    let amtool = amtool();
    for name in ["bad/alertmanager-bad-matcher.yml", "bad/alertmanager-unknown-receiver.yml"] {
        let config = audit_fixture(name);
        let status = Command::new(&amtool).arg("check-config").arg(&config).output().expect("amtool runs").status;
        assert!(!status.success(), "amtool accepts {name}");
        assert!(RoutingTree::load(&config).is_err(), "causeway accepts {name}");
    }
    for name in ["amtool/alertmanager.yml", "shop/alertmanager.yml"] {
        let config = audit_fixture(name);
        let output = Command::new(&amtool).arg("check-config").arg(&config).output().expect("amtool runs");
        assert!(output.status.success(), "amtool refuses {name}");
        assert!(RoutingTree::load(&config).is_ok(), "causeway refuses {name}");
    }
}

fn causeway(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_causeway"))
        .arg("audit")
        .args(args)
        .env("CAUSEWAY_LOG", "warn")
        .output()
        .expect("causeway runs")
}

#[test]
fn the_command_renders_every_format_and_sets_exit_codes() {
    let shop = audit_fixture("shop");
    let rules = shop.join("rules/*.yml").display().to_string();
    let alertmanager = shop.join("alertmanager.yml").display().to_string();
    let config = shop.join("causeway.yaml").display().to_string();
    let base =
        ["--rules", rules.as_str(), "--alertmanager", alertmanager.as_str(), "--config", config.as_str(), "--quiet"];
    let run = |extra: &[&str]| causeway(&[&base[..], extra].concat());

    let output = run(&["--format", "json", "--fail-on", "error"]);
    assert_eq!(output.status.code(), Some(1), "an error-level finding fails the run");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let object = json.as_object().expect("object");
    let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["rules", "findings", "errors"]));
    for rule in json["rules"].as_array().expect("rules") {
        let keys: BTreeSet<&str> = rule.as_object().expect("rule").keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["group", "alert", "services", "receivers", "teams", "owners"]));
    }
    let allowed = BTreeSet::from(["kind", "severity", "rule", "service", "team", "journey", "receiver", "detail"]);
    for finding in json["findings"].as_array().expect("findings") {
        for key in finding.as_object().expect("finding").keys() {
            assert!(allowed.contains(key.as_str()), "unexpected key {key}");
        }
        assert!(finding["detail"].as_str().is_some_and(|detail| !detail.is_empty()));
    }
    assert_eq!(json["findings"][0]["kind"], "misrouted", "most severe first");

    assert_eq!(run(&["--fail-on", "warning", "--format", "markdown"]).status.code(), Some(1));
    let table = run(&[]);
    assert_eq!(table.status.code(), Some(0), "no --fail-on: a report, not a gate");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("RULES") && text.contains("FINDINGS") && text.contains("misrouted"), "{text}");

    let html = run(&["--format", "html"]);
    let page = String::from_utf8_lossy(&html.stdout);
    assert!(page.starts_with("<!doctype html>") && page.contains("PostgresDown"));
    assert!(!page.contains("src=") && !page.contains("href="), "self-contained page");

    let usage = run(&["--label-names", ","]);
    assert_eq!(usage.status.code(), Some(2), "{}", String::from_utf8_lossy(&usage.stderr));
    let usage = causeway(&["--rules", rules.as_str()]);
    assert_eq!(usage.status.code(), Some(2), "--alertmanager is required");
    let usage = causeway(&["--rules", rules.as_str(), "--alertmanager", alertmanager.as_str()]);
    assert_eq!(usage.status.code(), Some(2), "an ownership source is required");
    let usage = run(&["--format", "pdf"]);
    assert_eq!(usage.status.code(), Some(2));
}

/// One OTLP/JSON line: spans given as (service, span id, parent id, kind, name, status code,
/// extra attributes).
fn otlp_line(trace: u32, spans: &[(&str, u32, u32, i32, &str, i32, &[(&str, &str)])]) -> String {
    let trace_id = format!("{trace:032x}");
    let resource_spans: Vec<serde_json::Value> = spans
        .iter()
        .map(|(service, id, parent, kind, name, status, attributes)| {
            let start = 1_700_000_000_000_000_000u64 + u64::from(trace) * 1_000_000_000 + u64::from(*id) * 1_000;
            let end = start + 50_000_000 - u64::from(*id) * 1_000_000;
            serde_json::json!({
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"spans": [{
                    "traceId": trace_id,
                    "spanId": format!("{id:016x}"),
                    "parentSpanId": if *parent == 0 { String::new() } else { format!("{parent:016x}") },
                    "name": name,
                    "kind": kind,
                    "startTimeUnixNano": start.to_string(),
                    "endTimeUnixNano": end.to_string(),
                    "attributes": attributes.iter().map(|(key, value)| serde_json::json!({"key": key, "value": {"stringValue": value}})).collect::<Vec<_>>(),
                    "status": {"code": status},
                }]}],
            })
        })
        .collect();
    serde_json::json!({ "resourceSpans": resource_spans }).to_string()
}

#[test]
fn traces_show_pages_absorbed_for_downstream_failures() {
    const SERVER: i32 = 2;
    const CLIENT: i32 = 3;
    const ERROR: i32 = 2;
    const OK: i32 = 0;
    let mut lines = Vec::new();
    for trace in 1..=12u32 {
        // checkout fails because payments-api's database calls fail: payments' (dba's) problem.
        lines.push(otlp_line(
            trace,
            &[
                ("frontend", 1, 0, SERVER, "POST /api/checkout", ERROR, &[]),
                ("frontend", 2, 1, CLIENT, "POST /pay", ERROR, &[]),
                ("payments-api", 3, 2, SERVER, "POST /pay", ERROR, &[]),
                (
                    "payments-api",
                    4,
                    3,
                    CLIENT,
                    "INSERT payments",
                    ERROR,
                    &[("db.system.name", "postgresql"), ("db.namespace", "payments")],
                ),
            ],
        ));
    }
    for trace in 13..=15u32 {
        lines.push(otlp_line(trace, &[("frontend", 1, 0, SERVER, "POST /api/checkout", OK, &[])]));
    }
    let bundle = tempfile::tempdir().expect("tempdir");
    std::fs::write(bundle.path().join("traces.jsonl"), lines.join("\n") + "\n").expect("write bundle");

    let mut inputs = shop_inputs();
    inputs.traces = Some(bundle.path().to_path_buf());
    let report = audit(&inputs).expect("valid usage");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let absorbed: Vec<&Finding> =
        report.findings.iter().filter(|finding| finding.kind.as_str() == "absorbed_pages").collect();
    assert_eq!(absorbed.len(), 1, "{}", report.to_table());
    assert_eq!(absorbed[0].team.as_deref(), Some("web"));
    assert_eq!(absorbed[0].severity.as_str(), "info");
    let detail = &absorbed[0].detail;
    assert!(detail.starts_with("1 of 1 error alerts routed to web"), "{detail}");
    assert!(detail.contains("frontend: 12 of 12 failing requests caused in postgresql/payments (dba) 12"), "{detail}");
    // Everything else is as without traces.
    let without: BTreeSet<_> = keys(&audit(&shop_inputs()).expect("valid usage"));
    let with: BTreeSet<_> =
        report.findings.iter().filter(|finding| finding.kind.as_str() != "absorbed_pages").map(finding_key).collect();
    assert_eq!(with, without);
}
