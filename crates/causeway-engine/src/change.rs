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
    checked: std::collections::HashSet<crate::model::ResourceId>,
    versions: BTreeMap<String, BTreeSet<String>>,
    latest: BTreeMap<String, String>,
}

impl VersionTracker {
    /// Checks the resources of `spans` not seen before: a service version never seen is a deploy,
    /// dated by the earliest start among the batch's spans of that resource.
    pub fn detect(&mut self, dictionary: &Dictionary, spans: &[&Span]) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut fresh: BTreeMap<crate::model::ResourceId, Nanos> = BTreeMap::new();
        for span in spans {
            if !self.checked.contains(&span.resource) {
                let start = fresh.entry(span.resource).or_insert(span.start);
                *start = (*start).min(span.start);
            }
        }
        for (id, at) in fresh {
            self.checked.insert(id);
            let resource = dictionary.resources.get(id);
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
        changes
    }
}
