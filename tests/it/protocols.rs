//! Each sink protocol against the simulated receiver playing that service: every upstream
//! event arrives exactly once, in the documented envelope, with the protocol's auth header
//! (the receiver refuses any other form) and compressed as documented.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use serde_json::Value;

use crate::helpers::TestApp;

/// Runs one cycle speaking `protocol` and checks what every protocol promises.
async fn delivered_exactly_once(protocol: &str, extra: &[(&str, &str)]) -> TestApp {
    let app = TestApp::builder()
        .history(60)
        .protocol(protocol)
        .envs(extra)
        .start()
        .await;
    let outcome = app.run_once().await;
    assert!(outcome.all_delivered, "{protocol}: {outcome:?}");
    let (got, dups) = app.received();
    assert_eq!(
        got,
        app.expected_audit_ids(),
        "{protocol}: every upstream event arrived"
    );
    assert_eq!(dups, 0, "{protocol}: none twice");
    let batches = app.receiver().batches();
    assert!(!batches.is_empty());
    let compression = if protocol == "akto" { None } else { Some("gzip") };
    for batch in &batches {
        assert!(batch.authorization_present, "{protocol}");
        assert_eq!(batch.content_encoding.as_deref(), compression, "{protocol}");
        assert!(batch.idempotency_key.is_some(), "{protocol}");
    }
    let requests = app.receiver().requests();
    assert!(
        requests.iter().all(|r| r.status < 300),
        "{protocol}: no refusal: {requests:?}"
    );
    assert!(
        app.checkpoint("audit_logs").is_some(),
        "{protocol}: the checkpoint moved"
    );
    app
}

