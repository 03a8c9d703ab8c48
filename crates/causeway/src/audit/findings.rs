//! The audit's findings, computed from audited rules, the ownership model, the routing tree,
//! the journeys and (optionally) a trace bundle. Pure: no IO.
//!
//! | kind | severity | when |
//! |---|---|---|
//! | `misrouted` | error | the teams a rule's alerts about a service reach do not include the service's owner |
//! | `unowned_service` | warning | a watched service has no owner (once per service) |
//! | `cause_alert` | warning if the rule pages (`severity` page/critical), else info | a rule watches an internal service: one that is not the entry service of any journey |
//! | `journey_without_symptom` | warning | no rule watches the journey's entry service or carries `journey="<name>"` |
//! | `team_without_escalation` | warning | a team has no PagerDuty/Opsgenie target and owns no component with its own key |
//! | `unreached_receiver` | info | a receiver of the Alertmanager configuration that no rule reaches |
//! | `absorbed_pages` | info (per team) | rules routed to the team watch services whose failing requests, in the traces, mostly originate in other teams' components |
//!
//! `absorbed_pages` is an approximation, said plainly: for each watched service, the engine's
//! error walk (`traces::failures_of`) tells which component every failing request of the
//! service was blamed on over the whole bundle. A rule routed to team T counts when, for one
//! of the services it watches, more than half of those blame votes land on components other
//! than the service itself that are owned by a team other than T (unowned components count for
//! no one). It reads failures, not alert history: it says which pages T *would* absorb. Only
//! error alerts are considered: a latency alert (label `sli: latency`, else a name saying
//! latency, slow, duration or p99, as SPEC §2.2 classifies alerts) is left out, since error
//! blame is not its evidence.

use std::collections::{BTreeMap, BTreeSet};

use crate::audit::alertmanager::RoutingTree;
use crate::audit::report::{Finding, FindingKind, Severity};
use crate::audit::traces::{ServiceFailures, TraceBundle, failures_of};
use crate::audit::{AuditedRule, Journey};
use crate::ownership::LoadedOwnership;

pub(crate) struct Context<'a> {
    pub ownership: &'a LoadedOwnership,
    pub routing: Option<&'a RoutingTree>,
    pub receiver_teams: &'a BTreeMap<String, Vec<String>>,
    pub journeys: &'a [Journey],
    pub traces: Option<&'a TraceBundle>,
}

impl Context<'_> {
    fn owner(&self, component: &str) -> Option<String> {
        self.ownership.ownership.owner(component, "error", None).map(|owner| owner.team)
    }

    /// `receiver "dba-pager" (team dba)`.
    fn describe_receiver(&self, receiver: &str) -> String {
        match self.receiver_teams.get(receiver).map(Vec::as_slice) {
            None | Some([]) => format!("receiver {receiver:?} (claimed by no team)"),
            Some([team]) => format!("receiver {receiver:?} (team {team})"),
            Some(teams) => format!("receiver {receiver:?} (teams {})", teams.join(", ")),
        }
    }
}

pub(crate) fn findings(rules: &[AuditedRule], context: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    misrouted(rules, context, &mut out);
    unowned_services(rules, context, &mut out);
    cause_alerts(rules, context, &mut out);
    journeys_without_symptom(rules, context, &mut out);
    teams_without_escalation(context, &mut out);
    unreached_receivers(rules, context, &mut out);
    if let Some(bundle) = context.traces {
        absorbed_pages(rules, context, bundle, &mut out);
    }
    out
}

fn misrouted(rules: &[AuditedRule], context: &Context<'_>, out: &mut Vec<Finding>) {
    if context.routing.is_none() {
        return;
    }
    for rule in rules {
        for service in &rule.services {
            let Some(owner) = context.owner(service) else {
                continue;
            };
            let concerned = rule.routes.iter().filter(|route| route.services.contains(service));
            let mut receivers: Vec<&String> = Vec::new();
            let mut teams: BTreeSet<&String> = BTreeSet::new();
            for route in concerned {
                for receiver in &route.receivers {
                    if !receivers.contains(&receiver) {
                        receivers.push(receiver);
                    }
                }
                teams.extend(&route.teams);
            }
            if teams.contains(&owner) {
                continue;
            }
            let reached: Vec<String> = receivers.iter().map(|receiver| context.describe_receiver(receiver)).collect();
            let mut finding = Finding::new(
                FindingKind::Misrouted,
                Severity::Error,
                format!(
                    "alert {} (group {}) watches {service}, owned by {owner}, but its alerts reach {}",
                    rule.rule.alert,
                    rule.rule.group,
                    if reached.is_empty() { "no receiver".to_string() } else { reached.join(" and ") }
                ),
            );
            finding.rule = Some(rule.rule.alert.clone());
            finding.service = Some(service.clone());
            finding.team = Some(owner);
            finding.receiver =
                (!receivers.is_empty()).then(|| receivers.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","));
            out.push(finding);
        }
    }
}

