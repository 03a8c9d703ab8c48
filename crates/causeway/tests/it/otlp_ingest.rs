//! OTLP ingest: the captured samples over their transports, and malformed input.

use std::collections::BTreeSet;
use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use serde_json::Value;

use crate::common::{TestServer, read_fixture};

/// `(trace id, span id, parent span id, name, kind)` of every span in a request, as the
/// reference decoders read it.
fn expected_spans(request: &ExportTraceServiceRequest) -> BTreeSet<(String, String, String, String, i32)> {
    request
        .resource_spans
        .iter()
        .flat_map(|resource_spans| &resource_spans.scope_spans)
        .flat_map(|scope_spans| &scope_spans.spans)
        .map(|span| {
            (
                hex::encode(&span.trace_id),
                hex::encode(&span.span_id),
                hex::encode(&span.parent_span_id),
                span.name.clone(),
                span.kind,
            )
        })
        .collect()
}

fn kind_number(kind: &str) -> i32 {
    match kind {
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        _ => 0,
    }
}

/// Reads every trace of `request` back through the API and checks it matches span for span.
async fn assert_round_trip(server: &TestServer, request: &ExportTraceServiceRequest) -> Vec<Value> {
    let expected = expected_spans(request);
    let trace_ids: BTreeSet<String> = expected.iter().map(|span| span.0.clone()).collect();
    let mut seen = BTreeSet::new();
    let mut bodies = Vec::new();
    for trace_id in &trace_ids {
        let n_spans = expected.iter().filter(|span| &span.0 == trace_id).count();
        let body = server.wait_for_trace(trace_id, n_spans).await;
        for span in body["spans"].as_array().expect("spans") {
            seen.insert((
                trace_id.clone(),
                span["span_id"].as_str().expect("span_id").to_string(),
                span["parent_span_id"].as_str().unwrap_or("").to_string(),
                span["name"].as_str().expect("name").to_string(),
                kind_number(span["kind"].as_str().expect("kind")),
            ));
        }
        bodies.push(body);
    }
    assert_eq!(seen, expected);
    bodies
}

async fn post(server: &TestServer, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.otlp_http())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("OTLP/HTTP answers")
}

fn span<'a>(bodies: &'a [Value], name: &str) -> &'a Value {
    bodies
        .iter()
        .flat_map(|body| body["spans"].as_array().expect("spans"))
        .find(|span| span["name"] == name)
        .unwrap_or_else(|| panic!("no span named {name}"))
}

