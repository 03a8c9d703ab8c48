//! Notifiers (SPEC §5.1): PagerDuty Events API v2, Opsgenie, Slack incoming webhooks and a
//! generic signed webhook.
//!
//! The engine asks for deliveries ([`causeway_engine::incident::Effect`]); [`plan`] turns each
//! into outbox rows — one channel-neutral [`Message`] with the channel to try first and the
//! channels to fall back to. The worker ([`worker`]) renders the vendor request at send time
//! (secrets are read from the environment then, never stored) and records every attempt.
//!
//! Who gets what: a page goes to the team's pager (PagerDuty, else Opsgenie), falling back to
//! its chat or webhook; a notification or update goes only to chat or webhook, never to a
//! pager; acknowledge and resolve go to the pagers (and resolve to chat too).

pub mod render;
pub mod worker;

use causeway_engine::incident::{Action, Effect, Incident};
use causeway_store::NewDelivery;
use serde::{Deserialize, Serialize};

use crate::ownership::{LoadedOwnership, TeamContacts};

/// `notifiers:` in causeway.yaml. Endpoint URLs default to the vendors' public ones.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NotifiersSection {
    #[serde(default)]
    pub pagerduty: PagerDutySection,
    #[serde(default)]
    pub opsgenie: OpsgenieSection,
    #[serde(default)]
    pub delivery: DeliverySection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySection {
    #[serde(default = "default_pagerduty_url")]
    pub events_url: String,
}

