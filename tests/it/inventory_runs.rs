//! Inventory runs that do not go in one piece: a run stopped half-way resumes at the list it
//! had reached and ends with the events an uninterrupted run gives, and the audit logs keep
//! flowing while a run waits for its share of the request budget.

use std::collections::HashSet;
use std::time::Duration;

use openai_audit_ingest::metrics::Metrics;
use serde_json::Value;

use crate::helpers::{TestApp, wait_until};
use openai_audit_simulator::Family;

fn ids(events: &[Value]) -> HashSet<String> {
    events
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect()
}

fn inventory_pages(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with("oai_ingest_pages_total{") && l.contains("stream=\"inventory\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How far the saved checkpoint says the run in progress got (lists read), if one is.
fn lists_done(app: &TestApp) -> Option<u64> {
    let bytes = std::fs::read(app.checkpoint_path("inventory")).ok()?;
    let saved: Value = serde_json::from_slice(&bytes).ok()?;
    saved["state"]["run"]["lists_done"].as_u64()
}

/// The inventory's share of the budget so small that, after its first dozen requests, it
/// waits five seconds for each next one: a run that is reliably still going.
const THROTTLED: [(&str, &str); 2] = [
    ("OAI_INGEST__OPENAI__REQUESTS_PER_MINUTE", "600"),
    ("OAI_INGEST__INVENTORY__BUDGET_SHARE", "0.02"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_half_way_resumes_where_it_was_and_ends_with_the_events_of_an_uninterrupted_run() {
    let mut app = TestApp::builder().history(0).inventory().start().await;
    let whole_dir = tempfile::tempdir().expect("tempdir");
    let state_dir = app.env_value("OAI_INGEST__STATE__DIR").expect("state dir").to_string();

    // The reference: the same organization, a run that is never interrupted.
    app.set_env("OAI_INGEST__STATE__DIR", &whole_dir.path().display().to_string());
    let (report, metrics) = app.run_once_with_metrics().await;
    assert!(report.all_delivered);
    let whole = app.receiver().events();
    let whole_pages = inventory_pages(&metrics);
    assert!(whole_pages > 20, "{whole_pages}");

    // The same run, stopped while it waits for its share of the budget.
    app.set_env("OAI_INGEST__STATE__DIR", &state_dir);
    for (k, v) in THROTTLED {
        app.set_env(k, v);
    }
    let before = app.receiver().events().len();
    let running = app.spawn().await;
    wait_until(Duration::from_secs(30), "a checkpoint of the run in progress", || {
        lists_done(&app).is_some_and(|n| n >= 10)
    })
    .await;
    running.stop().await;
    let reached = lists_done(&app).expect("the stopped run left its progress");
    let first_part: Vec<Value> = app.receiver().events().into_iter().skip(before).collect();
    assert!(
        !first_part.iter().any(|e| e["type"] == "inventory.snapshot"),
        "the run was stopped before its end"
    );

    // Resumed with the whole budget: it reads only the lists it had not read.
    app.set_env("OAI_INGEST__INVENTORY__BUDGET_SHARE", "1");
    app.set_env("OAI_INGEST__OPENAI__REQUESTS_PER_MINUTE", "100000");
    let before = app.receiver().events().len();
    let (report, metrics) = app.run_once_with_metrics().await;
    assert!(report.all_delivered);
    let second_part: Vec<Value> = app.receiver().events().into_iter().skip(before).collect();
    let resumed_pages = inventory_pages(&metrics);
    assert!(
        resumed_pages + reached <= whole_pages,
        "the resumed run read {resumed_pages} pages after {reached} lists; a whole run reads {whole_pages}"
    );

    let mut both = ids(&first_part);
    both.extend(ids(&second_part));
    assert_eq!(both, ids(&whole), "the same events as the uninterrupted run");
    assert_eq!(lists_done(&app), None, "the run is over");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_events_keep_arriving_while_an_inventory_run_waits_for_its_share_of_the_budget() {
    let mut app = TestApp::builder()
        .history(0)
        .inventory()
        .env("OAI_INGEST__AUDIT_LOGS__ENABLED", "true")
        .env("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false")
        .start()
        .await;
    for (k, v) in THROTTLED {
        app.set_env(k, v);
    }
    let running = app.spawn().await;
    wait_until(Duration::from_secs(30), "an inventory run in progress", || {
        lists_done(&app).is_some_and(|n| n >= 10)
    })
    .await;
    // While the run waits for the budget, new audit events are polled and delivered.
    let mut expected = HashSet::new();
    for n in 0..3 {
        let raw = app.org().add_audit_event("project.updated", None);
        expected.insert(app.audit_event_id(&raw));
        let id = app.audit_event_id(&raw);
        wait_until(Duration::from_secs(30), &format!("audit event {n} delivered"), || {
            app.receiver().events().iter().any(|e| e["id"] == id.as_str())
        })
        .await;
    }
    let received = app.receiver().events();
    assert!(expected.is_subset(&ids(&received)));
    assert!(
        !received.iter().any(|e| e["type"] == "inventory.snapshot"),
        "the inventory run was still in progress the whole time"
    );
    running.stop().await;
    app.shutdown().await;
}

/// The audit-log stream's lag during an inventory run, counted in requests rather than
/// time: a budget of 4 requests a second (after a burst of 240), all of it open to an
/// inventory run that would take every request (`budget_share = 1`), audit logs polled every
/// second. An audit event added mid-run is delivered by the first poll after it, and that
/// poll waits for at most the one inventory request already on its way: between the event's
/// addition and its delivery the run gets at most the requests of two poll intervals (8 at
/// most, ~4 usually). Were the polls starved, the run would get the rest of its requests
/// (~80) first.
#[tokio::test(flavor = "multi_thread")]
async fn an_audit_event_during_an_inventory_run_waits_for_the_next_poll_not_for_the_run() {
    let mut app = TestApp::builder()
        .history(0)
        .size(600, 80)
        .inventory()
        .env("OAI_INGEST__AUDIT_LOGS__ENABLED", "true")
        .env("OAI_INGEST__AUDIT_LOGS__TENANT_EVENTS", "false")
        .env("OAI_INGEST__AUDIT_LOGS__POLL_INTERVAL", "1s")
        .start()
        .await;
    app.set_env("OAI_INGEST__OPENAI__REQUESTS_PER_MINUTE", "240");
    app.set_env("OAI_INGEST__INVENTORY__BUDGET_SHARE", "1");
    let running = app.spawn().await;
    let counts = |app: &TestApp| {
        (
            app.faults().requests(Family::Inventory),
            app.faults().requests(Family::AuditLogs),
        )
    };
    // Past the burst (the requests saved up before and during it included): from here on
    // the run gets the budget's slots the polls leave, a few between two polls.
    loop {
        let (inventory, polls) = counts(&app);
        wait_until(Duration::from_secs(30), "two audit polls", || {
            counts(&app).1 >= polls + 2
        })
        .await;
        if counts(&app).0 - inventory <= 8 {
            break;
        }
    }
    let mut run_total = 0;
    for n in 0..3 {
        let (inventory, polls) = counts(&app);
        let id = app.audit_event_id(&app.org().add_audit_event("project.updated", None));
        wait_until(Duration::from_secs(30), &format!("audit event {n} delivered"), || {
            app.receiver().events().iter().any(|e| e["id"] == id.as_str())
        })
        .await;
        let (run_got, polled) = (counts(&app).0 - inventory, counts(&app).1 - polls);
        run_total += run_got;
        assert!(
            run_got <= 8,
            "event {n}: the inventory run got {run_got} requests first"
        );
        assert!(
            polled <= 3,
            "event {n}: delivered by the first poll after it, not poll {polled}"
        );
    }
    assert!(run_total >= 3, "the run kept going meanwhile: {run_total} requests");
    assert!(
        !app.receiver()
            .events()
            .iter()
            .any(|e| e["type"] == "inventory.snapshot"),
        "the inventory run was still in progress the whole time"
    );
    running.stop().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_that_still_holds_every_object_is_converted_without_reporting_anything_new() {
    let app = TestApp::builder().history(0).inventory().start().await;
    assert!(app.run_once().await.all_delivered);

    // Rewrite the saved state as the older format held it: every object in the checkpoint,
    // no snapshot file.
    let inventory_dir = std::path::Path::new(app.env_value("OAI_INGEST__STATE__DIR").expect("dir")).join("inventory");
    let file = inventory_dir.join("snapshot-1.ndjson");
    let mut kinds = serde_json::Map::new();
    for line in std::fs::read_to_string(&file).expect("snapshot").lines() {
        let rec: Value = serde_json::from_str(line).expect("line");
        let kind = rec["kind"].as_str().expect("kind").to_string();
        let key = match rec["scope"].as_str() {
            Some(s) => format!("{s}/{}", rec["id"].as_str().expect("id")),
            None => rec["id"].as_str().expect("id").to_string(),
        };
        let mut stored = serde_json::json!({"hash": rec["hash"], "fields": rec["fields"]});
        if let Some(scope) = rec["scope"].as_str() {
            stored["scope"] = scope.into();
        }
        let entry = kinds
            .entry(kind)
            .or_insert_with(|| serde_json::json!({"baselined": true, "objects": {}}));
        entry["objects"][key] = stored;
    }
    std::fs::remove_dir_all(&inventory_dir).expect("remove the snapshot files");
    let path = app.checkpoint_path("inventory");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&path).expect("checkpoint")).expect("json");
    let state = saved["state"].as_object_mut().expect("state");
    state.remove("baselined");
    state.insert("kinds".into(), Value::Object(kinds));
    std::fs::write(&path, serde_json::to_vec(&saved).expect("json")).expect("write");

    let user = app.org().add_user("Yusuf Demir", "reader");
    let before = app.receiver().events().len();
    assert!(app.run_once().await.all_delivered);
    let events: Vec<Value> = app.receiver().events().into_iter().skip(before).collect();
    let reported: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] != "inventory.snapshot")
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(reported, vec!["user.added", "user.observed"], "{reported:?}");
    assert!(events.iter().any(|e| e["target"]["id"] == user.as_str()));
    assert!(inventory_dir.join("snapshot-2.ndjson").exists());
    app.shutdown().await;
}
