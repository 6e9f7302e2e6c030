//! Configured secrets of any shape never reach a log line or a command's output, even when a
//! server echoes them back in an error body.

use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestApp;
use crate::helpers::binary::{describe, text};

/// Neither looks like an OpenAI key (`sk-…`), so only exact-value redaction can catch them.
const ADMIN_KEY: &str = "adminkey-Q7f3c9a1b2d4e6f80";
const COMPLIANCE_KEY: &str = "cmplkey-ZZ90817263544aa";

/// A 401 whose message repeats the key the request carried, as some servers do.
fn echo(key: &str) -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({"error": {
        "message": format!("Incorrect API key provided: {key}. You can find your API key in settings."),
        "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}))
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_of_any_shape_echoed_in_error_bodies_never_reach_check_output_or_logs() {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/organization/.*"))
        .respond_with(echo(ADMIN_KEY))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/compliance/.*"))
        .respond_with(echo(COMPLIANCE_KEY))
        .mount(&api)
        .await;
    let app = TestApp::builder()
        .history(0)
        .upstream(&api.uri())
        .envs(&[
            ("OPENAI_ADMIN_KEY", ADMIN_KEY),
            ("OAI_INGEST__COMPLIANCE__ENABLED", "true"),
            ("OAI_INGEST__COMPLIANCE__API_KEY", COMPLIANCE_KEY),
            ("OAI_INGEST__COMPLIANCE__BASE_URL", &api.uri()),
            (
                "OAI_INGEST__COMPLIANCE__PRINCIPAL_ID",
                "f7f33107-5fb9-4ee1-8922-3eae76b5b5a0",
            ),
            ("OAI_INGEST__COMPLIANCE__EVENT_TYPES", "AUTH_LOG"),
        ])
        .start()
        .await;

    let check = app.run_binary(&["check"], &[]).await;
    assert_eq!(check.status.code(), Some(1), "{}", describe(&check));
    let stdout = text(&check.stdout);
    assert!(
        stdout.contains("Incorrect API key provided") && stdout.contains("[redacted]"),
        "the servers' messages are shown, redacted: {}",
        describe(&check)
    );

    let once = app
        .run_binary(&["once", "--deadline", "5s"], &[("OAI_INGEST__LOG__LEVEL", "debug")])
        .await;
    assert_eq!(once.status.code(), Some(1), "{}", describe(&once));
    assert!(
        text(&once.stderr).contains("Incorrect API key provided"),
        "the echoing errors were logged: {}",
        describe(&once)
    );

    for (what, out) in [("check", &check), ("once", &once)] {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        for key in [ADMIN_KEY, COMPLIANCE_KEY] {
            assert!(!all.contains(key), "`{what}` printed the key {key}:\n{all}");
        }
    }
}
