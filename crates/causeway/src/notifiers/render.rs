//! What each party receives: the channel-neutral [`Message`] and its rendering for each vendor,
//! within each vendor's documented limits.

use causeway_engine::decide::Outcome;
use causeway_engine::incident::{Action, Effect, Incident};
use serde_json::{Value, json};

use super::Message;

/// Builds the message of one delivery from the incident as it stands.
pub fn message(effect: &Effect, incident: &Incident, team: &str, base_url: &str) -> Message {
    let decision = incident.decision();
    let journeys: Vec<String> = incident.journeys().iter().map(|journey| journey.to_string()).collect();
    let cause = decision.causes.first();
    let what = match (journeys.first(), decision.symptom_kind) {
        (Some(journey), Some(kind)) => format!("{journey} {}", format!("{kind:?}").to_lowercase()),
        (Some(journey), None) => journey.clone(),
        (None, _) => incident.symptoms.first().map(|record| record.symptom.summary.clone()).unwrap_or_default(),
    };
    let causes = decision.causes.iter().map(|cause| cause.component.as_str()).collect::<Vec<_>>().join(" and ");
    let title = match effect.action {
        Action::Page => match decision.outcome {
            Outcome::SingleCause | Outcome::TwoCauses => format!("{causes} failing ({what}): {team} paged"),
            Outcome::DiffuseBlame => format!("{what}: failures spread below {causes}; {team} paged"),
            Outcome::InsufficientEvidence => format!("{what}: cause not yet clear; {team} paged as symptom owner"),
            Outcome::Labels => format!("{what}: {team} paged"),
        },
        Action::Notify => format!("{}: {}", what, effect.note),
        Action::Update => format!("update on {}: {}", incident.id, effect.note),
        Action::Acknowledge => format!("{} acknowledged: {}", incident.id, effect.note),
        Action::Resolve => format!("{} resolved: {}", incident.id, effect.note),
    };
    let mut lines: Vec<String> = Vec::new();
    if let Some(brief) = &incident.brief {
        lines.push(brief.summary.clone());
        for attribute in brief.common_attributes.iter().take(3) {
            lines.push(format!(
                "{}={} on {:.0}% of failing spans ({:.0}% before)",
                attribute.key,
                attribute.value,
                attribute.share_bad * 100.0,
                attribute.share_baseline * 100.0
            ));
        }
        for change in brief.changes.iter().take(2) {
            lines.push(format!(
                "{} {} {} {:.0} min before the onset",
                change.kind,
                change.service,
                change.version.as_deref().unwrap_or(""),
                change.minutes_before_onset
            ));
        }
        for remediation in brief.remediations.iter().take(3) {
            lines.push(format!("option: {} {} ({})", remediation.action, remediation.target, remediation.why));
        }
    }
    lines.extend(decision.reasons.iter().cloned());
    for candidate in decision.candidates.iter().take(3) {
        lines.push(format!(
            "candidate {} ({}): {:.0}% of blame, team {}",
            candidate.component,
            candidate.kind.as_str(),
            candidate.score * 100.0,
            candidate.team
        ));
    }
    if let Some(exemplar) = decision.candidates.first().and_then(|candidate| candidate.exemplars.first()) {
        lines.push(format!("exemplar trace {exemplar}"));
    }
    let severity = match (effect.action, incident.paging) {
        (Action::Page, true) => "critical",
        (Action::Page, false) => "warning",
        _ => "info",
    };
    Message {
        incident_id: incident.id.clone(),
        action: effect.action.as_str().to_string(),
        team: team.to_string(),
        title,
        severity: severity.to_string(),
        component: cause.map(|cause| cause.component.clone()),
        cause_kind: cause.map(|cause| cause.kind.as_str().to_string()),
        journeys,
        lines,
        details: json!({
            "incident": incident.id,
            "outcome": decision.outcome,
            "causes": decision.causes,
            "candidates": decision.candidates.iter().take(5).collect::<Vec<_>>(),
            "reasons": decision.reasons,
            "paged_teams": incident.paged_teams,
            "symptoms": incident.symptoms.iter().map(|record| &record.symptom.summary).collect::<Vec<_>>(),
            "brief": incident.brief,
        }),
        incident_url: format!("{}/incidents/{}", base_url.trim_end_matches('/'), incident.id),
        note: effect.note.clone(),
        at: effect.at,
    }
}

