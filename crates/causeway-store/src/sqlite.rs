//! The embedded SQLite backend (bundled SQLite via rusqlite: nothing to install).
//!
//! The schema is versioned: `MIGRATIONS[i]` upgrades version `i` to `i + 1`, applied in order
//! inside a transaction at open. WAL mode with `synchronous=FULL`: a committed decision survives
//! `kill -9` and power loss.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Attempt, Batch, Correction, Delivery, DeliveryStatus, IncidentEvent, IncidentRecord, Nanos, NewDelivery, Result,
    SliMinute, Store, StoreError, parse_status, status_str,
};

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        resolved_at INTEGER,
        updated_at INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX incidents_opened ON incidents (opened_at);
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX decisions_incident ON decisions (incident_id);
    CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX incident_events_incident ON incident_events (incident_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id TEXT NOT NULL,
        team TEXT NOT NULL,
        action TEXT NOT NULL,
        channel TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        fallbacks TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        delivered_at INTEGER
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
    CREATE INDEX outbox_incident ON outbox (incident_id);
    CREATE TABLE delivery_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id INTEGER NOT NULL,
        at INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        status_code INTEGER,
        outcome TEXT NOT NULL,
        error TEXT
    );
    CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id);
    CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        service TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX changes_at ON changes (at);
    CREATE TABLE corrections (
        component TEXT NOT NULL,
        signature TEXT NOT NULL,
        team TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (component, signature)
    );
    CREATE TABLE sli_minutes (
        journey TEXT NOT NULL,
        minute INTEGER NOT NULL,
        total INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        slow INTEGER NOT NULL,
        PRIMARY KEY (journey, minute)
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
];

pub struct SqliteStore {
    connection: Connection,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating when needed) `causeway.db` in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        std::fs::create_dir_all(data_dir)?;
        let connection = Connection::open(data_dir.join("causeway.db"))?;
        SqliteStore::from_connection(connection)
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<SqliteStore> {
        SqliteStore::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(connection: Connection) -> Result<SqliteStore> {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = SqliteStore { connection };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version after migration.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.connection.query_row("SELECT version FROM schema_version", [], |row| row.get(0))?)
    }

    fn migrate(&mut self) -> Result<()> {
        let transaction = self.connection.transaction()?;
        transaction.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", [])?;
        let current: Option<i64> =
            transaction.query_row("SELECT version FROM schema_version", [], |row| row.get(0)).optional()?;
        let current = match current {
            Some(version) => version,
            None => {
                transaction.execute("INSERT INTO schema_version (version) VALUES (0)", [])?;
                0
            }
        };
        let supported = MIGRATIONS.len() as i64;
        if current > supported {
            return Err(StoreError::FutureSchema { found: current, supported });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            transaction.execute_batch(migration)?;
            transaction.execute("UPDATE schema_version SET version = ?1", params![index as i64 + 1])?;
        }
        transaction.commit()?;
        Ok(())
    }
}

fn delivery_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let fallbacks: String = row.get("fallbacks")?;
    let status: String = row.get("status")?;
    Ok(Delivery {
        id: row.get("id")?,
        new: NewDelivery {
            incident_id: row.get("incident_id")?,
            team: row.get("team")?,
            action: row.get("action")?,
            channel: row.get("channel")?,
            dedup_key: row.get("dedup_key")?,
            payload: row.get("payload")?,
            created_at: row.get("created_at")?,
            fallbacks: serde_json::from_str(&fallbacks).unwrap_or_default(),
        },
        status: parse_status(&status),
        attempts: row.get("attempts")?,
        next_attempt_at: row.get("next_attempt_at")?,
        last_error: row.get("last_error")?,
        delivered_at: row.get("delivered_at")?,
    })
}

fn incident_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRecord> {
    Ok(IncidentRecord {
        id: row.get("id")?,
        state: row.get("state")?,
        opened_at: row.get("opened_at")?,
        resolved_at: row.get("resolved_at")?,
        updated_at: row.get("updated_at")?,
        body: row.get("body")?,
    })
}

