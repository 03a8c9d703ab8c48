//! The audit's result and its four renderings: a terminal table, JSON, Markdown and HTML.
//!
//! The JSON form is a contract other tools read: `{"rules": [...], "findings": [...]}` with the
//! keys below (optional finding keys omitted when absent), plus `"errors": [str]` for inputs
//! that could not be read. The HTML page is self-contained (inline CSS, no external assets).

use std::fmt::Write as _;

use serde::Serialize;

/// Everything `causeway audit` found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditReport {
    pub rules: Vec<RuleReport>,
    pub findings: Vec<Finding>,
    /// Inputs that could not be used, each naming its file (and line when known).
    pub errors: Vec<String>,
}

/// One alerting rule: what it watches, where it goes, who owns what it watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleReport {
    pub group: String,
    pub alert: String,
    pub services: Vec<String>,
    pub receivers: Vec<String>,
    pub teams: Vec<String>,
    pub owners: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Misrouted,
    UnownedService,
    CauseAlert,
    JourneyWithoutSymptom,
    TeamWithoutEscalation,
    UnreachedReceiver,
    AbsorbedPages,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Misrouted => "misrouted",
            FindingKind::UnownedService => "unowned_service",
            FindingKind::CauseAlert => "cause_alert",
            FindingKind::JourneyWithoutSymptom => "journey_without_symptom",
            FindingKind::TeamWithoutEscalation => "team_without_escalation",
            FindingKind::UnreachedReceiver => "unreached_receiver",
            FindingKind::AbsorbedPages => "absorbed_pages",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// The alert name (the `alertname` label) of the rule concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    pub detail: String,
}

impl Finding {
    pub fn new(kind: FindingKind, severity: Severity, detail: String) -> Finding {
        Finding { kind, severity, rule: None, service: None, team: None, journey: None, receiver: None, detail }
    }

    /// Most severe first, then by kind and subject: a stable order for people and diffs.
    pub fn sort_key(&self) -> impl Ord + '_ {
        (
            std::cmp::Reverse(self.severity),
            self.kind,
            &self.rule,
            &self.service,
            &self.team,
            &self.journey,
            &self.receiver,
        )
    }
}

impl AuditReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|finding| finding.severity == severity).count()
    }

    pub fn has_findings_at_or_above(&self, severity: Severity) -> bool {
        self.findings.iter().any(|finding| finding.severity >= severity)
    }

    /// `12 rules audited; findings: 1 error, 2 warnings, 3 info; 0 input errors`.
    pub fn summary(&self) -> String {
        format!(
            "{} rule{} audited; findings: {} error{}, {} warning{}, {} info; {} input error{}",
            self.rules.len(),
            plural(self.rules.len()),
            self.count(Severity::Error),
            plural(self.count(Severity::Error)),
            self.count(Severity::Warning),
            plural(self.count(Severity::Warning)),
            self.count(Severity::Info),
            self.errors.len(),
            plural(self.errors.len()),
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|error| format!("{{\"errors\": [\"{error}\"]}}"))
    }

    pub fn to_table(&self) -> String {
        let mut out = String::new();
        out.push_str("RULES\n");
        let rows: Vec<Vec<String>> = self
            .rules
            .iter()
            .map(|rule| {
                vec![
                    rule.group.clone(),
                    rule.alert.clone(),
                    list(&rule.services),
                    list(&rule.receivers),
                    list(&rule.teams),
                    list(&rule.owners),
                ]
            })
            .collect();
        out.push_str(&text_table(&["GROUP", "ALERT", "SERVICES", "RECEIVERS", "TEAMS", "OWNERS"], &rows));
        out.push_str("\nFINDINGS\n");
        if self.findings.is_empty() {
            out.push_str("none\n");
        } else {
            let rows: Vec<Vec<String>> = self.findings.iter().map(finding_row).collect();
            out.push_str(&text_table(&["SEVERITY", "KIND", "SUBJECT", "DETAIL"], &rows));
        }
        if !self.errors.is_empty() {
            out.push_str("\nERRORS\n");
            for error in &self.errors {
                let _ = writeln!(out, "{error}");
            }
        }
        let _ = writeln!(out, "\n{}", self.summary());
        out
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# Causeway audit\n\n");
        let _ = writeln!(out, "{}\n", self.summary());
        out.push_str("## Findings\n\n");
        if self.findings.is_empty() {
            out.push_str("None.\n");
        } else {
            out.push_str("| severity | kind | subject | detail |\n|---|---|---|---|\n");
            for finding in &self.findings {
                let row = finding_row(finding);
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    markdown_cell(&row[0]),
                    markdown_cell(&row[1]),
                    markdown_cell(&row[2]),
                    markdown_cell(&row[3])
                );
            }
        }
        out.push_str(
            "\n## Rules\n\n| group | alert | services | receivers | teams | owners |\n|---|---|---|---|---|---|\n",
        );
        for rule in &self.rules {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                markdown_cell(&rule.group),
                markdown_cell(&rule.alert),
                markdown_cell(&list(&rule.services)),
                markdown_cell(&list(&rule.receivers)),
                markdown_cell(&list(&rule.teams)),
                markdown_cell(&list(&rule.owners)),
            );
        }
        if !self.errors.is_empty() {
            out.push_str("\n## Input errors\n\n");
            for error in &self.errors {
                let _ = writeln!(out, "- `{}`", error.replace('`', "'"));
            }
        }
        out
    }

    pub fn to_html(&self) -> String {
        let mut out = String::from(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Causeway audit</title>\n<style>\n\
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d2330}\n\
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}\n\
table{border-collapse:collapse;width:100%;font-size:.9rem}\n\
th,td{border-bottom:1px solid #dde1e8;padding:.35rem .5rem;text-align:left;vertical-align:top}\n\
th{background:#f3f5f8}\n\
.sev{font-weight:600;border-radius:3px;padding:0 .35rem}\n\
.error{background:#fde2e1;color:#9b1c1c}.warning{background:#fff1c2;color:#7a5300}.info{background:#e3ecfb;color:#1e429f}\n\
code{background:#f3f5f8;padding:0 .2rem}\n\
</style>\n</head>\n<body>\n<h1>Causeway audit</h1>\n",
        );
        let _ = writeln!(out, "<p>{}</p>", escape_html(&self.summary()));
        out.push_str("<h2>Findings</h2>\n");
        if self.findings.is_empty() {
            out.push_str("<p>None.</p>\n");
        } else {
            out.push_str("<table>\n<tr><th>severity</th><th>kind</th><th>subject</th><th>detail</th></tr>\n");
            for finding in &self.findings {
                let row = finding_row(finding);
                let _ = writeln!(
                    out,
                    "<tr><td><span class=\"sev {}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    finding.severity.as_str(),
                    escape_html(&row[0]),
                    escape_html(&row[1]),
                    escape_html(&row[2]),
                    escape_html(&row[3])
                );
            }
            out.push_str("</table>\n");
        }
        out.push_str("<h2>Rules</h2>\n<table>\n<tr><th>group</th><th>alert</th><th>services</th><th>receivers</th><th>teams</th><th>owners</th></tr>\n");
        for rule in &self.rules {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape_html(&rule.group),
                escape_html(&rule.alert),
                escape_html(&list(&rule.services)),
                escape_html(&list(&rule.receivers)),
                escape_html(&list(&rule.teams)),
                escape_html(&list(&rule.owners)),
            );
        }
        out.push_str("</table>\n");
        if !self.errors.is_empty() {
            out.push_str("<h2>Input errors</h2>\n<ul>\n");
            for error in &self.errors {
                let _ = writeln!(out, "<li><code>{}</code></li>", escape_html(error));
            }
            out.push_str("</ul>\n");
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "-".to_string() } else { items.join(", ") }
}

/// `rule X, service Y, team Z`: the keys a finding has.
fn subject(finding: &Finding) -> String {
    let parts: Vec<String> = [
        ("rule", &finding.rule),
        ("service", &finding.service),
        ("team", &finding.team),
        ("journey", &finding.journey),
        ("receiver", &finding.receiver),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|value| format!("{key} {value}")))
    .collect();
    parts.join(", ")
}

