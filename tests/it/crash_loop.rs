//! The real binary SIGKILLed at random moments, again and again, while the upstream history
//! grows (late events included) and the sink fails now and then: afterwards every event has
//! arrived and every checkpoint loads. The kill times come from a seeded RNG; the seed is
//! printed, and `CRASH_LOOP_SEED=<n>` replays a run.

use std::time::{Duration, Instant};

use openai_audit_simulator::{Family, Fault, ReceiverScript};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::helpers::binary::{describe, send_signal};
use crate::helpers::{TestApp, wait_until};

/// How many times the daemon is killed.
const KILLS: usize = 15;
/// The kill loop stops early once it has run this long, so the test stays bounded.
const KILL_LOOP_BUDGET: Duration = Duration::from_secs(50);

/// Every checkpoint file in the state directory, each read as the daemon writes them.
fn assert_checkpoints_load(app: &TestApp, seed: u64) -> usize {
    let dir = app.state_path().join("checkpoints");
    let mut loaded = 0;
    if !dir.exists() {
        return 0; // killed before the first start got as far as making it: nothing to load
    }
    for entry in std::fs::read_dir(&dir).expect("a checkpoint directory") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue; // a temporary file a kill left behind; never read
        }
        let bytes = std::fs::read(&path).expect("readable");
        let file: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("seed {seed}: {} is not JSON ({e})", path.display()));
        assert_eq!(file["version"], 1, "seed {seed}: {}", path.display());
        assert!(file["stream"].is_string(), "seed {seed}: {}", path.display());
        assert!(file["state"].is_object(), "seed {seed}: {}", path.display());
        loaded += 1;
    }
    loaded
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_sigkills_while_history_grows_and_the_sink_flaps_lose_nothing() {
    let _turn = crate::helpers::heavy().await;
    let seed = std::env::var("CRASH_LOOP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("crash loop seed: {seed} (CRASH_LOOP_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);

    let app = TestApp::builder()
        .history(2_000)
        .compliance(&["AUTH_LOG"])
        .compliance_repeats(0.05)
        .compliance_file_max_events(40)
        .cut_compliance_files()
        .env("OAI_INGEST__AUDIT_LOGS__ENABLED", "true")
        .start()
        .await;
    let extra = [
        ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "20"),
        ("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "25"),
        ("OAI_INGEST__LOG__LEVEL", "error"),
        // The first window (3 h) is read in parallel slices, so kills land in them too.
        ("OAI_INGEST__AUDIT_LOGS__BACKFILL_CONCURRENCY", "4"),
    ];

    // Slow pages, so a kill lands mid-window with batches in flight, not only between cycles.
    app.faults()
        .set_always(Family::AuditLogs, Some(Fault::LatencyMs { ms: 20 }));
    let started = Instant::now();
    let mut kills = 0;
    while kills < KILLS && started.elapsed() < KILL_LOOP_BUDGET {
        let run = app.start_binary(&["run"], &extra);
        // The history grows while it runs: new events, one late event within the overlap,
        // and compliance events filed into new files.
        for _ in 0..rng.random_range(5..80) {
            app.org().add_audit_event("api_key.created", None);
        }
        let late = chrono::Utc::now().timestamp() - rng.random_range(5..200);
        app.org().add_late_event("user.added", late);
        app.org().add_compliance_events("AUTH_LOG", rng.random_range(0..30));
        app.org().cut_compliance_files();
        // The sink fails for a few requests now and then.
        if rng.random_bool(0.5) {
            app.receiver().set_response(ReceiverScript::Next {
                status: if rng.random_bool(0.5) { 503 } else { 500 },
                retry_after_secs: None,
                times: rng.random_range(1..5),
            });
        }
        // A random moment: the kill is the stimulus under test, not a synchronization.
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..2_500))).await;
        send_signal(run.pid(), "-KILL");
        let out = run.finish(Duration::from_secs(10)).await;
        assert_eq!(
            out.status.code(),
            None,
            "seed {seed}: killed by the signal: {}",
            describe(&out)
        );
        kills += 1;
        assert_checkpoints_load(&app, seed);
        let (got, dups) = app.received();
        eprintln!("kill {kills}: {} events received so far, {dups} repeats", got.len());
    }
    let killing = started.elapsed();

    // The last start runs to the end with a healthy sink and upstream.
    app.receiver().set_response(ReceiverScript::Clear);
    app.faults().clear();
    app.org().cut_compliance_files();
    let asked = app.faults().requests(Family::AuditLogs);
    let run = app.start_binary(&["run"], &extra);
    // Up and reading before it is asked to stop.
    wait_until(Duration::from_secs(30), "the last start reads the upstream", || {
        app.faults().requests(Family::AuditLogs) > asked
    })
    .await;
    let mut expected = app.expected_audit_ids();
    expected.extend(app.expected_compliance(&["AUTH_LOG"]));
    wait_until(
        Duration::from_secs(90),
        "every event arrives after the last restart",
        || app.received().0.is_superset(&expected),
    )
    .await;
    send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "seed {seed}: {}", describe(&out));
    let (got, dups) = app.received();
    assert_eq!(got, expected, "seed {seed}: nothing lost, nothing invented");
    let checkpoints = assert_checkpoints_load(&app, seed);
    assert!(checkpoints >= 3, "seed {seed}: both audit passes and compliance saved");
    eprintln!(
        "crash loop seed {seed}: {kills} kills in {killing:?}, {} events, {dups} repeats, {:?} in all",
        expected.len(),
        started.elapsed()
    );
    assert!(kills >= 10, "seed {seed}: only {kills} kills fit in the budget");
}
