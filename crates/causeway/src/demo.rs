//! `causeway demo`: the whole product on one machine, with no config file and no outside
//! service. It starts `serve` on the built-in web shop (about 15 services, 6 teams), streams
//! simulated OTLP traffic into it, injects a fault every few minutes (a different kind each
//! time), and prints each page as it is delivered.
//!
//! Every team's channel is a webhook pointing at a receiver inside the demo, so pages travel the
//! real path — engine, outbox, notifier, HTTP — and arrive here to be printed. The data
//! directory is temporary and removed at exit.

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

use crate::config::Config;
use crate::server::{ServeOptions, Server};
use crate::sim;

pub struct DemoOptions {
    pub world: String,
    pub seed: u64,
    /// Event time runs this much faster than the wall clock.
    pub speed: f64,
    /// The UI and API address (falls back to a free port when taken).
    pub http: std::net::SocketAddr,
}

pub fn run(options: DemoOptions) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(demo(options))
}

async fn demo(options: DemoOptions) -> anyhow::Result<()> {
    let world = sim::world::load(&options.world)?;
    let dir =
        tempfile::Builder::new().prefix("causeway-demo-").tempdir().context("cannot create a temporary directory")?;

    // The receiver that stands in for every team's pager and chat.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("cannot bind the demo receiver")?;
    let receiver_url = format!("http://{}", receiver.local_addr()?);
    let printer = Arc::new(Printer { started: std::time::Instant::now() });
    let receiver_app = Router::new().route("/teams/{team}", post(print_delivery)).with_state(printer.clone());
    tokio::spawn(async move {
        let _ = axum::serve(receiver, receiver_app).await;
    });

    let owners = demo_owners(&world, &receiver_url)?;
    std::fs::write(dir.path().join("owners.yaml"), owners).context("cannot write the demo owners.yaml")?;
    let mut yaml = sim::bundle::causeway_yaml(&world, options.seed);
    // Demo pacing: decide as soon as the evidence is in, resolve a minute after symptoms clear.
    yaml.push_str("routing:\n  evidence_wait: 30s\n  resolve_grace: 1m\nnotifiers:\n  delivery: { timeout: 5s }\n");
    let config_path = dir.path().join("causeway.yaml");
    std::fs::write(&config_path, &yaml).context("cannot write the demo configuration")?;
    let mut config = Config::load(&config_path)?;
    config.listen.otlp_grpc = "127.0.0.1:0".parse().expect("a valid address");
    config.listen.otlp_http = "127.0.0.1:0".parse().expect("a valid address");
    config.listen.http = options.http;
    config.data_dir = dir.path().join("data");
    let server = match Server::bind_with(config.clone(), ServeOptions::default()).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("note: {error:#}; using a free port for the UI instead");
            config.listen.http = "127.0.0.1:0".parse().expect("a valid address");
            Server::bind_with(config, ServeOptions::default()).await?
        }
    };
    let addresses = server.addresses()?;
    let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
    let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    };
    let server_task = tokio::spawn(server.run(stopped(stop_receiver.clone())));
    // Ctrl-C (or SIGTERM) stops everything at any moment, the warm-up included.
    tokio::spawn(async move {
        crate::cli::shutdown_signal().await;
        println!("\nstopping the demo");
        let _ = stop_sender.send(true);
    });

    println!(
        "Causeway demo: the {} world ({} services, {} teams, {} journeys)",
        world.name,
        world.services.len(),
        world.teams.len(),
        world.journeys.len()
    );
    println!("  UI and API   http://{}", addresses.http);
    println!("  OTLP/HTTP    http://{}/v1/traces (simulated services send here)", addresses.otlp_http);
    println!("  faults       one every 4 minutes, the first 30 s after the warm-up; each lasts 2.5 minutes");
    println!("  pages        printed below as each team's channel receives them. Ctrl-C to stop.\n");

    // An hour of healthy history first, sent as fast as the server takes it: burn-rate windows
    // of an hour then mean what they mean in production, and the baseline has traces.
    println!(
        "{} warming up: sending the last hour of healthy traffic so SLO windows and baselines have history",
        printer.clock()
    );
    let mut warm_up = sim::Options::new(world.clone());
    warm_up.seed = options.seed.wrapping_add(1000);
    warm_up.start = sim::stream::wall_clock_now() - 3_600_000_000_000;
    warm_up.duration = Some(std::time::Duration::from_secs(3600));
    warm_up.faults = sim::FaultPlan::None;
    warm_up.record_metrics = false;
    let url = format!("http://{}/v1/traces", addresses.otlp_http);
    let warm_summary = sim::stream::stream(
        sim::stream::StreamOptions { simulation: warm_up, speed: 1_000_000.0, notices: None },
        &url,
        stopped(stop_receiver.clone()),
    )
    .await?;
    if *stop_receiver.borrow() {
        server_task.await.context("server task")??;
        return Ok(());
    }
    println!(
        "{} warm: {} spans of history in {} requests; live traffic starts now\n",
        printer.clock(),
        warm_summary.n_spans,
        warm_summary.n_requests
    );

    let (notice_sender, mut notices) = tokio::sync::mpsc::unbounded_channel();
    let mut stream_options = sim::stream::StreamOptions::live(world, options.seed);
    stream_options.speed = options.speed;
    stream_options.notices = Some(notice_sender);
    if let sim::FaultPlan::Cycle { first_after, .. } = &mut stream_options.simulation.faults {
        *first_after = std::time::Duration::from_secs(30);
    }
    let stream_stop = stopped(stop_receiver.clone());
    let stream_task = tokio::spawn(async move { sim::stream::stream(stream_options, &url, stream_stop).await });
    let printer_for_faults = printer.clone();
    let notice_task = tokio::spawn(async move {
        while let Some(notice) = notices.recv().await {
            match notice {
                sim::stream::FaultNotice::Started(fault) => {
                    println!("{} FAULT  {} ({})", printer_for_faults.clock(), fault.description, fault.kind.as_str());
                }
                sim::stream::FaultNotice::Ended(fault) => {
                    println!("{} ended  {}", printer_for_faults.clock(), fault.description);
                }
            }
        }
    });

    stopped(stop_receiver.clone()).await;
    match stream_task.await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => eprintln!("traffic stream: {error:#}"),
        Err(error) => eprintln!("traffic stream: {error}"),
    }
    notice_task.abort();
    server_task.await.context("server task")??;
    drop(dir);
    Ok(())
}

