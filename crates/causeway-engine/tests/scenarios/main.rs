//! Engine scenarios: each YAML fixture under `tests/scenarios/fixtures/` describes a small world
//! (owners, journeys, trace templates, traffic over time, symptoms and commands) and what must
//! happen. `check` runs it through a fresh engine on event time, asserts the fixture's
//! expectations, and snapshots every decision with its reasons (reviewed like code).
//!
//! Trace templates are an indented text form, one span per line:
//!
//! ```text
//! <service> <kind> "<name>" <start_ms> <duration_ms> [attributes...]
//! ```
//!
//! Children are indented under their parent; times are offsets from the trace start.
//! Attributes: `err`, `ok` (status), `http=N`, `rpc=N`, `peer=NAME`, `db=SYSTEM/NS`,
//! `msg=SYSTEM/DEST`, `addr=HOST`, `etype=TEXT`, `exc=TYPE`, `route=R`, `pod=P`, `version=V`,
//! `team=T` (resource team attribute), `label=L` / `link=L` (span links, e.g. messaging),
//! `trace=N` (a root belonging to another trace, such as a consumer's).

mod harness;

use harness::check;

#[test]
fn deep_5xx_through_three_callers() {
    check("deep_5xx");
}

#[test]
fn uninstrumented_database_answers_errors() {
    check("db_errors");
}

#[test]
fn dependency_times_out_without_response() {
    check("no_response");
}

#[test]
fn callers_own_client_failure() {
    check("client_failure");
}

#[test]
fn swallowed_errors_under_a_healthy_parent_get_no_blame() {
    check("swallowed_errors");
}

#[test]
fn successful_retry_gets_no_blame() {
    check("successful_retry");
}

#[test]
fn chronically_failing_service_is_discounted() {
    check("chronic_discounted");
}

#[test]
fn http_4xx_on_client_versus_server_spans() {
    check("client_vs_server_4xx");
}

#[test]
fn cpu_saturation_in_a_leaf() {
    check("cpu_saturation");
}

#[test]
fn network_delay_on_a_pod_shows_only_as_gaps() {
    check("network_delay");
}

#[test]
fn missing_span_kinds_everywhere() {
    check("no_span_kinds");
}

#[test]
fn clock_skew_is_absorbed() {
    check("clock_skew");
}

#[test]
fn two_simultaneous_causes_owned_by_different_teams() {
    check("two_causes");
}

#[test]
fn diffuse_blame_pages_the_closest_common_caller() {
    check("diffuse");
}

#[test]
fn too_few_traces_pages_the_journey_owner() {
    check("too_few_traces");
}

#[test]
fn unowned_component_climbs_to_its_caller() {
    check("unowned_climbs");
}

#[test]
fn ten_symptoms_of_one_cause_give_one_page() {
    check("ten_symptoms");
}

#[test]
fn reroute_pages_the_new_team_and_is_remembered() {
    check("reroute");
}

#[test]
fn messaging_errors_follow_span_links_to_the_consumer() {
    check("messaging_links");
}

#[test]
fn capacity_refusals_blame_the_callee() {
    check("capacity_503");
}

#[test]
fn flapping_symptom_reopens_without_a_new_page() {
    check("flapping");
}

#[test]
fn an_alert_no_trace_explains_is_routed_by_labels_and_deduplicated() {
    check("labels_only");
}

#[test]
fn bad_deploy_on_one_pod_names_version_pod_change_and_rollback() {
    check("bad_deploy");
}

#[test]
fn a_second_cause_found_later_pages_its_team_in_the_same_incident() {
    check("second_cause_later");
}

#[test]
fn a_second_cause_already_paged_elsewhere_is_not_paged_again() {
    check("second_cause_elsewhere");
}
