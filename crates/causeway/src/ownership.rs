//! Loading ownership: `owners.yaml` (SPEC §2.4 simple form) and Backstage catalog files
//! (multi-document `catalog-info.yaml`: Component, Resource, Group, System).
//!
//! Produces the engine's merged [`Ownership`] plus each team's escalation targets
//! ([`TeamContacts`]). Every problem is reported with file and line, and loading continues
//! with the rest, so `check-config` can print them all and `audit` can work on what is valid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use causeway_engine::ownership::{OwnerSource, Ownership};
use serde::Deserialize;

use crate::config::{ConfigError, parse_yaml};

/// How to reach a team (or a component, when the catalog names a component-level key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeamContacts {
    pub pagerduty: Option<SecretRef>,
    pub opsgenie: Option<OpsgenieTarget>,
    pub slack: Option<SecretRef>,
    pub webhook: Option<WebhookTarget>,
    /// Alertmanager receivers that belong to this team (SPEC §6).
    pub alertmanager_receivers: Vec<String>,
}

impl TeamContacts {
    /// A team with no way to page it (an audit finding).
    pub fn has_pager(&self) -> bool {
        self.pagerduty.is_some() || self.opsgenie.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.pagerduty.is_none() && self.opsgenie.is_none() && self.slack.is_none() && self.webhook.is_none()
    }

    fn fill_from(&mut self, other: TeamContacts) {
        if self.pagerduty.is_none() {
            self.pagerduty = other.pagerduty;
        }
        if self.opsgenie.is_none() {
            self.opsgenie = other.opsgenie;
        }
        if self.slack.is_none() {
            self.slack = other.slack;
        }
        if self.webhook.is_none() {
            self.webhook = other.webhook;
        }
        for receiver in other.alertmanager_receivers {
            if !self.alertmanager_receivers.contains(&receiver) {
                self.alertmanager_receivers.push(receiver);
            }
        }
    }
}

/// A secret: the name of the environment variable holding it, or a literal taken from a
/// catalog annotation. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    Literal(crate::auth::Secret),
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::Literal(_) => f.write_str("<redacted>"),
        }
    }
}

