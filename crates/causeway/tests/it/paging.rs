//! Paging end to end: real OTLP from the OpenTelemetry SDK and Alertmanager webhooks into a
//! `serve` child process; local receivers stand in for PagerDuty, Opsgenie, Slack and a webhook
//! and check the documented request shapes. Then the delivery faults: 500 then 202, 400 with
//! fallback, a receiver that never answers, and `kill -9` between decision and delivery.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{ChildServer, fixture, metric_value, python};
use crate::receivers::{Mock, Plan, Recorded, completion};

const PD_KEY: &str = "pd-routing-key-SECRET-1234";
const OG_KEY: &str = "og-api-key-SECRET-5678";
const HMAC_SECRET: &str = "hmac-SECRET-9abc";
const LLM_KEY: &str = "llm-key-SECRET-def0";
const ASSISTANT: &str =
    "assistant: { base_url: \"MOCK/llm/v1\", model: test-model, api_key_env: LLM_KEY, timeout: 1s }";

struct World {
    mock: Mock,
    server: ChildServer,
}

async fn world(configure: impl FnOnce(&Mock)) -> World {
    world_with("", configure).await
}

async fn world_with(extra_yaml: &str, configure: impl FnOnce(&Mock)) -> World {
    let mock = Mock::start().await;
    configure(&mock);
    let extra_yaml = extra_yaml.replace("MOCK", &mock.url);
    let config = format!(
        r#"
version: 1
ownership:
  owners: owners.yaml
journeys:
  - name: checkout
    entry: {{ service: frontend, operation: "POST /api/checkout" }}
    owner: web
    slo: {{}}
routing:
  evidence_wait: 5s
  resolve_grace: 2s
notifiers:
  pagerduty: {{ events_url: "{url}/pagerduty" }}
  opsgenie: {{ api_url: "{url}/opsgenie", api_key_env: OPSGENIE_KEY }}
  delivery: {{ timeout: 2s, initial_backoff: 200ms, max_backoff: 1s, max_attempts: 3 }}
{extra_yaml}
"#,
        url = mock.url
    );
    let owners = format!(
        r#"
teams:
  dba: {{ pagerduty: {{ routing_key_env: PD_DBA }}, slack: {{ webhook_env: SLACK_DBA }} }}
  web: {{ slack: {{ webhook_env: SLACK_WEB }} }}
  payments: {{ opsgenie: {{ team: payments-ops }} }}
  shop: {{ webhook: {{ url: "{url}/webhook/shop", secret_env: WEBHOOK_SECRET }} }}
services:
  frontend: {{ team: web }}
  checkout: {{ team: shop }}
  payments: {{ team: payments }}
  postgresql/payments: {{ team: dba }}
default_team: sre
"#,
        url = mock.url
    );
    let slack_dba = format!("{}/slack/dba", mock.url);
    let slack_web = format!("{}/slack/web", mock.url);
    let server = ChildServer::start_with(
        &config,
        &[
            ("PD_DBA", PD_KEY),
            ("OPSGENIE_KEY", OG_KEY),
            ("SLACK_DBA", &slack_dba),
            ("SLACK_WEB", &slack_web),
            ("WEBHOOK_SECRET", HMAC_SECRET),
            ("LLM_KEY", LLM_KEY),
        ],
        &[("owners.yaml", &owners)],
    )
    .await;
    World { mock, server }
}

/// Sends checkout traffic through the real SDK: `n_fail` traces fail in postgresql/payments.
async fn traffic(server: &ChildServer, n_ok: usize, n_fail: usize) {
    let output = tokio::process::Command::new(python())
        .arg(fixture("sdk/checkout_traffic.py"))
        .arg("http")
        .arg(server.otlp_http())
        .arg(n_ok.to_string())
        .arg(n_fail.to_string())
        .output()
        .await
        .expect("python runs");
    assert!(output.status.success(), "SDK program failed: {}", String::from_utf8_lossy(&output.stderr));
    let expected = ((n_ok + n_fail) * 6) as f64;
    for _ in 0..200 {
        let metrics = reqwest::get(server.api("/metrics")).await.expect("metrics").text().await.expect("text");
        if metric_value(&metrics, "causeway_spans_received_total") >= expected
            && metric_value(&metrics, "causeway_ingest_queue_batches") == 0.0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = reqwest::get(server.api("/metrics")).await.expect("metrics").text().await.expect("text");
    panic!("the server did not receive {expected} spans: {metrics}\n{}", server.logs());
}

fn webhook(status: &str, labels: Value) -> Value {
    let now = jiff::Timestamp::now();
    json!({
        "receiver": "causeway",
        "status": status,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {"summary": "checkout error budget burning"},
            "startsAt": (now - jiff::SignedDuration::from_secs(30)).to_string(),
            "endsAt": if status == "firing" { "0001-01-01T00:00:00Z".to_string() } else { now.to_string() },
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": "0123456789abcdef",
        }],
        "groupLabels": {},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"CheckoutErrorBudgetBurn\"}",
        "truncatedAlerts": 0,
    })
}