impl Store for SqliteStore {
    fn record(&mut self, batch: &Batch) -> Result<Vec<i64>> {
        let transaction = self.connection.transaction()?;
        for incident in &batch.incidents {
            transaction.execute(
                "INSERT INTO incidents (id, state, opened_at, resolved_at, updated_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET state = ?2, resolved_at = ?4, updated_at = ?5, body = ?6",
                params![incident.id, incident.state, incident.opened_at, incident.resolved_at, incident.updated_at, incident.body],
            )?;
        }
        for (incident_id, at, body) in &batch.decisions {
            transaction.execute(
                "INSERT INTO decisions (incident_id, at, body) VALUES (?1, ?2, ?3)",
                params![incident_id, at, body],
            )?;
        }
        for event in &batch.events {
            transaction.execute(
                "INSERT INTO incident_events (incident_id, at, kind, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![event.incident_id, event.at, event.kind, event.actor, event.detail],
            )?;
        }
        for correction in &batch.corrections {
            transaction.execute(
                "INSERT INTO corrections (component, signature, team, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (component, signature) DO UPDATE SET team = ?3, at = ?4",
                params![correction.component, correction.signature, correction.team, correction.at],
            )?;
        }
        let mut ids = Vec::with_capacity(batch.deliveries.len());
        for delivery in &batch.deliveries {
            let fallbacks = serde_json::to_string(&delivery.fallbacks).unwrap_or_else(|_| "[]".to_string());
            transaction.execute(
                "INSERT INTO outbox (incident_id, team, action, channel, dedup_key, payload, created_at, fallbacks, status, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?7)",
                params![
                    delivery.incident_id,
                    delivery.team,
                    delivery.action,
                    delivery.channel,
                    delivery.dedup_key,
                    delivery.payload,
                    delivery.created_at,
                    fallbacks
                ],
            )?;
            ids.push(transaction.last_insert_rowid());
        }
        transaction.commit()?;
        Ok(ids)
    }

    fn incident(&self, id: &str) -> Result<Option<IncidentRecord>> {
        Ok(self
            .connection
            .query_row("SELECT * FROM incidents WHERE id = ?1", params![id], incident_from_row)
            .optional()?)
    }

