//! Several organizations in one daemon (`[[orgs]]`): each delivers all of its events, once,
//! labelled with its own id; one organization's refused key pauses it alone and it resumes
//! with nothing lost; a SIGKILL mid-backfill loses nothing in any; `check` reports per
//! organization; a removed organization's state is left alone; and a single-organization
//! state directory from before `[[orgs]]` keeps its position.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use openai_audit_simulator::{Family, Fault};
use serde_json::Value;

use crate::helpers::binary::{describe, send_signal, text};
use crate::helpers::{TestApp, wait_until};

/// Received upstream ids that belong to organization `org_id`.
fn ids_of(app: &TestApp, org_id: &str) -> HashSet<String> {
    app.received()
        .0
        .into_iter()
        .filter(|id| id.contains(&format!(":{org_id}:")))
        .collect()
}

/// The value of the `oai_ingest_stream_paused` series of `stream` and `reason`.
fn paused(metrics_text: &str, stream: &str, reason: &str) -> Option<i64> {
    let series = format!("oai_ingest_stream_paused{{stream=\"{stream}\",reason=\"{reason}\"}} ");
    metrics_text
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn three_organizations_each_deliver_every_event_exactly_once_with_their_own_org_id() {
    let app = TestApp::builder().history(120).orgs(3).start().await;
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered && outcome.streams_ok, "{outcome:?}");

    let (_, dups) = app.received();
    assert_eq!(dups, 0, "nothing arrives twice");
    let ids: Vec<String> = app.sims().iter().map(|s| s.org_id().to_string()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3, "distinct organizations");
    for sim in app.sims() {
        let expected = app.expected_audit_ids_of(sim);
        assert!(!expected.is_empty());
        assert_eq!(
            ids_of(&app, sim.org_id()),
            expected,
            "{}: every event, nothing else",
            sim.org_id()
        );
        assert!(
            app.org_checkpoint(sim.org_id(), "audit_logs")
                .is_some_and(|c| c["watermark"].is_i64()),
            "{}: its checkpoint is in its own directory",
            sim.org_id()
        );
    }
    for event in app.received_events() {
        if event["source"] == "openai.audit_log" {
            let id = event["id"].as_str().unwrap_or_default();
            let org = event["org_id"].as_str().unwrap_or_default();
            assert!(
                id.starts_with(&format!("openai.audit_log:{org}:")),
                "{id} labelled {org}"
            );
        }
    }
    assert!(
        !app.state_path().join("checkpoints/audit_logs.json").exists(),
        "no organization uses the single-organization place"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_pauses_only_its_organization_and_it_resumes_with_nothing_lost() {
    let app = TestApp::builder().history(40).orgs(3).start().await;
    let sims = app.sims();
    let (a, b, c) = (sims[0], sims[1], sims[2]);
    let running = app.spawn().await;
    wait_until(Duration::from_secs(60), "every history delivered", || {
        sims.iter()
            .all(|s| ids_of(&app, s.org_id()) == app.expected_audit_ids_of(s))
    })
    .await;

    // Organization b's key stops working; every organization gets new events.
    b.faults()
        .set_always(Family::AuditLogs, Some(Fault::Status { status: 401 }));
    for sim in &sims {
        for _ in 0..5 {
            sim.org().add_audit_event("api_key.created", None);
        }
    }
    let b_stream = format!("{}/audit_logs", b.org_id());
    wait_until(
        Duration::from_secs(60),
        "a and c deliver; b shows paused as unauthorized",
        || {
            ids_of(&app, a.org_id()) == app.expected_audit_ids_of(a)
                && ids_of(&app, c.org_id()) == app.expected_audit_ids_of(c)
                && paused(&running.metrics().render(), &b_stream, "unauthorized") == Some(1)
        },
    )
    .await;
    let metrics = running.metrics().render();
    for other in [a, c] {
        let stream = format!("{}/audit_logs", other.org_id());
        assert_eq!(
            paused(&metrics, &stream, "unauthorized"),
            Some(0),
            "{stream} is not paused"
        );
    }
    let refused_for = |org: &str| {
        metrics.lines().any(|l| {
            l.starts_with("oai_ingest_api_requests_total{")
                && l.contains("status=\"401\"")
                && l.contains(&format!("org_id=\"{org}\""))
        })
    };
    assert!(
        refused_for(b.org_id()),
        "b's 401s are counted under its org_id:\n{metrics}"
    );
    assert!(!refused_for(a.org_id()) && !refused_for(c.org_id()), "{metrics}");
    let missing = app.expected_audit_ids_of(b).len() - ids_of(&app, b.org_id()).len();
    assert_eq!(missing, 5, "b's new events wait upstream");

    // The key works again: b resumes from its checkpoint.
    b.faults().clear();
    wait_until(Duration::from_secs(60), "b catches up", || {
        ids_of(&app, b.org_id()) == app.expected_audit_ids_of(b)
            && paused(&running.metrics().render(), &b_stream, "unauthorized") == Some(0)
    })
    .await;
    let report = running.stop().await;
    assert!(report.all_delivered, "{report:?}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_mid_backfill_loses_nothing_in_any_organization() {
    let _turn = crate::helpers::heavy().await;
    let app = TestApp::builder().history(1_500).orgs(3).start().await;
    let extra = [
        ("OAI_INGEST__AUDIT_LOGS__PAGE_SIZE", "20"),
        ("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "25"),
        ("OAI_INGEST__LOG__LEVEL", "error"),
    ];
    for sim in app.sims() {
        sim.faults()
            .set_always(Family::AuditLogs, Some(Fault::LatencyMs { ms: 20 }));
    }
    let expected: HashSet<String> = app.sims().iter().flat_map(|s| app.expected_audit_ids_of(s)).collect();

    let run = app.start_binary(&["run"], &extra);
    // Killed once part of the backfill is delivered, so every organization is mid-way.
    wait_until(Duration::from_secs(60), "part of the backfill arrives", || {
        app.received().0.len() > expected.len() / 5
    })
    .await;
    send_signal(run.pid(), "-KILL");
    let out = run.finish(Duration::from_secs(10)).await;
    assert_eq!(out.status.code(), None, "killed: {}", describe(&out));
    assert!(app.received().0.len() < expected.len(), "the kill landed mid-backfill");

    for sim in app.sims() {
        sim.faults().clear();
    }
    let run = app.start_binary(&["run"], &extra);
    wait_until(
        Duration::from_secs(120),
        "every organization's every event arrives after the restart",
        || app.received().0.is_superset(&expected),
    )
    .await;
    send_signal(run.pid(), "-TERM");
    let out = run.finish(Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(app.received().0, expected, "nothing lost, nothing invented");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn check_prints_a_line_per_organization_and_check_and_config_redacts_every_key() {
    let app = TestApp::builder().history(5).orgs(3).start().await;
    let out = app.run_binary(&["check"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    for sim in app.sims() {
        let lines = stdout
            .lines()
            .filter(|l| l.starts_with("ok") && l.contains(&format!("{} / ", sim.org_id())))
            .count();
        assert_eq!(
            lines,
            3,
            "audit logs, the tenant pass and the organization id for {}:\n{stdout}",
            sim.org_id()
        );
    }

    let out = app.run_binary(&["config"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let printed = text(&out.stdout);
    for sim in app.sims() {
        assert!(printed.contains(sim.org_id()), "{printed}");
        assert!(!printed.contains(sim.admin_key()), "an admin key is printed");
        assert!(!printed.contains(sim.compliance_key()), "a compliance key is printed");
    }
    assert_eq!(printed.matches("[[orgs]]").count(), 3, "{printed}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_organization_keeps_its_state_untouched_and_one_line_says_where() {
    let mut app = TestApp::builder().history(10).orgs(3).start().await;
    let out = app.run_binary(&["once"], &[("OAI_INGEST__LOG__FORMAT", "json")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = text(&out.stderr);
    let gone = app.sims()[2].org_id().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains("stream cycle complete") && l.contains(&format!("\"org_id\":\"{gone}\""))),
        "a stream's lines carry its org_id:\n{log}"
    );
    let saved = app.state_path().join(&gone).join("checkpoints/audit_logs.json");
    let before = std::fs::read(&saved).expect("the organization's checkpoint");

    // The third block goes away.
    let config = Path::new(app.env_value("OAI_INGEST_CONFIG").expect("a config file")).to_path_buf();
    let text_before = std::fs::read_to_string(&config).expect("config");
    let kept: Vec<&str> = text_before.split("[[orgs]]").filter(|b| !b.contains(&gone)).collect();
    std::fs::write(&config, kept.join("[[orgs]]")).expect("config rewritten");
    app.set_env("OAI_INGEST__LOG__FORMAT", "json");
    let out = app.run_binary(&["once"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = text(&out.stderr);
    let notes: Vec<&str> = log.lines().filter(|l| l.contains("no longer configured")).collect();
    assert_eq!(notes.len(), 1, "{log}");
    assert!(
        notes[0].contains(&app.state_path().join(&gone).display().to_string()),
        "{}",
        notes[0]
    );
    assert_eq!(std::fs::read(&saved).expect("still there"), before, "untouched");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_organization_state_directory_from_before_orgs_keeps_its_position() {
    let app = TestApp::builder().history(200).start().await;
    // The layout the daemon wrote before `[[orgs]]`: checkpoints/<stream>.json at the root.
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state-before-orgs/checkpoints/audit_logs.json");
    let mut file: Value = serde_json::from_slice(&std::fs::read(fixture).expect("fixture")).expect("JSON");
    let events = app.org().audit_events();
    let times: Vec<i64> = events.iter().filter_map(|e| e["effective_at"].as_i64()).collect();
    let (oldest, newest) = (
        times.iter().min().copied().unwrap_or(0),
        times.iter().max().copied().unwrap_or(0),
    );
    let watermark = oldest + (newest - oldest) / 2;
    file["state"]["watermark"] = watermark.into();
    let path = app.checkpoint_path("audit_logs");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
    std::fs::write(&path, file.to_string()).expect("old checkpoint in place");

    let outcome = app.run_once().await;
    assert!(outcome.all_delivered && outcome.streams_ok, "{outcome:?}");
    let overlap = 300;
    let normal = app.normal_pass_ids();
    let got = app.received().0;
    for event in &events {
        let id = app.audit_event_id(event["id"].as_str().unwrap_or_default());
        if !normal.contains(&id) {
            continue;
        }
        let at = event["effective_at"].as_i64().unwrap_or_default();
        if at >= watermark {
            assert!(got.contains(&id), "{id} after the saved position arrives");
        } else if at < watermark - overlap {
            assert!(!got.contains(&id), "{id} before the saved position is not read again");
        }
    }
    let saved = app.checkpoint("audit_logs").expect("the checkpoint stays where it was");
    assert!(saved["watermark"].as_i64() > Some(watermark), "and moves on: {saved}");
    let dirs: Vec<String> = std::fs::read_dir(app.state_path())
        .expect("state dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dirs,
        vec!["checkpoints".to_string()],
        "no organization directory appears"
    );
    app.shutdown().await;
}
