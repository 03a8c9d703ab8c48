//! The web UI in a real headless Chromium, driven over WebDriver (chromedriver + fantoccini).
//!
//! A `serve` child process gets the simulator's web shop: fourteen minutes of traffic streamed
//! over OTLP as fast as it takes it, the last six with a database fault, ending now. Its SLO
//! burns, the engine routes, and the pages go to local stand-ins for PagerDuty and Slack. The
//! browser then checks what a person would: the incident in the list, the causal graph with the
//! simulator's ground-truth cause highlighted and its owner, a reroute from the UI paging the
//! new team, the service map, journeys and teams pages; every page at desktop and phone width
//! without horizontal overflow or console errors, and no secret anywhere in the HTML. With a
//! token configured, pages show nothing until it is given. `replay --format html` writes one
//! self-contained file with the same components.
//!
//! Set `CAUSEWAY_UI_SCREENSHOTS=docs/screenshots` (relative to the workspace root, or absolute)
//! to save PNGs of the main pages from this realistic state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use causeway::sim::{self, FaultKind, FaultPlan};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common::ChildServer;
use crate::receivers::{Mock, Plan, Recorded, completion};

const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);
const WAIT: Duration = Duration::from_secs(90);

/// A headless Chromium under a chromedriver on a free loopback port; both end with the test.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|path| path.is_absolute() && path.exists()).or_else(|| {
        let paths = std::env::var_os("PATH")?;
        candidates
            .iter()
            .filter(|name| !name.starts_with('/'))
            .flat_map(|name| std::env::split_paths(&paths).map(move |dir| dir.join(name)))
            .find(|path| path.exists())
    })
}

impl Browser {
    async fn start() -> Browser {
        const HOW: &str = "install them with `apt-get install -y chromium chromium-driver` (Debian; scripts/test does \
                           this when run as root)";
        // Debian's /usr/bin/chromium is a wrapper script; the binary itself starts cleaner.
        let chromium = find_program(&["/usr/lib/chromium/chromium", "chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("the UI tests need Chromium and chromedriver, and Chromium is missing: {HOW}"));
        let chromedriver = find_program(&["chromedriver"]).unwrap_or_else(|| {
            panic!("the UI tests need Chromium and chromedriver, and chromedriver is missing: {HOW}")
        });
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
            listener.local_addr().expect("address").port()
        };
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", chromedriver.display()));
        let url = format!("http://127.0.0.1:{port}");
        for attempt in 0.. {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            assert!(attempt < 200, "chromedriver did not listen on {url} within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!("an object literal") };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|error| panic!("cannot open a Chromium session through chromedriver: {error}"));
        Browser { client, _driver: driver, _profile: profile }
    }

    async fn size(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.expect("resize");
        let inner: Value = self.client.execute("return window.innerWidth", vec![]).await.expect("innerWidth");
        let inner = inner.as_u64().expect("a number") as u32;
        assert!(inner <= width && inner + 40 >= width, "asked for a {width} px wide window, the page is {inner} px");
    }

    async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|error| panic!("open {url}: {error}"));
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("main"))
            .await
            .unwrap_or_else(|error| panic!("{url} shows no <main>: {error}"));
    }

    /// The page has no horizontal overflow and recorded no script error.
    async fn check_layout_and_errors(&self, what: &str) {
        let figures: Value = self
            .client
            .execute(
                "return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, \
                 errors: window.__causewayErrors || ['the early error hook did not run']}",
                vec![],
            )
            .await
            .expect("measure");
        let (scroll, inner) = (figures["scroll"].as_u64().unwrap_or(u64::MAX), figures["inner"].as_u64().unwrap_or(0));
        assert!(scroll <= inner, "{what}: the page is {scroll} px wide in a {inner} px window (horizontal overflow)");
        assert_eq!(figures["errors"], json!([]), "{what}: errors in the page");
    }

