//! Replay bundles (SPEC §7): a directory of recorded inputs.
//!
//! ```text
//! traces.jsonl[.gz]   one OTLP/JSON ExportTraceServiceRequest per line (Collector file exporter)
//! alerts.jsonl        optional: one Alertmanager webhook v4 payload per line
//! changes.jsonl       optional: change events (SPEC §2.3)
//! causeway.yaml       optional: journeys, routing, ownership sources (paths relative to the bundle)
//! owners.yaml | catalog/   ownership, used when causeway.yaml names none
//! truth.json          optional: ground truth for scoring
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::config::Config;

pub struct Bundle {
    pub dir: PathBuf,
    pub traces: PathBuf,
    pub config: Config,
    pub truth: Option<Truth>,
}

impl Bundle {
    pub fn open(dir: &Path) -> anyhow::Result<Bundle> {
        if !dir.is_dir() {
            anyhow::bail!("{} is not a bundle directory", dir.display());
        }
        let traces = ["traces.jsonl", "traces.jsonl.gz"]
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.exists())
            .with_context(|| format!("{}: no traces.jsonl or traces.jsonl.gz", dir.display()))?;
        let config_path = dir.join("causeway.yaml");
        let mut config = if config_path.exists() { Config::load(&config_path)? } else { Config::default() };
        config.base_dir = dir.to_path_buf();
        if config.ownership.owners.is_none() && dir.join("owners.yaml").exists() {
            config.ownership.owners = Some(PathBuf::from("owners.yaml"));
        }
        if config.ownership.catalog.is_none() && dir.join("catalog").is_dir() {
            config.ownership.catalog = Some(PathBuf::from("catalog"));
        }
        let truth_path = dir.join("truth.json");
        let truth = if truth_path.exists() {
            let text = std::fs::read_to_string(&truth_path)
                .with_context(|| format!("cannot read {}", truth_path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| format!("{}: invalid truth file", truth_path.display()))?)
        } else {
            None
        };
        Ok(Bundle { dir: dir.to_path_buf(), traces, config, truth })
    }

    pub fn optional(&self, name: &str) -> Option<PathBuf> {
        let path = self.dir.join(name);
        path.exists().then_some(path)
    }

    /// Size of the traces file on disk (for progress).
    pub fn traces_bytes(&self) -> u64 {
        std::fs::metadata(&self.traces).map_or(0, |metadata| metadata.len())
    }

    /// Lines of the traces file, decompressed when gzipped; `progress` receives bytes read from disk.
    pub fn trace_lines(&self, progress: impl Fn(u64) + 'static) -> anyhow::Result<Box<dyn BufRead>> {
        let file = File::open(&self.traces).with_context(|| format!("cannot open {}", self.traces.display()))?;
        let counting = CountingReader { inner: file, progress: Box::new(progress), read: 0 };
        let gz = self.traces.extension().is_some_and(|extension| extension == "gz");
        Ok(if gz {
            Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(BufReader::new(counting))))
        } else {
            Box::new(BufReader::with_capacity(1 << 20, counting))
        })
    }
}

struct CountingReader {
    inner: File,
    progress: Box<dyn Fn(u64)>,
    read: u64,
}

impl Read for CountingReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.read += n as u64;
        (self.progress)(self.read);
        Ok(n)
    }
}

/// `truth.json`: the faults a bundle contains (SPEC §7).
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    pub faults: Vec<Fault>,
    /// Failures callers absorb: they must page nobody (pages during them are false pages).
    #[serde(default)]
    pub harmless: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    pub id: String,
    pub start: String,
    pub end: String,
    pub service: String,
    pub team: String,
    pub kind: String,
}
