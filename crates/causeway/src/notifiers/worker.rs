//! The delivery worker: sends what the outbox holds, retries with exponential backoff and
//! jitter on 429, 5xx and network errors (not on other 4xx), records every attempt, and falls
//! back to the team's next channel when one keeps failing.
//!
//! Each send runs in its own task with a timeout, so a slow or dead endpoint never blocks
//! routing or other teams' pages. Deliveries with the same dedup key and channel go out in
//! order (a resolve never overtakes its page). After a crash, pending rows are sent again with
//! the same dedup key, which the vendors deduplicate.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_store::{Attempt, Batch, Delivery, DeliveryStatus, NewDelivery, Store};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use super::{Message, NotifiersSection, OPSGENIE, PAGERDUTY, SLACK, WEBHOOK, render};
use crate::auth::Secret;
use crate::ownership::LoadedOwnership;
use crate::pipeline::wall_clock_nanos;

pub type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// Locks the store, recovering from a poisoned lock (the store's own state is transactional).
pub fn lock(store: &SharedStore) -> std::sync::MutexGuard<'_, Box<dyn Store>> {
    store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Clone)]
pub struct Worker {
    pub store: SharedStore,
    pub ownership: Arc<LoadedOwnership>,
    pub config: NotifiersSection,
    pub client: reqwest::Client,
    pub wake: Arc<tokio::sync::Notify>,
    in_flight: Arc<Mutex<HashSet<(String, String)>>>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered(u16),
    /// Worth trying again: 429, 5xx, network error, timeout.
    Retry(Option<u16>, String),
    /// Not worth trying again on this channel: other 4xx, missing secret, bad configuration.
    Fail(Option<u16>, String),
}

impl Worker {
    pub fn new(
        store: SharedStore,
        ownership: Arc<LoadedOwnership>,
        config: NotifiersSection,
        wake: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Worker> {
        let client = reqwest::Client::builder()
            .timeout(config.delivery.timeout.0)
            .connect_timeout(config.delivery.timeout.0)
            .user_agent(concat!("causeway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Worker { store, ownership, config, client, wake, in_flight: Arc::new(Mutex::new(HashSet::new())) })
    }

    /// Sends until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let next_due = self.dispatch().await;
            let sleep = match next_due {
                Some(at) => {
                    let wait = (at - wall_clock_nanos()).clamp(10_000_000, 1_000_000_000);
                    Duration::from_nanos(wait as u64)
                }
                None => Duration::from_secs(1),
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(sleep) => {},
            }
        }
    }

    /// Starts every due delivery that is first in line for its key; returns the next due time.
    async fn dispatch(&self) -> Option<i64> {
        let store = self.store.clone();
        let pending = tokio::task::spawn_blocking(move || lock(&store).pending_deliveries(512)).await;
        let pending = match pending {
            Ok(Ok(rows)) => rows,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read the outbox");
                return None;
            }
            Err(error) => {
                tracing::error!(%error, "outbox reader failed");
                return None;
            }
        };
        let now = wall_clock_nanos();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut next_due: Option<i64> = None;
        for delivery in pending {
            let key = (delivery.new.dedup_key.clone(), delivery.new.channel.clone());
            // Only the oldest pending row of a key may go: order within an incident and team.
            if !seen.insert(key.clone()) {
                continue;
            }
            if delivery.next_attempt_at > now {
                next_due = Some(next_due.map_or(delivery.next_attempt_at, |n: i64| n.min(delivery.next_attempt_at)));
                continue;
            }
            {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if !in_flight.insert(key.clone()) {
                    continue;
                }
            }
            let worker = self.clone();
            tokio::spawn(async move {
                worker.attempt(delivery).await;
                worker.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
                worker.wake.notify_one();
            });
        }
        next_due
    }