impl Default for PagerDutySection {
    fn default() -> Self {
        PagerDutySection { events_url: default_pagerduty_url() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieSection {
    #[serde(default = "default_opsgenie_url")]
    pub api_url: String,
    /// Environment variable holding the Opsgenie API key (`GenieKey`).
    #[serde(default = "default_opsgenie_key_env")]
    pub api_key_env: String,
}

impl Default for OpsgenieSection {
    fn default() -> Self {
        OpsgenieSection { api_url: default_opsgenie_url(), api_key_env: default_opsgenie_key_env() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    /// Per request.
    #[serde(default = "default_timeout")]
    pub timeout: crate::config::HumanDuration,
    /// Attempts on one channel before falling back to the next.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: crate::config::HumanDuration,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: crate::config::HumanDuration,
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection {
            timeout: default_timeout(),
            max_attempts: default_max_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".to_string()
}
fn default_opsgenie_url() -> String {
    "https://api.opsgenie.com".to_string()
}
fn default_opsgenie_key_env() -> String {
    "OPSGENIE_KEY".to_string()
}
fn default_timeout() -> crate::config::HumanDuration {
    crate::config::HumanDuration(std::time::Duration::from_secs(10))
}
fn default_max_attempts() -> u32 {
    5
}
fn default_initial_backoff() -> crate::config::HumanDuration {
    crate::config::HumanDuration(std::time::Duration::from_secs(1))
}
fn default_max_backoff() -> crate::config::HumanDuration {
    crate::config::HumanDuration(std::time::Duration::from_secs(60))
}

/// A delivery's content, independent of the channel: rendered for a vendor at send time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub incident_id: String,
    pub action: String,
    pub team: String,
    /// One line: what is wrong and who is on it.
    pub title: String,
    /// `critical` for pages, `warning` for notices, `info` otherwise.
    pub severity: String,
    pub component: Option<String>,
    pub cause_kind: Option<String>,
    pub journeys: Vec<String>,
    /// Lines for people (reasons, candidates, what changed).
    pub lines: Vec<String>,
    /// Structured evidence (the decision, later the brief): PagerDuty `custom_details`, webhook body.
    pub details: serde_json::Value,
    pub incident_url: String,
    pub note: String,
    pub at: i64,
}

/// Channel names.
pub const PAGERDUTY: &str = "pagerduty";
pub const OPSGENIE: &str = "opsgenie";
pub const SLACK: &str = "slack";
pub const WEBHOOK: &str = "webhook";

/// Channels a team can be reached on for an action, best first.
pub fn channels(action: Action, contacts: &TeamContacts) -> Vec<&'static str> {
    let pagers = [(PAGERDUTY, contacts.pagerduty.is_some()), (OPSGENIE, contacts.opsgenie.is_some())];
    let chats = [(SLACK, contacts.slack.is_some()), (WEBHOOK, contacts.webhook.is_some())];
    let available =
        |list: &[(&'static str, bool)]| list.iter().filter(|(_, ok)| *ok).map(|(name, _)| *name).collect::<Vec<_>>();
    match action {
        Action::Page => [available(&pagers), available(&chats)].concat(),
        Action::Notify | Action::Update => available(&chats),
        Action::Acknowledge => available(&pagers),
        Action::Resolve => [available(&pagers), available(&chats)].concat(),
    }
}

/// The contacts used for a team, including a component-level PagerDuty key from the catalog
/// for the incident's cause.
pub fn contacts_for(ownership: &LoadedOwnership, team: &str, component: Option<&str>) -> TeamContacts {
    let mut contacts = ownership.contacts_of(team);
    if let Some(component_contacts) = component.and_then(|component| ownership.component_contacts.get(component)) {
        let owner = ownership.ownership.component(component.unwrap_or_default()).and_then(|c| c.team.clone());
        if owner.as_deref() == Some(team) && component_contacts.pagerduty.is_some() {
            contacts.pagerduty = component_contacts.pagerduty.clone();
        }
    }
    contacts
}

/// Outbox rows for one engine effect. Returns the rows and a warning when nobody can be reached.
pub fn plan(
    effect: &Effect,
    incident: &Incident,
    ownership: &LoadedOwnership,
    base_url: &str,
) -> (Vec<NewDelivery>, Option<String>) {
    let component = incident.cause_components.first().map(String::as_str);
    let mut team = effect.team.clone();
    let mut contacts = contacts_for(ownership, &team, component);
    let mut list = channels(effect.action, &contacts);
    let mut warning = None;
    if list.is_empty() && effect.action == Action::Page {
        // Nothing is dropped: a team nobody can reach hands the page to the default team.
        let default_team = ownership.ownership.default_team.clone();
        warning = Some(format!("team {team} has no channel to page; paging the default team {default_team} instead"));
        team = default_team;
        contacts = contacts_for(ownership, &team, component);
        list = channels(effect.action, &contacts);
        if list.is_empty() {
            warning = Some(format!(
                "neither {} nor the default team {team} has a channel: the page cannot be sent",
                effect.team
            ));
        }
    } else if list.is_empty() && matches!(effect.action, Action::Notify | Action::Update) {
        warning = Some(format!("team {team} has no chat or webhook channel for notifications"));
    }
    let message = render::message(effect, incident, &team, base_url);
    let payload = serde_json::to_string(&message).unwrap_or_default();
    let dedup_key = format!("causeway-{}-{}", incident.id, effect.team);
    let deliveries = match effect.action {
        // Acknowledge and resolve go to every pager (and chats for resolve); no fallback needed.
        Action::Acknowledge | Action::Resolve => list
            .iter()
            .map(|channel| NewDelivery {
                incident_id: incident.id.clone(),
                team: team.clone(),
                action: effect.action.as_str().to_string(),
                channel: channel.to_string(),
                dedup_key: dedup_key.clone(),
                payload: payload.clone(),
                created_at: effect.at,
                fallbacks: Vec::new(),
            })
            .collect(),
        _ => match list.split_first() {
            Some((first, rest)) => vec![NewDelivery {
                incident_id: incident.id.clone(),
                team: team.clone(),
                action: effect.action.as_str().to_string(),
                channel: first.to_string(),
                dedup_key,
                payload,
                created_at: effect.at,
                fallbacks: rest.iter().map(|channel| channel.to_string()).collect(),
            }],
            None => Vec::new(),
        },
    };
    (deliveries, warning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::{OpsgenieTarget, SecretRef, WebhookTarget};

    #[test]
    fn pages_prefer_pagers_and_notifications_never_use_them() {
        let contacts = TeamContacts {
            pagerduty: Some(SecretRef::Env("PD".into())),
            opsgenie: Some(OpsgenieTarget { team: "ops".into() }),
            slack: Some(SecretRef::Env("SLACK".into())),
            webhook: Some(WebhookTarget { url: "http://127.0.0.1:1/hook".into(), secret_env: None }),
            alertmanager_receivers: vec![],
        };
        assert_eq!(channels(Action::Page, &contacts), vec![PAGERDUTY, OPSGENIE, SLACK, WEBHOOK]);
        assert_eq!(channels(Action::Notify, &contacts), vec![SLACK, WEBHOOK]);
        assert_eq!(channels(Action::Update, &contacts), vec![SLACK, WEBHOOK]);
        assert_eq!(channels(Action::Acknowledge, &contacts), vec![PAGERDUTY, OPSGENIE]);
        let chat_only = TeamContacts { slack: Some(SecretRef::Env("SLACK".into())), ..TeamContacts::default() };
        assert_eq!(channels(Action::Page, &chat_only), vec![SLACK], "a team without a pager is paged in chat");
        assert!(channels(Action::Acknowledge, &chat_only).is_empty());
    }
}