/// Truncates to at most `max` characters, marking the cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// PagerDuty Events API v2 body (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/).
pub fn pagerduty(message: &Message, routing_key: &str) -> Value {
    let event_action = match message.action.as_str() {
        "acknowledge" => "acknowledge",
        "resolve" => "resolve",
        _ => "trigger",
    };
    let dedup_key = format!("causeway-{}-{}", message.incident_id, message.team);
    if event_action != "trigger" {
        return json!({"routing_key": routing_key, "event_action": event_action, "dedup_key": dedup_key});
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": clip(&message.title, 1024),
            "source": "causeway",
            "severity": message.severity,
            "component": message.component.clone().unwrap_or_default(),
            "group": message.journeys.first().cloned().unwrap_or_default(),
            "class": message.cause_kind.clone().unwrap_or_default(),
            "custom_details": message.details,
        },
        "links": [{"href": message.incident_url, "text": format!("Causeway incident {}", message.incident_id)}],
        "client": "Causeway",
        "client_url": message.incident_url,
    })
}

/// Opsgenie Alert API: `(path, body)` for create, acknowledge or close, keyed by `alias`.
pub fn opsgenie(message: &Message, responder_team: &str) -> (String, Value) {
    let alias = format!("causeway-{}-{}", message.incident_id, message.team);
    match message.action.as_str() {
        "acknowledge" => (
            format!("/v2/alerts/{alias}/acknowledge?identifierType=alias"),
            json!({"source": "Causeway", "note": clip(&message.note, 25000)}),
        ),
        "resolve" => (
            format!("/v2/alerts/{alias}/close?identifierType=alias"),
            json!({"source": "Causeway", "note": clip(&message.note, 25000)}),
        ),
        _ => {
            // Opsgenie details are string to string.
            let mut details = serde_json::Map::new();
            details.insert("incident".into(), Value::from(message.incident_id.clone()));
            details.insert("link".into(), Value::from(message.incident_url.clone()));
            if let Some(component) = &message.component {
                details.insert("component".into(), Value::from(component.clone()));
            }
            (
                "/v2/alerts".to_string(),
                json!({
                    "message": clip(&message.title, 130),
                    "alias": alias,
                    "description": clip(&format!("{}\n\n{}", message.lines.join("\n"), message.incident_url), 15000),
                    "responders": [{"type": "team", "name": responder_team}],
                    "tags": ["causeway", message.cause_kind.clone().unwrap_or_default()],
                    "details": details,
                    "entity": message.component.clone().unwrap_or_default(),
                    "source": "Causeway",
                    "priority": if message.severity == "critical" { "P1" } else { "P3" },
                }),
            )
        }
    }
}

/// Slack Block Kit body for an incoming webhook (header ≤150 chars, sections ≤3000, context
/// ≤10 elements, ≤50 blocks).
pub fn slack(message: &Message) -> Value {
    let emoji = match message.action.as_str() {
        "page" => ":rotating_light:",
        "resolve" => ":white_check_mark:",
        "acknowledge" => ":eyes:",
        _ => ":information_source:",
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&format!("{} {}", message.incident_id, message.title), 150), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!("{emoji} *{}* — {}", message.action, message.note), 3000)}}),
    ];
    let body = message.lines.iter().map(|line| format!("• {line}")).collect::<Vec<_>>().join("\n");
    if !body.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&body, 3000)}}));
    }
    let mut context = vec![json!({"type": "mrkdwn", "text": format!("team *{}*", message.team)})];
    if let Some(component) = &message.component {
        context.push(json!({"type": "mrkdwn", "text": format!("cause *{component}*")}));
    }
    for journey in message.journeys.iter().take(8) {
        context.push(json!({"type": "mrkdwn", "text": format!("journey {journey}")}));
    }
    context.truncate(10);
    blocks.push(json!({"type": "context", "elements": context}));
    blocks.push(json!({"type": "actions", "elements": [{
        "type": "button",
        "text": {"type": "plain_text", "text": "Open incident"},
        "url": clip(&message.incident_url, 3000),
        "action_id": "open_incident",
    }]}));
    blocks.truncate(50);
    json!({"text": clip(&message.title, 3000), "blocks": blocks})
}

/// The generic webhook body: the message itself (incident, action, evidence).
pub fn webhook(message: &Message) -> Value {
    json!({
        "source": "causeway",
        "incident_id": message.incident_id,
        "action": message.action,
        "team": message.team,
        "title": message.title,
        "severity": message.severity,
        "component": message.component,
        "cause_kind": message.cause_kind,
        "journeys": message.journeys,
        "note": message.note,
        "lines": message.lines,
        "details": message.details,
        "incident_url": message.incident_url,
        "at": crate::replay::report::time(message.at),
    })
}
