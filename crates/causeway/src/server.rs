//! `causeway serve`: binds the listeners, opens the store, restores state, starts the pipeline
//! and the delivery worker, and serves until shutdown.
//!
//! [`Server::bind`] takes addresses (port 0 allowed) and reports the bound ones, so tests and
//! the demo run on free ports; [`Server::run`] serves until the shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use causeway_engine::Engine;
use causeway_store::Store;
use causeway_store::sqlite::SqliteStore;
use tokio::net::TcpListener;

use crate::api::{self, ApiState};
use crate::auth::Secret;
use crate::config::Config;
use crate::notifiers::worker::{SharedStore, Worker};
use crate::pipeline::{Core, Pipeline, wall_clock_nanos};
use crate::receivers::alertmanager::AlertMapping;
use crate::receivers::otlp::ConvertOptions;
use crate::receivers::{otlp_grpc, otlp_http};
use crate::record::Recorder;
use crate::state::Outbox;

pub struct Server {
    config: Config,
    options: ServeOptions,
    grpc: TcpListener,
    otlp_http: TcpListener,
    http: TcpListener,
}

/// Command-line options of `serve` beside the configuration file.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Overrides `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Record everything received as a bundle in this directory.
    pub record: Option<PathBuf>,
    /// The configuration file, copied into recordings.
    pub config_path: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug)]
pub struct BoundAddresses {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub http: SocketAddr,
}

impl std::fmt::Display for BoundAddresses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "otlp_grpc={} otlp_http={} http={}", self.otlp_grpc, self.otlp_http, self.http)
    }
}

impl Server {
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        Server::bind_with(config, ServeOptions::default()).await
    }

    pub async fn bind_with(config: Config, options: ServeOptions) -> anyhow::Result<Server> {
        let listen = &config.listen;
        let grpc = bind(listen.otlp_grpc, "listen.otlp_grpc").await?;
        let otlp_http = bind(listen.otlp_http, "listen.otlp_http").await?;
        let http = bind(listen.http, "listen.http").await?;
        Ok(Server { config, options, grpc, otlp_http, http })
    }

    pub fn addresses(&self) -> anyhow::Result<BoundAddresses> {
        Ok(BoundAddresses {
            otlp_grpc: self.grpc.local_addr()?,
            otlp_http: self.otlp_http.local_addr()?,
            http: self.http.local_addr()?,
        })
    }

    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addresses = self.addresses()?;
        let config = self.config;
        let api_token = secret_from(config.auth.as_ref().and_then(|auth| auth.token_env.as_deref()))?;
        let ingest_token = secret_from(config.auth.as_ref().and_then(|auth| auth.ingest_token_env.as_deref()))?;
        let engine_config = config.engine_config(&config.base_dir.join("causeway.yaml"))?;
        let loaded = Arc::new(config.load_ownership());
        for error in &loaded.errors {
            tracing::error!(%error, "ownership source problem (the rest is used)");
        }
        let mapping = AlertMapping {
            journeys: engine_config.journeys.iter().map(|journey| journey.name.clone()).collect(),
            paging_severities: config.alerts.paging_severities.clone(),
        };
        let engine = Engine::new(engine_config, loaded.ownership.clone());

        let data_dir = self.options.data_dir.clone().unwrap_or_else(|| config.resolve(&config.data_dir));
        let store: Box<dyn Store> = Box::new(
            SqliteStore::open(&data_dir).with_context(|| format!("cannot open the store in {}", data_dir.display()))?,
        );
        let store: SharedStore = Arc::new(Mutex::new(store));
        let wake = Arc::new(tokio::sync::Notify::new());
        let base_url = config.ui.external_url.clone().unwrap_or_else(|| format!("http://{}", addresses.http));
        let outbox = Outbox { store: store.clone(), ownership: loaded.clone(), base_url, wake: wake.clone() };

        let convert = ConvertOptions { team_keys: config.ownership.team_keys.clone() };
        let mut core = Core::new(engine, convert, mapping).with_outbox(outbox);
        if let Some(dir) = &self.options.record {
            core = core.with_recorder(Recorder::create(dir, &config, self.options.config_path.as_deref())?);
            tracing::info!(dir = %dir.display(), "recording everything received as a replay bundle");
        }
        let narration_jobs = match &config.assistant {
            Some(assistant) => {
                let narrator = crate::assistant::Narrator::new(assistant.clone()).context("assistant")?;
                let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
                core = core.with_narrator(sender);
                Some((narrator, receiver))
            }
            None => None,
        };
        core.restore(wall_clock_nanos())?;
        let (pipeline, pipeline_thread) =
            Pipeline::start(core, config.ingest.queue_bytes.as_usize()).context("cannot start the pipeline thread")?;
        if let Some((narrator, receiver)) = narration_jobs {
            tokio::spawn(narrator.run(receiver, pipeline.shared.clone()));
        }
        let max_request_bytes = config.ingest.max_request_bytes.as_usize();

        let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
        let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        };

        let worker = Worker::new(store.clone(), loaded.clone(), config.notifiers.clone(), wake)?;
        let worker_task = tokio::spawn(worker.run(stopped(stop_receiver.clone())));

        let grpc_service = otlp_grpc::service(
            otlp_grpc::GrpcReceiver { pipeline: pipeline.clone(), token: ingest_token.clone() },
            max_request_bytes,
        );
        let grpc_incoming = tonic::transport::server::TcpIncoming::from(self.grpc).with_nodelay(Some(true));
        let grpc_task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(grpc_service)
                .serve_with_incoming_shutdown(grpc_incoming, stopped(stop_receiver.clone())),
        );

        let otlp_router = otlp_http::router(otlp_http::HttpReceiver {
            pipeline: pipeline.clone(),
            max_request_bytes,
            token: ingest_token.clone(),
        });
        let otlp_task = tokio::spawn(
            axum::serve(self.otlp_http, otlp_router)
                .with_graceful_shutdown(stopped(stop_receiver.clone()))
                .into_future(),
        );

        let api_state = ApiState {
            pipeline: pipeline.clone(),
            token: api_token.clone(),
            ingest_token: ingest_token.or(api_token),
            store,
            ownership: loaded,
        };
        // The UI shares the listener and state with the API (SPEC §5.2: same binary, stable paths).
        let api_router = api::router(api_state.clone()).merge(crate::ui::router(api_state));
        let api_task = tokio::spawn(
            axum::serve(self.http, api_router).with_graceful_shutdown(stopped(stop_receiver.clone())).into_future(),
        );

        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_sender.send(true);
        grpc_task.await.context("gRPC task panicked")?.context("gRPC server failed")?;
        otlp_task.await.context("OTLP/HTTP task panicked")?.context("OTLP/HTTP server failed")?;
        api_task.await.context("API task panicked")?.context("API server failed")?;
        worker_task.await.context("delivery worker panicked")?;
        drop(pipeline);
        tokio::task::spawn_blocking(move || pipeline_thread.join())
            .await
            .context("pipeline join failed")?
            .map_err(|_| anyhow::anyhow!("pipeline thread panicked"))?;
        Ok(())
    }
}

async fn bind(address: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} ({key})"))
}

fn secret_from(env: Option<&str>) -> anyhow::Result<Option<Secret>> {
    env.map(|name| Secret::from_env(name).with_context(|| format!("auth: {name} names the token"))).transpose()
}
