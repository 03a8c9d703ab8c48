//! Prometheus rule files: `--rules` patterns expanded, files read, alerting rules returned.
//!
//! Globs are expanded here (not by the shell) so quoted patterns work; a directory stands for the
//! `*.yml` / `*.yaml` files inside it. Recording rules are skipped. A file that cannot be read or
//! parsed is an error naming the file (and line, from the YAML parser); the other files are
//! still read. serde_norway gives no per-item locations, so a rule's line is found by scanning
//! the text for its `alert:` key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::audit::alertmanager::{ScalarText, null_as_default};
use crate::config::{ConfigError, parse_yaml};

/// One alerting rule as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    pub file: PathBuf,
    /// 1-based line of its `alert:` key, 0 when not found.
    pub line: usize,
    pub group: String,
    pub alert: String,
    pub expr: String,
    pub labels: BTreeMap<String, String>,
}

impl AlertRule {
    /// `rules/payments.yml:12: group payments, alert PaymentsErrors`.
    pub fn location(&self) -> String {
        let file = self.file.display();
        if self.line > 0 {
            format!("{file}:{}: group {:?}, alert {:?}", self.line, self.group, self.alert)
        } else {
            format!("{file}: group {:?}, alert {:?}", self.group, self.alert)
        }
    }
}

/// A pattern that is not a valid glob: a usage error.
#[derive(Debug, thiserror::Error)]
#[error("invalid --rules pattern {pattern:?}: {message}")]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

/// Expands `--rules` arguments into files, in a stable order without duplicates. A pattern
/// that matches nothing is reported in `errors` (it is usually a typo or a missing file).
pub fn expand_patterns(patterns: &[String], errors: &mut Vec<String>) -> Result<Vec<PathBuf>, PatternError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let mut matched: Vec<PathBuf> = Vec::new();
        let path = Path::new(pattern);
        if path.is_dir() {
            matched.extend(yaml_files_in(path));
        } else if path.exists() {
            matched.push(path.to_path_buf());
        } else {
            let paths = glob::glob(pattern)
                .map_err(|error| PatternError { pattern: pattern.clone(), message: error.to_string() })?;
            for entry in paths {
                match entry {
                    Ok(path) if path.is_dir() => matched.extend(yaml_files_in(&path)),
                    Ok(path) => matched.push(path),
                    Err(error) => errors.push(format!("cannot read {}: {}", error.path().display(), error.error())),
                }
            }
            matched.sort();
        }
        if matched.is_empty() {
            if has_glob_characters(pattern) {
                errors.push(format!("no rule file matches {pattern:?}"));
            } else {
                errors.push(format!("cannot read {pattern}: no such file or directory"));
            }
        }
        for file in matched {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

fn has_glob_characters(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

fn yaml_files_in(directory: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.is_file()
                        && path.extension().is_some_and(|extension| extension == "yml" || extension == "yaml")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Reads one rule file's alerting rules.
pub fn load_rule_file(path: &Path) -> Result<Vec<AlertRule>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse_rule_file(&text, path)
}

/// Parses rule file text; `path` names the file in errors and rules.
pub fn parse_rule_file(text: &str, path: &Path) -> Result<Vec<AlertRule>, ConfigError> {
    let file: RawRuleFile = parse_yaml(text, path).map_err(crate::audit::without_repeated_key)?;
    let mut rules = Vec::new();
    let mut occurrences: BTreeMap<String, usize> = BTreeMap::new();
    for group in file.groups {
        for rule in group.rules {
            let Some(alert) = rule.alert else {
                continue; // a recording rule
            };
            let occurrence = occurrences.entry(alert.clone()).or_default();
            *occurrence += 1;
            rules.push(AlertRule {
                file: path.to_path_buf(),
                line: alert_line(text, &alert, *occurrence),
                group: group.name.clone(),
                alert,
                expr: rule.expr.0,
                labels: rule.labels.into_iter().map(|(name, value)| (name, value.0)).collect(),
            });
        }
    }
    Ok(rules)
}

/// The line of the `occurrence`-th `alert: <name>` key, 0 when not found.
fn alert_line(text: &str, alert: &str, occurrence: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let trimmed = line.trim_start().trim_start_matches('-').trim_start();
            trimmed
                .strip_prefix("alert")
                .and_then(|rest| rest.trim_start().strip_prefix(':'))
                .map(|rest| rest.split(" #").next().unwrap_or("").trim().trim_matches(['"', '\'']))
                == Some(alert)
        })
        .nth(occurrence.saturating_sub(1))
        .map_or(0, |(index, _)| index + 1)
}

#[derive(Deserialize)]
struct RawRuleFile {
    #[serde(default, deserialize_with = "null_as_default")]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
struct RawGroup {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
struct RawRule {
    #[serde(default)]
    alert: Option<String>,
    expr: ExprText,
    #[serde(default, deserialize_with = "null_as_default")]
    labels: BTreeMap<String, ScalarText>,
}

/// `expr:` may be written as a YAML number (`expr: 1`).
struct ExprText(String);

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(ExprText(ScalarText::deserialize(deserializer)?.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "\
groups:
  - name: payments
    rules:
      - record: job:errors:rate5m
        expr: sum(rate(errors_total[5m])) by (job)
      - alert: PaymentsErrors
        expr: sum(rate(http_requests_total{service=\"payments-api\",code=~\"5..\"}[5m])) by (service) > 1
        for: 5m
        labels:
          severity: page
          priority: 1
      - alert: \"PaymentsDown\"
        expr: 1
";

    #[test]
    fn alerting_rules_are_read_and_recording_rules_skipped() {
        let rules = parse_rule_file(RULES, Path::new("rules.yml")).expect("valid");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].alert, "PaymentsErrors");
        assert_eq!(rules[0].group, "payments");
        assert_eq!(rules[0].line, 6);
        assert_eq!(rules[0].labels["priority"], "1");
        assert_eq!(rules[1].line, 12);
        assert_eq!(rules[1].expr, "1");
        assert_eq!(rules[1].location(), "rules.yml:12: group \"payments\", alert \"PaymentsDown\"");
    }

    #[test]
    fn a_broken_file_names_file_and_line() {
        let error = parse_rule_file("groups:\n  - name: a\n    rules:\n      - alert: X\n", Path::new("r.yml"))
            .expect_err("missing expr");
        let message = error.to_string();
        assert!(message.starts_with("r.yml:4:"), "{message}");
        assert!(message.contains("expr"), "{message}");
        let error = parse_rule_file("groups: [\n", Path::new("r.yml")).expect_err("bad YAML");
        assert!(error.to_string().starts_with("r.yml:"), "{error}");
    }
}
