//! Causeway's durable state: incidents (JSON snapshots of the engine's incidents), decisions,
//! incident events (acknowledgements, reroutes), the delivery outbox and its attempts, changes,
//! ownership corrections, SLI counters, and a little metadata.
//!
//! [`Store`] is the interface; [`sqlite::SqliteStore`] the embedded backend (a file under
//! `--data-dir`). [`conformance::run`] is the test suite every backend must pass.
//!
//! The store knows nothing of the engine's types: incident and decision bodies are JSON text the
//! binary writes and reads back. **Invariant:** a decision's incident snapshot and its outbox rows
//! are written in one transaction ([`Store::record`]), before anything is sent.

pub mod conformance;
pub mod sqlite;

use serde::{Deserialize, Serialize};

pub type Nanos = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: schema version {found} is newer than this causeway understands ({supported})")]
    FutureSchema { found: i64, supported: i64 },
    #[error("store: no outbox row {0}")]
    NoSuchDelivery(i64),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// An incident snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub id: String,
    pub state: String,
    pub opened_at: Nanos,
    pub resolved_at: Option<Nanos>,
    pub updated_at: Nanos,
    /// The engine's incident as JSON.
    pub body: String,
}

/// Something to send: one message to one channel of one team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewDelivery {
    pub incident_id: String,
    pub team: String,
    /// `page`, `notify`, `update`, `acknowledge`, `resolve`.
    pub action: String,
    /// `pagerduty`, `opsgenie`, `slack`, `webhook`.
    pub channel: String,
    /// Stable per incident and team: the vendor deduplicates on it.
    pub dedup_key: String,
    /// What to send, without secrets (they are resolved at send time).
    pub payload: String,
    pub created_at: Nanos,
    /// Channels left to fall back to, in order, if this one keeps failing.
    pub fallbacks: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Gave up (non-retryable answer or attempts exhausted); a fallback may have been queued.
    Failed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> DeliveryStatus {
        match text {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// An outbox row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    #[serde(flatten)]
    pub new: NewDelivery,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Nanos,
    pub last_error: Option<String>,
    pub delivered_at: Option<Nanos>,
}

/// One try at sending a delivery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub delivery_id: i64,
    pub at: Nanos,
    pub attempt: u32,
    pub status_code: Option<u16>,
    /// `delivered`, `retry`, `failed`.
    pub outcome: String,
    pub error: Option<String>,
}

/// An acknowledgement, a reroute, a manual resolve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub incident_id: String,
    pub at: Nanos,
    pub kind: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub component: String,
    pub signature: String,
    pub team: String,
    pub at: Nanos,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliMinute {
    pub minute: i64,
    pub total: u32,
    pub errors: u32,
    pub slow: u32,
}

/// Everything one engine step produced, written atomically.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub incidents: Vec<IncidentRecord>,
    /// `(incident id, at, decision JSON)`.
    pub decisions: Vec<(String, Nanos, String)>,
    pub deliveries: Vec<NewDelivery>,
    pub events: Vec<IncidentEvent>,
    pub corrections: Vec<Correction>,
}

/// The durable state, whatever holds it.
pub trait Store: Send {
    /// Writes a batch in one transaction; returns the ids of the new outbox rows.
    fn record(&mut self, batch: &Batch) -> Result<Vec<i64>>;

    fn incident(&self, id: &str) -> Result<Option<IncidentRecord>>;
    /// Newest first; `open_only` skips resolved incidents.
    fn incidents(&self, open_only: bool, limit: usize) -> Result<Vec<IncidentRecord>>;
    fn decisions(&self, incident_id: &str) -> Result<Vec<(Nanos, String)>>;
    fn events(&self, incident_id: &str) -> Result<Vec<IncidentEvent>>;

    /// Pending deliveries due at `now`, oldest first.
    fn due_deliveries(&self, now: Nanos, limit: usize) -> Result<Vec<Delivery>>;
    /// Pending deliveries in creation order (due or not), for ordered sending.
    fn pending_deliveries(&self, limit: usize) -> Result<Vec<Delivery>>;
    /// The earliest `next_attempt_at` among pending deliveries.
    fn next_due(&self) -> Result<Option<Nanos>>;
    fn deliveries(&self, incident_id: &str) -> Result<Vec<Delivery>>;
    fn attempts(&self, delivery_id: i64) -> Result<Vec<Attempt>>;
    /// Records an attempt and the delivery's new state.
    fn record_attempt(
        &mut self,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Nanos,
        error: Option<&str>,
    ) -> Result<()>;

    fn add_change(&mut self, at: Nanos, service: &str, body: &str) -> Result<()>;
    /// Changes at or after `since`, oldest first.
    fn changes(&self, since: Nanos, limit: usize) -> Result<Vec<String>>;

    fn corrections(&self) -> Result<Vec<Correction>>;

    fn save_sli(&mut self, journey: &str, minutes: &[SliMinute]) -> Result<()>;
    /// Minutes at or after `since`.
    fn sli(&self, journey: &str, since: i64) -> Result<Vec<SliMinute>>;

    fn meta(&self, key: &str) -> Result<Option<String>>;
    fn set_meta(&mut self, key: &str, value: &str) -> Result<()>;
}

impl DeliveryStatus {
    pub fn is_pending(self) -> bool {
        self == DeliveryStatus::Pending
    }
}

pub(crate) fn status_str(status: DeliveryStatus) -> &'static str {
    status.as_str()
}

pub(crate) fn parse_status(text: &str) -> DeliveryStatus {
    DeliveryStatus::parse(text)
}
