//! Writes a simulation as a replay bundle (SPEC §7): `traces.jsonl[.gz]`, `alerts.jsonl`,
//! `changes.jsonl`, `causeway.yaml`, `owners.yaml`, `truth.json`.
//!
//! Traces are written as they are generated (one OTLP/JSON `ExportTraceServiceRequest` per line,
//! in export-time order, as the OpenTelemetry Collector's file exporter writes them), so memory
//! stays flat however long the run. The other files are written at the end. The same options
//! write the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::alerts;
use super::faults::{Fault, FaultKind, TruthEntry, VersionChange};
use super::simulation::{SimEvent, Simulation};
use super::world::{Component, World};
use super::{Nanos, Options, rfc3339};

/// How to write a bundle.
#[derive(Clone, Debug, Default)]
pub struct BundleSettings {
    /// Write `traces.jsonl.gz` instead of `traces.jsonl`.
    pub gzip: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct BundleSummary {
    pub directory: PathBuf,
    pub n_spans: u64,
    pub n_lost_spans: u64,
    pub n_traces: u64,
    pub n_batches: u64,
    pub n_alert_notifications: usize,
    pub n_changes: usize,
    /// Faults that page (truth.json `faults`) and harmless ones (truth.json `harmless`).
    pub faults: Vec<Fault>,
    /// Kinds asked for that the world had no target for.
    pub skipped_kinds: Vec<FaultKind>,
    pub elapsed: Duration,
}

/// File names inside a bundle.
pub const TRACES: &str = "traces.jsonl";
pub const TRACES_GZ: &str = "traces.jsonl.gz";
pub const ALERTS: &str = "alerts.jsonl";
pub const CHANGES: &str = "changes.jsonl";
pub const CONFIG: &str = "causeway.yaml";
pub const OWNERS: &str = "owners.yaml";
pub const TRUTH: &str = "truth.json";

/// Runs the simulation and writes the bundle into `directory` (created if missing; files of
/// the same names are replaced).
pub fn write_bundle(options: Options, directory: &Path, settings: &BundleSettings) -> anyhow::Result<BundleSummary> {
    let began = Instant::now();
    let Some(duration) = options.duration else {
        anyhow::bail!("a bundle needs a duration");
    };
    let mut options = options;
    options.record_metrics = true;
    std::fs::create_dir_all(directory)
        .with_context(|| format!("cannot create bundle directory {}", directory.display()))?;
    // Remove the other variant so a bundle never holds both.
    let (name, stale) = if settings.gzip { (TRACES_GZ, TRACES) } else { (TRACES, TRACES_GZ) };
    let stale = directory.join(stale);
    if stale.exists() {
        std::fs::remove_file(&stale).with_context(|| format!("cannot remove {}", stale.display()))?;
    }
    let traces_path = directory.join(name);
    let file = File::create(&traces_path).with_context(|| format!("cannot create {}", traces_path.display()))?;
    let mut simulation = Simulation::new(options)?;
    let start = simulation.start();
    let end = simulation.end().unwrap_or(start);
    let progress = if settings.progress {
        let bar = indicatif::ProgressBar::new(duration.as_secs().max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} simulating [{bar:40}] {pos}/{len} s of event time, {msg} ({elapsed})",
            )
            .expect("the progress template is valid")
            .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    // Writing (and compressing) runs on a second thread. Lines are encoded here, where the
    // requests were allocated (freeing them on another thread costs more in the allocator than
    // the encoding itself), and handed over in chunks of about a megabyte, in order.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    let gzip = settings.gzip;
    let written = std::thread::scope(|scope| -> anyhow::Result<()> {
        let writer_thread = scope.spawn(|| write_traces(file, gzip, receiver, &traces_path));
        let mut n_events: u64 = 0;
        let mut chunk = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
        let mut encoded = Ok(());
        while let Some(event) = simulation.next() {
            if let SimEvent::Batch(batch) = event {
                if let Err(error) = serde_json::to_writer(&mut chunk, &batch.request) {
                    encoded = Err(error).context("cannot encode an export request as JSON");
                    break;
                }
                chunk.push(b'\n');
                if chunk.len() >= CHUNK_BYTES {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 64 * 1024));
                    if sender.send(full).is_err() {
                        // The writer stopped on an error; it reports it below.
                        break;
                    }
                }
            }
            n_events += 1;
            if n_events.is_multiple_of(2048) {
                progress.set_position(((simulation.clock() - start).max(0) / 1_000_000_000) as u64);
                progress.set_message(format!("{} spans", simulation.stats().n_spans));
            }
        }
        if !chunk.is_empty() {
            let _ = sender.send(chunk);
        }
        drop(sender);
        let written = writer_thread.join().map_err(|_| anyhow::anyhow!("the trace writer thread panicked"))?;
        encoded.and(written)
    });
    progress.finish_and_clear();
    written?;

    let world = simulation.world().clone();
    let seed = simulation.options().seed;
    let metrics = simulation.metrics().context("metrics are recorded for bundles")?;
    // The fault-free minutes before the first fault stand for the history before the start.
    let baseline_end =
        simulation.faults().first().map_or(end, |fault| fault.start).min(start + 10 * 60 * 1_000_000_000);
    let notifications = alerts::alerts(&world, metrics, start, end, baseline_end, seed);
    write_lines(&directory.join(ALERTS), notifications.iter().map(|notification| &notification.payload))?;

    let changes: Vec<&VersionChange> =
        simulation.changes().into_iter().filter(|change| change.at >= start && change.at < end).collect();
    let change_lines: Vec<ChangeLine> = changes.iter().map(|change| ChangeLine::new(&world, change)).collect();
    write_lines(&directory.join(CHANGES), change_lines.iter())?;

    write_text(&directory.join(CONFIG), &causeway_yaml(&world, seed))?;
    write_text(&directory.join(OWNERS), &owners_yaml(&world))?;
    let faults: Vec<Fault> = simulation.faults().iter().filter(|fault| fault.end <= end).cloned().collect();
    write_text(&directory.join(TRUTH), &truth_json(&faults)?)?;

    let stats = simulation.stats();
    Ok(BundleSummary {
        directory: directory.to_path_buf(),
        n_spans: stats.n_spans - stats.n_lost_spans,
        n_lost_spans: stats.n_lost_spans,
        n_traces: stats.n_traces,
        n_batches: stats.n_batches,
        n_alert_notifications: notifications.len(),
        n_changes: change_lines.len(),
        skipped_kinds: simulation.skipped_kinds().to_vec(),
        faults,
        elapsed: began.elapsed(),
    })
}

