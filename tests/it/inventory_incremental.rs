//! Incremental inventory runs: between full runs (`inventory.full_interval`) a run reads
//! again only the lists the audit log named since the run before; a full run marks the
//! changes no audit event announced.

use openai_audit_simulator::{Family, Fault};
use serde_json::Value;

use crate::helpers::TestApp;

/// Runs the inventory once; the events it delivered and the pages it read by
/// `(run, kind)` from `oai_ingest_inventory_run_requests`.
async fn run(app: &TestApp) -> (Vec<Value>, Vec<(String, String, u64)>) {
    let before = app.receiver().events().len();
    let (outcome, metrics) = app.run_once_with_metrics().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    let events: Vec<Value> = app.receiver().events().into_iter().skip(before).collect();
    let pages = metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("oai_ingest_inventory_run_requests{"))
        .filter_map(|l| {
            let label = |name: &str| {
                let start = l.find(&format!("{name}=\""))? + name.len() + 2;
                Some(l[start..].split('"').next()?.to_string())
            };
            Some((label("run")?, label("kind")?, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    (events, pages)
}

fn changes<'a>(events: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == event_type).collect()
}

fn a_user_with_role(app: &TestApp, role: &str) -> String {
    app.org()
        .users()
        .into_iter()
        .find(|u| u["role"] == role)
        .and_then(|u| u["id"].as_str().map(str::to_string))
        .expect("a user with that role")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incremental_run_reads_only_the_list_the_audit_log_named_and_finds_its_change() {
    let app = TestApp::builder().history(0).incremental_inventory().start().await;
    let (first, pages) = run(&app).await;
    assert!(
        !changes(&first, "inventory.snapshot").is_empty(),
        "the first run is full"
    );
    assert!(pages.iter().all(|(r, _, _)| r == "full"), "{pages:?}");
    let full_requests = app.faults().requests(Family::Inventory);

    let reader = a_user_with_role(&app, "reader");
    assert!(app.org().change_role(&reader, "owner"), "announced: user.updated");
    let key = app.org().api_key_ids()[0].clone();
    assert!(app.org().set_key_expiry(&key, Some(4_000_000_000)), "not announced");

    let (events, pages) = run(&app).await;
    let requests = app.faults().requests(Family::Inventory) - full_requests;
    let changed = changes(&events, "user.changed");
    assert_eq!(changed.len(), 1, "{events:#?}");
    assert_eq!(changed[0]["target"]["id"], reader.as_str());
    assert_eq!(changed[0]["details"]["diff"][0]["after"], "owner");
    assert!(
        changes(&events, "project.api_key.changed").is_empty(),
        "the keys were not named, so not read again"
    );
    assert!(
        changes(&events, "inventory.snapshot").is_empty(),
        "no snapshot summaries between full runs"
    );
    let incremental: Vec<_> = pages.iter().filter(|(r, _, n)| r == "incremental" && *n > 0).collect();
    assert_eq!(incremental.len(), 1, "{pages:?}");
    assert_eq!(incremental[0].1, "user");
    assert_eq!(
        requests, incremental[0].2,
        "every request of the run was the users list"
    );
    assert!(requests < full_requests / 4, "{requests} of {full_requests}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_without_an_audit_event_is_missed_until_the_next_full_run_which_marks_it() {
    let mut app = TestApp::builder().history(0).incremental_inventory().start().await;
    run(&app).await;
    let reader = a_user_with_role(&app, "reader");
    assert!(app.org().change_role_unaudited(&reader, "owner"));

    let (events, _) = run(&app).await;
    assert!(
        changes(&events, "user.changed").is_empty(),
        "nothing announced it: the incremental run cannot see it"
    );

    // An announced change as well: found again by the full run, but not marked.
    let project = app.org().project_ids()[0].clone();
    let key = app.org().create_key(&project).expect("a key");
    app.set_env("OAI_INGEST__INVENTORY__FULL_INTERVAL", "0s");
    let (events, pages) = run(&app).await;
    assert!(pages.iter().any(|(r, _, n)| r == "full" && *n > 0), "{pages:?}");
    let changed = changes(&events, "user.changed");
    assert_eq!(changed.len(), 1, "{events:#?}");
    assert_eq!(changed[0]["target"]["id"], reader.as_str());
    assert_eq!(changed[0]["details"]["unannounced"], true);
    let added = changes(&events, "project.api_key.added");
    assert_eq!(added.len(), 1, "{events:#?}");
    assert_eq!(added[0]["target"]["id"], key.as_str());
    assert!(
        added[0]["details"].get("unannounced").is_none(),
        "api_key.created announced it"
    );
    let removed: Vec<_> = events
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.ends_with(".removed")))
        .collect();
    assert!(
        removed.is_empty(),
        "the incremental run kept what it did not read: {removed:#?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_list_that_fails_invents_no_removal_and_is_read_again_by_the_next_run() {
    let app = TestApp::builder().history(0).incremental_inventory().start().await;
    run(&app).await;
    let first = app.checkpoint("inventory").expect("checkpoint saved");
    assert!(first["last_run"].is_string(), "{first}");
    let project = app.org().project_ids()[0].clone();
    let key = app.org().create_key(&project).expect("a key");

    // The keys list of that project fails past its retries: nothing is added, nothing removed.
    app.faults()
        .set_always(Family::Inventory, Some(Fault::Status { status: 500 }));
    let (events, _) = run(&app).await;
    assert!(
        app.faults().served(Family::Inventory) > 0,
        "the named list was asked for"
    );
    let changed: Vec<_> = events
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.ends_with(".added") || t.ends_with(".removed"))
        })
        .collect();
    assert!(changed.is_empty(), "{changed:#?}");
    let saved = app.checkpoint("inventory").expect("checkpoint saved");
    assert_eq!(saved["generation"], 2, "the run finished, partly");
    assert_eq!(saved["last_run"], first["last_run"], "the audit window did not move");

    // The audit window stayed where it was: the next run reads that list again.
    app.faults().clear();
    let (events, pages) = run(&app).await;
    assert!(
        pages
            .iter()
            .any(|(r, k, n)| r == "incremental" && k == "project.api_key" && *n > 0),
        "{pages:?}"
    );
    let added = changes(&events, "project.api_key.added");
    assert_eq!(added.len(), 1, "{events:#?}");
    assert_eq!(added[0]["target"]["id"], key.as_str());
    app.shutdown().await;
}
