//! OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! gzip accepted; malformed messages are refused by tonic's decoder with `INTERNAL`/`INVALID_ARGUMENT`;
//! a full pipeline queue answers `RESOURCE_EXHAUSTED`; invalid spans are counted in
//! `partial_success`.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::pipeline::{Batch, Pipeline};
use crate::receivers::otlp;

#[derive(Clone, Debug)]
pub struct GrpcReceiver {
    pub pipeline: Pipeline,
    pub token: Option<crate::auth::Secret>,
}

/// The tonic service, with gzip and the request size bound applied.
pub fn service(receiver: GrpcReceiver, max_request_bytes: usize) -> TraceServiceServer<GrpcReceiver> {
    TraceServiceServer::new(receiver)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_request_bytes)
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let metrics = &self.pipeline.shared.metrics;
        if let Some(token) = &self.token {
            let authorized = request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .is_some_and(|presented| presented == token.expose());
            if !authorized {
                metrics.request("grpc", "unauthenticated");
                return Err(Status::unauthenticated("missing or wrong bearer token"));
            }
        }
        let mut request = request.into_inner();
        let validation = otlp::validate(&mut request);
        let queued_bytes = otlp::decoded_bytes(&request);
        metrics.reject("invalid", validation.rejected);
        if validation.rejected > 0 {
            tracing::warn!(transport = "grpc", rejected = validation.rejected, reasons = %validation.message(), "refused invalid spans");
        }
        if validation.accepted > 0 {
            if self.pipeline.submit(Batch { request, queued_bytes }).is_err() {
                metrics.reject("overload", validation.accepted);
                metrics.request("grpc", "overload");
                tracing::warn!(
                    transport = "grpc",
                    spans = validation.accepted,
                    "ingest queue full, asking the client to retry"
                );
                return Err(Status::resource_exhausted("ingest queue full, retry later"));
            }
            metrics.spans_received.inc_by(validation.accepted);
        }
        metrics.request("grpc", if validation.rejected > 0 { "partial" } else { "ok" });
        let partial_success = (validation.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: validation.rejected as i64,
            error_message: validation.message(),
        });
        Ok(Response::new(ExportTraceServiceResponse { partial_success }))
    }
}
