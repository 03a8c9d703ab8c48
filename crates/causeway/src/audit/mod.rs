//! `causeway audit` (SPEC §6): Prometheus alerting rules and Alertmanager routing checked
//! against the ownership model.
//!
//! For every alerting rule: the services it watches (PromQL selectors on the configured label
//! names, and the rule's own labels), the label sets its alerts will carry, the receivers those
//! reach through Alertmanager's routing tree (the same answers as `amtool config routes test`),
//! the teams the receivers belong to, and the owners of the watched services. From that, the
//! findings of [`report::FindingKind`] (see `findings.rs`).
//!
//! Inputs are read leniently and every problem becomes an error that names its file (and line
//! when known); the audit goes on with what is valid. Nothing here writes anywhere but the
//! output; nothing is fetched from the network.
//!
//! Modules: `rules` (rule files), `promql` (expression analysis), `alertmanager` (routing),
//! `traces` (`--traces`), `findings`, `report` (JSON, table, Markdown, HTML).

pub mod alertmanager;
mod findings;
pub mod promql;
pub mod report;
pub mod rules;
pub mod traces;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;

use anyhow::Context as _;
use regex::Regex;
use serde::Deserialize;

use crate::audit::alertmanager::{LabelSet, RoutingTree, null_as_default};
use crate::audit::report::{AuditReport, RuleReport, Severity};
use crate::audit::rules::AlertRule;
use crate::config::{ConfigError, parse_yaml};
use crate::ownership::{self, LoadedOwnership};

/// `causeway audit`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct AuditArgs {
    /// Prometheus rule files: paths, directories or globs (expanded by causeway, so quote them).
    #[arg(long, required = true, num_args = 1.., value_name = "GLOB")]
    pub rules: Vec<String>,
    /// Alertmanager configuration file (its `route` tree and `receivers`).
    #[arg(long, value_name = "FILE")]
    pub alertmanager: PathBuf,
    /// owners.yaml (SPEC §2.4); overrides `ownership.owners` of --config.
    #[arg(long, value_name = "FILE")]
    pub owners: Option<PathBuf>,
    /// Backstage catalog directory or file; overrides `ownership.catalog` of --config.
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
    /// causeway.yaml: ownership sources and journeys.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A recorded bundle (directory with traces.jsonl[.gz]) to find pages absorbed for
    /// failures caused downstream.
    #[arg(long, value_name = "BUNDLE")]
    pub traces: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with status 1 when findings at or above this severity exist, or an input could
    /// not be read.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Labels that name the service a series is about, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "service,job,app,namespace,k8s_deployment",
        value_name = "LABELS"
    )]
    pub label_names: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Markdown,
    Html,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Warning,
    Error,
}

impl FailOn {
    pub fn severity(self) -> Severity {
        match self {
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
        }
    }
}

/// What to audit, validated.
#[derive(Debug, Clone)]
pub struct AuditInputs {
    pub rules: Vec<String>,
    pub alertmanager: PathBuf,
    pub owners: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub traces: Option<PathBuf>,
    pub label_names: Vec<String>,
    pub show_progress: bool,
}

/// Arguments that cannot describe an audit (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Pattern(#[from] rules::PatternError),
    #[error("--label-names: give at least one label name")]
    NoLabelNames,
    #[error("invalid label name {0:?} in --label-names")]
    InvalidLabelName(String),
    #[error("no ownership source: give --owners, --catalog or --config")]
    NoOwnership,
}

impl AuditInputs {
    pub fn from_args(args: &AuditArgs) -> Result<AuditInputs, UsageError> {
        let label_names: Vec<String> =
            args.label_names.iter().map(|name| name.trim().to_string()).filter(|name| !name.is_empty()).collect();
        if label_names.is_empty() {
            return Err(UsageError::NoLabelNames);
        }
        if let Some(invalid) = label_names.iter().find(|name| !is_label_name(name)) {
            return Err(UsageError::InvalidLabelName(invalid.clone()));
        }
        if args.owners.is_none() && args.catalog.is_none() && args.config.is_none() {
            return Err(UsageError::NoOwnership);
        }
        Ok(AuditInputs {
            rules: args.rules.clone(),
            alertmanager: args.alertmanager.clone(),
            owners: args.owners.clone(),
            catalog: args.catalog.clone(),
            config: args.config.clone(),
            traces: args.traces.clone(),
            label_names,
            show_progress: !args.quiet,
        })
    }
}

