//! The pipeline: one thread that owns the order of events.
//!
//! Receivers decode and validate on their own tasks, then hand batches to [`Pipeline::submit`],
//! which refuses (never blocks) when the queue's byte budget is spent: that refusal becomes
//! HTTP 429 / gRPC `RESOURCE_EXHAUSTED`. The pipeline thread converts batches into the engine's
//! model and inserts them into the window; readers (API) lock the core briefly.
//!
//! **Invariant:** only the pipeline thread mutates the core's window; memory held by the
//! process for spans is bounded by `window.max_memory + ingest.queue_bytes` (decoded bytes) plus in-flight
//! request bodies (each at most `ingest.max_request_bytes`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use causeway_engine::Nanos;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::metrics::Metrics;

pub use crate::state::Core;

/// A decoded, validated export request waiting for the pipeline.
#[derive(Debug)]
pub struct Batch {
    pub request: ExportTraceServiceRequest,
    /// Decoded size ([`crate::receivers::otlp::decoded_bytes`]), charged against the queue budget until the
    /// batch is processed.
    pub queued_bytes: usize,
}

enum Event {
    Spans(Batch),
}

/// The queue is full: the client should retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

pub struct Shared {
    core: Mutex<Core>,
    pub metrics: Metrics,
    queued_bytes: AtomicUsize,
    queued_batches: AtomicUsize,
    max_queue_bytes: usize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// The metrics text, with the queue gauges read from the queue's counters now (they change
    /// on several threads; reading them at render time keeps the gauges exact).
    pub fn render_metrics(&self) -> String {
        self.metrics.ingest_queue_bytes.set(self.queued_bytes.load(Ordering::SeqCst) as i64);
        self.metrics.ingest_queue_batches.set(self.queued_batches.load(Ordering::SeqCst) as i64);
        self.metrics.render()
    }

    /// Locks the core for reading or writing. A poisoned lock (a panic elsewhere) is recovered:
    /// the window's invariants hold between calls.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The handle receivers use.
#[derive(Clone, Debug)]
pub struct Pipeline {
    sender: SyncSender<Event>,
    pub shared: Arc<Shared>,
}

/// Maximum number of batches queued regardless of their size.
const MAX_QUEUED_BATCHES: usize = 4096;

impl Pipeline {
    /// Starts the pipeline thread. It stops when every [`Pipeline`] handle is dropped.
    pub fn start(core: Core, max_queue_bytes: usize) -> std::io::Result<(Pipeline, std::thread::JoinHandle<()>)> {
        let metrics = Metrics::new();
        metrics.window_max_memory_bytes.set(core.engine.window().config().max_memory.min(i64::MAX as usize) as i64);
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            metrics,
            queued_bytes: AtomicUsize::new(0),
            queued_batches: AtomicUsize::new(0),
            max_queue_bytes,
        });
        let (sender, receiver) = std::sync::mpsc::sync_channel(MAX_QUEUED_BATCHES);
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("causeway-pipeline".to_string())
            .spawn(move || run(receiver, &thread_shared))?;
        Ok((Pipeline { sender, shared }, handle))
    }

    /// Queues a batch, or refuses at once when the queue's byte budget or length is spent.
    pub fn submit(&self, batch: Batch) -> Result<(), Overloaded> {
        let bytes = batch.queued_bytes;
        let previous = self.shared.queued_bytes.fetch_add(bytes, Ordering::SeqCst);
        if previous > 0 && previous + bytes > self.shared.max_queue_bytes {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
            return Err(Overloaded);
        }
        // Counted before sending: the pipeline thread may process the batch at once.
        self.shared.queued_batches.fetch_add(1, Ordering::SeqCst);
        match self.sender.try_send(Event::Spans(batch)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
                self.shared.queued_batches.fetch_sub(1, Ordering::SeqCst);
                Err(Overloaded)
            }
        }
    }
}

/// Wall-clock time in Unix nanoseconds: the pipeline is where live time enters the system.
pub fn wall_clock_nanos() -> Nanos {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos() as Nanos)
}

const TICK: Duration = Duration::from_secs(1);

fn run(receiver: Receiver<Event>, shared: &Shared) {
    let mut last_tick = wall_clock_nanos();
    loop {
        match receiver.recv_timeout(TICK) {
            Ok(Event::Spans(batch)) => {
                let now = wall_clock_nanos();
                {
                    let mut core = shared.core();
                    core.ingest(now, &batch.request);
                    publish_window_gauges(shared, &core);
                }
                shared.queued_bytes.fetch_sub(batch.queued_bytes, Ordering::SeqCst);
                shared.queued_batches.fetch_sub(1, Ordering::SeqCst);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // Shutting down: persist what a restart needs (SLI counters, recordings).
                shared.core().shutdown(wall_clock_nanos());
                return;
            }
        }
        // Time passes under load too: tick at least once a second.
        let now = wall_clock_nanos();
        if now - last_tick >= TICK.as_nanos() as Nanos {
            last_tick = now;
            let mut core = shared.core();
            core.tick(now);
            publish_window_gauges(shared, &core);
        }
    }
}

fn publish_window_gauges(shared: &Shared, core: &Core) {
    let metrics = &shared.metrics;
    let window = core.engine.window();
    metrics.window_spans.set(window.n_spans() as i64);
    metrics.window_traces.set(window.n_traces() as i64);
    metrics.window_memory_bytes.set(window.memory_bytes() as i64);
    let evicted = window.counters().spans_evicted;
    let reported = metrics.spans_evicted.get();
    if evicted > reported {
        metrics.spans_evicted.inc_by(evicted - reported);
    }
}
