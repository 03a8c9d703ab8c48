//! The real OpenTelemetry Python SDK exporting to `serve`, over OTLP/HTTP and OTLP/gRPC.

use serde_json::Value;

use crate::common::{TestServer, fixture, python};

async fn run_sdk(transport: &str, endpoint: String) -> String {
    let script = fixture("sdk/three_services.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg(transport)
        .arg(endpoint)
        .output()
        .await
        .expect("python runs");
    assert!(output.status.success(), "SDK program failed: {}", String::from_utf8_lossy(&output.stderr));
    let trace_id = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert_eq!(trace_id.len(), 32, "unexpected SDK output {trace_id:?}");
    trace_id
}

fn by_name<'a>(spans: &'a [Value], name: &str, kind: &str) -> &'a Value {
    spans
        .iter()
        .find(|span| span["name"] == name && span["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} span {name}"))
}

fn check_trace(body: &Value) {
    let spans = body["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 6, "{body}");
    let entry = by_name(spans, "POST /api/checkout", "server");
    let client = by_name(spans, "POST", "client");
    let checkout = by_name(spans, "POST /checkout", "server");
    let call = by_name(spans, "payments.Charge", "client");
    let charge = by_name(spans, "payments.Charge", "server");
    let query = by_name(spans, "INSERT payments", "client");

    // Parent links survive three separate export requests.
    assert!(entry.get("parent_span_id").is_none());
    assert_eq!(client["parent_span_id"], entry["span_id"]);
    assert_eq!(checkout["parent_span_id"], client["span_id"]);
    assert_eq!(call["parent_span_id"], checkout["span_id"]);
    assert_eq!(charge["parent_span_id"], call["span_id"]);
    assert_eq!(query["parent_span_id"], charge["span_id"]);

    // Services, statuses and normalized attributes (old and new semantic-convention keys).
    assert_eq!(entry["service"], "frontend");
    assert_eq!(checkout["service"], "checkout");
    assert_eq!(charge["service"], "payments");
    assert_eq!(entry["route"], "/api/checkout");
    assert_eq!(entry["http_status"], 502);
    assert_eq!(checkout["http_status"], 502, "old key http.status_code is read");
    assert_eq!(client["callee"], "checkout", "new key service.peer.name is read");
    assert_eq!(call["callee"], "payments", "old key peer.service is read");
    assert_eq!(call["rpc_status"], 14);
    assert_eq!(call["error"], true);
    assert_eq!(charge["status"], "error");
    assert_eq!(charge["exception_type"], "TimeoutError");
    assert_eq!(charge["exception_message"], "database timeout after *ms");
    assert_eq!(query["callee"], "postgresql/payments");
    assert_eq!(query["error_type"], "connection_timeout");
    assert_eq!(query["db_statement"], "INSERT INTO charges VALUES (?, ?)");
    assert_eq!(charge["resource"]["service.version"], "1.2.3");
    assert_eq!(charge["resource"]["team"], "payments-team");
    assert_eq!(charge["resource"]["deployment.environment.name"], "test");
}

#[tokio::test]
async fn python_sdk_over_otlp_http() {
    let server = TestServer::start("{}").await;
    let trace_id = run_sdk("http", server.otlp_http()).await;
    check_trace(&server.wait_for_trace(&trace_id, 6).await);
    server.stop().await;
}

#[tokio::test]
async fn python_sdk_over_otlp_grpc() {
    let server = TestServer::start("{}").await;
    let trace_id = run_sdk("grpc", server.otlp_grpc().replace("http://", "")).await;
    check_trace(&server.wait_for_trace(&trace_id, 6).await);
    server.stop().await;
}