fn is_label_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Runs the command: audit, render, exit status (0; 1 for `--fail-on`; 2 for usage errors).
pub fn run_command(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let report = match AuditInputs::from_args(&args).and_then(|inputs| audit(&inputs)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    let rendered = match args.format {
        Format::Table => report.to_table(),
        Format::Json => report.to_json() + "\n",
        Format::Markdown => report.to_markdown(),
        Format::Html => report.to_html(),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, rendered).with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(rendered.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write the report to standard output")?;
        }
    }
    if args.format != Format::Table || args.output.is_some() {
        // The table shows them already; other formats are often piped to a file or a tool.
        for error in &report.errors {
            eprintln!("error: {error}");
        }
    }
    let failed = args
        .fail_on
        .is_some_and(|fail_on| report.has_findings_at_or_above(fail_on.severity()) || !report.errors.is_empty());
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// serde_norway repeats the key path at the start of custom error messages
/// (`route.routes[1].matchers[0]: route.routes[1].matchers: invalid matcher …`); keep it once.
pub(crate) fn without_repeated_key(error: ConfigError) -> ConfigError {
    match error {
        ConfigError::Invalid { path, line, column, key, message } => {
            let message = match message.split_once(": ") {
                Some((prefix, rest)) if !prefix.is_empty() && !prefix.contains(' ') && key.starts_with(prefix) => {
                    rest.to_string()
                }
                _ => message,
            };
            ConfigError::Invalid { path, line, column, key, message }
        }
        other => other,
    }
}

/// A journey as the audit needs it (SPEC §3), read leniently from causeway.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journey {
    pub name: String,
    pub entry_service: Option<String>,
    pub owner: Option<String>,
}

/// Audits the inputs. Only usage errors fail; input problems are in `report.errors`.
pub fn audit(inputs: &AuditInputs) -> Result<AuditReport, UsageError> {
    let mut errors: Vec<String> = Vec::new();

    let settings = inputs.config.as_deref().map(|path| read_config(path, &mut errors)).unwrap_or_default();
    let owners = inputs.owners.clone().or(settings.owners);
    let catalog = inputs.catalog.clone().or(settings.catalog);
    if inputs.config.is_some() && owners.is_none() && catalog.is_none() {
        if let Some(config) = &inputs.config {
            errors.push(format!(
                "{}: ownership: no owners or catalog named (and no --owners/--catalog given)",
                config.display()
            ));
        }
    }
    let ownership = ownership::load(owners.as_deref(), catalog.as_deref(), None);
    errors.extend(ownership.errors.iter().map(ToString::to_string));

    let routing = match RoutingTree::load(&inputs.alertmanager) {
        Ok(tree) => Some(tree),
        Err(error) => {
            errors.push(format!("{error} (routing is not checked)"));
            None
        }
    };

    let files = rules::expand_patterns(&inputs.rules, &mut errors)?;
    let mut alert_rules: Vec<AlertRule> = Vec::new();
    for file in files {
        match rules::load_rule_file(&file) {
            Ok(found) => alert_rules.extend(found),
            Err(error) => errors.push(error.to_string()),
        }
    }

    let receiver_teams = receiver_teams(&ownership);
    let mut audited = Vec::new();
    for rule in alert_rules {
        match promql::analyze(&rule.expr, &inputs.label_names) {
            Ok(analysis) => audited.push(audit_rule(
                rule,
                &analysis,
                &inputs.label_names,
                routing.as_ref(),
                &receiver_teams,
                &ownership,
            )),
            Err(message) => errors.push(format!("{}: invalid PromQL expression: {}", rule.location(), message.trim())),
        }
    }

    let bundle = inputs.traces.as_deref().and_then(|path| traces::load_bundle(path, inputs.show_progress, &mut errors));

    let context = findings::Context {
        ownership: &ownership,
        routing: routing.as_ref(),
        receiver_teams: &receiver_teams,
        journeys: &settings.journeys,
        traces: bundle.as_ref(),
    };
    let mut all_findings = findings::findings(&audited, &context);
    all_findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));

    Ok(AuditReport { rules: audited.iter().map(AuditedRule::report).collect(), findings: all_findings, errors })
}

/// A rule with everything the findings need.
#[derive(Debug, Clone)]
pub(crate) struct AuditedRule {
    pub rule: AlertRule,
    pub services: Vec<String>,
    pub routes: Vec<RoutedLabels>,
    pub receivers: Vec<String>,
    pub teams: Vec<String>,
    pub owners: Vec<String>,
}

