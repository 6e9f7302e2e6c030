//! The inventory stream against the simulator: the first run observes everything, later runs
//! report exactly what changed, a failing endpoint never invents removals, a replayed run
//! repeats its ids, and signals fire on the seeded awkward cases.

use std::collections::{BTreeSet, HashSet};

use openai_audit_ingest::streams::Mode;
use openai_audit_simulator::{Family, Fault};
use serde_json::Value;

use crate::helpers::TestApp;

const KINDS: usize = 13;

/// Runs the inventory once and returns the events it delivered, and whether it succeeded.
async fn run(app: &TestApp) -> (Vec<Value>, bool) {
    let before = app.receiver().events().len();
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let events: Vec<Value> = app.receiver().events().into_iter().skip(before).collect();
    assert!(
        events.iter().all(|e| e["source"] == "openai.inventory"),
        "only inventory events"
    );
    (events, outcome.success(Mode::Once))
}

fn of_type<'a>(events: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == event_type).collect()
}

fn target_ids(events: &[&Value]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| e["target"]["id"].as_str().map(str::to_string))
        .collect()
}

fn is_change(e: &Value) -> bool {
    let t = e["type"].as_str().unwrap_or_default();
    t.ends_with(".added") || t.ends_with(".removed") || t.ends_with(".changed")
}

fn changes(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| is_change(e)).collect()
}

