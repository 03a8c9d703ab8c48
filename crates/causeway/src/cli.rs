//! The command line: raw arguments become validated types here, once, then each command runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::server::Server;

#[derive(Parser, Debug)]
#[command(name = "causeway", version, about = "Pages the team closest to the problem")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service: OTLP receivers, engine, API.
    Serve {
        /// Configuration file (every key has a default; without a file the defaults apply).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file; print every error with file and line.
    CheckConfig {
        #[arg(long, short, default_value = "causeway.yaml")]
        config: PathBuf,
    },
    /// Generate a replay bundle with ground truth, or stream simulated OTLP traffic to a server.
    Simulate(crate::sim::command::SimulateArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAUSEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
            serve(config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                println!("{error}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Simulate(args) => crate::sim::command::run(args),
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
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
