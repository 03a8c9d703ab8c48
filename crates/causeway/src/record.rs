//! `serve --record DIR`: writes everything received as a replay bundle (SPEC §7), so real
//! production input can be replayed later against a new configuration.
//!
//! traces.jsonl gets each accepted OTLP request as an OTLP/JSON line; alerts.jsonl each alert
//! as an Alertmanager webhook v4 line (alerts posted to `/api/v2/alerts` are written in that
//! form too, firing at `startsAt`, resolved with their `endsAt`); changes.jsonl each posted
//! change; the configuration and ownership files are copied next to them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use causeway_engine::Nanos;
use causeway_engine::change::Change;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::json;

use crate::config::Config;
use crate::receivers::alertmanager::AlertEvent;
use crate::replay::report::time;

pub struct Recorder {
    dir: PathBuf,
    traces: BufWriter<File>,
    alerts: BufWriter<File>,
    changes: BufWriter<File>,
    failed: bool,
}

impl Recorder {
    /// Creates the bundle directory and copies the configuration and ownership files into it.
    pub fn create(dir: &Path, config: &Config, config_path: Option<&Path>) -> anyhow::Result<Recorder> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let open = |name: &str| -> anyhow::Result<BufWriter<File>> {
            let path = dir.join(name);
            let file = File::options()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Ok(BufWriter::new(file))
        };
        if let Some(path) = config_path {
            std::fs::copy(path, dir.join("causeway.yaml"))
                .with_context(|| format!("cannot copy {}", path.display()))?;
            if let Some(owners) = &config.ownership.owners {
                let source = config.resolve(owners);
                let target = dir.join(owners);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(&source, &target).with_context(|| format!("cannot copy {}", source.display()))?;
            }
            if let Some(catalog) = &config.ownership.catalog {
                copy_tree(&config.resolve(catalog), &dir.join(catalog))?;
            }
        }
        Ok(Recorder {
            dir: dir.to_path_buf(),
            traces: open("traces.jsonl")?,
            alerts: open("alerts.jsonl")?,
            changes: open("changes.jsonl")?,
            failed: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn traces(&mut self, request: &ExportTraceServiceRequest) {
        match serde_json::to_string(request) {
            Ok(line) => self.write_line(WhichFile::Traces, &line),
            Err(error) => tracing::error!(%error, "cannot encode a request for the recording"),
        }
    }

    pub fn alerts(&mut self, events: &[AlertEvent], now: Nanos) {
        if events.is_empty() {
            return;
        }
        let firing = events.iter().any(|event| event.firing);
        let payload = json!({
            "version": "4",
            "receiver": "causeway",
            "status": if firing { "firing" } else { "resolved" },
            "alerts": events.iter().map(|event| json!({
                "status": if event.firing { "firing" } else { "resolved" },
                "labels": event.labels,
                "annotations": event.annotations,
                "startsAt": time(event.starts_at),
                "endsAt": if event.firing { "0001-01-01T00:00:00Z".to_string() } else { time(event.ends_at.unwrap_or(now)) },
                "fingerprint": event.id,
            })).collect::<Vec<_>>(),
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "",
            "groupKey": "causeway-recording",
            "truncatedAlerts": 0,
        });
        self.write_line(WhichFile::Alerts, &payload.to_string());
    }

    pub fn change(&mut self, change: &Change) {
        let line = json!({
            "service": change.service,
            "version": change.version,
            "kind": change.kind,
            "at": time(change.at),
            "summary": change.summary,
            "links": change.links,
        });
        self.write_line(WhichFile::Changes, &line.to_string());
    }

    pub fn flush(&mut self) {
        for writer in [&mut self.traces, &mut self.alerts, &mut self.changes] {
            if let Err(error) = writer.flush() {
                if !self.failed {
                    tracing::error!(%error, dir = %self.dir.display(), "cannot write the recording");
                }
                self.failed = true;
            }
        }
    }

    fn write_line(&mut self, which: WhichFile, line: &str) {
        let writer = match which {
            WhichFile::Traces => &mut self.traces,
            WhichFile::Alerts => &mut self.alerts,
            WhichFile::Changes => &mut self.changes,
        };
        let result = writer.write_all(line.as_bytes()).and_then(|()| writer.write_all(b"\n"));
        if let Err(error) = result {
            if !self.failed {
                tracing::error!(%error, dir = %self.dir.display(), "cannot write the recording");
            }
            self.failed = true;
        }
    }
}

enum WhichFile {
    Traces,
    Alerts,
    Changes,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

fn copy_tree(source: &Path, target: &Path) -> anyhow::Result<()> {
    if source.is_dir() {
        std::fs::create_dir_all(target)?;
        for entry in std::fs::read_dir(source)? {
            let entry = entry?;
            copy_tree(&entry.path(), &target.join(entry.file_name()))?;
        }
    } else if source.exists() {
        std::fs::copy(source, target).with_context(|| format!("cannot copy {}", source.display()))?;
    }
    Ok(())
}