    async fn html(&self) -> String {
        let html: Value =
            self.client.execute("return document.documentElement.outerHTML", vec![]).await.expect("outerHTML");
        html.as_str().expect("a string").to_string()
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|error| panic!("no {css}: {error}"));
        element.attr(name).await.expect("attribute").unwrap_or_else(|| panic!("{css} has no {name}"))
    }

    async fn text(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|error| panic!("no {css}: {error}"));
        element.text().await.expect("text")
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.expect("find_all").len()
    }

    async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("CAUSEWAY_UI_SCREENSHOTS") else { return };
        let dir = PathBuf::from(dir);
        let dir = if dir.is_absolute() { dir } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(dir) };
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        // The whole page (up to a limit), not only the first screenful.
        let figures: Value = self
            .client
            .execute(
                "return [window.outerWidth, document.documentElement.scrollHeight, \
                 window.outerHeight - window.innerHeight, window.outerHeight]",
                vec![],
            )
            .await
            .expect("measure");
        let number = |index: usize| figures[index].as_u64().unwrap_or(0) as u32;
        let (width, height, chrome) = (number(0), number(1), number(2));
        self.client.set_window_size(width, (height + chrome).clamp(600, 2400)).await.expect("resize");
        let png = self.client.screenshot().await.expect("screenshot");
        self.client.set_window_size(width, number(3)).await.expect("resize back");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

/// Every team of the web shop gets a PagerDuty routing key and a Slack webhook URL (secrets,
/// from the environment), both pointing at the local stand-in.
struct Shop {
    mock: Mock,
    server: ChildServer,
    secrets: Vec<String>,
    /// The simulator's ground truth for the injected fault.
    truth: sim::TruthEntry,
}

const LLM_KEY: &str = "sk-llm-SECRET-key";
const NARRATION: &str = "The database answers errors, so the journey fails [E1].";

fn routing_key(team: &str) -> String {
    format!("pd-routing-key-SECRET-{team}")
}

async fn shop() -> Shop {
    let mock = Mock::start().await;
    let world = sim::world::load("webshop").expect("the embedded web shop");
    let mut config = sim::bundle::causeway_yaml(&world, 7);
    config.push_str(&format!(
        "routing:\n  evidence_wait: 10s\n  resolve_grace: 15m\nnotifiers:\n  pagerduty: {{ events_url: \"{}/pagerduty\" }}\n  \
         delivery: {{ timeout: 2s, initial_backoff: 200ms, max_backoff: 1s }}\n\
         assistant: {{ base_url: \"{}/llm/v1\", model: test-model, api_key_env: LLM_KEY, timeout: 5s }}\n",
        mock.url, mock.url
    ));
    // The narrator's stand-in answers every brief with a cited sentence.
    mock.plan("/llm/", vec![], Plan::Json(200, completion(NARRATION)));
    let owners = sim::bundle::owners_yaml(&world);
    let mut env: Vec<(String, String)> = Vec::new();
    let mut secrets = vec![LLM_KEY.to_string()];
    env.push(("LLM_KEY".to_string(), LLM_KEY.to_string()));
    for team in &world.teams {
        let variable = team.name.to_ascii_uppercase().replace(['-', '.', ' '], "_");
        let slack = format!("{}/slack/{}/T0SECRET/B0SECRET{}", mock.url, team.name, variable);
        env.push((format!("PD_{variable}"), routing_key(&team.name)));
        env.push((format!("SLACK_{variable}"), slack.clone()));
        secrets.push(routing_key(&team.name));
        secrets.push(slack);
    }
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ChildServer::start_with(&config, &env_refs, &[("owners.yaml", &owners)]).await;

    // Fourteen minutes of traffic ending now; a database starts failing eight minutes in.
    let mut options = sim::Options::new(world);
    options.seed = 7;
    options.start = sim::stream::wall_clock_now() - 14 * 60 * 1_000_000_000;
    options.duration = Some(Duration::from_secs(14 * 60));
    options.faults = FaultPlan::Cycle {
        kinds: vec![FaultKind::DbErrors],
        first_after: Duration::from_secs(8 * 60),
        // The schedule only places faults that end within the run: this one lasts until now.
        duration: Duration::from_secs(6 * 60),
        every: Duration::from_secs(3600),
    };
    options.record_metrics = false;
    let summary = sim::stream::stream(
        sim::stream::StreamOptions { simulation: options, speed: 1_000_000.0, notices: None },
        &server.otlp_http(),
        std::future::pending(),
    )
    .await
    .expect("the simulation streams");
    assert_eq!(summary.n_dropped_requests, 0, "the server took every request");
    let fault = summary.faults.first().expect("the database fault started");
    let truth = fault.truth().into_iter().next().expect("ground truth");
    Shop { mock, server, secrets, truth }
}