impl SecretRef {
    /// Reads the secret's value.
    pub fn resolve(&self) -> anyhow::Result<crate::auth::Secret> {
        match self {
            SecretRef::Env(name) => crate::auth::Secret::from_env(name),
            SecretRef::Literal(secret) => Ok(secret.clone()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpsgenieTarget {
    /// The Opsgenie team to use as responder.
    pub team: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    /// Environment variable with the HMAC-SHA256 signing secret.
    pub secret_env: Option<String>,
}

/// Everything the ownership sources said.
#[derive(Debug, Default)]
pub struct LoadedOwnership {
    pub ownership: Ownership,
    /// Per team.
    pub contacts: BTreeMap<String, TeamContacts>,
    /// Per component, when the catalog gives a component its own PagerDuty key.
    pub component_contacts: BTreeMap<String, TeamContacts>,
    /// Problems found, each located; loading went on past them.
    pub errors: Vec<ConfigError>,
}

impl LoadedOwnership {
    pub fn contacts_of(&self, team: &str) -> TeamContacts {
        self.contacts.get(team).cloned().unwrap_or_default()
    }
}

/// Loads and merges: catalog first, owners.yaml filling gaps (SPEC §2.4).
pub fn load(owners: Option<&Path>, catalog: Option<&Path>, default_team: Option<&str>) -> LoadedOwnership {
    let mut loaded = LoadedOwnership::default();
    let mut owners_default = None;
    let catalog_files = catalog.map(catalog_files).unwrap_or_default();
    if let Some(Err(error)) = catalog.map(|path| std::fs::metadata(path).map(|_| ())) {
        loaded
            .errors
            .push(ConfigError::Read { path: catalog.map(Path::to_path_buf).unwrap_or_default(), source: error });
    }
    for file in catalog_files {
        load_catalog_file(&file, &mut loaded);
    }
    if let Some(path) = owners {
        owners_default = load_owners_file(path, &mut loaded);
    }
    let default_team = default_team.map(str::to_string).or(owners_default).unwrap_or_else(|| "sre".to_string());
    loaded.ownership.default_team = default_team.clone();
    loaded.ownership.add_team(&default_team);
    loaded
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnersFile {
    #[serde(default)]
    teams: BTreeMap<String, TeamEntry>,
    #[serde(default)]
    services: BTreeMap<String, ServiceEntry>,
    #[serde(default)]
    default_team: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TeamEntry {
    #[serde(default)]
    pagerduty: Option<PagerDutyEntry>,
    #[serde(default)]
    opsgenie: Option<OpsgenieEntry>,
    #[serde(default)]
    slack: Option<SlackEntry>,
    #[serde(default)]
    webhook: Option<WebhookEntry>,
    #[serde(default)]
    alertmanager_receivers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PagerDutyEntry {
    routing_key_env: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpsgenieEntry {
    team: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlackEntry {
    webhook_env: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookEntry {
    url: String,
    #[serde(default)]
    secret_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    team: String,
    #[serde(default)]
    runbook: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
}

fn load_owners_file(path: &Path, loaded: &mut LoadedOwnership) -> Option<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(source) => {
            loaded.errors.push(ConfigError::Read { path: path.to_path_buf(), source });
            return None;
        }
    };
    let file: OwnersFile = match parse_yaml(&text, path) {
        Ok(file) => file,
        Err(error) => {
            loaded.errors.push(error);
            return None;
        }
    };
    for (team, entry) in file.teams {
        loaded.ownership.add_team(&team);
        let contacts = TeamContacts {
            pagerduty: entry.pagerduty.map(|pagerduty| SecretRef::Env(pagerduty.routing_key_env)),
            opsgenie: entry.opsgenie.map(|opsgenie| OpsgenieTarget { team: opsgenie.team }),
            slack: entry.slack.map(|slack| SecretRef::Env(slack.webhook_env)),
            webhook: entry.webhook.map(|webhook| WebhookTarget { url: webhook.url, secret_env: webhook.secret_env }),
            alertmanager_receivers: entry.alertmanager_receivers,
        };
        loaded.contacts.entry(team).or_default().fill_from(contacts);
    }
    for (service, entry) in file.services {
        loaded.ownership.assign(&service, &entry.team, OwnerSource::OwnersFile);
        let component = loaded.ownership.component_mut(&service);
        if let Some(runbook) = entry.runbook {
            if !component.runbooks.contains(&runbook) {
                component.runbooks.push(runbook);
            }
        }
        for dependency in entry.depends_on {
            if !component.depends_on.contains(&dependency) {
                component.depends_on.push(dependency);
            }
        }
    }
    file.default_team
}

/// `catalog` may be one file or a directory searched recursively for `*.yaml` / `*.yml`.
fn catalog_files(catalog: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![catalog.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
            }
        } else if path.extension().is_some_and(|extension| extension == "yaml" || extension == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[derive(Deserialize)]
struct Entity {
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: EntitySpec,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EntitySpec {
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
}

/// Splits a multi-document YAML file, keeping each document's first line number.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (index, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            if !current.trim().is_empty() {
                documents.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = index + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        documents.push((start, current));
    }
    documents
}

fn load_catalog_file(path: &Path, loaded: &mut LoadedOwnership) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(source) => {
            loaded.errors.push(ConfigError::Read { path: path.to_path_buf(), source });
            return;
        }
    };
    for (first_line, document) in documents(&text) {
        match parse_yaml::<Entity>(&document, path) {
            Ok(entity) => add_entity(entity, loaded),
            Err(ConfigError::Invalid { path, line, column, key, message }) => {
                loaded.errors.push(ConfigError::Invalid { path, line: line + first_line - 1, column, key, message })
            }
            Err(error) => loaded.errors.push(error),
        }
    }
}

/// `group:default/payments` -> `payments`.
fn entity_name(reference: &str) -> &str {
    let without_kind = reference.split_once(':').map_or(reference, |(_, rest)| rest);
    without_kind.rsplit_once('/').map_or(without_kind, |(_, name)| name)
}

fn add_entity(entity: Entity, loaded: &mut LoadedOwnership) {
    let name = entity.metadata.name.clone();
    let annotations = &entity.metadata.annotations;
    match entity.kind.as_str() {
        "Component" | "Resource" => {
            // Aliases name the component the way client spans do (`postgresql/payments`):
            // Backstage names cannot contain a slash.
            let mut names = vec![name.clone()];
            if let Some(aliases) = annotations.get("causeway.dev/aliases") {
                names.extend(aliases.split(',').map(str::trim).filter(|alias| !alias.is_empty()).map(str::to_string));
            }
            for component_name in &names {
                if let Some(owner) = &entity.spec.owner {
                    loaded.ownership.assign(component_name, entity_name(owner), OwnerSource::Catalog);
                }
                let component = loaded.ownership.component_mut(component_name);
                component.entity_kind = Some(entity.kind.clone());
                if let Some(system) = &entity.spec.system {
                    component.system = Some(entity_name(system).to_string());
                }
                for dependency in &entity.spec.depends_on {
                    let dependency = entity_name(dependency).to_string();
                    if !component.depends_on.contains(&dependency) {
                        component.depends_on.push(dependency);
                    }
                }
                if let Some(runbook) = annotations.get("causeway.dev/runbook") {
                    if !component.runbooks.contains(runbook) {
                        component.runbooks.push(runbook.clone());
                    }
                }
                let contacts = contacts_from_annotations(annotations);
                if !contacts.is_empty() {
                    loaded.component_contacts.entry(component_name.clone()).or_default().fill_from(contacts);
                }
            }
        }
        "Group" => {
            loaded.ownership.add_team(&name);
            let mut contacts = contacts_from_annotations(annotations);
            if let Some(receivers) = annotations.get("causeway.dev/alertmanager-receivers") {
                contacts.alertmanager_receivers =
                    receivers.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).collect();
            }
            loaded.contacts.entry(name).or_default().fill_from(contacts);
        }
        _ => {} // System, API, User, Domain, Location: nothing to route on.
    }
}

fn contacts_from_annotations(annotations: &BTreeMap<String, String>) -> TeamContacts {
    TeamContacts {
        pagerduty: annotations
            .get("pagerduty.com/integration-key")
            .map(|key| SecretRef::Literal(crate::auth::Secret::new(key.clone())))
            .or_else(|| {
                annotations.get("causeway.dev/pagerduty-routing-key-env").map(|env| SecretRef::Env(env.clone()))
            }),
        opsgenie: annotations.get("opsgenie.com/team").map(|team| OpsgenieTarget { team: team.clone() }),
        slack: annotations.get("causeway.dev/slack-webhook-env").map(|env| SecretRef::Env(env.clone())),
        webhook: annotations.get("causeway.dev/webhook-url").map(|url| WebhookTarget {
            url: url.clone(),
            secret_env: annotations.get("causeway.dev/webhook-secret-env").cloned(),
        }),
        alertmanager_receivers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    const CATALOG: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  annotations:
    pagerduty.com/integration-key: R0UTINGKEY
    causeway.dev/runbook: https://wiki.example/payments
spec:
  type: service
  owner: group:default/payments
  system: money
  dependsOn: [resource:default/payments-db]
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: payments-db
  annotations:
    causeway.dev/aliases: postgresql/payments
spec:
  type: database
  owner: dba
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments
  annotations:
    opsgenie.com/team: payments-ops
    causeway.dev/alertmanager-receivers: payments-pager, payments-chat
spec:
  type: team
";

    #[test]
    fn catalog_then_owners_file_merge_with_conflicts() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "catalog/payments/catalog-info.yaml", CATALOG);
        let owners = write(
            dir.path(),
            "owners.yaml",
            "teams:\n  checkout:\n    slack: { webhook_env: SLACK_CHECKOUT }\nservices:\n  payments-api: { team: checkout }\n  checkout-api: { team: checkout, runbook: https://wiki.example/checkout }\ndefault_team: sre\n",
        );
        let loaded = load(Some(&owners), Some(&dir.path().join("catalog")), None);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let ownership = &loaded.ownership;
        assert_eq!(ownership.owner("payments-api", "error", None).map(|o| o.team), Some("payments".into()));
        assert_eq!(ownership.owner("postgresql/payments", "error", None).map(|o| o.team), Some("dba".into()));
        assert_eq!(ownership.owner("checkout-api", "error", None).map(|o| o.source), Some(OwnerSource::OwnersFile));
        assert_eq!(ownership.conflicts.len(), 1, "payments-api: catalog says payments, owners.yaml says checkout");
        assert_eq!(
            ownership.component("payments-api").map(|c| c.runbooks.clone()),
            Some(vec!["https://wiki.example/payments".to_string()])
        );
        assert_eq!(
            ownership.component("payments-api").map(|c| c.depends_on.clone()),
            Some(vec!["payments-db".to_string()])
        );
        let payments = loaded.contacts_of("payments");
        assert_eq!(payments.opsgenie, Some(OpsgenieTarget { team: "payments-ops".into() }));
        assert_eq!(payments.alertmanager_receivers, vec!["payments-pager", "payments-chat"]);
        assert!(loaded.component_contacts["payments-api"].pagerduty.is_some());
        assert!(!format!("{:?}", loaded.component_contacts).contains("R0UTINGKEY"), "secrets never print");
        assert_eq!(loaded.contacts_of("checkout").slack, Some(SecretRef::Env("SLACK_CHECKOUT".into())));
        assert_eq!(ownership.default_team, "sre");
    }

    #[test]
    fn errors_name_file_and_line_and_loading_continues() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broken = "kind: Component\nmetadata:\n  name: a\nspec:\n  owner: team-a\n---\nkind: Component\nmetadata:\n  nam: b\n---\nkind: Component\nmetadata:\n  name: c\nspec:\n  owner: team-c\n";
        write(dir.path(), "catalog/catalog-info.yaml", broken);
        let owners = write(dir.path(), "owners.yaml", "services:\n  d: { team: team-d, oncall: yes }\n");
        let loaded = load(Some(&owners), Some(&dir.path().join("catalog")), None);
        let messages: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("catalog-info.yaml:9:") && messages[0].contains("name"), "{}", messages[0]);
        assert!(messages[1].contains("owners.yaml:2:") && messages[1].contains("oncall"), "{}", messages[1]);
        assert_eq!(loaded.ownership.owner("a", "error", None).map(|o| o.team), Some("team-a".into()));
        assert_eq!(loaded.ownership.owner("c", "error", None).map(|o| o.team), Some("team-c".into()));
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_crash() {
        let loaded = load(Some(Path::new("/nonexistent/owners.yaml")), None, Some("ops"));
        assert_eq!(loaded.errors.len(), 1);
        assert!(loaded.errors[0].to_string().contains("/nonexistent/owners.yaml"));
        assert_eq!(loaded.ownership.default_team, "ops");
    }
}