    fn incidents(&self, open_only: bool, limit: usize) -> Result<Vec<IncidentRecord>> {
        let sql = if open_only {
            "SELECT * FROM incidents WHERE state != 'resolved' ORDER BY opened_at DESC, id DESC LIMIT ?1"
        } else {
            "SELECT * FROM incidents ORDER BY opened_at DESC, id DESC LIMIT ?1"
        };
        let mut statement = self.connection.prepare(sql)?;
        let rows = statement.query_map(params![limit as i64], incident_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn decisions(&self, incident_id: &str) -> Result<Vec<(Nanos, String)>> {
        let mut statement =
            self.connection.prepare("SELECT at, body FROM decisions WHERE incident_id = ?1 ORDER BY id")?;
        let rows = statement.query_map(params![incident_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn events(&self, incident_id: &str) -> Result<Vec<IncidentEvent>> {
        let mut statement = self.connection.prepare(
            "SELECT incident_id, at, kind, actor, detail FROM incident_events WHERE incident_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map(params![incident_id], |row| {
            Ok(IncidentEvent {
                incident_id: row.get(0)?,
                at: row.get(1)?,
                kind: row.get(2)?,
                actor: row.get(3)?,
                detail: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn due_deliveries(&self, now: Nanos, limit: usize) -> Result<Vec<Delivery>> {
        let mut statement = self.connection.prepare(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
        )?;
        let rows = statement.query_map(params![now, limit as i64], delivery_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn pending_deliveries(&self, limit: usize) -> Result<Vec<Delivery>> {
        let mut statement =
            self.connection.prepare("SELECT * FROM outbox WHERE status = 'pending' ORDER BY id LIMIT ?1")?;
        let rows = statement.query_map(params![limit as i64], delivery_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn next_due(&self) -> Result<Option<Nanos>> {
        Ok(self.connection.query_row(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'",
            [],
            |row| row.get(0),
        )?)
    }

    fn deliveries(&self, incident_id: &str) -> Result<Vec<Delivery>> {
        let mut statement = self.connection.prepare("SELECT * FROM outbox WHERE incident_id = ?1 ORDER BY id")?;
        let rows = statement.query_map(params![incident_id], delivery_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn attempts(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        let mut statement = self.connection.prepare(
            "SELECT delivery_id, at, attempt, status_code, outcome, error FROM delivery_attempts WHERE delivery_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map(params![delivery_id], |row| {
            Ok(Attempt {
                delivery_id: row.get(0)?,
                at: row.get(1)?,
                attempt: row.get(2)?,
                status_code: row.get(3)?,
                outcome: row.get(4)?,
                error: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn record_attempt(
        &mut self,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Nanos,
        error: Option<&str>,
    ) -> Result<()> {
        let transaction = self.connection.transaction()?;
        transaction.execute(
            "INSERT INTO delivery_attempts (delivery_id, at, attempt, status_code, outcome, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![attempt.delivery_id, attempt.at, attempt.attempt, attempt.status_code, attempt.outcome, attempt.error],
        )?;
        let delivered_at = (status == DeliveryStatus::Delivered).then_some(attempt.at);
        let updated = transaction.execute(
            "UPDATE outbox SET status = ?2, attempts = ?3, next_attempt_at = ?4, last_error = ?5,
             delivered_at = COALESCE(?6, delivered_at) WHERE id = ?1",
            params![attempt.delivery_id, status_str(status), attempt.attempt, next_attempt_at, error, delivered_at],
        )?;
        if updated == 0 {
            return Err(StoreError::NoSuchDelivery(attempt.delivery_id));
        }
        transaction.commit()?;
        Ok(())
    }

    fn add_change(&mut self, at: Nanos, service: &str, body: &str) -> Result<()> {
        self.connection
            .execute("INSERT INTO changes (at, service, body) VALUES (?1, ?2, ?3)", params![at, service, body])?;
        Ok(())
    }

    fn changes(&self, since: Nanos, limit: usize) -> Result<Vec<String>> {
        let mut statement =
            self.connection.prepare("SELECT body FROM changes WHERE at >= ?1 ORDER BY at, id LIMIT ?2")?;
        let rows = statement.query_map(params![since, limit as i64], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn corrections(&self) -> Result<Vec<Correction>> {
        let mut statement =
            self.connection.prepare("SELECT component, signature, team, at FROM corrections ORDER BY at")?;
        let rows = statement.query_map([], |row| {
            Ok(Correction { component: row.get(0)?, signature: row.get(1)?, team: row.get(2)?, at: row.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn save_sli(&mut self, journey: &str, minutes: &[SliMinute]) -> Result<()> {
        let transaction = self.connection.transaction()?;
        {
            let mut statement = transaction.prepare(
                "INSERT INTO sli_minutes (journey, minute, total, errors, slow) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (journey, minute) DO UPDATE SET total = ?3, errors = ?4, slow = ?5",
            )?;
            for minute in minutes {
                statement.execute(params![journey, minute.minute, minute.total, minute.errors, minute.slow])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    fn sli(&self, journey: &str, since: i64) -> Result<Vec<SliMinute>> {
        let mut statement = self.connection.prepare(
            "SELECT minute, total, errors, slow FROM sli_minutes WHERE journey = ?1 AND minute >= ?2 ORDER BY minute",
        )?;
        let rows = statement.query_map(params![journey, since], |row| {
            Ok(SliMinute { minute: row.get(0)?, total: row.get(1)?, errors: row.get(2)?, slow: row.get(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .connection
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |row| row.get(0))
            .optional()?)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.connection.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_passes_the_conformance_suite() {
        let mut store = SqliteStore::in_memory().expect("in-memory store");
        crate::conformance::run(&mut store);
    }

    #[test]
    fn the_schema_is_versioned_and_reopening_keeps_data() {
        let dir = std::env::temp_dir().join(format!("causeway-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut store = SqliteStore::open(&dir).expect("open");
            assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len() as i64);
            store.set_meta("next_incident", "42").expect("meta");
        }
        let store = SqliteStore::open(&dir).expect("reopen");
        assert_eq!(store.meta("next_incident").expect("meta").as_deref(), Some("42"));
        drop(store);
        // A database from a newer causeway is refused rather than corrupted.
        let connection = Connection::open(dir.join("causeway.db")).expect("raw open");
        connection.execute("UPDATE schema_version SET version = 99", []).expect("bump");
        drop(connection);
        let error = SqliteStore::open(&dir).expect_err("future schema");
        assert!(error.to_string().contains("schema version 99"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
