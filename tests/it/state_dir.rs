//! The state directory under attack: links planted where the daemon writes are never written
//! through, a directory anyone may write to is refused, and everything it keeps is private.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use openai_audit_simulator::ReceiverScript;

use openai_audit_ingest::metrics::SinkPause;

use crate::helpers::binary::{describe, text};
use crate::helpers::{TestApp, poll_until};

fn mode(path: &std::path::Path) -> u32 {
    fs::symlink_metadata(path).expect("meta").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_planted_at_a_checkpoints_temporary_path_is_not_written_through() {
    let app = TestApp::builder().history(20).start().await;
    let outside = tempfile::tempdir().expect("tempdir");
    let victim = outside.path().join("victim");
    fs::write(&victim, b"precious").expect("victim");
    let checkpoint = app.checkpoint_path("audit_logs");
    fs::create_dir_all(checkpoint.parent().expect("dir")).expect("checkpoints dir");
    symlink(&victim, checkpoint.with_extension("json.tmp")).expect("planted link");

    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    assert_eq!(
        fs::read(&victim).expect("victim"),
        b"precious",
        "the link's target is untouched"
    );
    assert!(
        !fs::symlink_metadata(&checkpoint)
            .expect("saved")
            .file_type()
            .is_symlink(),
        "the checkpoint is a file of its own"
    );
    assert!(app.checkpoint("audit_logs").is_some_and(|c| c["watermark"].is_i64()));
    assert_eq!(mode(&checkpoint), 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_planted_at_the_dead_letter_file_is_never_appended_to_and_pauses_delivery_until_removed() {
    let app = TestApp::builder()
        .history(30)
        .env("OAI_INGEST__SINK__MAX_BATCH_EVENTS", "5")
        .start()
        .await;
    let outside = tempfile::tempdir().expect("tempdir");
    let victim = outside.path().join("victim");
    fs::write(&victim, b"precious").expect("victim");
    symlink(&victim, app.state_path().join("dead-letter.ndjson")).expect("planted link");
    let rejected = app.expected_audit_ids().into_iter().next().expect("an event");
    app.receiver().set_response(ReceiverScript::RejectIdContaining {
        needle: rejected.rsplit(':').next().expect("raw id").to_string(),
        status: 400,
    });
    let out = app.run_binary(&["once", "--deadline", "8s"], &[]).await;
    assert_eq!(fs::read(&victim).expect("victim"), b"precious", "{}", describe(&out));
    assert!(
        !app.received().0.contains(&rejected),
        "the rejected event was not delivered either: {}",
        describe(&out)
    );

    // Running, the daemon says so where an operator looks, and goes on once the link is gone.
    let running = app.spawn().await;
    poll_until(|| running.metrics().sink_paused() == Some(SinkPause::DeadLetterUnwritable)).await;
    fs::remove_file(app.state_path().join("dead-letter.ndjson")).expect("link removed");
    let dead_letter = app.state_path().join("dead-letter.ndjson");
    poll_until(|| fs::read_to_string(&dead_letter).is_ok_and(|text| text.contains(&rejected))).await;
    poll_until(|| running.metrics().sink_paused().is_none()).await;
    running.stop().await;
    assert_eq!(fs::read(&victim).expect("victim"), b"precious");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_world_writable_state_directory_is_refused_and_a_loose_one_made_private() {
    let app = TestApp::builder().history(5).start().await;
    let open = app.state_path().join("open");
    fs::create_dir(&open).expect("dir");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod");
    let open_arg = open.display().to_string();
    let out = app
        .run_binary(&["once"], &[("OAI_INGEST__STATE__DIR", &open_arg)])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&open_arg) && stderr.contains("writable by every user") && stderr.contains("chmod 700"),
        "the error names the directory, the problem and the fix:\n{stderr}"
    );
    assert!(!open.join("checkpoints").exists(), "nothing was written there");

    let loose = app.state_path().join("loose");
    fs::create_dir(&loose).expect("dir");
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::write(loose.join("lock"), b"").expect("an old lock");
    fs::set_permissions(loose.join("lock"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let loose_arg = loose.display().to_string();
    let out = app
        .run_binary(&["once"], &[("OAI_INGEST__STATE__DIR", &loose_arg)])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(mode(&loose), 0o700, "the directory was made private");
    assert_eq!(mode(&loose.join("lock")), 0o600, "the lock file too");
    for entry in fs::read_dir(loose.join("checkpoints")).expect("checkpoints") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_download_a_crash_left_in_the_spool_is_removed_at_start_up() {
    let app = TestApp::builder().only_filed_compliance("AUTH_LOG", 3).start().await;
    let spool = app.state_path().join("spool");
    fs::create_dir_all(&spool).expect("spool");
    let leftover = spool.join("eclf_crashed_mid_download.part");
    fs::write(&leftover, b"{\"event_id\": \"half").expect("leftover");

    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{outcome:?}");
    assert!(!leftover.exists(), "the crash's leftover is gone");
    let left: Vec<_> = fs::read_dir(&spool).expect("spool").collect();
    assert!(left.is_empty(), "nothing else is left behind either: {left:?}");
    let expected = app.expected_compliance(&["AUTH_LOG"]);
    assert!(!expected.is_empty());
    assert_eq!(app.received().0, expected, "the files still flow");
}
