//! Change events (SPEC §2.3): `{service, version?, kind: deploy|config|flag|infra, at, summary, links?}`,
//! posted one at a time or as a list, and read from a bundle's changes.jsonl.

use causeway_engine::change::Change;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeInput {
    service: String,
    #[serde(default)]
    version: Option<String>,
    kind: String,
    at: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    links: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(ChangeInput),
    Many(Vec<ChangeInput>),
}

const KINDS: [&str; 4] = ["deploy", "config", "flag", "infra"];

/// Parses one change.
pub fn parse_change(body: &[u8]) -> anyhow::Result<Change> {
    let input: ChangeInput =
        serde_json::from_slice(body).map_err(|error| anyhow::anyhow!("invalid change: {error}"))?;
    convert(input)
}

/// Parses a change or a list of changes.
pub fn parse_changes(body: &[u8]) -> anyhow::Result<Vec<Change>> {
    match serde_json::from_slice::<OneOrMany>(body) {
        Ok(OneOrMany::One(input)) => Ok(vec![convert(input)?]),
        Ok(OneOrMany::Many(inputs)) => inputs
            .into_iter()
            .enumerate()
            .map(|(index, input)| convert(input).map_err(|error| anyhow::anyhow!("change {index}: {error}")))
            .collect(),
        Err(_) => {
            // Re-parse as the single form for a precise message.
            let error = serde_json::from_slice::<ChangeInput>(body).err().map(|e| e.to_string()).unwrap_or_default();
            anyhow::bail!("invalid change: {error}")
        }
    }
}

fn convert(input: ChangeInput) -> anyhow::Result<Change> {
    if input.service.trim().is_empty() {
        anyhow::bail!("service must not be empty");
    }
    if !KINDS.contains(&input.kind.as_str()) {
        anyhow::bail!("kind {:?} is not one of deploy, config, flag, infra", input.kind);
    }
    let at = crate::receivers::alertmanager::parse_time(&input.at).map_err(|error| anyhow::anyhow!("at: {error}"))?;
    Ok(Change {
        service: input.service,
        version: input.version,
        kind: input.kind,
        at,
        summary: input.summary,
        links: input.links,
        source: "api".to_string(),
        previous_version: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_batch_forms_parse() {
        let one = br#"{"service":"payments-api","version":"2.14.0","kind":"deploy","at":"2026-12-03T10:00:00Z","summary":"release"}"#;
        assert_eq!(parse_change(one).expect("valid").version.as_deref(), Some("2.14.0"));
        let many = br#"[{"service":"a","kind":"config","at":"2026-12-03T10:00:00Z"},{"service":"b","kind":"flag","at":"2026-12-03T10:01:00.5Z"}]"#;
        assert_eq!(parse_changes(many).expect("valid").len(), 2);
    }

    #[test]
    fn bad_changes_name_the_problem() {
        let bad_kind = br#"{"service":"a","kind":"rollout","at":"2026-12-03T10:00:00Z"}"#;
        assert!(parse_change(bad_kind).expect_err("bad kind").to_string().contains("rollout"));
        let bad_time = br#"[{"service":"a","kind":"deploy","at":"noon"}]"#;
        let message = parse_changes(bad_time).expect_err("bad time").to_string();
        assert!(message.contains("change 0") && message.contains("at"), "{message}");
        assert!(parse_changes(br#"{"kind":"deploy"}"#).expect_err("no service").to_string().contains("service"));
    }
}
