//! `causeway simulate`: its arguments, turned into [`Options`] once, and the two ways to run
//! (write a bundle, stream to a server).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::bundle::{BundleSettings, offset_text};
use super::faults::{FaultKind, FaultPlan};
use super::stream::{FaultNotice, StreamOptions, wall_clock_now};
use super::{DEFAULT_START, Options, parse_time, rfc3339, world};

const STDOUT: &str = "cannot write to stdout";

/// Generate a replay bundle with ground truth, or stream simulated OTLP traffic to a server.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["out", "to"])))]
pub struct SimulateArgs {
    /// World to simulate: `webshop`, `large`, or the path of a world YAML file.
    #[arg(long, default_value = "large")]
    pub world: String,
    /// How long the traffic runs, in event time (`0s` streams until Ctrl-C).
    #[arg(long, default_value = "60m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Seed of every random choice: the same seed and arguments give the same bundle.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Faults to inject: `all` (every kind, repeated to fill the run), `none`, or a
    /// comma-separated list of kinds (each once): deep_errors, db_errors, no_response,
    /// bad_deploy, cpu_saturation, network_delay, two_causes, shared_dependency, harmless.
    #[arg(long, default_value = "all")]
    pub faults: String,
    /// Event time of the first request (RFC 3339). Default: a fixed time for bundles, now for streams.
    #[arg(long)]
    pub start: Option<String>,
    /// Multiplies every journey's request rate.
    #[arg(long, default_value_t = 1.0)]
    pub rate_scale: f64,
    /// Write a bundle into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write `traces.jsonl.gz` instead of `traces.jsonl`.
    #[arg(long, requires = "out")]
    pub gzip: bool,
    /// Stream OTLP/HTTP protobuf to this URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    #[arg(long)]
    pub to: Option<String>,
    /// With --to: event time runs this many times faster than the wall clock.
    #[arg(long, requires = "to", default_value_t = 1.0)]
    pub speed: f64,
    /// Inject a fault every this long, kinds in turn (the demo's schedule) instead of spreading
    /// them over the run.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub fault_every: Option<Duration>,
    /// With --fault-every: how long each fault lasts (default: 60% of the period, at most 3m).
    #[arg(long, requires = "fault_every", value_parser = humantime::parse_duration)]
    pub fault_duration: Option<Duration>,
    /// No progress bar and no summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `causeway simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let world = world::load(&args.world)?;
    let mut options = Options::new(world);
    options.seed = args.seed;
    options.rate_scale = args.rate_scale;
    let streaming = args.to.is_some();
    options.start = match &args.start {
        Some(text) => parse_time(text).context("--start")?,
        None if streaming => wall_clock_now(),
        None => parse_time(DEFAULT_START).expect("the default start is valid RFC 3339"),
    };
    options.duration = if args.duration.is_zero() {
        if !streaming {
            anyhow::bail!("--duration 0 (until stopped) only makes sense with --to");
        }
        None
    } else {
        Some(args.duration)
    };
    let kinds = FaultKind::parse_list(&args.faults)?;
    options.faults = match (kinds, args.fault_every) {
        (Some(kinds), _) if kinds.is_empty() => FaultPlan::None,
        (kinds, Some(every)) => {
            let duration = args.fault_duration.unwrap_or_else(|| every.mul_f64(0.6).min(Duration::from_secs(180)));
            if duration.is_zero() || duration > every {
                anyhow::bail!("--fault-duration must be positive and at most --fault-every");
            }
            FaultPlan::Cycle {
                kinds: kinds.unwrap_or_else(|| FaultKind::ALL.to_vec()),
                first_after: every.saturating_sub(duration).max(Duration::from_secs(60)),
                duration,
                every,
            }
        }
        (None, None) => FaultPlan::all(),
        (Some(kinds), None) => FaultPlan::Spread { kinds, fill: false },
    };
    if options.duration.is_none() && matches!(options.faults, FaultPlan::Spread { .. }) {
        anyhow::bail!("streaming until stopped needs --fault-every (or --faults none)");
    }

    if let Some(directory) = args.out {
        let settings = BundleSettings { gzip: args.gzip, progress: !args.quiet && std::io::stderr().is_terminal() };
        let start = options.start;
        let summary = super::write_bundle(options, &directory, &settings)?;
        if !args.quiet {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "wrote {}: {} spans in {} traces ({} export requests, {} spans lost on purpose), {} alert notifications, {} changes, in {:.1} s",
                summary.directory.display(),
                summary.n_spans,
                summary.n_traces,
                summary.n_batches,
                summary.n_lost_spans,
                summary.n_alert_notifications,
                summary.n_changes,
                summary.elapsed.as_secs_f64()
            )
            .context(STDOUT)?;
            for fault in &summary.faults {
                writeln!(
                    out,
                    "  {} {}..{} {}",
                    fault.id,
                    offset_text(start, fault.start),
                    offset_text(start, fault.end),
                    fault.description
                )
                .context(STDOUT)?;
            }
            for kind in &summary.skipped_kinds {
                writeln!(out, "  (no {kind}: the world offers no target for it)").context(STDOUT)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let url = args.to.context("--out or --to is required")?;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let stream_options = StreamOptions { simulation: options, speed: args.speed, notices: Some(sender) };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let target = url.clone();
    let summary = runtime.block_on(async move {
        let printer = tokio::spawn(async move {
            while let Some(notice) = receiver.recv().await {
                let line = match notice {
                    FaultNotice::Started(fault) => {
                        format!("{} fault {} started: {}", rfc3339(fault.start), fault.id, fault.description)
                    }
                    FaultNotice::Ended(fault) => {
                        format!("{} fault {} ended ({})", rfc3339(fault.end), fault.id, fault.kind)
                    }
                };
                // A closed stdout (a pipe whose reader left) must not stop the stream.
                let _ = writeln!(std::io::stdout(), "{line}");
            }
        });
        let summary = super::stream(stream_options, &target, crate::cli::shutdown_signal()).await;
        let _ = printer.await;
        summary
    })?;
    if !args.quiet {
        writeln!(
            std::io::stdout(),
            "sent {} spans in {} requests to {url} ({} retries, {} requests dropped)",
            summary.n_spans,
            summary.n_requests,
            summary.n_retries,
            summary.n_dropped_requests
        )
        .context(STDOUT)?;
    }
    Ok(ExitCode::SUCCESS)
}
