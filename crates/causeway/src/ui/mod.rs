//! The web UI: server-rendered HTML pages at stable paths (`/`, `/incidents/{id}`, `/services`,
//! `/journeys`, `/teams`), served by the same router as the API, with a little JavaScript for
//! the actions. Graphs and charts are inline SVG drawn on the server (`graph.rs` with
//! `layout-rs`, `chart.rs` with `plotters`); CSS and JavaScript are embedded in the binary and
//! served from `/ui/assets/`. Nothing is loaded from any other address, and the
//! `Content-Security-Policy` header says so to the browser.
//!
//! **Auth.** Without `auth.token_env` every page renders in full. With it, a page renders only
//! its frame and a token prompt (no data); the script keeps the token in `sessionStorage` and
//! fetches the page's content from `/ui/fragment/...` with `Authorization: Bearer`, the same
//! check the API makes. Actions are `fetch` calls with JSON to the existing POST API, which
//! refuses cross-site writes; there are no HTML forms that write.
//!
//! **Secrets.** Pages show channel kinds, never routing keys, webhook URLs or tokens; as a
//! second line of defence every rendered page is scrubbed of the configured secret values.
//!
//! It reads the store and the engine; it must not change them except through the API's commands.

mod chart;
mod graph;
mod incidents;
mod pages;
pub mod replay;

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::api::ApiState;
use crate::auth::bearer_matches;

/// The stylesheet, shared by the served pages and the self-contained replay report.
pub const STYLE: &str = include_str!("assets/style.css");
const EARLY_JS: &str = include_str!("assets/early.js");
const APP_JS: &str = include_str!("assets/app.js");

/// Everything from this origin, nothing from anywhere else. Inline `style` attributes are
/// allowed because SVG produced by the chart library uses them.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(incident_list_page))
        .route("/incidents/{id}", get(incident_page))
        .route("/services", get(services_page))
        .route("/journeys", get(journeys_page))
        .route("/teams", get(teams_page))
        .route("/ui/fragment/", get(incident_list_fragment))
        .route("/ui/fragment/incidents/{id}", get(incident_fragment))
        .route("/ui/fragment/services", get(services_fragment))
        .route("/ui/fragment/journeys", get(journeys_fragment))
        .route("/ui/fragment/teams", get(teams_fragment))
        .route("/ui/assets/{name}", get(asset))
        .with_state(state)
}

/// Which page, with its parameters.
#[derive(Clone, Debug)]
pub(crate) enum View {
    Incidents(ListFilter),
    Incident(String),
    Services,
    Journeys,
    Teams,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ListFilter {
    /// Incidents this service is involved in (cause, candidate or entry).
    #[serde(default)]
    pub service: Option<String>,
    /// Incidents that paged this team.
    #[serde(default)]
    pub team: Option<String>,
    /// `open` or `all` (default).
    #[serde(default)]
    pub state: Option<String>,
}

impl View {
    fn nav(&self) -> &'static str {
        match self {
            View::Incidents(_) | View::Incident(_) => "incidents",
            View::Services => "services",
            View::Journeys => "journeys",
            View::Teams => "teams",
        }
    }
}

/// A page's content and title.
pub(crate) struct Content {
    pub title: String,
    pub body: Markup,
    pub status: StatusCode,
}

async fn incident_list_page(
    State(state): State<ApiState>,
    Query(filter): Query<ListFilter>,
    query: RawQuery,
) -> Response {
    page(&state, View::Incidents(filter), "/ui/fragment/", query).await
}

async fn incident_page(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let fragment = format!("/ui/fragment/incidents/{}", encode_path_segment(&id));
    page(&state, View::Incident(id), &fragment, RawQuery(None)).await
}

async fn services_page(State(state): State<ApiState>) -> Response {
    page(&state, View::Services, "/ui/fragment/services", RawQuery(None)).await
}

async fn journeys_page(State(state): State<ApiState>) -> Response {
    page(&state, View::Journeys, "/ui/fragment/journeys", RawQuery(None)).await
}

async fn teams_page(State(state): State<ApiState>) -> Response {
    page(&state, View::Teams, "/ui/fragment/teams", RawQuery(None)).await
}

async fn incident_list_fragment(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(filter): Query<ListFilter>,
) -> Response {
    fragment(&state, &headers, View::Incidents(filter)).await
}

async fn incident_fragment(State(state): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    fragment(&state, &headers, View::Incident(id)).await
}

async fn services_fragment(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    fragment(&state, &headers, View::Services).await
}

async fn journeys_fragment(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    fragment(&state, &headers, View::Journeys).await
}

async fn teams_fragment(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    fragment(&state, &headers, View::Teams).await
}

