//! Changes (SPEC §2.3): deploys and config changes, posted or detected from spans.
//!
//! A new `service.version` seen in spans is a deploy: [`VersionTracker`] notices it when a
//! resource appears, at the start time of the first span that carries it (event time).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Dictionary, Nanos, Span};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `deploy`, `config`, `flag` or `infra`.
    pub kind: String,
    pub at: Nanos,
    #[serde(default)]
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `api` (posted) or `detected` (a new version seen in spans).
    pub source: String,
    /// For detected deploys: the version seen before, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
}

/// Remembers versions seen per service and reports new ones.
#[derive(Debug, Default, Clone)]
pub struct VersionTracker {
    seen_resources: usize,
    versions: BTreeMap<String, BTreeSet<String>>,
    latest: BTreeMap<String, String>,
}

impl VersionTracker {
    /// Checks resources added to `dictionary` since the last call; `spans` are the batch that
    /// introduced them (for the time of the first span of a new version).
    pub fn detect(&mut self, dictionary: &Dictionary, spans: &[&Span]) -> Vec<Change> {
        let mut changes = Vec::new();
        let n_resources = dictionary.resources.len();
        if n_resources == self.seen_resources {
            return changes;
        }
        for (id, resource) in dictionary.resources.iter().skip(self.seen_resources) {
            if resource.version.is_none() {
                continue;
            }
            let service = dictionary.str(resource.service).to_string();
            let version = dictionary.str(resource.version).to_string();
            let known = self.versions.entry(service.clone()).or_default();
            if known.contains(&version) {
                continue;
            }
            let first_time = known.is_empty();
            known.insert(version.clone());
            let previous = self.latest.insert(service.clone(), version.clone());
            if first_time {
                continue; // the first version seen is where we start, not a deploy
            }
            let at = spans.iter().filter(|span| span.resource == id).map(|span| span.start).min().unwrap_or(0);
            changes.push(Change {
                summary: format!(
                    "{service} {} seen in spans{}",
                    version,
                    previous.as_deref().map(|p| format!(" (was {p})")).unwrap_or_default()
                ),
                service,
                version: Some(version),
                kind: "deploy".to_string(),
                at,
                links: Vec::new(),
                source: "detected".to_string(),
                previous_version: previous,
            });
        }
        self.seen_resources = n_resources;
        changes
    }
}