fn unowned_services(rules: &[AuditedRule], context: &Context<'_>, out: &mut Vec<Finding>) {
    let mut watchers: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for rule in rules {
        for service in &rule.services {
            if context.owner(service).is_none() {
                let alerts = watchers.entry(service).or_default();
                if !alerts.contains(&&rule.rule.alert) {
                    alerts.push(&rule.rule.alert);
                }
            }
        }
    }
    for (service, alerts) in watchers {
        let alerts: Vec<&str> = alerts.iter().map(|alert| alert.as_str()).collect();
        let mut finding = Finding::new(
            FindingKind::UnownedService,
            Severity::Warning,
            format!(
                "{service} has no owner in the catalog or owners.yaml (watched by {}); the router would climb to its \
                 closest owned caller, else page default_team {}",
                alerts.join(", "),
                context.ownership.ownership.default_team
            ),
        );
        finding.service = Some(service.clone());
        out.push(finding);
    }
}

fn cause_alerts(rules: &[AuditedRule], context: &Context<'_>, out: &mut Vec<Finding>) {
    let entries: BTreeSet<&str> =
        context.journeys.iter().filter_map(|journey| journey.entry_service.as_deref()).collect();
    let no_journeys =
        if context.journeys.is_empty() { " (no journeys are configured: give --config with `journeys:`)" } else { "" };
    for rule in rules {
        let pages = rule.pages();
        for service in &rule.services {
            if entries.contains(service.as_str()) {
                continue;
            }
            let what = if is_dependency(context, service) {
                format!("{service} (a database or other dependency)")
            } else {
                service.clone()
            };
            let detail = if pages {
                format!(
                    "alert {} pages on {what}, which is not the entry service of any journey{no_journeys}: a cause-alert; \
                     a journey symptom alert with trace-based routing would page the team closest to the problem",
                    rule.rule.alert
                )
            } else {
                format!(
                    "alert {} watches internal service {what}{no_journeys} without paging (severity {}): incident \
                     context, a candidate to become a journey symptom if it ever pages",
                    rule.rule.alert,
                    rule.rule.labels.get("severity").map_or("unset", String::as_str)
                )
            };
            let mut finding =
                Finding::new(FindingKind::CauseAlert, if pages { Severity::Warning } else { Severity::Info }, detail);
            finding.rule = Some(rule.rule.alert.clone());
            finding.service = Some(service.clone());
            finding.team = context.owner(service);
            out.push(finding);
        }
    }
}

/// A database, queue or other dependency: a Backstage `Resource`, or named the way client
/// spans name uninstrumented callees (`postgresql/payments`).
fn is_dependency(context: &Context<'_>, service: &str) -> bool {
    service.contains('/')
        || context
            .ownership
            .ownership
            .component(service)
            .is_some_and(|component| component.entity_kind.as_deref() == Some("Resource"))
}

fn journeys_without_symptom(rules: &[AuditedRule], context: &Context<'_>, out: &mut Vec<Finding>) {
    for journey in context.journeys {
        let entry = journey.entry_service.as_deref();
        let has_symptom = rules.iter().any(|rule| {
            entry.is_some_and(|entry| rule.services.iter().any(|service| service == entry))
                || rule.routes.iter().any(|route| route.labels.get("journey") == Some(&journey.name))
        });
        if has_symptom {
            continue;
        }
        let mut finding = Finding::new(
            FindingKind::JourneyWithoutSymptom,
            Severity::Warning,
            match entry {
                Some(entry) => format!(
                    "no alerting rule watches {entry}, the entry service of journey {}, or carries journey=\"{}\"",
                    journey.name, journey.name
                ),
                None => format!(
                    "journey {} names no entry service and no alerting rule carries journey=\"{}\"",
                    journey.name, journey.name
                ),
            },
        );
        finding.journey = Some(journey.name.clone());
        finding.service = entry.map(str::to_string);
        finding.team = journey.owner.clone().or_else(|| entry.and_then(|entry| context.owner(entry)));
        out.push(finding);
    }
}