fn is_trigger(request: &Recorded) -> bool {
    request.body["event_action"] == "trigger"
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.expect("API answers").json().await.expect("JSON")
}

/// Waits until the server has opened an incident that paged someone.
async fn routed_incident(server: &ChildServer) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = get_json(&server.api("/api/v1/incidents")).await;
        if let Some(incident) = list["incidents"]
            .as_array()
            .and_then(|incidents| incidents.iter().find(|i| i["paged_teams"].as_array().is_some_and(|t| !t.is_empty())))
        {
            return incident.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no incident was routed: {list}\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_shows_the_routed_incident_reroutes_and_renders_every_page() {
    let Shop { mock, server, secrets, truth } = shop().await;
    let incident = routed_incident(&server).await;
    let id = incident["id"].as_str().expect("id").to_string();
    // The page went out (to the owner's PagerDuty stand-in) before we look at the UI.
    mock.wait_for("/pagerduty", 1, is_trigger, WAIT).await;

    let browser = Browser::start().await;
    let base = format!("http://{}", server.addresses.http);

    // The incident list: the routed incident, open, with its cause and team.
    browser.size(DESKTOP).await;
    browser.open(&format!("{base}/")).await;
    let row = format!("#incidents tr[data-incident='{id}']");
    let row_text = browser.text(&row).await;
    assert!(row_text.contains(&truth.service), "the list names the cause {}: {row_text}", truth.service);
    assert!(row_text.contains(&truth.team), "the list names the paged team {}: {row_text}", truth.team);
    assert_eq!(browser.attr(&row, "data-state").await, "open");
    browser.check_layout_and_errors("incident list").await;
    browser.screenshot("incidents").await;

    // The incident page: the causal graph ends at the simulator's true cause, highlighted, with its owner.
    browser
        .client
        .find(Locator::Css(&format!("{row} td.title a")))
        .await
        .expect("incident link")
        .click()
        .await
        .expect("click");
    browser.client.wait().for_element(Locator::Css("#causal-chain svg.graph")).await.expect("a causal graph");
    let cause = "#causal-chain svg.graph [data-cause='true']";
    assert_eq!(browser.count(cause).await, 1, "exactly one highlighted cause");
    assert_eq!(browser.attr(cause, "data-component").await, truth.service, "the highlighted cause is the true one");
    assert_eq!(browser.attr(cause, "data-owner").await, truth.team, "the cause's owner is shown");
    let cause_label = browser.text(&format!("{cause} text")).await;
    assert!(cause_label.contains(&truth.service) && cause_label.contains(&truth.team), "{cause_label}");
    let edge_labels: Value = browser
        .client
        .execute(
            "return Array.from(document.querySelectorAll('#causal-chain .edge-label')).map(e => e.textContent)",
            vec![],
        )
        .await
        .expect("edge labels");
    let edge_labels = edge_labels.as_array().expect("labels").clone();
    assert!(!edge_labels.is_empty(), "edges are labelled");
    assert!(edge_labels.iter().all(|label| label.as_str().is_some_and(|l| l.ends_with('%'))), "{edge_labels:?}");
    // The narration arrives after the page; once attached it is shown, marked as AI-written.
    let deadline = tokio::time::Instant::now() + WAIT;
    while browser.count("#ai-narration").await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no narration was shown:\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.client.refresh().await.expect("reload");
    }
    assert_eq!(browser.attr("#ai-narration", "data-ai-generated").await, "true");
    let narration = browser.text("#ai-narration").await;
    assert!(narration.contains("AI-written") && narration.contains(NARRATION), "{narration}");
    let summary = browser.text("#summary").await;
    assert!(summary.contains(&truth.service), "the brief's summary names the cause: {summary}");
    let timeline = browser.text("#timeline").await;
    assert!(timeline.contains("symptom") && timeline.contains(&format!("paged {}", truth.team)), "{timeline}");
    assert!(timeline.contains("via pagerduty"), "deliveries and their status are on the timeline: {timeline}");
    assert!(browser.count("#traces .waterfall").await >= 1, "exemplar traces are drawn");
    assert!(browser.count("#traces [data-blamed='true']").await >= 1, "the blamed spans are marked");
    browser.check_layout_and_errors("incident page").await;
    browser.screenshot("incident").await;

    // Reroute from the UI: pick another team, give a reason, click. The new team is paged.
    let new_team = ["platform", "orders", "catalog", "payments", "web", "dba"]
        .into_iter()
        .find(|team| *team != truth.team)
        .expect("another team");
    let select = browser.client.find(Locator::Css("#reroute-team")).await.expect("team picker");
    select.select_by_value(new_team).await.expect("pick a team");
    browser
        .client
        .find(Locator::Css("#reroute-reason"))
        .await
        .expect("reason")
        .send_keys("the pool is theirs")
        .await
        .expect("type");
    browser.client.find(Locator::Css("#reroute")).await.expect("reroute button").click().await.expect("click");
    let pages = mock
        .wait_for(
            "/pagerduty",
            1,
            |request| is_trigger(request) && request.body["routing_key"] == routing_key(new_team),
            WAIT,
        )
        .await;
    assert!(pages[0].body["dedup_key"].as_str().is_some_and(|key| key.ends_with(new_team)), "{:?}", pages[0].body);
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(&format!("//*[@id='paged-teams'][contains(., '{new_team}')]")))
        .await
        .expect("the page shows the new team after the reroute");
    let timeline = browser.text("#timeline").await;
    assert!(timeline.contains("the pool is theirs"), "the reroute and its reason are on the timeline: {timeline}");
    browser.check_layout_and_errors("incident page after reroute").await;

    // The service map: every service drawn, the failing database coloured as failing, with its owner.
    browser.open(&format!("{base}/services")).await;
    let services = get_json(&server.api("/api/v1/services")).await;
    let n_services = services["services"].as_array().map_or(0, Vec::len);
    assert!(n_services > 5, "{services}");
    assert_eq!(browser.count("#service-map-card svg.graph .node").await, n_services, "one box per service");
    let node = format!("svg.graph .node[data-service='{}']", truth.service);
    assert_eq!(browser.attr(&node, "data-health").await, "bad", "the failing database is drawn as failing");
    // The reroute above is remembered as an ownership correction for the database's errors.
    assert_eq!(browser.attr(&node, "data-owner").await, new_team, "the map shows the corrected owner");
    browser.check_layout_and_errors("service map").await;
    browser.screenshot("services").await;
    // Click through to its incidents.
    browser.client.find(Locator::Css(&node)).await.expect("node").click().await.expect("click");
    browser.client.wait().for_element(Locator::Css(&row)).await.expect("the service's incidents list the incident");
    assert!(browser.client.current_url().await.expect("url").as_str().contains("service="));

    // Journeys: SLO status with burn-rate charts; the burning journey says so.
    browser.open(&format!("{base}/journeys")).await;
    assert!(browser.count("section.journey").await >= 6, "every journey of the shop");
    assert!(browser.count("svg.burn-chart").await >= 6, "burn-rate charts");
    let journey = incident["journeys"][0].as_str().expect("journey");
    let card = browser.text(&format!("section.journey[data-journey='{journey}']")).await;
    assert!(card.contains("burning") && card.contains(&id), "{card}");
    browser.check_layout_and_errors("journeys").await;
    browser.screenshot("journeys").await;

    // Teams: the true owner received a page; the journey owner's absorbed pages are counted.
    browser.open(&format!("{base}/teams")).await;
    let pages = browser.text(&format!("#teams tr[data-team='{}'] td.pages", truth.team)).await;
    assert!(pages.trim().parse::<u64>().expect("a count") >= 1, "{pages}");
    assert!(browser.count("svg.pages-chart").await == 1, "pages per team chart");
    browser.check_layout_and_errors("teams").await;
    browser.screenshot("teams").await;

    // Every page at phone width: no horizontal overflow, no errors; no secret in any page.
    let pages = ["/".to_string(), format!("/incidents/{id}"), "/services".into(), "/journeys".into(), "/teams".into()];
    for (size, label) in [(PHONE, "phone"), (DESKTOP, "desktop")] {
        browser.size(size).await;
        for path in &pages {
            browser.open(&format!("{base}{path}")).await;
            browser.check_layout_and_errors(&format!("{path} at {label} width")).await;
            let rendered = browser.html().await;
            let served = reqwest::get(format!("{base}{path}")).await.expect("page").text().await.expect("html");
            for secret in &secrets {
                assert!(
                    !rendered.contains(secret.as_str()) && !served.contains(secret.as_str()),
                    "{secret} leaked into {path}"
                );
            }
        }
    }
    browser.size(PHONE).await;
    browser.open(&format!("{base}/incidents/{id}")).await;
    browser.screenshot("incident-phone").await;

    browser.client.close().await.expect("close the browser");
    server.stop().await;
}

