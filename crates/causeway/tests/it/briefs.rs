//! The investigation brief on the simulator's faults (issue 7): a web-shop bundle with one
//! fault of each kind the brief has something specific to say about is replayed, and each
//! fault's incident must carry the brief a strong teammate would have written — the bad deploy's
//! version, instance, change and rollback; the delayed pod's service and not its callers; the
//! failing database and its owner; scaling for saturation.
//!
//! The scenario fixtures of `causeway-engine` snapshot the whole brief for each fault kind on
//! crafted traces; this test checks the same claims on generated traffic, through the same
//! replay path users run.

use std::time::Duration;

use causeway::replay::report::ReportIncident;
use causeway::replay::{Bundle, ReplayOptions};
use causeway::sim::faults::{Effect, Fault, FaultKind, FaultPlan};
use causeway::sim::{BundleSettings, Options, world};
use serde_json::Value;

const MINUTE: i64 = 60_000_000_000;

fn nanos(text: &str) -> i64 {
    causeway::sim::parse_time(text).expect("an RFC 3339 time")
}

/// The first incident opened while the fault was on (or shortly after) that pages its team.
fn incident_for<'a>(incidents: &'a [ReportIncident], fault: &Fault) -> &'a ReportIncident {
    let team = &fault.causes[0].team;
    incidents
        .iter()
        .filter(|incident| {
            let opened = nanos(&incident.opened_at);
            fault.start <= opened && opened <= fault.end + 5 * MINUTE
        })
        .find(|incident| incident.paged_teams.contains(team))
        .unwrap_or_else(|| panic!("no incident paged {team} for {}: {incidents:#?}", fault.description))
}

fn strings(values: &[Value], field: &str) -> Vec<String> {
    values.iter().filter_map(|value| value[field].as_str().map(str::to_string)).collect()
}

#[test]
fn briefs_of_simulated_faults_name_what_a_teammate_would() {
    let kinds = vec![FaultKind::BadDeploy, FaultKind::NetworkDelay, FaultKind::DbErrors, FaultKind::CpuSaturation];
    let world = world::load("webshop").expect("the built-in web shop");
    let mut options = Options::new(world.clone());
    options.seed = 3;
    options.duration = Some(Duration::from_secs(40 * 60));
    options.faults = FaultPlan::Spread { kinds, fill: false };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let summary = causeway::sim::write_bundle(options, dir.path(), &BundleSettings::default()).expect("bundle written");
    let bundle = Bundle::open(dir.path()).expect("the bundle opens");
    let outcome = causeway::replay::run(&bundle, &ReplayOptions::default()).expect("the bundle replays");
    let incidents = &outcome.report.incidents;

    let mut checked = Vec::new();
    for fault in &summary.faults {
        let cause = &fault.causes[0];
        let incident = incident_for(incidents, fault);
        let brief = incident.brief.as_ref().unwrap_or_else(|| panic!("{} has a brief", incident.id));
        let causes = strings(&brief.probable_causes, "service");
        let actions = strings(&brief.remediations, "action");
        let context = format!("{}: {brief:#?}", fault.description);
        assert_eq!(causes.first(), Some(&cause.name), "the top probable cause is the faulty component; {context}");
        assert!(brief.summary.contains(&cause.name), "the summary names {}; {context}", cause.name);
        match fault.kind {
            FaultKind::BadDeploy => {
                let Effect::ServerErrors { service, instance: Some(instance), .. } = cause.effect else {
                    panic!("a bad deploy fails one instance: {fault:?}");
                };
                let pod = &world.services[service].instances[instance].pod;
                let attribute = |key: &str| {
                    brief
                        .common_attributes
                        .iter()
                        .find(|attribute| attribute["key"] == key)
                        .cloned()
                        .unwrap_or_default()
                };
                let version = attribute("service.version");
                let new_version =
                    version["value"].as_str().unwrap_or_else(|| panic!("the version stands out; {context}"));
                assert_ne!(new_version, world.services[service].version, "the new version, not the old; {context}");
                assert!(
                    version["share_bad"].as_f64() > version["share_baseline"].as_f64(),
                    "over-represented in failures; {context}"
                );
                let instance_named = brief.common_attributes.iter().any(|attribute| {
                    ["k8s.pod.name", "service.instance.id"].contains(&attribute["key"].as_str().unwrap_or(""))
                        && attribute["value"].as_str() == Some(pod.as_str())
                });
                assert!(instance_named, "the bad instance {pod} stands out; {context}");
                assert!(
                    brief.changes.iter().any(|change| change["service"] == cause.name.as_str()
                        && change["version"].as_str() == Some(new_version)),
                    "the deploy is among the changes; {context}"
                );
                let rollback = brief
                    .remediations
                    .iter()
                    .find(|remediation| remediation["action"] == "roll back")
                    .unwrap_or_else(|| panic!("a rollback is proposed; {context}"));
                let target = rollback["target"].as_str().unwrap_or("");
                assert!(
                    target.contains(new_version) && target.contains(world.services[service].version.as_str()),
                    "rollback from the new to the old version: {target}"
                );
            }
            FaultKind::NetworkDelay => {
                // Callers of the delayed pod see slower calls too; none of them may rank first,
                // and the brief must not blame them in its remediations.
                assert_eq!(incident.root_cause.service.as_ref(), Some(&cause.name), "{context}");
                for remediation in &brief.remediations {
                    let target = remediation["target"].as_str().unwrap_or("");
                    assert!(
                        causes.iter().skip(1).all(|other| !target.starts_with(other.as_str())),
                        "remediation aimed at another component: {target}; {context}"
                    );
                }
            }
            FaultKind::DbErrors => {
                assert!(cause.name.contains('/'), "a database is named as client spans name it: {}", cause.name);
                assert_eq!(incident.paged_team.as_ref(), Some(&cause.team), "its owner is paged; {context}");
                assert_eq!(brief.probable_causes[0]["team"], cause.team.as_str(), "{context}");
                assert!(actions.iter().any(|action| action == "engage the owner"), "{context}");
            }
            FaultKind::CpuSaturation => {
                assert!(
                    brief.remediations.iter().any(|remediation| remediation["action"] == "scale out"
                        && remediation["target"] == cause.name.as_str()),
                    "scaling out the saturated service is proposed; {context}"
                );
            }
            other => panic!("unexpected fault kind {other}"),
        }
        checked.push(fault.kind);
    }
    checked.sort_by_key(|kind| kind.as_str());
    assert_eq!(checked.len(), 4, "one fault of each kind: {checked:?}");
}