    async fn attempt(&self, delivery: Delivery) {
        let number = delivery.attempts + 1;
        let outcome = self.send(&delivery).await;
        let now = wall_clock_nanos();
        let max_attempts = self.config.delivery.max_attempts.max(1);
        let (status_code, outcome_name, error) = match &outcome {
            Outcome::Delivered(code) => (Some(*code), "delivered", None),
            Outcome::Retry(code, error) => (*code, "retry", Some(error.clone())),
            Outcome::Fail(code, error) => (*code, "failed", Some(error.clone())),
        };
        let give_up =
            matches!(outcome, Outcome::Fail(..)) || (matches!(outcome, Outcome::Retry(..)) && number >= max_attempts);
        let status = match outcome {
            Outcome::Delivered(_) => DeliveryStatus::Delivered,
            _ if give_up => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        };
        let next_attempt_at = if status == DeliveryStatus::Pending { now + self.backoff(number) } else { now };
        let record = Attempt {
            delivery_id: delivery.id,
            at: now,
            attempt: number,
            status_code,
            outcome: if give_up && outcome_name == "retry" { "failed".to_string() } else { outcome_name.to_string() },
            error: error.clone(),
        };
        match &status {
            DeliveryStatus::Delivered => tracing::info!(
                incident = %delivery.new.incident_id, team = %delivery.new.team, action = %delivery.new.action,
                channel = %delivery.new.channel, attempt = number, "delivered"
            ),
            DeliveryStatus::Pending => tracing::warn!(
                incident = %delivery.new.incident_id, team = %delivery.new.team, channel = %delivery.new.channel,
                attempt = number, error = error.as_deref().unwrap_or(""), "delivery failed, will retry"
            ),
            DeliveryStatus::Failed => tracing::error!(
                incident = %delivery.new.incident_id, team = %delivery.new.team, channel = %delivery.new.channel,
                attempt = number, error = error.as_deref().unwrap_or(""), fallback = delivery.new.fallbacks.first().map(String::as_str).unwrap_or("none"),
                "delivery failed for good on this channel"
            ),
        }
        let fallback = (status == DeliveryStatus::Failed).then(|| delivery.new.fallbacks.split_first()).flatten().map(
            |(next, rest)| NewDelivery {
                channel: next.clone(),
                fallbacks: rest.to_vec(),
                created_at: now,
                ..delivery.new.clone()
            },
        );
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || {
            let mut store = lock(&store);
            store.record_attempt(&record, status, next_attempt_at, record.error.as_deref())?;
            if let Some(fallback) = fallback {
                store.record(&Batch { deliveries: vec![fallback], ..Batch::default() })?;
            }
            Ok::<_, causeway_store::StoreError>(())
        })
        .await;
        if let Ok(Err(error)) = written {
            tracing::error!(%error, delivery = delivery.id, "cannot record a delivery attempt");
        }
    }

    fn backoff(&self, attempt: u32) -> i64 {
        let initial = self.config.delivery.initial_backoff.0.as_nanos() as f64;
        let max = self.config.delivery.max_backoff.0.as_nanos() as f64;
        let base = (initial * 2f64.powi(attempt.saturating_sub(1).min(30) as i32)).min(max);
        let jitter: f64 = rand::rng().random_range(0.5..1.5);
        (base * jitter) as i64
    }

    /// One attempt on the delivery's channel.
    pub async fn send(&self, delivery: &Delivery) -> Outcome {
        let message: Message = match serde_json::from_str(&delivery.new.payload) {
            Ok(message) => message,
            Err(error) => return Outcome::Fail(None, format!("unreadable outbox payload: {error}")),
        };
        let component = message.component.as_deref();
        let contacts = super::contacts_for(&self.ownership, &delivery.new.team, component);
        let (url, body, header, secrets): (String, serde_json::Value, Option<(&str, String)>, Vec<Secret>) =
            match delivery.new.channel.as_str() {
                PAGERDUTY => {
                    let Some(reference) = &contacts.pagerduty else {
                        return Outcome::Fail(None, format!("team {} has no PagerDuty routing key", delivery.new.team));
                    };
                    let key = match reference.resolve() {
                        Ok(key) => key,
                        Err(error) => return Outcome::Fail(None, format!("PagerDuty routing key: {error}")),
                    };
                    (
                        self.config.pagerduty.events_url.clone(),
                        render::pagerduty(&message, key.expose()),
                        None,
                        vec![key],
                    )
                }
                OPSGENIE => {
                    let Some(target) = &contacts.opsgenie else {
                        return Outcome::Fail(None, format!("team {} has no Opsgenie team", delivery.new.team));
                    };
                    let key = match Secret::from_env(&self.config.opsgenie.api_key_env) {
                        Ok(key) => key,
                        Err(error) => return Outcome::Fail(None, format!("Opsgenie API key: {error}")),
                    };
                    let (path, body) = render::opsgenie(&message, &target.team);
                    let url = format!("{}{path}", self.config.opsgenie.api_url.trim_end_matches('/'));
                    (url, body, Some(("authorization", format!("GenieKey {}", key.expose()))), vec![key])
                }
                SLACK => {
                    let Some(reference) = &contacts.slack else {
                        return Outcome::Fail(None, format!("team {} has no Slack webhook", delivery.new.team));
                    };
                    let url = match reference.resolve() {
                        Ok(url) => url,
                        Err(error) => return Outcome::Fail(None, format!("Slack webhook: {error}")),
                    };
                    (url.expose().to_string(), render::slack(&message), None, vec![url])
                }
                WEBHOOK => {
                    let Some(target) = &contacts.webhook else {
                        return Outcome::Fail(None, format!("team {} has no webhook", delivery.new.team));
                    };
                    let body = render::webhook(&message);
                    let mut secrets = Vec::new();
                    let header = match &target.secret_env {
                        Some(env) => match Secret::from_env(env) {
                            Ok(secret) => {
                                let signature = sign(secret.expose().as_bytes(), body.to_string().as_bytes());
                                secrets.push(secret);
                                Some(("x-causeway-signature", format!("sha256={signature}")))
                            }
                            Err(error) => return Outcome::Fail(None, format!("webhook signing secret: {error}")),
                        },
                        None => None,
                    };
                    (target.url.clone(), body, header, secrets)
                }
                other => return Outcome::Fail(None, format!("unknown channel {other:?}")),
            };
        let bytes = body.to_string();
        let mut request = self.client.post(&url).header("content-type", "application/json").body(bytes);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let text = scrub(&render::clip(&text, 300), &secrets);
                match status {
                    200..=299 => Outcome::Delivered(status),
                    408 | 429 | 500..=599 => Outcome::Retry(Some(status), format!("HTTP {status}: {text}")),
                    _ => Outcome::Fail(Some(status), format!("HTTP {status}: {text}")),
                }
            }
            Err(error) => {
                // reqwest errors carry the URL, which for Slack is itself a secret.
                let error = scrub(&error.without_url().to_string(), &secrets);
                Outcome::Retry(None, format!("network: {error}"))
            }
        }
    }
}

/// HMAC-SHA256 of `body` with `key`, hex-encoded (the `X-Causeway-Signature` header).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(), // HMAC takes keys of any length
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Replaces any secret value that slipped into a text.
fn scrub(text: &str, secrets: &[Secret]) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        if !secret.expose().is_empty() {
            text = text.replace(secret.expose(), "<redacted>");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_are_scrubbed_from_error_texts() {
        let secret = Secret::new("https://hooks.slack.test/T000/B000/XXXX");
        let text = scrub("error sending to https://hooks.slack.test/T000/B000/XXXX: refused", &[secret]);
        assert_eq!(text, "error sending to <redacted>: refused");
    }
}