fn checkout_alert() -> Value {
    json!({"alertname": "CheckoutErrorBudgetBurn", "journey": "checkout", "severity": "page", "sli": "error"})
}

async fn post_alert(server: &ChildServer, body: &Value) {
    let response = reqwest::Client::new()
        .post(server.api("/api/v1/alerts/alertmanager"))
        .json(body)
        .send()
        .await
        .expect("alert intake answers");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
}

async fn get_json(server: &ChildServer, path: &str) -> (String, Value) {
    let text = reqwest::get(server.api(path)).await.expect("API answers").text().await.expect("text");
    let value = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}: {text}"));
    (text, value)
}

fn is_trigger(request: &Recorded) -> bool {
    request.body["event_action"] == "trigger"
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owning_team_is_paged_once_the_journey_owner_notified_and_resolve_sent() {
    let World { mock, server } = world(|_| {}).await;
    traffic(&server, 15, 20).await;

    post_alert(&server, &webhook("firing", checkout_alert())).await;
    let triggers = mock.wait_for("/pagerduty", 1, is_trigger, WAIT).await;
    let page = &triggers[0].body;
    assert_eq!(page["routing_key"], PD_KEY, "the dba team's routing key is paged");
    assert_eq!(page["payload"]["source"], "causeway");
    assert_eq!(page["payload"]["severity"], "critical");
    assert_eq!(page["payload"]["component"], "postgresql/payments");
    assert!(page["payload"]["summary"].as_str().expect("summary").contains("postgresql/payments"), "{page}");
    assert!(page["payload"]["custom_details"]["reasons"].is_array(), "custom_details carry the evidence: {page}");
    let dedup_key = page["dedup_key"].as_str().expect("dedup_key").to_string();
    assert!(dedup_key.starts_with("causeway-inc-") && dedup_key.ends_with("-dba"), "{dedup_key}");
    let link = page["links"][0]["href"].as_str().expect("link");
    assert!(link.contains("/incidents/inc-"), "{link}");

    // The journey owner is told, in chat, who is on it.
    let notes = mock.wait_for("/slack/web", 1, |_| true, WAIT).await;
    let slack = &notes[0].body;
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert!(slack["blocks"][0]["text"]["text"].as_str().expect("header").chars().count() <= 150);
    assert!(slack["blocks"].as_array().expect("blocks").iter().any(|block| block["type"] == "actions"));
    assert!(slack["text"].as_str().expect("fallback text").contains("dba"), "{slack}");
    assert!(mock.requests("/slack/dba").is_empty(), "dba is paged on its pager, not in chat");

    // Alertmanager HA sends the same group twice, and re-sends it: still one page.
    post_alert(&server, &webhook("firing", checkout_alert())).await;
    post_alert(&server, &webhook("firing", checkout_alert())).await;

    // An alert no trace explains, labelled with its team, goes to that team's Opsgenie.
    let disk = json!({"alertname": "DiskFull", "team": "payments", "severity": "critical", "instance": "node-7"});
    post_alert(&server, &webhook("firing", disk.clone())).await;
    let created = mock.wait_for("/opsgenie/v2/alerts", 1, |request| !request.path.contains("/close"), WAIT).await;
    let alert = &created[0];
    assert_eq!(alert.headers["authorization"], format!("GenieKey {OG_KEY}"));
    assert_eq!(alert.body["responders"][0], json!({"type": "team", "name": "payments-ops"}));
    assert!(alert.body["alias"].as_str().expect("alias").starts_with("causeway-inc-"));
    assert!(alert.body["message"].as_str().expect("message").chars().count() <= 130);

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mock.requests("/pagerduty").iter().filter(|r| is_trigger(r)).count(), 1, "paged exactly once");

    // Resolved notifications resolve: PagerDuty gets a resolve with the same dedup key,
    // Opsgenie a close by alias.
    post_alert(&server, &webhook("resolved", checkout_alert())).await;
    post_alert(&server, &webhook("resolved", disk)).await;
    let resolves = mock.wait_for("/pagerduty", 1, |request| request.body["event_action"] == "resolve", WAIT).await;
    assert_eq!(resolves[0].body["dedup_key"], dedup_key.as_str());
    assert_eq!(resolves[0].body["routing_key"], PD_KEY);
    mock.wait_for("/opsgenie/v2/alerts/", 1, |request| request.path.contains("/close?identifierType=alias"), WAIT)
        .await;

    // The API tells the story: two incidents, the checkout one caused by the database.
    let (list_text, list) = get_json(&server, "/api/v1/incidents").await;
    let incidents = list["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 2, "{list}");
    let checkout = incidents.iter().find(|incident| incident["journeys"][0] == "checkout").expect("checkout incident");
    assert_eq!(checkout["causes"], json!(["postgresql/payments"]));
    assert_eq!(checkout["paged_teams"], json!(["dba"]));
    let id = checkout["id"].as_str().expect("id");
    let (detail_text, detail) = get_json(&server, &format!("/api/v1/incidents/{id}")).await;
    assert!(detail["incident"]["decisions"][0]["reasons"].is_array());
    assert!(detail["incident"]["decisions"][0]["candidates"][0]["component"] == "postgresql/payments");
    let deliveries = detail["deliveries"].as_array().expect("deliveries");
    assert!(
        deliveries.iter().any(|d| d["channel"] == "pagerduty" && d["action"] == "page" && d["status"] == "delivered")
    );
    assert!(
        deliveries.iter().any(|d| d["channel"] == "slack" && d["action"] == "notify" && d["status"] == "delivered")
    );
    assert!(
        deliveries
            .iter()
            .any(|d| d["channel"] == "pagerduty" && d["action"] == "resolve" && d["status"] == "delivered")
    );

    // Secrets never appear in logs or API output.
    let (teams_text, _) = get_json(&server, "/api/v1/teams").await;
    let logs = server.logs();
    for secret in [PD_KEY, OG_KEY, HMAC_SECRET, "/slack/dba", "/slack/web"] {
        for (what, text) in
            [("logs", &logs), ("incident list", &list_text), ("incident detail", &detail_text), ("teams", &teams_text)]
        {
            assert!(!text.contains(secret), "{secret:?} leaked into the {what}");
        }
    }
    server.stop().await;
}

async fn delivery_of<'a>(detail: &'a Value, channel: &str, action: &str) -> &'a Value {
    detail["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|d| d["channel"] == channel && d["action"] == action)
        .unwrap_or_else(|| panic!("no {channel} {action} delivery in {detail}"))
}

