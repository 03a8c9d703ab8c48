//! The conformance suite every [`Store`] backend must pass. Backends call [`run`] from a test
//! with a fresh, empty store.

use crate::{Attempt, Batch, Correction, DeliveryStatus, IncidentEvent, IncidentRecord, NewDelivery, SliMinute, Store};

fn incident(id: &str, state: &str, opened_at: i64) -> IncidentRecord {
    IncidentRecord {
        id: id.to_string(),
        state: state.to_string(),
        opened_at,
        resolved_at: None,
        updated_at: opened_at,
        body: format!("{{\"id\":\"{id}\"}}"),
    }
}

fn delivery(incident_id: &str, team: &str, action: &str, created_at: i64) -> NewDelivery {
    NewDelivery {
        incident_id: incident_id.to_string(),
        team: team.to_string(),
        action: action.to_string(),
        channel: "pagerduty".to_string(),
        dedup_key: format!("causeway-{incident_id}-{team}"),
        payload: "{}".to_string(),
        created_at,
        fallbacks: vec!["slack".to_string()],
    }
}

/// Runs every check; panics with a message naming the failed property.
pub fn run(store: &mut dyn Store) {
    // Incidents, decisions and deliveries are written together.
    let batch = Batch {
        incidents: vec![incident("inc-1", "open", 100), incident("inc-2", "open", 200)],
        decisions: vec![("inc-1".into(), 100, "{\"outcome\":\"single_cause\"}".into())],
        deliveries: vec![delivery("inc-1", "payments", "page", 100), delivery("inc-1", "web", "notify", 100)],
        events: vec![],
        corrections: vec![],
    };
    let ids = store.record(&batch).expect("record a batch");
    assert_eq!(ids.len(), 2, "record returns one id per delivery");
    assert_ne!(ids[0], ids[1], "delivery ids are distinct");

    let listed = store.incidents(false, 10).expect("list incidents");
    assert_eq!(listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec!["inc-2", "inc-1"], "newest first");
    assert_eq!(store.decisions("inc-1").expect("decisions").len(), 1);

    // Snapshots upsert.
    let mut resolved = incident("inc-2", "resolved", 200);
    resolved.resolved_at = Some(300);
    resolved.updated_at = 300;
    store.record(&Batch { incidents: vec![resolved.clone()], ..Batch::default() }).expect("upsert");
    assert_eq!(store.incident("inc-2").expect("get"), Some(resolved));
    assert_eq!(store.incidents(true, 10).expect("open").len(), 1, "open_only skips resolved");
    assert_eq!(store.incident("nope").expect("get missing"), None);

    // The outbox: due rows, attempts, retries, delivery.
    let due = store.due_deliveries(100, 10).expect("due");
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].new.fallbacks, vec!["slack".to_string()], "fallbacks round-trip");
    assert!(store.due_deliveries(99, 10).expect("due").is_empty(), "not due before created_at");
    let first = due[0].id;
    store
        .record_attempt(
            &Attempt {
                delivery_id: first,
                at: 101,
                attempt: 1,
                status_code: Some(500),
                outcome: "retry".into(),
                error: Some("HTTP 500".into()),
            },
            DeliveryStatus::Pending,
            150,
            Some("HTTP 500"),
        )
        .expect("retry");
    assert_eq!(store.due_deliveries(120, 10).expect("due").len(), 1, "retried row waits for its backoff");
    assert_eq!(store.next_due().expect("next due"), Some(100));
    let pending = store.pending_deliveries(10).expect("pending");
    assert_eq!(pending.iter().map(|row| row.id).collect::<Vec<_>>(), ids, "pending rows in creation order, due or not");
    store
        .record_attempt(
            &Attempt {
                delivery_id: first,
                at: 151,
                attempt: 2,
                status_code: Some(202),
                outcome: "delivered".into(),
                error: None,
            },
            DeliveryStatus::Delivered,
            151,
            None,
        )
        .expect("delivered");
    let rows = store.deliveries("inc-1").expect("deliveries");
    let row = rows.iter().find(|row| row.id == first).expect("row");
    assert_eq!(row.status, DeliveryStatus::Delivered);
    assert_eq!(row.attempts, 2);
    assert_eq!(row.delivered_at, Some(151));
    assert_eq!(store.attempts(first).expect("attempts").len(), 2, "every attempt is recorded");
    assert!(
        store
            .record_attempt(
                &Attempt {
                    delivery_id: 9999,
                    at: 1,
                    attempt: 1,
                    status_code: None,
                    outcome: "retry".into(),
                    error: None
                },
                DeliveryStatus::Pending,
                1,
                None
            )
            .is_err(),
        "unknown delivery is an error"
    );

    // Events, corrections, changes, SLI minutes, metadata.
    store
        .record(&Batch {
            events: vec![IncidentEvent {
                incident_id: "inc-1".into(),
                at: 160,
                kind: "reroute".into(),
                actor: "alice".into(),
                detail: "to dba".into(),
            }],
            corrections: vec![Correction {
                component: "postgresql/payments".into(),
                signature: "error".into(),
                team: "dba".into(),
                at: 160,
            }],
            ..Batch::default()
        })
        .expect("events");
    assert_eq!(store.events("inc-1").expect("events")[0].kind, "reroute");
    store
        .record(&Batch {
            corrections: vec![Correction {
                component: "postgresql/payments".into(),
                signature: "error".into(),
                team: "platform".into(),
                at: 170,
            }],
            ..Batch::default()
        })
        .expect("correction update");
    let corrections = store.corrections().expect("corrections");
    assert_eq!(corrections.len(), 1, "one correction per component and signature");
    assert_eq!(corrections[0].team, "platform", "the latest correction wins");

    store.add_change(50, "payments", "{\"kind\":\"deploy\"}").expect("change");
    store.add_change(60, "cart", "{\"kind\":\"config\"}").expect("change");
    assert_eq!(store.changes(55, 10).expect("changes").len(), 1);

    let minutes = [
        SliMinute { minute: 10, total: 5, errors: 1, slow: 0 },
        SliMinute { minute: 11, total: 7, errors: 0, slow: 2 },
    ];
    store.save_sli("checkout", &minutes).expect("save sli");
    store.save_sli("checkout", &[SliMinute { minute: 11, total: 8, errors: 0, slow: 2 }]).expect("update sli");
    let loaded = store.sli("checkout", 11).expect("load sli");
    assert_eq!(loaded, vec![SliMinute { minute: 11, total: 8, errors: 0, slow: 2 }]);

    assert_eq!(store.meta("missing").expect("meta"), None);
    store.set_meta("next_incident", "7").expect("set meta");
    store.set_meta("next_incident", "8").expect("set meta");
    assert_eq!(store.meta("next_incident").expect("meta").as_deref(), Some("8"));
}
