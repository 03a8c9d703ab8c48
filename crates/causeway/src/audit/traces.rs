//! Traces for `audit --traces BUNDLE`: where the failures of a service come from.
//!
//! The bundle's `traces.jsonl[.gz]` (one OTLP/JSON `ExportTraceServiceRequest` per line, SPEC §7)
//! is decoded with the same edge code the server uses (`receivers::otlp`: old and new
//! semantic-convention keys, callees named from `service.peer.name` / `peer.service`,
//! `db.system.name` + `db.namespace`, `server.address`) into an engine [`TraceWindow`] that keeps
//! the whole bundle (no retention; the window's memory bound still applies, oldest first).
//!
//! [`failures_of`] then asks the engine's own causality analysis (SPEC §4.2, the
//! propagate-to-root error walk) about every erroring incoming span of a service over the whole
//! bundle, without a baseline: which component each failing request's error originates in. This
//! is what the router would blame, applied to every failure of the service instead of a
//! symptom window. The audit's `absorbed_pages` finding is computed from it (see `findings.rs`).

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use causeway_engine::analysis::{EvidenceQuery, SymptomKind, analyze};
use causeway_engine::{Nanos, TraceWindow, WindowConfig};

use crate::receivers::otlp::{self, ConvertOptions, Encoding};

/// Failing requests of one service and the components they were blamed on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceFailures {
    /// Erroring incoming spans of the service (one per trace) that were analysed.
    pub n_failing: usize,
    /// Blamed component and its votes (a request blaming two components gives each half).
    pub blamed: Vec<(String, f64)>,
}

/// A bundle's traces, held for analysis.
pub struct TraceBundle {
    window: TraceWindow,
    pub n_spans: usize,
    pub file: PathBuf,
}

impl std::fmt::Debug for TraceBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceBundle").field("file", &self.file).field("n_spans", &self.n_spans).finish_non_exhaustive()
    }
}

/// Reads `BUNDLE/traces.jsonl[.gz]` (or the file itself). Lines that cannot be decoded are
/// reported in `errors` (the count and the first one, with its line number) and skipped.
pub fn load_bundle(bundle: &Path, show_progress: bool, errors: &mut Vec<String>) -> Option<TraceBundle> {
    let file = match traces_file(bundle) {
        Ok(file) => file,
        Err(message) => {
            errors.push(message);
            return None;
        }
    };
    let opened = match std::fs::File::open(&file) {
        Ok(opened) => opened,
        Err(error) => {
            errors.push(format!("cannot read {}: {error}", file.display()));
            return None;
        }
    };
    let progress = (show_progress && std::io::stderr().is_terminal()).then(|| {
        let length = opened.metadata().map(|metadata| metadata.len()).unwrap_or(0);
        let bar = indicatif::ProgressBar::new(length);
        bar.set_style(
            indicatif::ProgressStyle::with_template("reading traces {bar:30} {bytes}/{total_bytes} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let raw: Box<dyn Read> = match &progress {
        Some(bar) => Box::new(bar.wrap_read(opened)),
        None => Box::new(opened),
    };
    let reader: Box<dyn BufRead> = if file.extension().is_some_and(|extension| extension == "gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(raw)))
    } else {
        Box::new(BufReader::new(raw))
    };
    let mut window = TraceWindow::new(WindowConfig { retention: Nanos::MAX, ..WindowConfig::default() });
    let options = ConvertOptions::default();
    let mut spans = Vec::new();
    let mut n_spans = 0usize;
    let mut n_bad_lines = 0usize;
    let mut first_bad: Option<String> = None;
    for (index, line) in reader.lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                errors.push(format!("{}:{}: cannot read: {error}", file.display(), index + 1));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let mut request = match otlp::decode(Encoding::Json, line.as_bytes()) {
            Ok(request) => request,
            Err(error) => {
                n_bad_lines += 1;
                first_bad.get_or_insert_with(|| format!("{}:{}: {error}", file.display(), index + 1));
                continue;
            }
        };
        otlp::validate(&mut request);
        otlp::convert(&request, &options, window.dictionary_mut(), &mut spans);
        n_spans += spans.len();
        // Every span "arrives" at time 0 and nothing expires: the audit looks at the whole bundle.
        window.insert(0, spans.drain(..));
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(first) = first_bad {
        errors.push(format!(
            "{n_bad_lines} line{} of {} could not be decoded as OTLP/JSON and were skipped (first: {first})",
            if n_bad_lines == 1 { "" } else { "s" },
            file.display()
        ));
    }
    Some(TraceBundle { window, n_spans, file })
}

fn traces_file(bundle: &Path) -> Result<PathBuf, String> {
    if bundle.is_file() {
        return Ok(bundle.to_path_buf());
    }
    if !bundle.exists() {
        return Err(format!("cannot read {}: no such file or directory", bundle.display()));
    }
    ["traces.jsonl", "traces.jsonl.gz"]
        .into_iter()
        .map(|name| bundle.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| format!("{}: no traces.jsonl or traces.jsonl.gz in the bundle", bundle.display()))
}

/// Bad traces analysed per service at most (the engine's own default bound).
const MAX_TRACES: usize = 2_000;

/// Where the failures of `service`'s incoming spans originate, over the whole bundle.
pub fn failures_of(bundle: &TraceBundle, service: &str) -> ServiceFailures {
    let query = EvidenceQuery {
        entry_service: service.to_string(),
        entry_operation: None,
        kind: SymptomKind::Error,
        from: Nanos::MIN,
        to: Nanos::MAX - 1,
        // No baseline: every failure counts (an empty window at the far end of time).
        baseline_from: Nanos::MAX,
        baseline_to: Nanos::MAX,
        latency_threshold: None,
        max_traces: MAX_TRACES,
    };
    let analysis = analyze(&bundle.window, &query);
    ServiceFailures {
        n_failing: analysis.n_bad_sampled,
        blamed: analysis.candidates.iter().map(|candidate| (candidate.component.clone(), candidate.votes)).collect(),
    }
}