/// With `auth.token_env`, pages show only a token prompt; with the token the content and the
/// actions work through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_with_a_token_shows_nothing_until_the_token_is_given() {
    const TOKEN: &str = "ui-token-SECRET-4242";
    let config = "version: 1\nauth: { token_env: CAUSEWAY_TOKEN }\n";
    let server = ChildServer::start_with(config, &[("CAUSEWAY_TOKEN", TOKEN)], &[]).await;
    // An alert no trace explains opens an incident routed by its labels.
    let now = jiff::Timestamp::now();
    let alert = json!({
        "receiver": "causeway", "status": "firing", "version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "truncatedAlerts": 0,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "DiskFull", "team": "storage", "severity": "critical", "instance": "node-7"},
            "annotations": {"summary": "disk on node-7 is full"},
            "startsAt": (now - jiff::SignedDuration::from_secs(30)).to_string(),
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "00ff",
        }],
    });
    let client = reqwest::Client::new();
    let response = client
        .post(server.api("/api/v1/alerts/alertmanager"))
        .bearer_auth(TOKEN)
        .json(&alert)
        .send()
        .await
        .expect("alert intake");
    assert_eq!(response.status(), 200);
    let list: Value = client
        .get(server.api("/api/v1/incidents"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let id = list["incidents"][0]["id"].as_str().expect("an incident").to_string();

    // Without the token: no data in any page, and the content endpoint refuses.
    for path in ["/".to_string(), format!("/incidents/{id}"), "/services".into(), "/journeys".into(), "/teams".into()] {
        let html = reqwest::get(server.api(&path)).await.expect("page").text().await.expect("html");
        assert!(html.contains("auth-prompt"), "{path} asks for the token");
        // The incident page's own URL names its id; nothing else about any incident may show.
        let leaked = ["node-7", "DiskFull", "storage", TOKEN].into_iter().find(|text| html.contains(text));
        assert!(leaked.is_none(), "{path} leaks {leaked:?}: {html}");
        assert!(path.contains(&id) || !html.contains(&id), "{path} names an incident: {html}");
    }
    assert_eq!(reqwest::get(server.api("/ui/fragment/")).await.expect("fragment").status(), 401);

    let browser = Browser::start().await;
    let base = format!("http://{}", server.addresses.http);
    browser.open(&format!("{base}/")).await;
    browser.client.wait().for_element(Locator::Css("#auth-prompt:not([hidden])")).await.expect("the prompt shows");
    assert_eq!(browser.count("#incidents").await, 0);
    // A wrong token is refused and says so.
    browser
        .client
        .find(Locator::Css("#token"))
        .await
        .expect("token field")
        .send_keys("wrong-token")
        .await
        .expect("type");
    browser.client.find(Locator::Css("#token-submit")).await.expect("button").click().await.expect("click");
    browser
        .client
        .wait()
        .for_element(Locator::XPath("//*[@id='auth-error'][contains(., 'refused')]"))
        .await
        .expect("the refusal is shown");
    browser.client.find(Locator::Css("#token")).await.expect("token field").send_keys(TOKEN).await.expect("type");
    browser.client.find(Locator::Css("#token-submit")).await.expect("button").click().await.expect("click");
    let row = format!("#incidents tr[data-incident='{id}']");
    browser.client.wait().for_element(Locator::Css(&row)).await.expect("the list appears with the token");
    assert!(browser.text(&row).await.contains("storage"));
    // The token is kept for the tab: the incident page loads, and acknowledging works through the API.
    browser.client.find(Locator::Css(&format!("{row} td.title a"))).await.expect("link").click().await.expect("click");
    browser.client.wait().for_element(Locator::Css("#ack")).await.expect("the incident page with its actions");
    browser.client.find(Locator::Css("#ack")).await.expect("ack").click().await.expect("click");
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("article.incident[data-state='acknowledged']"))
        .await
        .expect("acknowledged through the API with the token");
    browser.check_layout_and_errors("incident page with a token").await;
    let html = browser.html().await;
    assert!(!html.contains(TOKEN), "the token is not written into the page");
    browser.client.close().await.expect("close the browser");
    server.stop().await;
}