async fn first_incident(server: &ChildServer) -> Value {
    let (_, list) = get_json(server, "/api/v1/incidents").await;
    let id = list["incidents"][0]["id"].as_str().expect("an incident").to_string();
    get_json(server, &format!("/api/v1/incidents/{id}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_and_pages_once() {
    let World { mock, server } =
        world(|mock| mock.plan("/pagerduty", vec![Plan::Status(500)], Plan::Status(202))).await;
    traffic(&server, 10, 15).await;
    post_alert(&server, &webhook("firing", checkout_alert())).await;
    let triggers = mock.wait_for("/pagerduty", 2, is_trigger, WAIT).await;
    assert_eq!(triggers[0].body["dedup_key"], triggers[1].body["dedup_key"], "the retry carries the same dedup key");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let detail = first_incident(&server).await;
    let page = delivery_of(&detail, "pagerduty", "page").await;
    assert_eq!(page["status"], "delivered");
    assert_eq!(page["attempts"], 2);
    assert_eq!(page["attempt_log"][0]["status_code"], 500);
    assert_eq!(page["attempt_log"][0]["outcome"], "retry");
    let (_, list) = get_json(&server, "/api/v1/incidents").await;
    assert_eq!(list["incidents"].as_array().map(Vec::len), Some(1), "one incident");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_not_retried_fails_visibly_and_falls_back() {
    let World { mock, server } =
        world(|mock| mock.plan("/pagerduty", vec![Plan::Status(400)], Plan::Status(202))).await;
    traffic(&server, 10, 15).await;
    post_alert(&server, &webhook("firing", checkout_alert())).await;
    // The fallback channel (dba's Slack) gets the page.
    let fallback = mock.wait_for("/slack/dba", 1, |_| true, WAIT).await;
    assert!(fallback[0].body["text"].as_str().expect("text").contains("postgresql/payments"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mock.requests("/pagerduty").len(), 1, "a 400 is not retried");
    let detail = first_incident(&server).await;
    let page = delivery_of(&detail, "pagerduty", "page").await;
    assert_eq!(page["status"], "failed");
    assert!(page["last_error"].as_str().expect("error").contains("HTTP 400"), "{page}");
    assert_eq!(delivery_of(&detail, "slack", "page").await["status"], "delivered");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_does_not_hold_up_other_teams() {
    let World { mock, server } = world(|mock| mock.plan("/pagerduty", vec![], Plan::Hang)).await;
    traffic(&server, 10, 15).await;
    let started = tokio::time::Instant::now();
    post_alert(&server, &webhook("firing", checkout_alert())).await;
    mock.wait_for("/pagerduty", 1, is_trigger, WAIT).await;
    // PagerDuty hangs; the journey owner's notification goes out regardless, well before the
    // 2 s timeout of the hanging request.
    mock.wait_for("/slack/web", 1, |_| true, WAIT).await;
    assert!(started.elapsed() < Duration::from_secs(10), "notification delayed by a dead endpoint");
    // After the timeouts and retries run out, the page falls back to dba's Slack.
    mock.wait_for("/slack/dba", 1, |_| true, Duration::from_secs(30)).await;
    let detail = first_incident(&server).await;
    let page = delivery_of(&detail, "pagerduty", "page").await;
    assert_eq!(page["status"], "failed");
    assert!(page["last_error"].as_str().expect("error").contains("network"), "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_between_decision_and_delivery_loses_no_page() {
    let World { mock, server } = world(|mock| mock.plan("/pagerduty", vec![], Plan::Hang)).await;
    traffic(&server, 10, 15).await;
    post_alert(&server, &webhook("firing", checkout_alert())).await;
    // The decision is stored and the delivery is in flight (PagerDuty is not answering).
    mock.wait_for("/pagerduty", 1, is_trigger, WAIT).await;
    mock.plan("/pagerduty", vec![], Plan::Status(202));
    let server = server.kill_and_restart().await;
    // On restart the pending page goes out again, with the same dedup key.
    let triggers = mock.wait_for("/pagerduty", 2, is_trigger, WAIT).await;
    let keys: std::collections::BTreeSet<&str> = triggers.iter().filter_map(|r| r.body["dedup_key"].as_str()).collect();
    assert_eq!(keys.len(), 1, "one page (one dedup key): {keys:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let detail = first_incident(&server).await;
    assert_eq!(delivery_of(&detail, "pagerduty", "page").await["status"], "delivered");
    assert_eq!(detail["summary"]["state"], "open", "the incident survived the crash");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_guard_the_api_and_ingest_and_never_leak() {
    const API_TOKEN: &str = "api-token-SECRET-0001";
    const INGEST_TOKEN: &str = "ingest-token-SECRET-0002";
    let server = ChildServer::start_with(
        "auth: { token_env: CAUSEWAY_TOKEN, ingest_token_env: CAUSEWAY_INGEST }\n",
        &[("CAUSEWAY_TOKEN", API_TOKEN), ("CAUSEWAY_INGEST", INGEST_TOKEN)],
        &[],
    )
    .await;
    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let request = client.get(server.api(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
    };
    assert_eq!(get("/healthz", None).await.expect("healthz").status(), 200, "health stays open");
    assert_eq!(get("/api/v1/incidents", None).await.expect("api").status(), 401);
    assert_eq!(get("/api/v1/incidents", Some("wrong")).await.expect("api").status(), 401);
    assert_eq!(
        get("/api/v1/incidents", Some(INGEST_TOKEN)).await.expect("api").status(),
        401,
        "ingest token is not the API token"
    );
    assert_eq!(get("/api/v1/incidents", Some(API_TOKEN)).await.expect("api").status(), 200);
    let write = client.post(server.api("/api/v1/incidents/inc-1/ack")).send().await.expect("write");
    assert_eq!(write.status(), 401, "writes need the token too");

    let alert = webhook("firing", json!({"alertname": "DiskFull", "team": "infra", "severity": "page"}));
    let post_alert =
        |token: &str| client.post(server.api("/api/v1/alerts/alertmanager")).bearer_auth(token).json(&alert).send();
    assert_eq!(post_alert(API_TOKEN).await.expect("intake").status(), 401, "alert intake takes the ingest token");
    assert_eq!(post_alert(INGEST_TOKEN).await.expect("intake").status(), 200);

    let body = std::fs::read(fixture("samples/otlp_trace_3svc.pb")).expect("sample");
    let otlp = |token: Option<&str>| {
        let request =
            client.post(server.otlp_http()).header("content-type", "application/x-protobuf").body(body.clone());
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
    };
    assert_eq!(otlp(None).await.expect("otlp").status(), 401);
    assert_eq!(otlp(Some(INGEST_TOKEN)).await.expect("otlp").status(), 200);

    let logs = server.logs();
    assert!(!logs.contains(API_TOKEN) && !logs.contains(INGEST_TOKEN), "tokens leaked into the logs");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narration_that_cites_evidence_follows_the_page_marked_as_ai_written() {
    let World { mock, server } = world_with(ASSISTANT, |mock| {
        mock.plan(
            "/llm/",
            vec![],
            Plan::Json(200, completion("postgresql/payments refuses connections, so checkout fails [E1].")),
        );
    })
    .await;
    traffic(&server, 10, 15).await;
    post_alert(&server, &webhook("firing", checkout_alert())).await;
    mock.wait_for("/pagerduty", 1, is_trigger, WAIT).await;
    let asked = mock.wait_for("/llm/v1/chat/completions", 1, |_| true, WAIT).await;
    assert_eq!(asked[0].headers["authorization"], format!("Bearer {LLM_KEY}"));
    assert_eq!(asked[0].body["model"], "test-model");
    let prompt = asked[0].body["messages"][1]["content"].as_str().expect("evidence");
    assert!(prompt.contains("\"E1\"") || prompt.contains("E1"), "the evidence ids are sent: {prompt}");
    // It arrives as an update in the team's chat, after the page.
    let updates = mock
        .wait_for(
            "/slack/dba",
            1,
            |request| request.body["text"].as_str().is_some_and(|t| t.contains("AI-written")),
            WAIT,
        )
        .await;
    assert!(updates[0].body["text"].as_str().expect("text").contains("[E1]"));
    let detail = first_incident(&server).await;
    let narration = &detail["incident"]["brief"]["narration"];
    assert_eq!(narration["ai_generated"], true);
    assert_eq!(narration["cites"], json!(["E1"]));
    assert!(!server.logs().contains(LLM_KEY), "the API key never reaches the logs");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narration_without_citations_is_dropped_and_a_silent_narrator_delays_nothing() {
    let World { mock, server } = world_with(ASSISTANT, |mock| {
        mock.plan("/llm/", vec![Plan::Json(200, completion("Probably the database. Roll it back."))], Plan::Hang);
    })
    .await;
    traffic(&server, 10, 15).await;
    let started = tokio::time::Instant::now();
    post_alert(&server, &webhook("firing", checkout_alert())).await;
    mock.wait_for("/pagerduty", 1, is_trigger, WAIT).await;
    mock.wait_for("/llm/v1/chat/completions", 1, |_| true, WAIT).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    // A second incident meets a narrator that never answers (1 s timeout): its page goes out.
    let disk = json!({"alertname": "DiskFull", "team": "payments", "severity": "critical"});
    post_alert(&server, &webhook("firing", disk)).await;
    mock.wait_for("/opsgenie/v2/alerts", 1, |_| true, WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, list) = get_json(&server, "/api/v1/incidents").await;
    for incident in list["incidents"].as_array().expect("incidents") {
        let id = incident["id"].as_str().expect("id");
        let (_, detail) = get_json(&server, &format!("/api/v1/incidents/{id}")).await;
        assert!(detail["incident"]["brief"]["narration"].is_null(), "no narration may be attached: {detail}");
    }
    assert!(mock.requests("/slack/dba").iter().all(|request| !request.body.to_string().contains("AI-written")));
    assert!(server.logs().contains("narration dropped"), "the dropped reply is logged");
    assert!(!server.logs().contains(LLM_KEY));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_sli_counters_survive_a_restart() {
    let config = "ownership:\n  owners: owners.yaml\njourneys:\n  - name: checkout\n    entry: { service: frontend, operation: \"POST /api/checkout\" }\n    owner: web\n    slo: { availability: 99.9 }\n";
    let server =
        ChildServer::start_with(config, &[], &[("owners.yaml", "services:\n  frontend: { team: web }\n")]).await;
    traffic(&server, 12, 3).await;
    let requests = |journeys: &Value| journeys["journeys"][0]["slis"][0]["period_requests"].as_u64();
    let (_, before) = get_json(&server, "/api/v1/journeys").await;
    assert_eq!(requests(&before), Some(15), "{before}");
    assert_eq!(before["journeys"][0]["slis"][0]["period_bad"], 3);
    let server = server.stop_and_restart().await;
    let (_, after) = get_json(&server, "/api/v1/journeys").await;
    assert_eq!(requests(&after), Some(15), "the counters are restored from the store: {after}");
    assert_eq!(after["journeys"][0]["slis"][0]["period_bad"], 3);
    server.stop().await;
}