fn finding_row(finding: &Finding) -> Vec<String> {
    vec![
        finding.severity.as_str().to_string(),
        finding.kind.as_str().to_string(),
        subject(finding),
        finding.detail.clone(),
    ]
}

/// Left-aligned columns; the last column is not padded.
fn text_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (index, cell) in cells.into_iter().enumerate() {
            text.push_str(cell);
            if index < last {
                let padding = widths[index] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', padding));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(character),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> AuditReport {
        let mut finding =
            Finding::new(FindingKind::Misrouted, Severity::Error, "reaches <dba> | not payments".to_string());
        finding.rule = Some("PaymentsErrors".to_string());
        finding.service = Some("payments-api".to_string());
        AuditReport {
            rules: vec![RuleReport {
                group: "payments".into(),
                alert: "PaymentsErrors".into(),
                services: vec!["payments-api".into()],
                receivers: vec!["dba-pager".into()],
                teams: vec!["dba".into()],
                owners: vec!["payments".into()],
            }],
            findings: vec![finding],
            errors: vec!["rules/broken.yml:3:1: bad".into()],
        }
    }

    #[test]
    fn json_has_the_contract_keys_and_omits_absent_ones() {
        let value: serde_json::Value = serde_json::from_str(&report().to_json()).expect("JSON");
        assert_eq!(value["rules"][0]["alert"], "PaymentsErrors");
        assert_eq!(value["findings"][0]["kind"], "misrouted");
        assert_eq!(value["findings"][0]["severity"], "error");
        assert!(value["findings"][0].get("team").is_none());
        assert_eq!(value["errors"][0], "rules/broken.yml:3:1: bad");
    }

    #[test]
    fn renderings_escape_and_summarise() {
        let report = report();
        let table = report.to_table();
        assert!(table.contains("misrouted"), "{table}");
        assert!(table.contains("1 rule audited; findings: 1 error, 0 warnings, 0 info; 1 input error"));
        let markdown = report.to_markdown();
        assert!(markdown.contains("reaches <dba> \\| not payments"), "{markdown}");
        let html = report.to_html();
        assert!(html.contains("reaches &lt;dba&gt; | not payments"));
        assert!(!html.contains("http://") && !html.contains("https://"), "self-contained");
    }
}