/// A full page: rendered with its content, or, when a token is configured, its frame and the
/// token prompt, the content to be fetched from `fragment_path` by the script.
async fn page(state: &ApiState, view: View, fragment_path: &str, query: RawQuery) -> Response {
    let nav = view.nav();
    if state.token.is_some() {
        let fragment_url = match query.0 {
            Some(query) if !query.is_empty() => format!("{fragment_path}?{query}"),
            _ => fragment_path.to_string(),
        };
        let body = html! {
            div #auth-prompt hidden {
                h1 { "Sign in" }
                p { "This Causeway needs its API token (" code { "auth.token_env" } "). It is kept in this tab only." }
                div.token-form {
                    label for="token" { "API token" }
                    input #token type="password" autocomplete="off";
                    button #token-submit type="button" { "Continue" }
                }
                p #auth-error.error role="alert" {}
            }
            div #fragment data-fragment=(fragment_url) { p.muted { "Loading…" } }
        };
        let markup = layout("Causeway", nav, body, true);
        return respond(state, StatusCode::OK, markup);
    }
    let content = render(state, view).await;
    let markup = layout(&content.title, nav, content.body, false);
    respond(state, content.status, markup)
}

async fn fragment(state: &ApiState, headers: &HeaderMap, view: View) -> Response {
    if let Some(token) = &state.token {
        if !bearer_matches(headers, token) {
            return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
        }
    }
    let content = render(state, view).await;
    let markup = html! {
        div.fragment data-title=(format!("{} · Causeway", content.title)) { (content.body) }
    };
    respond(state, content.status, markup)
}

async fn render(state: &ApiState, view: View) -> Content {
    let result = match view {
        View::Incidents(filter) => incidents::list(state, filter).await,
        View::Incident(id) => incidents::detail(state, &id).await,
        View::Services => pages::services(state).await,
        View::Journeys => pages::journeys(state).await,
        View::Teams => pages::teams(state).await,
    };
    result.unwrap_or_else(|error| Content {
        title: "Error".into(),
        body: html! { h1 { "Something went wrong" } p.error { (error.message) } },
        status: error.status,
    })
}

fn layout(title: &str, nav: &str, body: Markup, needs_token: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Causeway" }
                // No favicon request (a 404 would be a console error).
                link rel="icon" href="data:,";
                // First, so errors anywhere after it are recorded (tests assert none happen).
                script src="/ui/assets/early.js" {}
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/app.js" defer {}
            }
            body data-auth=(if needs_token { "token" } else { "none" }) {
                header.top {
                    a.brand href="/" { "Causeway" }
                    nav {
                        @for (key, href, label) in [("incidents", "/", "Incidents"), ("services", "/services", "Services"), ("journeys", "/journeys", "Journeys"), ("teams", "/teams", "Teams")] {
                            a href=(href) class=[(key == nav).then_some("active")] aria-current=[(key == nav).then_some("page")] { (label) }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// Sends a page with the security headers, scrubbed of every configured secret value.
fn respond(state: &ApiState, status: StatusCode, markup: Markup) -> Response {
    let mut text = markup.into_string();
    for secret in secret_values(state) {
        if text.contains(&secret) {
            tracing::warn!("a configured secret reached a rendered page; it was removed");
            text = text.replace(&secret, "[redacted]");
        }
    }
    let mut response = (status, Html(text)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The secret values configured for teams (routing keys, webhook URLs) and the API tokens.
fn secret_values(state: &ApiState) -> Vec<String> {
    let mut values = Vec::new();
    for contacts in state.ownership.contacts.values().chain(state.ownership.component_contacts.values()) {
        for secret in [&contacts.pagerduty, &contacts.slack].into_iter().flatten() {
            if let Ok(value) = secret.resolve() {
                values.push(value.expose().to_string());
            }
        }
        if let Some(webhook) = &contacts.webhook {
            values.push(webhook.url.clone());
        }
    }
    for token in [&state.token, &state.ingest_token].into_iter().flatten() {
        values.push(token.expose().to_string());
    }
    // Very short values would blank out ordinary words.
    values.retain(|value| value.len() >= 8);
    values
}

async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "early.js" => (EARLY_JS, "text/javascript; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Percent-encodes a path segment (ids come from URLs and go back into them).
pub(crate) fn encode_path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query-string value, percent-encoded (`/` kept readable: service names contain it).
pub(crate) fn encode_query_value(text: &str) -> String {
    encode_path_segment(text).replace("%2F", "/")
}

/// A time for people: UTC, to the second.
pub(crate) fn clock(nanos: causeway_engine::Nanos) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| nanos.to_string())
}

/// A duration for people: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub(crate) fn age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h {}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

pub(crate) fn percent(value: f64) -> String {
    if value > 0.0 && value < 0.01 { format!("{:.1}%", value * 100.0) } else { format!("{:.0}%", value * 100.0) }
}

/// Raw HTML already escaped by its producer (SVG from the graph and chart modules).
pub(crate) fn trusted(svg: String) -> PreEscaped<String> {
    PreEscaped(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_encoded_for_urls() {
        assert_eq!(encode_path_segment("inc-12"), "inc-12");
        assert_eq!(encode_path_segment("a b/c?"), "a%20b%2Fc%3F");
        assert_eq!(encode_query_value("postgresql/payments"), "postgresql/payments");
        assert_eq!(encode_query_value("a&b"), "a%26b");
    }

    #[test]
    fn ages_read_like_people_say_them() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(3 * 3600 + 300), "3h 5m");
        assert_eq!(age(2 * 86_400 + 4 * 3600), "2d 4h");
    }
}