/// One label set the rule's alerts may carry, and where it goes.
#[derive(Debug, Clone)]
pub(crate) struct RoutedLabels {
    pub labels: LabelSet,
    /// The watched services these alerts are about (all of them when the labels name none).
    pub services: Vec<String>,
    pub receivers: Vec<String>,
    pub teams: Vec<String>,
}

impl AuditedRule {
    fn report(&self) -> RuleReport {
        RuleReport {
            group: self.rule.group.clone(),
            alert: self.rule.alert.clone(),
            services: self.services.clone(),
            receivers: self.receivers.clone(),
            teams: self.teams.clone(),
            owners: self.owners.clone(),
        }
    }

    /// `severity` in `page` / `critical` (SPEC §2.2's default paging severities).
    pub fn pages(&self) -> bool {
        self.rule
            .labels
            .get("severity")
            .is_some_and(|severity| matches!(severity.to_ascii_lowercase().as_str(), "page" | "critical"))
    }
}

/// Receiver name -> teams that claim it (owners.yaml `alertmanager_receivers`, or the
/// Backstage Group annotation `causeway.dev/alertmanager-receivers`).
fn receiver_teams(ownership: &LoadedOwnership) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (team, contacts) in &ownership.contacts {
        for receiver in &contacts.alertmanager_receivers {
            let teams = map.entry(receiver.clone()).or_default();
            if !teams.contains(team) {
                teams.push(team.clone());
            }
        }
    }
    map
}

fn audit_rule(
    rule: AlertRule,
    analysis: &promql::ExprAnalysis,
    label_names: &[String],
    routing: Option<&RoutingTree>,
    receiver_teams: &BTreeMap<String, Vec<String>>,
    ownership: &LoadedOwnership,
) -> AuditedRule {
    let mut services: Vec<String> = Vec::new();
    let mut add_service = |service: &str| {
        if !service.is_empty() && !services.iter().any(|known| known == service) {
            services.push(service.to_string());
        }
    };
    for (_, value) in &analysis.watched {
        add_service(value);
    }
    for name in label_names {
        if let Some(value) = rule.labels.get(name).filter(|value| !value.contains("{{")) {
            add_service(value);
        }
    }

    let mut routes: Vec<RoutedLabels> = Vec::new();
    for known in &analysis.label_sets {
        let labels = alert_labels(&rule, known);
        if routes.iter().any(|route| route.labels == labels) {
            continue;
        }
        let named: Vec<String> = label_names
            .iter()
            .filter_map(|name| labels.get(name))
            .filter(|value| services.contains(value))
            .cloned()
            .collect();
        let concerned = if named.is_empty() { services.clone() } else { named };
        let receivers = routing.map(|tree| tree.receivers_for(&labels)).unwrap_or_default();
        let mut teams: Vec<String> =
            receivers.iter().flat_map(|receiver| receiver_teams.get(receiver).cloned().unwrap_or_default()).collect();
        teams.sort();
        teams.dedup();
        routes.push(RoutedLabels { labels, services: concerned, receivers, teams });
    }

    let mut receivers: Vec<String> = Vec::new();
    for receiver in routes.iter().flat_map(|route| &route.receivers) {
        if !receivers.contains(receiver) {
            receivers.push(receiver.clone());
        }
    }
    let mut teams: Vec<String> = routes.iter().flat_map(|route| route.teams.clone()).collect();
    teams.sort();
    teams.dedup();
    let mut owners: Vec<String> = Vec::new();
    for service in &services {
        if let Some(owner) = ownership.ownership.owner(service, "error", None) {
            if !owners.contains(&owner.team) {
                owners.push(owner.team);
            }
        }
    }
    AuditedRule { rule, services, routes, receivers, teams, owners }
}

/// The labels an alert of this rule carries, as Prometheus builds them: the expression's
/// (known) labels, overridden by the rule's `labels:` (simple `{{ $labels.x }}` templates
/// resolved; a label whose template cannot be resolved statically is unknown, so left out),
/// and `alertname`.
fn alert_labels(rule: &AlertRule, known: &LabelSet) -> LabelSet {
    let mut labels = known.clone();
    for (name, value) in &rule.labels {
        match expand_template(value, known) {
            Some(expanded) if !expanded.is_empty() => {
                labels.insert(name.clone(), expanded);
            }
            _ => {
                labels.remove(name);
            }
        }
    }
    labels.insert("alertname".to_string(), rule.alert.clone());
    labels
}