/// owners.yaml for the demo: the world's ownership, every team reachable on a webhook.
fn demo_owners(world: &sim::world::World, receiver_url: &str) -> anyhow::Result<String> {
    let generated = sim::bundle::owners_yaml(world);
    let mut value: serde_norway::Value = serde_norway::from_str(&generated).context("generated owners.yaml")?;
    if let Some(teams) = value.get_mut("teams").and_then(|teams| teams.as_mapping_mut()) {
        for (name, entry) in teams.iter_mut() {
            let team = name.as_str().unwrap_or_default().to_string();
            let mut mapping = serde_norway::Mapping::new();
            let mut webhook = serde_norway::Mapping::new();
            webhook.insert("url".into(), format!("{receiver_url}/teams/{team}").into());
            mapping.insert("webhook".into(), serde_norway::Value::Mapping(webhook));
            *entry = serde_norway::Value::Mapping(mapping);
        }
    }
    serde_norway::to_string(&value).context("demo owners.yaml")
}

struct Printer {
    started: std::time::Instant,
}

impl Printer {
    fn clock(&self) -> String {
        let seconds = self.started.elapsed().as_secs();
        format!("[{:02}:{:02}]", seconds / 60, seconds % 60)
    }
}

async fn print_delivery(
    State(printer): State<Arc<Printer>>,
    axum::extract::Path(team): axum::extract::Path<String>,
    Json(body): Json<Value>,
) -> &'static str {
    let action = body["action"].as_str().unwrap_or("");
    let title = body["title"].as_str().unwrap_or("");
    let url = body["incident_url"].as_str().unwrap_or("");
    let clock = printer.clock();
    match action {
        "page" => {
            println!("{clock} PAGE   {team}: {title}");
            if let Some(lines) = body["lines"].as_array() {
                for line in lines.iter().filter_map(Value::as_str).take(4) {
                    println!("                {line}");
                }
            }
            println!("                {url}");
        }
        "notify" => println!("{clock} notify {team}: {}", body["note"].as_str().unwrap_or(title)),
        "resolve" => println!("{clock} resolved for {team}: {}", body["incident_id"].as_str().unwrap_or("")),
        _ => {}
    }
    "ok"
}
