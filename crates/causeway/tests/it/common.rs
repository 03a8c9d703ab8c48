//! Test harness: an in-process server on free loopback ports, and helpers to read it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use causeway::config::Config;
use causeway::server::{BoundAddresses, Server};

pub struct TestServer {
    pub addresses: BoundAddresses,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server from configuration text; listen addresses are replaced by free ports.
    pub async fn start(yaml: &str) -> TestServer {
        let mut config = Config::parse(yaml, Path::new("test.yaml")).expect("test configuration is valid");
        config.listen.otlp_grpc = "127.0.0.1:0".parse().expect("address");
        config.listen.otlp_http = "127.0.0.1:0".parse().expect("address");
        config.listen.http = "127.0.0.1:0".parse().expect("address");
        let data_dir = tempfile::tempdir().expect("temp dir");
        config.data_dir = data_dir.path().to_path_buf();
        let server = Server::bind(config).await.expect("bind loopback ports");
        let addresses = server.addresses().expect("bound addresses");
        let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = receiver.await;
        }));
        TestServer { addresses, data_dir, shutdown: Some(sender), task: Some(task) }
    }

    /// Starts from a configuration file on disk (relative paths resolve against it), with
    /// `serve` options such as `--record`.
    pub async fn start_from(config_path: &Path, options: causeway::server::ServeOptions) -> TestServer {
        let mut config = Config::load(config_path).expect("test configuration is valid");
        config.listen.otlp_grpc = "127.0.0.1:0".parse().expect("address");
        config.listen.otlp_http = "127.0.0.1:0".parse().expect("address");
        config.listen.http = "127.0.0.1:0".parse().expect("address");
        let data_dir = tempfile::tempdir().expect("temp dir");
        config.data_dir = data_dir.path().to_path_buf();
        let server = Server::bind_with(config, options).await.expect("bind loopback ports");
        let addresses = server.addresses().expect("bound addresses");
        let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = receiver.await;
        }));
        TestServer { addresses, data_dir, shutdown: Some(sender), task: Some(task) }
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://{}{path}", self.addresses.http)
    }

    pub fn otlp_http(&self) -> String {
        format!("http://{}/v1/traces", self.addresses.otlp_http)
    }

    pub fn otlp_grpc(&self) -> String {
        format!("http://{}", self.addresses.otlp_grpc)
    }

    /// Polls `GET /api/v1/traces/{id}` until the trace holds `n_spans` spans.
    pub async fn wait_for_trace(&self, trace_id: &str, n_spans: usize) -> serde_json::Value {
        let client = reqwest::Client::new();
        let mut last = serde_json::Value::Null;
        for _ in 0..100 {
            let response =
                client.get(self.api(&format!("/api/v1/traces/{trace_id}"))).send().await.expect("API answers");
            if response.status().is_success() {
                last = response.json().await.expect("trace JSON");
                if last["spans"].as_array().map_or(0, Vec::len) >= n_spans {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("trace {trace_id} did not reach {n_spans} spans; last seen: {last}");
    }

    pub async fn stop(mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server stopped cleanly");
        }
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|error| panic!("cannot read fixture {name}: {error}"))
}

/// The Python with the OpenTelemetry SDK that `.ci/run` installs into `.venv` at the workspace
/// root (or `CAUSEWAY_TEST_PYTHON`).
pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("CAUSEWAY_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3");
    assert!(
        path.exists(),
        "the OpenTelemetry Python SDK is missing: run `python3 -m venv .venv && .venv/bin/pip install \
         opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc` \
         at the workspace root (or set CAUSEWAY_TEST_PYTHON)"
    );
    path
}

/// `causeway serve` as a child process, for tests that measure, kill or restart the process,
/// or need environment variables (secrets) set for it.
pub struct ChildServer {
    pub addresses: ChildAddresses,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub struct ChildAddresses {
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub http: String,
}

impl ChildServer {
    pub async fn start(yaml: &str) -> ChildServer {
        ChildServer::start_with(yaml, &[], &[]).await
    }

    /// Starts with extra environment variables and files written next to the configuration.
    pub async fn start_with(yaml: &str, env: &[(&str, &str)], files: &[(&str, &str)]) -> ChildServer {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write file");
        }
        let yaml = format!(
            "{yaml}\nlisten:\n  otlp_grpc: 127.0.0.1:0\n  otlp_http: 127.0.0.1:0\n  http: 127.0.0.1:0\ndata_dir: {}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("causeway.yaml"), yaml).expect("write config");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, addresses) = spawn_server(dir.path(), &env).await;
        ChildServer { addresses, child, dir, env }
    }

    /// `kill -9`, then start again on the same configuration and data directory.
    pub async fn kill_and_restart(mut self) -> ChildServer {
        let pid = self.pid();
        let status = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().expect("kill");
        assert!(status.success());
        let _ = self.child.wait().await;
        let (child, addresses) = spawn_server(self.dir.path(), &self.env).await;
        ChildServer { addresses, child, dir: self.dir, env: self.env }
    }

    /// A graceful stop (SIGTERM, exit 0), then start again on the same configuration and data.
    pub async fn stop_and_restart(mut self) -> ChildServer {
        let pid = self.pid();
        let status = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("kill");
        assert!(status.success());
        let exit =
            tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await.expect("stops").expect("wait");
        assert!(exit.success(), "server exited with {exit}");
        let (child, addresses) = spawn_server(self.dir.path(), &self.env).await;
        ChildServer { addresses, child, dir: self.dir, env: self.env }
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://{}{path}", self.addresses.http)
    }

    pub fn otlp_http(&self) -> String {
        format!("http://{}/v1/traces", self.addresses.otlp_http)
    }

    /// Everything the server logged so far (all runs).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("child is running")
    }

    fn status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    pub fn rss_bytes(&self) -> u64 {
        self.status_field("VmRSS:")
    }

    pub fn peak_rss_bytes(&self) -> u64 {
        self.status_field("VmHWM:")
    }

    pub async fn stop(mut self) {
        let pid = self.pid();
        // SIGTERM: a graceful stop, which must exit with success.
        let status = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("kill");
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("stops within 20 s")
            .expect("wait");
        assert!(exit.success(), "server exited with {exit}");
    }
}

async fn spawn_server(dir: &Path, env: &[(String, String)]) -> (tokio::process::Child, ChildAddresses) {
    use tokio::io::AsyncBufReadExt;
    let log = std::fs::File::options().create(true).append(true).open(dir.join("server.log")).expect("log file");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_causeway"));
    command
        .arg("serve")
        .arg("--config")
        .arg(dir.join("causeway.yaml"))
        .env("CAUSEWAY_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn causeway serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("server starts within 30 s")
        .expect("read stdout")
        .unwrap_or_else(|| {
            panic!(
                "server exited before listening: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            )
        });
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            .to_string()
    };
    let addresses =
        ChildAddresses { otlp_grpc: field("otlp_grpc"), otlp_http: field("otlp_http"), http: field("http") };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addresses)
}

/// Reads one sample's value from Prometheus text (0 when absent).
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