/// How much encoded JSON is handed to the writer thread at once.
const CHUNK_BYTES: usize = 1 << 20;

/// Writes chunks of OTLP/JSON lines into `file` (gzip-compressed with `gzip`).
fn write_traces(file: File, gzip: bool, chunks: std::sync::mpsc::Receiver<Vec<u8>>, path: &Path) -> anyhow::Result<()> {
    let context = || format!("cannot write {}", path.display());
    if gzip {
        let mut encoder =
            flate2::write::GzEncoder::new(BufWriter::with_capacity(1 << 20, file), flate2::Compression::fast());
        for chunk in chunks {
            encoder.write_all(&chunk).with_context(context)?;
        }
        encoder.finish().with_context(context)?.flush().with_context(context)
    } else {
        let mut file = file;
        for chunk in chunks {
            file.write_all(&chunk).with_context(context)?;
        }
        file.flush().with_context(context)
    }
}

/// One `changes.jsonl` line (SPEC §2.3).
#[derive(Serialize)]
struct ChangeLine {
    service: String,
    version: String,
    kind: &'static str,
    at: String,
    summary: String,
}

impl ChangeLine {
    fn new(world: &World, change: &VersionChange) -> ChangeLine {
        ChangeLine {
            service: world.services[change.service].name.clone(),
            version: change.version.clone(),
            kind: "deploy",
            at: rfc3339(change.at),
            summary: change.summary.clone(),
        }
    }
}