#[tokio::test]
async fn python_sdk_http_body_decodes_over_http_protobuf() {
    let server = TestServer::start("{}").await;
    let body = read_fixture("samples/otlp_http_body_frontend_raw.pb");
    let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("reference decode");
    let response = post(&server, "application/x-protobuf", body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let decoded =
        ExportTraceServiceResponse::decode(response.bytes().await.expect("body")).expect("response is protobuf");
    assert_eq!(decoded.partial_success, None);
    let bodies = assert_round_trip(&server, &request).await;
    assert!(bodies.iter().all(|body| body["spans"][0]["service"] == "frontend"));
    server.stop().await;
}

#[tokio::test]
async fn python_sdk_grpc_request_decodes_over_grpc() {
    let server = TestServer::start("{}").await;
    let request =
        ExportTraceServiceRequest::decode(read_fixture("samples/otlp_grpc_request_payments_raw.pb").as_slice())
            .expect("reference decode");
    let mut client = TraceServiceClient::connect(server.otlp_grpc()).await.expect("gRPC connects");
    let response = client.export(request.clone()).await.expect("export succeeds").into_inner();
    assert_eq!(response.partial_success, None);
    let bodies = assert_round_trip(&server, &request).await;
    assert!(
        bodies
            .iter()
            .flat_map(|body| body["spans"].as_array().expect("spans"))
            .all(|span| span["service"] == "payments")
    );
    server.stop().await;
}

#[tokio::test]
async fn three_service_trace_reads_the_same_from_protobuf_and_json() {
    let server = TestServer::start("{}").await;
    let protobuf = read_fixture("samples/otlp_trace_3svc.pb");
    let request = ExportTraceServiceRequest::decode(protobuf.as_slice()).expect("reference decode");
    assert_eq!(post(&server, "application/x-protobuf", protobuf).await.status(), 200);
    let from_protobuf = assert_round_trip(&server, &request).await;
    server.stop().await;

    let server = TestServer::start("{}").await;
    let json = read_fixture("samples/otlp_trace_3svc.json");
    let json_request: ExportTraceServiceRequest = serde_json::from_slice(&json).expect("reference JSON decode");
    assert_eq!(expected_spans(&json_request), expected_spans(&request));
    let response = post(&server, "application/json", json).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let from_json = assert_round_trip(&server, &json_request).await;
    server.stop().await;

    let sorted = |bodies: Vec<Value>| {
        let mut spans: Vec<Value> =
            bodies.into_iter().flat_map(|body| body["spans"].as_array().cloned().unwrap_or_default()).collect();
        spans.sort_by_key(|span| span["span_id"].as_str().map(str::to_string));
        spans
    };
    let (from_protobuf, from_json) = (sorted(from_protobuf), sorted(from_json));
    assert_eq!(from_protobuf, from_json, "protobuf and JSON must decode to the same spans");

    let charge = from_json.iter().find(|span| span["name"] == "Charge").expect("payments span");
    assert_eq!(charge["service"], "payments");
    assert_eq!(charge["kind"], "server");
    assert_eq!(charge["status"], "error");
    assert_eq!(charge["error"], true);
    assert!(charge["exception_type"].is_string(), "exception event kept: {charge}");
    let call = from_json.iter().find(|span| span["name"] == "POST checkout").expect("frontend client span");
    assert_eq!(call["callee"], "checkout");
    assert_eq!(call["resource"]["deployment.environment.name"], "probe");
    let entry = from_json.iter().find(|span| span["name"] == "GET /checkout").expect("entry span");
    assert_eq!(entry["route"], "/checkout");
    assert!(entry.get("parent_span_id").is_none());
}

#[tokio::test]
async fn js_exporter_json_decodes_with_numbers_and_statuses() {
    let server = TestServer::start("{}").await;
    for name in ["samples/otlp_http_body_js_raw.json", "samples/otlp_trace_js_exporter_sample.json"] {
        let body = read_fixture(name);
        let request: ExportTraceServiceRequest = serde_json::from_slice(&body).expect("reference JSON decode");
        let response = post(&server, "application/json", body).await;
        assert_eq!(response.status(), 200, "{name}");
        let bodies = assert_round_trip(&server, &request).await;
        let root = span(&bodies, "GET /");
        assert_eq!(root["http_status"], 500, "{name}");
        assert_eq!(root["error"], true, "HTTP 500 on a SERVER span is an error ({name})");
        if name.ends_with("js_exporter_sample.json") {
            let query = span(&bodies, "db.query");
            assert_eq!(query["status"], "error");
            assert_eq!(query["kind"], "client");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let server = TestServer::start("{}").await;
    let body = read_fixture("samples/otlp_trace_3svc.pb");
    let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("reference decode");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&body).expect("gzip");
    let compressed = encoder.finish().expect("gzip");
    let response = reqwest::Client::new()
        .post(server.otlp_http())
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(compressed)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    assert_round_trip(&server, &request).await;
    server.stop().await;
}

async fn error_message(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error body is JSON google.rpc.Status");
    (status, body["message"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn malformed_input_gets_a_clear_4xx_and_the_next_request_succeeds() {
    let server = TestServer::start("ingest:\n  max_request_bytes: 64KiB\n").await;
    let valid = read_fixture("samples/otlp_trace_3svc.pb");
    let request = ExportTraceServiceRequest::decode(valid.as_slice()).expect("reference decode");

    // Malformed protobuf.
    let response = post(&server, "application/x-protobuf", vec![0xff, 0xff, 0xff, 0x0f, 0x01]).await;
    assert_eq!(response.status(), 400);
    let status: prost::bytes::Bytes = response.bytes().await.expect("body");
    assert!(String::from_utf8_lossy(&status).contains("malformed OTLP protobuf"));

    // Malformed JSON names the position.
    let (status, message) =
        error_message(post(&server, "application/json", b"{\"resourceSpans\": [".to_vec()).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("malformed OTLP/JSON") && message.contains("line 1"), "{message}");

    // Wrong content type.
    let response = post(&server, "text/plain", b"hello".to_vec()).await;
    assert_eq!(response.status(), 415);
    assert!(response.text().await.expect("body").contains("unsupported content type"));

    // Oversized body.
    let (status, message) = error_message(post(&server, "application/json", vec![b' '; 70 * 1024]).await).await;
    assert_eq!(status, 413);
    assert!(message.contains("byte limit"), "{message}");

    // Invalid ids: rejected spans are counted in partial_success.
    let mut bad_ids =
        serde_json::from_slice::<Value>(&read_fixture("samples/otlp_trace_3svc.json")).expect("fixture JSON");
    bad_ids["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] =
        Value::from("00000000000000000000000000000000");
    let response = post(&server, "application/json", serde_json::to_vec(&bad_ids).expect("json")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON response");
    // int64 fields may be JSON numbers or strings (OTLP/JSON).
    assert_eq!(body["partialSuccess"]["rejectedSpans"].to_string().trim_matches('"'), "1", "{body}");
    assert!(body["partialSuccess"]["errorMessage"].as_str().expect("message").contains("invalid traceId"));

    // Ids that are not hex are a malformed body.
    let mut not_hex =
        serde_json::from_slice::<Value>(&read_fixture("samples/otlp_trace_3svc.json")).expect("fixture JSON");
    not_hex["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = Value::from("not-hex!");
    let (status, message) =
        error_message(post(&server, "application/json", serde_json::to_vec(&not_hex).expect("json")).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("malformed OTLP/JSON"), "{message}");

    // A snake_case body decodes to nothing: say so instead of silently dropping it.
    let snake =
        br#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c"}]}]}]}"#;
    let response = post(&server, "application/json", snake.to_vec()).await;
    let body: Value = response.json().await.expect("JSON response");
    assert!(body["partialSuccess"]["errorMessage"].as_str().expect("warning").contains("camelCase"), "{body}");

    // The server still ingests valid data afterwards.
    assert_eq!(post(&server, "application/x-protobuf", valid).await.status(), 200);
    assert_round_trip(&server, &request).await;

    let metrics = reqwest::get(server.api("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("causeway_spans_rejected_total{reason=\"invalid\"} 1"), "{metrics}");
    assert!(metrics.contains("causeway_otlp_requests_total{transport=\"http\",outcome=\"malformed\"} 3"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn malformed_grpc_messages_are_refused_and_the_server_keeps_serving() {
    let server = TestServer::start("{}").await;
    let mut client = TraceServiceClient::connect(server.otlp_grpc()).await.expect("gRPC connects");
    let mut request =
        ExportTraceServiceRequest::decode(read_fixture("samples/otlp_trace_3svc.pb").as_slice()).expect("decode");
    request.resource_spans[0].scope_spans[0].spans[0].span_id = vec![1, 2, 3];
    let response = client.export(request.clone()).await.expect("partial success is still OK").into_inner();
    let partial = response.partial_success.expect("partial success reported");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("invalid spanId"), "{}", partial.error_message);

    // Raw garbage on the wire: tonic's decoder refuses it.
    let garbage = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client")
        .post(format!("{}/opentelemetry.proto.collector.trace.v1.TraceService/Export", server.otlp_grpc()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])
        .send()
        .await
        .expect("gRPC answers");
    let grpc_status = garbage.headers().get("grpc-status").map(|value| value.to_str().unwrap_or("").to_string());
    assert!(grpc_status.is_some_and(|code| code != "0"), "garbage must not be OK");

    request.resource_spans[0].scope_spans[0].spans[0].span_id = vec![9, 9, 9, 9, 9, 9, 9, 9];
    client.export(request).await.expect("valid request after garbage");
    server.stop().await;
}
