//! The command line: raw arguments become validated types here, once, then each command runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::server::{ServeOptions, Server};

#[derive(Parser, Debug)]
#[command(name = "causeway", version, about = "Pages the team closest to the problem")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The one-command demo: a simulated web shop streams traffic into a local server, a fault
    /// is injected every few minutes, and each page is printed here. No config needed.
    Demo {
        /// Simulated world: webshop (default) or large, or a world YAML file.
        #[arg(long, default_value = "webshop")]
        world: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run simulated time this many times faster than real time.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Address of the UI and API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: std::net::SocketAddr,
    },
    /// Run the service: OTLP receivers, engine, API.
    Serve {
        /// Configuration file (every key has a default; without a file the defaults apply).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Where durable state lives (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Record everything received as a replay bundle in this directory.
        #[arg(long)]
        record: Option<PathBuf>,
    },
    /// Backtest: run a recorded bundle through the engine on event time and report what it
    /// would have paged, against static routing.
    Replay {
        /// Bundle directory (traces.jsonl[.gz], alerts.jsonl, changes.jsonl, causeway.yaml, owners.yaml, truth.json).
        bundle: PathBuf,
        /// Write the report here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Measure ingest and routing speed (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Validate a configuration file; print every error with file and line.
    CheckConfig {
        #[arg(long, short, default_value = "causeway.yaml")]
        config: PathBuf,
    },
    /// Audit alert rules and Alertmanager routing against the ownership model.
    Audit(crate::audit::AuditArgs),
    /// Generate a replay bundle with ground truth, or stream simulated OTLP traffic to a server.
    Simulate(crate::sim::command::SimulateArgs),
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// OTLP protobuf decode only against decode + normalize + insert; bytes per retained span.
    Ingest {
        /// Traces of 10 spans per round.
        #[arg(long, default_value_t = 100_000)]
        traces: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
    /// One routing decision (and its brief) over a window of traces: median and p99.
    Route {
        #[arg(long, default_value_t = 10_000)]
        traces: usize,
        #[arg(long, default_value_t = 50)]
        runs: usize,
        /// error: errors deep in the graph; latency: a slow database (critical paths of every trace).
        #[arg(long, default_value = "error")]
        kind: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Markdown,
    /// One self-contained HTML file (charts and graphs inline, no script, nothing to fetch).
    Html,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story on stdout; only problems go to the log there.
    init_logging(if matches!(cli.command, Command::Demo { .. }) { "warn" } else { "info" });
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAUSEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config: config_path, data_dir, record } => {
            let config = match &config_path {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            serve(config, ServeOptions { data_dir, record, config_path })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { bundle, output, format, quiet } => {
            let bundle = crate::replay::Bundle::open(&bundle)?;
            let options = crate::replay::ReplayOptions { progress: !quiet, ..crate::replay::ReplayOptions::default() };
            let started = std::time::Instant::now();
            let outcome = crate::replay::run(&bundle, &options)?;
            let report = &outcome.report;
            let elapsed = started.elapsed().as_secs_f64();
            tracing::info!(
                spans = report.spans,
                seconds = format!("{elapsed:.1}"),
                spans_per_second = format!("{:.0}", report.spans as f64 / elapsed.max(1e-9)),
                incidents = report.summary.incidents,
                "replay finished"
            );
            let text = match format {
                ReportFormat::Json => serde_json::to_string_pretty(report)? + "\n",
                ReportFormat::Markdown => crate::replay::report::markdown(report),
                ReportFormat::Html => crate::ui::replay::html(report, &outcome.engine),
            };
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => Ok(check_config(&config)),
        Command::Bench { what } => {
            match what {
                BenchCommand::Ingest { traces, rounds, json } => {
                    crate::bench::print(&crate::bench::ingest(traces, rounds.max(1)), json)
                }
                BenchCommand::Route { traces, runs, kind, json } => {
                    let kind = match kind.as_str() {
                        "error" => causeway_engine::analysis::SymptomKind::Error,
                        "latency" => causeway_engine::analysis::SymptomKind::Latency,
                        other => anyhow::bail!("--kind {other:?}: use error or latency"),
                    };
                    crate::bench::print(&crate::bench::route(traces, runs.max(1), kind), json)
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(args) => crate::audit::run_command(args),
        Command::Demo { world, seed, speed, http } => {
            crate::demo::run(crate::demo::DemoOptions { world, seed, speed, http })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate(args) => crate::sim::command::run(args),
    }
}

/// Validates a configuration and the ownership sources it names; prints every problem.
fn check_config(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(error) => {
            println!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems: Vec<String> = Vec::new();
    if let Err(error) = config.engine_config(path) {
        problems.push(error.to_string());
    }
    let loaded = config.load_ownership();
    problems.extend(loaded.errors.iter().map(ToString::to_string));
    for conflict in &loaded.ownership.conflicts {
        println!(
            "warning: ownership conflict: {} is owned by {} ({}) and by {} ({}); keeping {}",
            conflict.component,
            conflict.kept_team,
            conflict.kept_source.describe(),
            conflict.other_team,
            conflict.other_source.describe(),
            conflict.kept_team
        );
    }
    if problems.is_empty() {
        println!(
            "{}: ok ({} journeys, {} owned components, {} teams)",
            path.display(),
            config.journeys.len(),
            loaded.ownership.components.values().filter(|component| component.team.is_some()).count(),
            loaded.ownership.teams.len()
        );
        ExitCode::SUCCESS
    } else {
        for problem in &problems {
            println!("{problem}");
        }
        ExitCode::FAILURE
    }
}

fn serve(config: Config, options: ServeOptions) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = Server::bind_with(config, options).await?;
        let addresses = server.addresses()?;
        // One stable line on stdout that scripts and tests wait for.
        println!("causeway listening {addresses}");
        tracing::info!(%addresses, "causeway is serving");
        server.run(shutdown_signal()).await
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