/// Every received event with the envelope fields it came with.
fn received(app: &TestApp) -> Vec<(Value, Value)> {
    let events = app.receiver().events();
    let envelopes: Vec<Value> = app.receiver().batches().into_iter().flat_map(|b| b.envelopes).collect();
    assert_eq!(events.len(), envelopes.len());
    events.into_iter().zip(envelopes).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_and_json_arrive_once_gzipped_with_a_bearer_token() {
    for (protocol, content_type) in [("ndjson", "application/x-ndjson"), ("json", "application/json")] {
        let app = delivered_exactly_once(protocol, &[]).await;
        let batches = app.receiver().batches();
        assert!(batches.iter().all(|b| b.content_type.as_deref() == Some(content_type)));
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_older_format_key_still_sends_a_json_array() {
    let app = TestApp::builder()
        .history(30)
        .env("OAI_INGEST__SINK__FORMAT", "json")
        .start()
        .await;
    assert!(app.run_once().await.all_delivered);
    assert_eq!(app.received().0, app.expected_audit_ids());
    let batches = app.receiver().batches();
    assert!(
        batches
            .iter()
            .all(|b| b.content_type.as_deref() == Some("application/json"))
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn akto_gets_one_uncompressed_http_shaped_record_per_event_with_the_raw_token() {
    let app = delivered_exactly_once("akto", &[]).await;
    for batch in app.receiver().batches() {
        assert_eq!(batch.protocol, "akto");
        assert_eq!(batch.content_type.as_deref(), Some("application/json"));
    }
    for (event, record) in received(&app) {
        let path = format!(
            "/openai/{}/{}",
            event["source"].as_str().expect("source"),
            event["type"].as_str().expect("type")
        );
        assert_eq!(record["path"], path.as_str());
        assert_eq!(record["method"], "POST");
        assert_eq!(record["akto_account_id"], "1000000");
        assert_eq!(record["statusCode"], "200");
        assert_eq!(record["source"], "MIRRORING");
        assert!(record.as_object().expect("object").values().all(Value::is_string));
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn splunk_hec_gets_events_with_time_source_and_sourcetype_on_a_channel() {
    let app = delivered_exactly_once("splunk_hec", &[("OAI_INGEST__SINK__INDEX", "openai")]).await;
    for batch in app.receiver().batches() {
        assert_eq!(batch.protocol, "splunk_hec");
        assert!(
            batch.channel.as_deref().is_some_and(|c| c.len() == 36),
            "a GUID channel"
        );
    }
    for (event, fields) in received(&app) {
        assert_eq!(fields["sourcetype"], "openai:audit");
        assert_eq!(fields["index"], "openai");
        assert_eq!(fields["source"], event["source"]);
        let occurred =
            chrono::DateTime::parse_from_rfc3339(event["occurred_at"].as_str().expect("time")).expect("rfc3339");
        let time = fields["time"].as_f64().expect("epoch seconds");
        assert!((time - occurred.timestamp() as f64).abs() < 1.0, "{time} vs {occurred}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn elasticsearch_gets_create_actions_keyed_by_event_id_with_a_timestamp() {
    let app = delivered_exactly_once("elasticsearch", &[]).await;
    for batch in app.receiver().batches() {
        assert_eq!(batch.content_type.as_deref(), Some("application/x-ndjson"));
    }
    for (event, action) in received(&app) {
        assert_eq!(action["_id"], event["id"]);
        assert_eq!(action["_index"], "openai-audit");
        let stamp =
            chrono::DateTime::parse_from_rfc3339(action["@timestamp"].as_str().expect("@timestamp")).expect("time");
        let occurred =
            chrono::DateTime::parse_from_rfc3339(event["occurred_at"].as_str().expect("time")).expect("time");
        assert_eq!(stamp, occurred);
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_bodies_are_export_requests_the_opentelemetry_types_read() {
    let app = delivered_exactly_once("otlp", &[]).await;
    let org = app.sim().org_id().to_string();
    for (event, record) in received(&app) {
        assert_eq!(record["resource"]["service.name"], "openai-audit-ingest");
        assert_eq!(record["resource"]["openai.org_id"], org.as_str());
        assert_eq!(record["attributes"]["event.id"], event["id"]);
        assert_eq!(record["attributes"]["event.name"], event["type"]);
        assert_eq!(record["eventName"], event["type"]);
    }
    let mut records = 0;
    for request in app.receiver().requests() {
        let body = request.body.expect("the body was kept");
        let export: ExportLogsServiceRequest =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("not an ExportLogsServiceRequest: {e}"));
        for resource in &export.resource_logs {
            for scope in &resource.scope_logs {
                for record in &scope.log_records {
                    records += 1;
                    assert!(record.time_unix_nano > 1_500_000_000_000_000_000, "nanoseconds");
                    assert!(record.observed_time_unix_nano >= record.time_unix_nano);
                    let Some(Any::KvlistValue(body)) = record.body.as_ref().and_then(|b| b.value.clone()) else {
                        panic!("the body is the event as a key-value list");
                    };
                    assert!(body.values.iter().any(|kv| kv.key == "id"));
                }
            }
        }
    }
    assert_eq!(records, app.receiver().events().len());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loki_gets_streams_labelled_by_source_category_and_org() {
    let app = delivered_exactly_once("loki", &[]).await;
    let org = app.sim().org_id().to_string();
    for (event, entry) in received(&app) {
        let labels = &entry["labels"];
        assert_eq!(labels["source"], event["source"]);
        assert_eq!(labels["category"], event["category"]);
        assert_eq!(labels["org_id"], org.as_str());
        assert_eq!(
            labels.as_object().expect("labels").len(),
            3,
            "only the configured labels"
        );
        assert!(
            entry["ts"].as_str().is_some_and(|ts| ts.len() == 19),
            "nanoseconds as a string"
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ocsf_events_travel_in_any_protocol_with_the_v1_id_as_their_uid() {
    for protocol in ["splunk_hec", "elasticsearch"] {
        let app = delivered_exactly_once(protocol, &[("OAI_INGEST__SINK__SCHEMA", "ocsf")]).await;
        for event in app.receiver().events() {
            let class = event["class_uid"].as_u64().expect("class_uid");
            let activity = event["activity_id"].as_u64().expect("activity_id");
            assert_eq!(event["type_uid"].as_u64(), Some(class * 100 + activity));
            assert_eq!(event["metadata"]["version"], "1.5.0");
            assert!(event["metadata"]["uid"].as_str().is_some());
            assert!(event.get("id").is_none(), "the v1 shape is not sent");
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_probes_each_protocol_without_writing_and_names_the_fix_for_a_refused_token() {
    use crate::helpers::binary::{describe, text};
    for protocol in ["ndjson", "akto", "splunk_hec", "elasticsearch", "otlp", "loki"] {
        let app = TestApp::builder().history(5).protocol(protocol).start().await;
        let out = app.run_binary(&["check"], &[]).await;
        assert_eq!(out.status.code(), Some(0), "{protocol}: {}", describe(&out));
        let stdout = text(&out.stdout);
        let sink_line = stdout
            .lines()
            .find(|l| l.contains(&format!("({protocol})")))
            .unwrap_or_else(|| panic!("{protocol}: no sink line in\n{stdout}"));
        assert!(sink_line.starts_with("ok"), "{sink_line}");
        assert!(app.receiver().ids().is_empty(), "{protocol}: the probe wrote nothing");
        if protocol != "ndjson" {
            let out = app
                .run_binary(&["check"], &[("OAI_INGEST__SINK__AUTH_TOKEN", "not-the-token")])
                .await;
            assert_eq!(out.status.code(), Some(1), "{protocol}: {}", describe(&out));
            let stdout = text(&out.stdout);
            let line = stdout
                .lines()
                .find(|l| l.contains(&format!("({protocol})")))
                .unwrap_or_else(|| panic!("{protocol}: no sink line in\n{stdout}"));
            assert!(
                line.starts_with("FAIL") && line.contains("credentials were refused"),
                "{line}"
            );
            assert!(
                !stdout.contains("not-the-token"),
                "{protocol}: the token is never printed"
            );
        }
        app.shutdown().await;
    }
}
