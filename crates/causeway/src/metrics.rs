//! Process metrics in the Prometheus text format (`GET /metrics`), all prefixed `causeway_`.
//!
//! Counters are updated lock-free from receivers and the pipeline; window gauges are refreshed
//! by the pipeline after every batch.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// `invalid` (bad span data), `overload` (queue full), `malformed` (undecodable request).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `grpc` or `http`.
    pub transport: &'static str,
    /// `ok`, `partial`, `malformed`, `overload`, `too_large`, `unsupported`.
    pub outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub spans_received: Counter,
    pub spans_rejected: Family<RejectLabels, Counter>,
    pub requests: Family<RequestLabels, Counter>,
    pub spans_evicted: Counter,
    pub window_spans: Gauge,
    pub window_traces: Gauge,
    pub window_memory_bytes: Gauge,
    pub window_max_memory_bytes: Gauge,
    pub ingest_queue_bytes: Gauge,
    pub ingest_queue_batches: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("causeway");
        let metrics = Metrics {
            registry: Registry::default(),
            spans_received: Counter::default(),
            spans_rejected: Family::default(),
            requests: Family::default(),
            spans_evicted: Counter::default(),
            window_spans: Gauge::default(),
            window_traces: Gauge::default(),
            window_memory_bytes: Gauge::default(),
            window_max_memory_bytes: Gauge::default(),
            ingest_queue_bytes: Gauge::default(),
            ingest_queue_batches: Gauge::default(),
        };
        registry.register("spans_received", "Spans accepted by the OTLP receivers", metrics.spans_received.clone());
        registry.register("spans_rejected", "Spans refused, by reason", metrics.spans_rejected.clone());
        registry.register("otlp_requests", "OTLP export requests, by transport and outcome", metrics.requests.clone());
        registry.register(
            "spans_evicted",
            "Spans evicted from the trace window (retention or memory bound)",
            metrics.spans_evicted.clone(),
        );
        registry.register("window_spans", "Spans held in the trace window", metrics.window_spans.clone());
        registry.register("window_traces", "Traces held in the trace window", metrics.window_traces.clone());
        registry.register(
            "window_memory_bytes",
            "Bytes allocated by the trace window",
            metrics.window_memory_bytes.clone(),
        );
        registry.register(
            "window_max_memory_bytes",
            "Configured bound of the trace window",
            metrics.window_max_memory_bytes.clone(),
        );
        registry.register(
            "ingest_queue_bytes",
            "Decoded bytes waiting for the pipeline",
            metrics.ingest_queue_bytes.clone(),
        );
        registry.register(
            "ingest_queue_batches",
            "Batches waiting for the pipeline",
            metrics.ingest_queue_batches.clone(),
        );
        Metrics { registry, ..metrics }
    }

    pub fn reject(&self, reason: &'static str, n_spans: u64) {
        if n_spans > 0 {
            self.spans_rejected.get_or_create(&RejectLabels { reason }).inc_by(n_spans);
        }
    }

    pub fn request(&self, transport: &'static str, outcome: &'static str) {
        self.requests.get_or_create(&RequestLabels { transport, outcome }).inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_counters_render() {
        let metrics = Metrics::new();
        metrics.spans_received.inc_by(3);
        metrics.reject("overload", 2);
        let text = metrics.render();
        assert!(text.contains("causeway_spans_received_total 3"), "{text}");
        assert!(text.contains("causeway_spans_rejected_total{reason=\"overload\"} 2"), "{text}");
        assert!(text.contains("causeway_window_memory_bytes"), "{text}");
    }
}
