//! The optional narrator (SPEC §4.7): an OpenAI-compatible chat-completions endpoint (OpenAI,
//! Azure, vLLM, llama.cpp, Ollama) turns the brief's evidence into a short summary.
//!
//! The routing decision never depends on it and the page never waits for it: narration is
//! requested after the page is queued, and arrives (if at all) as an update. The reply must cite
//! evidence ids (`[E1]`); a reply that cites nothing, or cites ids the brief does not have, is
//! dropped. The narration is stored marked as AI-written. The API key is a [`Secret`]: never
//! logged, never in errors.

use std::sync::Arc;
use std::time::Duration;

use causeway_engine::brief::{Brief, Narration};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Secret;
use crate::config::HumanDuration;
use crate::pipeline::{Shared, wall_clock_nanos};

/// `assistant:` in causeway.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssistantSection {
    /// e.g. `http://127.0.0.1:11434/v1` (the `/chat/completions` path is appended).
    pub base_url: String,
    pub model: String,
    /// Environment variable holding the API key (optional for local servers).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(20))
}

/// A request for narration of one incident's brief.
#[derive(Debug, Clone)]
pub struct Job {
    pub incident_id: String,
    pub brief: Brief,
}

pub struct Narrator {
    config: AssistantSection,
    key: Option<Secret>,
    client: reqwest::Client,
}

impl Narrator {
    pub fn new(config: AssistantSection) -> anyhow::Result<Narrator> {
        let key = config.api_key_env.as_deref().map(Secret::from_env).transpose()?;
        let client = reqwest::Client::builder().timeout(config.timeout.0).build()?;
        Ok(Narrator { config, key, client })
    }

    /// Serves narration jobs until the channel closes, applying accepted narrations to the core.
    pub async fn run(self, mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>, shared: Arc<Shared>) {
        while let Some(job) = jobs.recv().await {
            let narration = self.narrate(&job).await;
            let Some(narration) = narration else { continue };
            let shared = shared.clone();
            let incident = job.incident_id.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let mut core = shared.core();
                core.narrate(&incident, narration, wall_clock_nanos());
            })
            .await;
        }
    }

    /// Asks the model; returns an accepted narration or `None` (logged why).
    pub async fn narrate(&self, job: &Job) -> Option<Narration> {
        let evidence: Vec<serde_json::Value> =
            job.brief.evidence.iter().map(|item| json!({"id": item.id, "text": item.text})).collect();
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": "You are an SRE teammate. Summarise the incident for the on-call engineer in at most five sentences. Use only the evidence given. After every claim cite the evidence ids in square brackets, like [E1]. Do not invent causes."},
                {"role": "user", "content": json!({
                    "incident": job.incident_id,
                    "summary": job.brief.summary,
                    "probable_causes": job.brief.probable_causes.iter().map(|c| json!({"service": c.service, "score": c.score, "why": c.why})).collect::<Vec<_>>(),
                    "remediations": job.brief.remediations,
                    "evidence": evidence,
                }).to_string()},
            ],
        });
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let mut request = self.client.post(&url).json(&body);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key.expose());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(incident = %job.incident_id, error = %error.without_url(), "narrator unavailable; the page went out without it");
                return None;
            }
        };
        let status = response.status();
        let reply: serde_json::Value = match response.json().await {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(incident = %job.incident_id, %status, error = %error.without_url(), "narrator answered something unreadable");
                return None;
            }
        };
        if !status.is_success() {
            tracing::warn!(incident = %job.incident_id, %status, "narrator refused");
            return None;
        }
        let text = reply["choices"][0]["message"]["content"].as_str().unwrap_or_default().trim().to_string();
        accept(&text, &job.brief, &self.config.model).or_else(|| {
            tracing::warn!(incident = %job.incident_id, "narration dropped: it cites no evidence, or evidence that does not exist");
            None
        })
    }
}

/// Keeps a reply only if it cites at least one evidence id and every id it cites exists.
pub fn accept(text: &str, brief: &Brief, model: &str) -> Option<Narration> {
    if text.is_empty() {
        return None;
    }
    let mut cites: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'E' && (index == 0 || !bytes[index - 1].is_ascii_alphanumeric()) {
            let digits: String = text[index + 1..].chars().take_while(char::is_ascii_digit).collect();
            let after = index + 1 + digits.len();
            if !digits.is_empty() && (after == bytes.len() || !bytes[after].is_ascii_alphanumeric()) {
                let id = format!("E{digits}");
                if !cites.contains(&id) {
                    cites.push(id);
                }
            }
        }
        index += 1;
    }
    if cites.is_empty() || cites.iter().any(|id| !brief.evidence.iter().any(|item| &item.id == id)) {
        return None;
    }
    Some(Narration { text: text.to_string(), model: model.to_string(), cites, ai_generated: true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_engine::brief::Evidence;

    fn brief() -> Brief {
        Brief {
            evidence: vec![
                Evidence { id: "E1".into(), text: "payments blamed".into(), traces: vec![] },
                Evidence { id: "E2".into(), text: "version 2.14.0".into(), traces: vec![] },
            ],
            ..Brief::default()
        }
    }

    #[test]
    fn replies_must_cite_existing_evidence() {
        let good = accept("payments 2.14.0 fails [E1][E2].", &brief(), "m").expect("cites E1 and E2");
        assert_eq!(good.cites, vec!["E1", "E2"]);
        assert!(good.ai_generated);
        assert_eq!(accept("payments is broken, roll it back.", &brief(), "m"), None, "no citation");
        assert_eq!(accept("see [E7]", &brief(), "m"), None, "E7 does not exist");
        assert_eq!(accept("", &brief(), "m"), None);
        assert_eq!(accept("EXAMPLE E12b is not a citation", &brief(), "m"), None);
    }
}
