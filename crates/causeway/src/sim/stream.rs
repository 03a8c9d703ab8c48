//! Streams a simulation live over OTLP/HTTP protobuf (`POST /v1/traces`), paced on the wall
//! clock (or `speed` times faster), as a fleet of SDKs would send it.
//!
//! Generation runs on its own thread (it is CPU work) and hands encoded requests to the async
//! sender through a bounded channel, so a slow server slows generation instead of growing
//! memory. The sender honours OTLP's retry rules: 429 and 503 wait for `Retry-After` (else
//! back off) and retry, as do 502/504 and connection errors; other answers drop the request
//! with a warning. A request that cannot be delivered within a minute is dropped. Fault starts
//! and ends are announced on a channel when their event time comes.
//!
//! This module reads the wall clock: [`wall_clock_now`] anchors a live run's event time.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use prost::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::faults::Fault;
use super::simulation::{SimEvent, Simulation};
use super::world::World;
use super::{Nanos, Options};

/// How to stream.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// What to simulate. For a live run, `start` is the wall clock ([`wall_clock_now`]) so span
    /// timestamps are current; `duration: None` streams until shutdown.
    pub simulation: Options,
    /// Event time runs this many times faster than the wall clock (1.0: real time). Above 1,
    /// span timestamps run ahead of the wall clock.
    pub speed: f64,
    /// Receives a notice when each fault starts and ends (at its event time).
    pub notices: Option<mpsc::UnboundedSender<FaultNotice>>,
}

impl StreamOptions {
    /// What `causeway demo` needs: the world from now on, until shutdown, a fault every few
    /// minutes (a different kind each time), at real speed.
    pub fn live(world: World, seed: u64) -> StreamOptions {
        let mut simulation = Options::new(world);
        simulation.seed = seed;
        simulation.start = wall_clock_now();
        simulation.duration = None;
        simulation.faults = super::FaultPlan::demo();
        simulation.record_metrics = false;
        StreamOptions { simulation, speed: 1.0, notices: None }
    }
}

/// A fault boundary, announced when it happens.
#[derive(Clone, Debug)]
pub enum FaultNotice {
    Started(Fault),
    Ended(Fault),
}

/// What a stream sent.
#[derive(Clone, Debug, Default)]
pub struct StreamSummary {
    pub n_requests: u64,
    pub n_spans: u64,
    /// Requests given up (permanent errors, or not deliverable within a minute).
    pub n_dropped_requests: u64,
    /// Attempts repeated after 429/503/connection errors.
    pub n_retries: u64,
    /// Faults that started during the stream.
    pub faults: Vec<Fault>,
}

/// The wall clock in Unix nanoseconds.
pub fn wall_clock_now() -> Nanos {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // Millisecond precision, like most SDK clocks.
    (now.as_millis() as Nanos) * 1_000_000
}

/// Streams the simulation to `url` (e.g. `http://127.0.0.1:4318/v1/traces`) until its duration
/// is over or `shutdown` resolves.
pub async fn stream(
    options: StreamOptions,
    url: &str,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<StreamSummary> {
    if !(options.speed.is_finite() && options.speed > 0.0) {
        anyhow::bail!("--speed must be a positive number, got {}", options.speed);
    }
    let simulation = Simulation::new(options.simulation.clone()).context("cannot start the simulation")?;
    let sim_start = simulation.start();
    let (sender, mut receiver) = mpsc::channel::<Outgoing>(256);
    let generator = std::thread::Builder::new()
        .name("causeway-simulate".to_string())
        .spawn(move || generate(simulation, sender))
        .context("cannot start the simulation thread")?;

    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().context("cannot build the HTTP client")?;
    let wall_start = Instant::now();
    let mut summary = StreamSummary::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let outgoing = tokio::select! {
            () = shutdown.as_mut() => break,
            outgoing = receiver.recv() => outgoing,
        };
        let Some(outgoing) = outgoing else { break };
        let at = match &outgoing {
            Outgoing::Request { at, .. } => *at,
            Outgoing::Notice(FaultNotice::Started(fault)) => fault.start,
            Outgoing::Notice(FaultNotice::Ended(fault)) => fault.end,
        };
        let due = wall_start + Duration::from_nanos((((at - sim_start).max(0)) as f64 / options.speed) as u64);
        tokio::select! {
            () = shutdown.as_mut() => break,
            () = tokio::time::sleep_until(due) => {}
        }
        match outgoing {
            Outgoing::Request { body, n_spans, .. } => {
                match send(&client, url, body, &mut summary, shutdown.as_mut()).await {
                    Delivery::Sent => {
                        summary.n_requests += 1;
                        summary.n_spans += n_spans as u64;
                    }
                    Delivery::Dropped => summary.n_dropped_requests += 1,
                    Delivery::Stopped => break,
                }
            }
            Outgoing::Notice(notice) => {
                if let FaultNotice::Started(fault) = &notice {
                    summary.faults.push(fault.clone());
                }
                if let Some(notices) = &options.notices {
                    // A receiver that went away just stops listening.
                    let _ = notices.send(notice);
                }
            }
        }
    }
    drop(receiver);
    // The thread ends at its next send once the receiver is gone.
    let _ = tokio::task::spawn_blocking(move || generator.join()).await;
    Ok(summary)
}

enum Outgoing {
    Request { at: Nanos, body: Vec<u8>, n_spans: usize },
    Notice(FaultNotice),
}

fn generate(simulation: Simulation, sender: mpsc::Sender<Outgoing>) {
    for event in simulation {
        let outgoing = match event {
            SimEvent::Batch(batch) => {
                Outgoing::Request { at: batch.at, body: batch.request.encode_to_vec(), n_spans: batch.n_spans }
            }
            SimEvent::FaultStarted(fault) => Outgoing::Notice(FaultNotice::Started(fault)),
            SimEvent::FaultEnded(fault) => Outgoing::Notice(FaultNotice::Ended(fault)),
        };
        if sender.blocking_send(outgoing).is_err() {
            return;
        }
    }
}

enum Delivery {
    Sent,
    Dropped,
    Stopped,
}

/// Longest a request is retried before it is dropped.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// Longest single wait, whatever `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(30);

async fn send(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    summary: &mut StreamSummary,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Delivery {
    let deadline = Instant::now() + GIVE_UP_AFTER;
    let mut attempt: u32 = 0;
    loop {
        let result = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body.clone())
            .send()
            .await;
        let wait = match result {
            Ok(response) if response.status().is_success() => return Delivery::Sent,
            Ok(response) if matches!(response.status().as_u16(), 429 | 502 | 503 | 504) => {
                retry_after(&response).unwrap_or_else(|| backoff(attempt))
            }
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                tracing::warn!(%url, %status, body = %text.chars().take(200).collect::<String>(), "OTLP export rejected, dropping the request");
                return Delivery::Dropped;
            }
            Err(error) => {
                if attempt == 0 {
                    tracing::debug!(%url, %error, "OTLP export failed, will retry");
                }
                backoff(attempt)
            }
        };
        let wait = wait.min(MAX_WAIT);
        if Instant::now() + wait > deadline {
            tracing::warn!(%url, attempts = attempt + 1, "OTLP export not delivered within a minute, dropping the request");
            return Delivery::Dropped;
        }
        summary.n_retries += 1;
        attempt += 1;
        tokio::select! {
            () = shutdown.as_mut() => return Delivery::Stopped,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for OTLP and falls back to backoff).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// 100 ms doubling to 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)).min(5_000))
}