fn user_ids(app: &TestApp) -> BTreeSet<String> {
    app.org()
        .users()
        .iter()
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_run_observes_every_object_and_snapshots_every_kind() {
    let app = TestApp::builder().history(40).inventory().start().await;
    let (events, ok) = run(&app).await;
    assert!(ok);
    assert_eq!(target_ids(&of_type(&events, "user.observed")), user_ids(&app));
    let keys: BTreeSet<String> = app.org().api_key_ids().into_iter().collect();
    assert_eq!(target_ids(&of_type(&events, "project.api_key.observed")), keys);
    let projects: BTreeSet<String> = app.org().project_ids().into_iter().collect();
    assert_eq!(
        target_ids(&of_type(&events, "project.observed")),
        projects,
        "archived too"
    );
    for kind in [
        "invite",
        "admin_api_key",
        "group",
        "group.user",
        "role",
        "certificate",
        "project.user",
        "external_storage",
    ] {
        assert!(
            !of_type(&events, &format!("{kind}.observed")).is_empty(),
            "{kind} observed"
        );
    }
    let snapshots = of_type(&events, "inventory.snapshot");
    assert_eq!(snapshots.len(), KINDS);
    assert!(snapshots.iter().all(|e| e["details"]["complete"] == true));
    let users = snapshots
        .iter()
        .find(|e| e["details"]["kind"] == "user")
        .expect("user snapshot");
    assert_eq!(users["details"]["count"], user_ids(&app).len());
    assert_eq!(users["category"], "inventory");
    assert!(changes(&events).is_empty(), "nothing is 'added' on the first look");
    let key = of_type(&events, "project.api_key.observed")[0];
    assert_eq!(key["category"], "credential");
    assert!(key["project"]["name"].is_string(), "{key}");
    assert!(key["raw"]["redacted_value"].is_string());
    let saved = app.checkpoint("inventory").expect("checkpoint saved");
    assert_eq!(saved["generation"], 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_added_user_a_changed_role_and_a_deleted_key_are_exactly_three_change_events() {
    let app = TestApp::builder().history(40).inventory().start().await;
    run(&app).await;

    let (quiet, ok) = run(&app).await;
    assert!(ok);
    assert!(changes(&quiet).is_empty(), "an unchanged org: {:?}", changes(&quiet));
    assert!(of_type(&quiet, "user.observed").is_empty());
    assert_eq!(of_type(&quiet, "inventory.snapshot").len(), KINDS);

    let reader = app
        .org()
        .users()
        .into_iter()
        .find(|u| u["role"] == "reader")
        .and_then(|u| u["id"].as_str().map(str::to_string))
        .expect("a reader");
    let added = app.org().add_user("Zoe Quinn", "reader");
    assert!(app.org().change_role(&reader, "owner"));
    let key = app.org().api_key_ids()[0].clone();
    assert!(app.org().delete_key(&key));

    let (events, ok) = run(&app).await;
    assert!(ok);
    let got: BTreeSet<(String, String)> = changes(&events)
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["target"]["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("user.added".to_string(), added.clone()),
        ("user.changed".to_string(), reader.clone()),
        ("project.api_key.removed".to_string(), key.clone()),
    ]
    .into();
    assert_eq!(got, expected);
    let changed = of_type(&events, "user.changed")[0];
    assert_eq!(changed["details"]["diff"][0]["field"], "role");
    assert_eq!(changed["details"]["diff"][0]["before"], "reader");
    assert_eq!(changed["details"]["diff"][0]["after"], "owner");
    assert_eq!(
        target_ids(&of_type(&events, "user.observed")),
        [added, reader].into(),
        "the new state of what changed is observed"
    );
    let owners = of_type(&events, "inventory.owners");
    assert_eq!(owners.len(), 1, "the owners changed");
    let snap = of_type(&events, "inventory.snapshot")
        .into_iter()
        .find(|e| e["details"]["kind"] == "project.api_key")
        .expect("key snapshot");
    assert_eq!(snap["details"]["removed"], 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_endpoint_never_produces_false_removals() {
    let app = TestApp::builder().history(40).inventory().start().await;
    run(&app).await;
    let key = app.org().api_key_ids()[0].clone();
    assert!(app.org().delete_key(&key));

    // Every inventory request fails past its retries: nothing may be called removed.
    app.faults()
        .set_always(Family::Inventory, Some(Fault::Status { status: 500 }));
    let (events, ok) = run(&app).await;
    assert!(!ok, "a partial run is reported as failed");
    assert!(app.faults().served(Family::Inventory) >= 6, "retries were exhausted");
    assert!(changes(&events).is_empty(), "{:?}", changes(&events));
    let snapshots = of_type(&events, "inventory.snapshot");
    assert_eq!(snapshots.len(), KINDS);
    assert!(snapshots.iter().all(|e| e["details"]["complete"] == false));
    assert!(
        snapshots
            .iter()
            .all(|e| !e["details"]["failures"].as_array().expect("failures").is_empty())
    );

    // Once the endpoint recovers, the real removal is reported — the partial run did not
    // overwrite the snapshot it was compared against.
    app.faults().clear();
    let (events, ok) = run(&app).await;
    assert!(ok);
    let removed = of_type(&events, "project.api_key.removed");
    assert_eq!(target_ids(&removed), [key].into());
    assert_eq!(changes(&events).len(), 1);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_before_the_snapshot_is_saved_replays_the_same_event_ids() {
    let app = TestApp::builder().history(40).inventory().start().await;
    run(&app).await;
    let file = app.checkpoint_path("inventory");
    let saved = std::fs::read(&file).expect("checkpoint file");

    app.org().add_user("Yusuf Demir", "owner");
    assert!(app.org().delete_key(&app.org().api_key_ids()[1]));
    let (first, _) = run(&app).await;
    assert_eq!(changes(&first).len(), 2);

    // As if the daemon died after delivering but before the checkpoint was written.
    std::fs::write(&file, &saved).expect("restore the old checkpoint");
    let (again, _) = run(&app).await;
    let ids = |events: &[Value]| -> HashSet<String> {
        events
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(ids(&first), ids(&again), "the replay repeats the same ids");
    assert_eq!(first.len(), again.len());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_orphaned_and_expiring_keys_pending_invites_and_owners_are_signalled_once() {
    let app = TestApp::builder().history(0).inventory().start().await;
    let (events, _) = run(&app).await;
    let now = chrono::Utc::now().timestamp();
    let members = user_ids(&app);

    let stale = of_type(&events, "inventory.stale_key");
    assert!(!stale.is_empty(), "the seed has keys unused for months");
    for e in &stale {
        let d = &e["details"];
        let since = d["last_used_at"].as_i64().or(d["created_at"].as_i64()).expect("a time");
        assert!(since < now - 90 * 86_400, "{e}");
        assert_eq!(e["category"], "inventory");
        if e["target"]["type"] == "api_key" {
            assert!(e["project"]["name"].is_string(), "{e}");
        }
    }
    let orphaned = of_type(&events, "inventory.orphaned_key");
    assert!(!orphaned.is_empty(), "the seed has a key of a former member");
    for e in &orphaned {
        let owner = e["details"]["owner_id"].as_str().expect("owner");
        assert!(!members.contains(owner), "{e}");
    }
    let expiring = of_type(&events, "inventory.admin_key_expiring");
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0]["target"]["name"], "ops-automation");
    let pending = of_type(&events, "inventory.invite_pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["target"]["name"], "jordan.lee@example.com");
    let owners = of_type(&events, "inventory.owners");
    assert_eq!(owners.len(), 1);
    let expected_owners = app.org().users().iter().filter(|u| u["role"] == "owner").count();
    assert_eq!(owners[0]["details"]["count"], expected_owners);

    let (again, _) = run(&app).await;
    let repeated: Vec<&Value> = again
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("inventory.") && t != "inventory.snapshot")
        })
        .collect();
    assert!(
        repeated.is_empty(),
        "unchanged conditions are not repeated: {repeated:?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn external_storage_observed_changed_and_removed_yield_exactly_those_events_and_signals() {
    let app = TestApp::builder().history(40).inventory().start().await;
    let (first, ok) = run(&app).await;
    assert!(ok);
    let seeded: BTreeSet<String> = app
        .org()
        .external_storage()
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(target_ids(&of_type(&first, "external_storage.observed")), seeded);

    let project = app.org().project_ids()[2].clone();
    let added = app.org().add_external_storage(&project, "azure").expect("a project");
    let (events, _) = run(&app).await;
    assert_eq!(
        changes(&events)
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["external_storage.added"]
    );
    assert_eq!(
        of_type(&events, "external_storage.added")[0]["target"]["id"],
        added.as_str()
    );

    assert!(app.org().set_external_storage_status(&added, "unhealthy"));
    let (events, _) = run(&app).await;
    let changed = of_type(&events, "external_storage.changed");
    assert_eq!(changes(&events).len(), 1, "{:?}", changes(&events));
    assert_eq!(changed[0]["details"]["diff"][0]["field"], "status", "{}", changed[0]);
    let unhealthy = of_type(&events, "inventory.external_storage_unhealthy");
    assert_eq!(unhealthy.len(), 1);
    assert_eq!(unhealthy[0]["target"]["id"], added.as_str());
    assert_eq!(unhealthy[0]["project"]["id"], project.as_str());

    assert!(app.org().remove_external_storage(&added));
    let (events, ok) = run(&app).await;
    assert!(ok);
    assert_eq!(
        changes(&events)
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["external_storage.removed"]
    );
    let removed = of_type(&events, "inventory.external_storage_removed");
    assert_eq!(removed.len(), 1, "the project falls back to default retention");
    assert_eq!(removed[0]["target"]["id"], project.as_str());
    let (quiet, _) = run(&app).await;
    assert!(changes(&quiet).is_empty() && of_type(&quiet, "inventory.external_storage_removed").is_empty());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_expiring_in_five_days_raises_the_expiring_signal_once() {
    let app = TestApp::builder().history(40).inventory().start().await;
    let (first, _) = run(&app).await;
    assert!(
        of_type(&first, "inventory.key_expiring").is_empty(),
        "no seeded key expires soon"
    );
    let without = of_type(&first, "inventory.keys_without_expiry");
    assert_eq!(without.len(), 1, "the keys created without an expiry are counted");
    assert!(without[0]["details"]["count"].as_u64().is_some_and(|n| n > 0));

    let key = app.org().api_key_ids()[0].clone();
    let in_five_days = chrono::Utc::now().timestamp() + 5 * 86_400;
    assert!(app.org().set_key_expiry(&key, Some(in_five_days)));
    let (events, _) = run(&app).await;
    let expiring = of_type(&events, "inventory.key_expiring");
    assert_eq!(expiring.len(), 1, "{expiring:?}");
    assert_eq!(expiring[0]["target"]["id"], key.as_str());
    assert_eq!(expiring[0]["details"]["expires_at"], in_five_days);
    assert_eq!(
        of_type(&events, "inventory.keys_without_expiry").len(),
        1,
        "one key fewer without an expiry changes the count"
    );
    let (again, _) = run(&app).await;
    assert!(
        of_type(&again, "inventory.key_expiring").is_empty(),
        "reported once while it holds"
    );
    app.shutdown().await;
}
