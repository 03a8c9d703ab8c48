//! Overload: more data than `max_memory` allows, sent as fast as the client can.
//! The server process (a real child process, so its memory can be measured) must stay inside
//! its bound, evict oldest-first or refuse with 429, count it in /metrics, and keep answering.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::common::{ChildServer, metric_value};

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

/// One request: `n_traces` traces of 10 spans each, ids unique per `batch`.
fn batch(batch: u32, n_traces: u32) -> Vec<u8> {
    let mut spans = Vec::new();
    for trace in 0..n_traces {
        let mut trace_id = [0u8; 16];
        trace_id[..4].copy_from_slice(&batch.to_be_bytes());
        trace_id[4..8].copy_from_slice(&trace.to_be_bytes());
        trace_id[15] = 1;
        for n in 1..=10u64 {
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id: n.to_be_bytes().to_vec(),
                parent_span_id: if n == 1 { vec![] } else { (n - 1).to_be_bytes().to_vec() },
                name: format!("GET /api/items/{}", n % 3),
                kind: if n == 1 { 2 } else { 3 },
                start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(trace) * 1000,
                end_time_unix_nano: 1_700_000_000_000_100_000 + u64::from(trace) * 1000,
                attributes: vec![attribute("http.route", "/api/items/{id}"), attribute("server.address", "inventory")],
                ..Span::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![attribute("service.name", "flood")], ..Resource::default() }),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_stays_inside_the_memory_bound() {
    let max_memory: u64 = 24 << 20;
    let queue_bytes: u64 = 4 << 20;
    let server =
        ChildServer::start(&format!("window:\n  max_memory: {max_memory}\ningest:\n  queue_bytes: {queue_bytes}\n"))
            .await;
    let baseline_rss = server.rss_bytes();
    let client = reqwest::Client::new();

    // Two rounds of 8 x 40 requests x 500 traces x 10 spans = 3.2M spans: far more than 24 MiB
    // can hold. If memory were unbounded the second round would grow RSS as much as the first.
    let mut n_ok = 0u32;
    let mut n_refused = 0u32;
    let mut peaks = Vec::new();
    for round in 0..2u32 {
        let mut handles = Vec::new();
        for worker in 0..8u32 {
            let client = client.clone();
            let url = server.otlp_http();
            handles.push(tokio::spawn(async move {
                let (mut ok, mut refused) = (0u32, 0u32);
                for n in 0..40u32 {
                    let response = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(batch(round * 100_000 + worker * 1000 + n, 500))
                        .send()
                        .await
                        .expect("the server keeps answering under load");
                    match response.status().as_u16() {
                        200 => ok += 1,
                        429 => {
                            assert_eq!(response.headers()["retry-after"], "1");
                            refused += 1;
                        }
                        other => panic!("unexpected status {other}"),
                    }
                }
                (ok, refused)
            }));
        }
        for handle in handles {
            let (ok, refused) = handle.await.expect("worker");
            n_ok += ok;
            n_refused += refused;
        }
        peaks.push(server.peak_rss_bytes());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let peak_rss = server.peak_rss_bytes();
    let metrics = reqwest::get(server.api("/metrics")).await.expect("metrics").text().await.expect("text");
    let window_memory = metric_value(&metrics, "causeway_window_memory_bytes");
    let evicted = metric_value(&metrics, "causeway_spans_evicted_total");
    let received = metric_value(&metrics, "causeway_spans_received_total");
    let refused_spans = metric_value(&metrics, "causeway_spans_rejected_total{reason=\"overload\"}");
    eprintln!(
        "flood: {n_ok} requests accepted, {n_refused} refused with 429; received {received} spans, evicted {evicted}, \
         refused {refused_spans}; window {window_memory} bytes (bound {max_memory}); RSS baseline {baseline_rss}, \
         peak after round 1 {}, after round 2 {peak_rss}",
        peaks[0]
    );

    assert!(window_memory <= max_memory as f64, "window over its bound: {window_memory}");
    assert!(evicted > 0.0, "the flood must have evicted oldest traces");
    assert_eq!(received + refused_spans, 3_200_000.0, "every span is either received or refused, none lost silently");
    assert_eq!(refused_spans, f64::from(n_refused) * 5000.0);
    // Process memory: the window bound, the queue bound, in-flight request bodies, and the
    // allocator's slack. Without the bound, 3M spans would need several hundred MiB.
    let allowed = baseline_rss + max_memory * 3 + queue_bytes * 2 + (96 << 20);
    assert!(peak_rss < allowed, "peak RSS {peak_rss} over {allowed}");
    assert!(peak_rss < peaks[0] + peaks[0] / 4, "RSS kept growing with input: {} then {peak_rss}", peaks[0]);

    let health = reqwest::get(server.api("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    server.stop().await;
}