/// `causeway replay --format html` writes one self-contained file: the same graph and chart
/// components as the served UI, no script, nothing fetched from anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reports_render_as_one_self_contained_html_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bundle = dir.path().join("bundle");
    let report = dir.path().join("report.html");
    let run = |args: Vec<std::ffi::OsString>| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_causeway")).args(&args).output().expect("run");
        assert!(output.status.success(), "causeway {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    run(vec![
        "simulate".into(),
        "--world".into(),
        "webshop".into(),
        "--duration".into(),
        "20m".into(),
        "--faults".into(),
        "db_errors".into(),
        "--out".into(),
        bundle.clone().into(),
        "--quiet".into(),
    ]);
    run(vec![
        "replay".into(),
        bundle.clone().into(),
        "--format".into(),
        "html".into(),
        "-o".into(),
        report.clone().into(),
        "-q".into(),
    ]);
    let html = std::fs::read_to_string(&report).expect("the report");
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(bundle.join("truth.json")).expect("truth.json"))
        .expect("truth JSON");
    let cause = truth["faults"][0]["service"].as_str().expect("the fault's component");
    assert!(html.starts_with("<!DOCTYPE html>"), "an HTML document");
    assert!(html.contains("<style>"), "styles are inline");
    assert!(
        !html.contains("<script") && !html.contains("<link") && !html.contains(" src="),
        "nothing to fetch, no script"
    );
    assert!(html.contains("class=\"chart pages-chart\""), "the pages-per-team chart");
    assert!(html.contains("<svg class=\"graph\""), "a causal chain graph");
    assert!(
        html.contains(&format!("data-component=\"{cause}\" data-cause=\"true\"")),
        "the highlighted cause is the fault's component {cause}"
    );
}