/// Resolves `{{ $labels.name }}`, `{{ .Labels.name }}` and `{{ index $labels "name" }}`
/// from known labels; `None` when anything templated remains.
fn expand_template(value: &str, known: &LabelSet) -> Option<String> {
    static LABEL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"\{\{-?\s*(?:(?:\$labels|\.Labels)\.([a-zA-Z_][a-zA-Z0-9_]*)|index\s+(?:\$labels|\.Labels)\s+"([^"]+)")\s*-?\}\}"#,
        )
        .expect("static pattern compiles")
    });
    if !value.contains("{{") {
        return Some(value.to_string());
    }
    let mut unresolved = false;
    let expanded = LABEL.replace_all(value, |captures: &regex::Captures<'_>| {
        let name = captures.get(1).or_else(|| captures.get(2)).map_or("", |m| m.as_str());
        match known.get(name) {
            Some(value) => value.clone(),
            None => {
                unresolved = true;
                String::new()
            }
        }
    });
    if unresolved || expanded.contains("{{") { None } else { Some(expanded.into_owned()) }
}

/// What the audit reads from causeway.yaml. Read leniently with its own small structure (other
/// keys are ignored) so that it follows the file's evolution without depending on it.
#[derive(Debug, Default)]
struct AuditSettings {
    owners: Option<PathBuf>,
    catalog: Option<PathBuf>,
    journeys: Vec<Journey>,
}

#[derive(Deserialize, Default)]
struct LenientConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    ownership: LenientOwnership,
    #[serde(default, deserialize_with = "null_as_default")]
    journeys: Vec<LenientJourney>,
}

#[derive(Deserialize, Default)]
struct LenientOwnership {
    #[serde(default)]
    owners: Option<PathBuf>,
    #[serde(default)]
    catalog: Option<PathBuf>,
}

#[derive(Deserialize)]
struct LenientJourney {
    name: String,
    #[serde(default)]
    entry: Option<LenientEntry>,
    #[serde(default)]
    owner: Option<String>,
}

#[derive(Deserialize)]
struct LenientEntry {
    #[serde(default)]
    service: Option<String>,
}

fn read_config(path: &Path, errors: &mut Vec<String>) -> AuditSettings {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            errors.push(format!("cannot read {}: {error}", path.display()));
            return AuditSettings::default();
        }
    };
    let raw: LenientConfig = match parse_yaml(&text, path) {
        Ok(raw) => raw,
        Err(error) => {
            errors.push(without_repeated_key(error).to_string());
            return AuditSettings::default();
        }
    };
    let base = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let resolve = |relative: PathBuf| {
        if relative.is_absolute() { relative } else { base.join(relative) }
    };
    AuditSettings {
        owners: raw.ownership.owners.map(resolve),
        catalog: raw.ownership.catalog.map(resolve),
        journeys: raw
            .journeys
            .into_iter()
            .map(|journey| Journey {
                name: journey.name,
                entry_service: journey.entry.and_then(|entry| entry.service),
                owner: journey.owner,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_resolve_from_known_labels_or_become_unknown() {
        let known: LabelSet = [("service".to_string(), "payments-api".to_string())].into();
        assert_eq!(expand_template("static", &known), Some("static".into()));
        assert_eq!(expand_template("{{ $labels.service }}", &known), Some("payments-api".into()));
        assert_eq!(expand_template("svc-{{ index $labels \"service\" }}", &known), Some("svc-payments-api".into()));
        assert_eq!(expand_template("{{ $labels.job }}", &known), None);
        assert_eq!(expand_template("{{ $value }}", &known), None);
    }

    #[test]
    fn the_config_is_read_leniently_relative_to_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("causeway.yaml");
        std::fs::write(
            &path,
            "version: 1\nlisten: {http: 127.0.0.1:9}\nownership: {owners: owners.yaml, team_keys: [team]}\njourneys:\n  - name: checkout\n    entry: {service: frontend, operation: \"POST /api/checkout\"}\n    slo: {availability: 99.9}\n",
        )
        .expect("write");
        let mut errors = Vec::new();
        let settings = read_config(&path, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(settings.owners, Some(dir.path().join("owners.yaml")));
        assert_eq!(
            settings.journeys,
            vec![Journey { name: "checkout".into(), entry_service: Some("frontend".into()), owner: None }]
        );
    }
}
