//! Who owns what (SPEC §2.4): components (services and uninstrumented dependencies) to teams.
//!
//! Sources are merged in order: Backstage catalog, then owners.yaml filling gaps, then resource
//! attributes seen on spans. Disagreements are kept as [`Conflict`]s for `check-config` and
//! `audit`. Reroutes become corrections that win over every source for their component and
//! failure signature. A component without an owner climbs to its closest owned caller (done by
//! the router, which knows the causal chain); `default_team` catches the rest: nothing is ever
//! dropped for lack of an owner.
//!
//! Parsing of the files lives in the binary; this module is the merged model.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Where an ownership fact came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source", content = "detail")]
pub enum OwnerSource {
    Catalog,
    OwnersFile,
    ResourceAttribute,
    /// A person rerouted an earlier incident of this component and signature.
    Correction,
    /// The component had no owner; its closest owned caller's team took it.
    ClimbedFrom(String),
    /// Nothing named an owner: `default_team`.
    DefaultTeam,
    /// An alert's `team` label, or the owner of its `service` label.
    AlertLabel,
    /// The journey's owner (static routing, insufficient evidence, diffuse blame).
    JourneyOwner,
}

impl OwnerSource {
    pub fn describe(&self) -> String {
        match self {
            OwnerSource::Catalog => "Backstage catalog".to_string(),
            OwnerSource::OwnersFile => "owners.yaml".to_string(),
            OwnerSource::ResourceAttribute => "span resource attribute".to_string(),
            OwnerSource::Correction => "earlier reroute (ownership correction)".to_string(),
            OwnerSource::ClimbedFrom(component) => format!("unowned {component}, climbed to its closest owned caller"),
            OwnerSource::DefaultTeam => "default_team".to_string(),
            OwnerSource::AlertLabel => "alert labels".to_string(),
            OwnerSource::JourneyOwner => "journey owner".to_string(),
        }
    }
}

/// What the sources say about one component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub team: Option<String>,
    pub source: Option<OwnerSource>,
    pub runbooks: Vec<String>,
    pub system: Option<String>,
    pub depends_on: Vec<String>,
    /// Backstage entity kind (`Component`, `Resource`) when known.
    pub entity_kind: Option<String>,
}

/// Two sources naming different teams for one component. The earlier source wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub component: String,
    pub kept_team: String,
    pub kept_source: OwnerSource,
    pub other_team: String,
    pub other_source: OwnerSource,
}

/// An owner with the reason it is the owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub team: String,
    pub source: OwnerSource,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ownership {
    pub components: BTreeMap<String, Component>,
    pub teams: BTreeSet<String>,
    pub default_team: String,
    pub conflicts: Vec<Conflict>,
    /// `(component, signature)` -> team, from reroutes.
    corrections: BTreeMap<(String, String), String>,
}

impl Default for Ownership {
    fn default() -> Self {
        Ownership::new("sre")
    }
}

impl Ownership {
    pub fn new(default_team: &str) -> Ownership {
        let mut teams = BTreeSet::new();
        teams.insert(default_team.to_string());
        Ownership {
            components: BTreeMap::new(),
            teams,
            default_team: default_team.to_string(),
            conflicts: Vec::new(),
            corrections: BTreeMap::new(),
        }
    }

    pub fn add_team(&mut self, team: &str) {
        self.teams.insert(team.to_string());
    }

    /// Records that `source` says `team` owns `component`. The first source to name an owner
    /// keeps it; a later different answer is a conflict.
    pub fn assign(&mut self, component: &str, team: &str, source: OwnerSource) {
        self.teams.insert(team.to_string());
        let entry = self.components.entry(component.to_string()).or_default();
        match (&entry.team, &entry.source) {
            (None, _) => {
                entry.team = Some(team.to_string());
                entry.source = Some(source);
            }
            (Some(existing), Some(existing_source)) if existing != team => {
                self.conflicts.push(Conflict {
                    component: component.to_string(),
                    kept_team: existing.clone(),
                    kept_source: existing_source.clone(),
                    other_team: team.to_string(),
                    other_source: source,
                });
            }
            _ => {}
        }
    }

    /// Mutable access for the other facts (runbooks, system, dependencies).
    pub fn component_mut(&mut self, component: &str) -> &mut Component {
        self.components.entry(component.to_string()).or_default()
    }

    pub fn component(&self, component: &str) -> Option<&Component> {
        self.components.get(component)
    }

    /// Remembers a reroute: later failures of `component` with `signature` go to `team`.
    pub fn correct(&mut self, component: &str, signature: &str, team: &str) {
        self.teams.insert(team.to_string());
        self.corrections.insert((component.to_string(), signature.to_string()), team.to_string());
    }

    pub fn corrections(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.corrections
            .iter()
            .map(|((component, signature), team)| (component.as_str(), signature.as_str(), team.as_str()))
    }

    /// The owner of a component from configured sources and corrections; `resource_team` is
    /// what span resource attributes said (the last source). `None` when nothing names one.
    pub fn owner(&self, component: &str, signature: &str, resource_team: Option<&str>) -> Option<Owner> {
        if let Some(team) = self.corrections.get(&(component.to_string(), signature.to_string())) {
            return Some(Owner { team: team.clone(), source: OwnerSource::Correction });
        }
        if let Some(Component { team: Some(team), source: Some(source), .. }) = self.components.get(component) {
            return Some(Owner { team: team.clone(), source: source.clone() });
        }
        resource_team
            .filter(|team| !team.is_empty())
            .map(|team| Owner { team: team.to_string(), source: OwnerSource::ResourceAttribute })
    }

    pub fn default_owner(&self) -> Owner {
        Owner { team: self.default_team.clone(), source: OwnerSource::DefaultTeam }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_source_wins_and_conflicts_are_kept() {
        let mut ownership = Ownership::new("sre");
        ownership.assign("payments-api", "payments", OwnerSource::Catalog);
        ownership.assign("payments-api", "checkout", OwnerSource::OwnersFile);
        ownership.assign("postgresql/payments", "dba", OwnerSource::OwnersFile);
        let owner = ownership.owner("payments-api", "error", None).expect("owned");
        assert_eq!(owner, Owner { team: "payments".into(), source: OwnerSource::Catalog });
        assert_eq!(ownership.conflicts.len(), 1);
        assert_eq!(ownership.conflicts[0].other_team, "checkout");
        assert_eq!(ownership.owner("postgresql/payments", "error", None).map(|o| o.team), Some("dba".into()));
    }

    #[test]
    fn resource_attributes_fill_gaps_and_corrections_win() {
        let mut ownership = Ownership::new("sre");
        ownership.assign("cart", "shop", OwnerSource::OwnersFile);
        assert_eq!(
            ownership.owner("search", "error", Some("discovery")),
            Some(Owner { team: "discovery".into(), source: OwnerSource::ResourceAttribute })
        );
        assert_eq!(ownership.owner("unknown", "error", None), None);
        ownership.correct("cart", "error", "platform");
        assert_eq!(ownership.owner("cart", "error", None).map(|o| o.source), Some(OwnerSource::Correction));
        assert_eq!(ownership.owner("cart", "latency", None).map(|o| o.team), Some("shop".into()));
    }
}