#[derive(Serialize)]
struct Truth {
    faults: Vec<TruthEntry>,
    harmless: Vec<TruthEntry>,
}

/// `truth.json`: faults that should page, and harmless ones (which must page nobody) apart.
pub fn truth_json(faults: &[Fault]) -> anyhow::Result<String> {
    let truth = Truth {
        faults: faults.iter().filter(|fault| !fault.is_harmless()).flat_map(Fault::truth).collect(),
        harmless: faults.iter().filter(|fault| fault.is_harmless()).flat_map(Fault::truth).collect(),
    };
    let mut text = serde_json::to_string_pretty(&truth).context("cannot encode truth.json")?;
    text.push('\n');
    Ok(text)
}

/// `causeway.yaml`: ownership from `owners.yaml` and the world's journeys in SPEC §3's form.
pub fn causeway_yaml(world: &World, seed: u64) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# Generated by `causeway simulate` (world {}, seed {seed}).\nversion: 1\nownership:\n  owners: owners.yaml\njourneys:\n",
        world.name
    ));
    for journey in &world.journeys {
        let service = &world.services[journey.service];
        out.push_str(&format!(
            "  - name: {}\n    entry: {{ service: {}, operation: {} }}\n    owner: {}\n    slo:\n      availability: {}\n      latency: {{ threshold_ms: {}, target: {} }}\n      period: 28d\n      windows: google\n",
            quoted(&journey.name),
            quoted(&service.name),
            quoted(&service.operations[journey.operation].name),
            quoted(&journey.owner),
            journey.availability,
            journey.latency_threshold_ms,
            journey.latency_target,
        ));
    }
    out
}

/// `owners.yaml` (SPEC §2.4 simple form), naming uninstrumented dependencies as SPEC §4.2 does.
pub fn owners_yaml(world: &World) -> String {
    let mut out = String::from("# Generated by `causeway simulate`. Secrets come from the environment.\nteams:\n");
    for team in &world.teams {
        let variable = team.name.to_ascii_uppercase().replace(['-', '.', ' '], "_");
        out.push_str(&format!("  {}:\n", quoted(&team.name)));
        if team.pagerduty {
            out.push_str(&format!("    pagerduty: {{ routing_key_env: PD_{variable} }}\n"));
        }
        if team.slack {
            out.push_str(&format!("    slack: {{ webhook_env: SLACK_{variable} }}\n"));
        }
        if !team.pagerduty && !team.slack {
            out.push_str("    {}\n");
        }
    }
    out.push_str("services:\n");
    let components = (0..world.services.len())
        .map(Component::Service)
        .chain((0..world.dependencies.len()).map(Component::Dependency))
        .chain((0..world.topics.len()).map(Component::Topic));
    for component in components {
        let name = world.component_name(component);
        out.push_str(&format!(
            "  {}: {{ team: {}, runbook: {} }}\n",
            quoted(&name),
            quoted(world.component_team(component)),
            quoted(&format!("https://runbooks.example.com/services/{name}"))
        ));
    }
    out.push_str(&format!("default_team: {}\n", quoted(&world.default_team)));
    out
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string always encodes as JSON")
}

fn write_lines<'a, T: Serialize + 'a>(path: &Path, items: impl Iterator<Item = &'a T>) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = BufWriter::new(file);
    for item in items {
        serde_json::to_writer(&mut writer, item)
            .with_context(|| format!("cannot encode a line of {}", path.display()))?;
        writer.write_all(b"\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))
}

fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Event time as whole seconds after the start, for people.
pub fn offset_text(start: Nanos, at: Nanos) -> String {
    let seconds = (at - start) / 1_000_000_000;
    format!("+{}m{:02}s", seconds / 60, seconds % 60)
}