fn teams_without_escalation(context: &Context<'_>, out: &mut Vec<Finding>) {
    let loaded = context.ownership;
    for team in &loaded.ownership.teams {
        let contacts = loaded.contacts_of(team);
        if contacts.has_pager() {
            continue;
        }
        let component_key = loaded
            .component_contacts
            .iter()
            .any(|(component, contacts)| contacts.has_pager() && context.owner(component).as_ref() == Some(team));
        if component_key {
            continue;
        }
        let fallback = if contacts.slack.is_some() || contacts.webhook.is_some() {
            "; pages would fall back to its chat or webhook channel"
        } else {
            ""
        };
        let mut finding = Finding::new(
            FindingKind::TeamWithoutEscalation,
            Severity::Warning,
            format!(
                "team {team} has no PagerDuty or Opsgenie target (owners.yaml or Backstage Group annotations) \
                 and owns no component with its own key{fallback}"
            ),
        );
        finding.team = Some(team.clone());
        out.push(finding);
    }
}

fn unreached_receivers(rules: &[AuditedRule], context: &Context<'_>, out: &mut Vec<Finding>) {
    let Some(routing) = context.routing else {
        return;
    };
    let reached: BTreeSet<&String> = rules.iter().flat_map(|rule| &rule.receivers).collect();
    for receiver in &routing.receivers {
        if reached.contains(receiver) {
            continue;
        }
        let mut finding = Finding::new(
            FindingKind::UnreachedReceiver,
            Severity::Info,
            format!("no alerting rule reaches {}", context.describe_receiver(receiver)),
        );
        finding.receiver = Some(receiver.clone());
        finding.team = context.receiver_teams.get(receiver).and_then(|teams| teams.first().cloned());
        out.push(finding);
    }
}

fn absorbed_pages(rules: &[AuditedRule], context: &Context<'_>, bundle: &TraceBundle, out: &mut Vec<Finding>) {
    let mut failures: BTreeMap<String, ServiceFailures> = BTreeMap::new();
    let teams: BTreeSet<&String> = rules.iter().flat_map(|rule| &rule.teams).collect();
    for team in teams {
        let routed: Vec<&AuditedRule> =
            rules.iter().filter(|rule| rule.teams.contains(team) && !is_latency_alert(rule)).collect();
        let mut absorbing_rules = 0usize;
        let mut examples: Vec<String> = Vec::new();
        for rule in &routed {
            let mut absorbs = false;
            let services: BTreeSet<&String> = rule
                .routes
                .iter()
                .filter(|route| route.teams.contains(team))
                .flat_map(|route| &route.services)
                .collect();
            for service in services {
                let service_failures = failures.entry(service.clone()).or_insert_with(|| failures_of(bundle, service));
                if service_failures.n_failing == 0 {
                    continue;
                }
                let elsewhere: Vec<(String, String, f64)> = service_failures
                    .blamed
                    .iter()
                    .filter(|(component, _)| component != service)
                    .filter_map(|(component, votes)| {
                        let owner = context.owner(component)?;
                        (owner != *team).then(|| (component.clone(), owner, *votes))
                    })
                    .collect();
                let votes_elsewhere: f64 = elsewhere.iter().map(|(_, _, votes)| votes).sum();
                if votes_elsewhere * 2.0 <= service_failures.n_failing as f64 {
                    continue;
                }
                absorbs = true;
                let causes: Vec<String> = elsewhere
                    .iter()
                    .map(|(component, owner, votes)| format!("{component} ({owner}) {}", votes.round()))
                    .collect();
                let example = format!(
                    "{service}: {} of {} failing requests caused in {}",
                    votes_elsewhere.round(),
                    service_failures.n_failing,
                    causes.join(", ")
                );
                if !examples.contains(&example) {
                    examples.push(example);
                }
            }
            if absorbs {
                absorbing_rules += 1;
            }
        }
        if absorbing_rules == 0 {
            continue;
        }
        let mut finding = Finding::new(
            FindingKind::AbsorbedPages,
            Severity::Info,
            format!(
                "{absorbing_rules} of {} error alerts routed to {team} watch services whose failing requests in the traces \
                 ({}) mostly originate in other teams' components: {}",
                routed.len(),
                bundle.file.display(),
                examples.join("; ")
            ),
        );
        finding.team = Some(team.clone());
        out.push(finding);
    }
}

/// SPEC §2.2: the `sli` label when present, else the alert's name.
fn is_latency_alert(rule: &AuditedRule) -> bool {
    if let Some(sli) = rule.rule.labels.get("sli") {
        return sli.eq_ignore_ascii_case("latency");
    }
    let name = rule.rule.alert.to_ascii_lowercase();
    ["latency", "slow", "duration", "p99"].iter().any(|word| name.contains(word))
}
