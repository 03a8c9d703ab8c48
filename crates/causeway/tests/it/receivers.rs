//! Local stand-ins for PagerDuty, Opsgenie, Slack and webhook endpoints: record every request,
//! answer with planned statuses (or never), so tests check the documented request shapes and
//! the delivery behaviour without reaching any outside address.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;

#[derive(Clone, Debug)]
pub enum Plan {
    Status(u16),
    /// Answer with this status and JSON body.
    Json(u16, Value),
    /// Never answer.
    Hang,
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
struct MockState {
    requests: Vec<Recorded>,
    plans: HashMap<String, VecDeque<Plan>>,
    defaults: HashMap<String, Plan>,
}

#[derive(Clone)]
pub struct Mock {
    pub url: String,
    state: Arc<Mutex<MockState>>,
}

impl Mock {
    pub async fn start() -> Mock {
        let state = Arc::new(Mutex::new(MockState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock { url, state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers for requests whose path starts with `prefix`, in order; then `then` forever.
    pub fn plan(&self, prefix: &str, plans: Vec<Plan>, then: Plan) {
        let mut state = self.lock();
        state.plans.insert(prefix.to_string(), plans.into());
        state.defaults.insert(prefix.to_string(), then);
    }

    pub fn requests(&self, prefix: &str) -> Vec<Recorded> {
        self.lock().requests.iter().filter(|request| request.path.starts_with(prefix)).cloned().collect()
    }

    /// Waits until `count` requests under `prefix` match `predicate`.
    pub async fn wait_for(
        &self,
        prefix: &str,
        count: usize,
        predicate: impl Fn(&Recorded) -> bool,
        timeout: Duration,
    ) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let matching: Vec<Recorded> =
                self.requests(prefix).into_iter().filter(|request| predicate(request)).collect();
            if matching.len() >= count {
                return matching;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "waited {timeout:?} for {count} requests under {prefix}; got {}: {:#?}",
                    matching.len(),
                    self.requests("")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn handle(
    State(state): State<Arc<Mutex<MockState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let plan = {
        let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.requests.push(Recorded {
            path: path.clone(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let prefix =
            state.plans.keys().filter(|prefix| path.starts_with(prefix.as_str())).max_by_key(|p| p.len()).cloned();
        match prefix {
            Some(prefix) => {
                let next = state.plans.get_mut(&prefix).and_then(VecDeque::pop_front);
                next.or_else(|| state.defaults.get(&prefix).cloned()).unwrap_or(Plan::Status(202))
            }
            None => Plan::Status(202),
        }
    };
    match plan {
        Plan::Status(code) => {
            (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), r#"{"status":"success"}"#.to_string())
        }
        Plan::Json(code, body) => (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), body.to_string()),
        Plan::Hang => std::future::pending().await,
    }
}

/// An OpenAI-compatible chat completion answering `content`, as the narrator's endpoint would.
pub fn completion(content: &str) -> serde_json::Value {
    serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]})
}
