//! Pages and records as the upstream sends them — or as a broken or hostile upstream might:
//! every parser answers with a value or its typed error, never a panic.

use std::time::SystemTime;

use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use serde_json::Value;

use super::{config, inputs_like, json};
use crate::compliance::wire::{ComplianceRecord, LogFilesPage};
use crate::metrics::Metrics;
use crate::normalize::{self, Context, Raw, Source};
use crate::openai::wire::inventory::{ClassicList, CursorList};
use crate::openai::wire::{AuditLog, ListAuditLogsResponse, Record};
use crate::retry;
use crate::streams::audit_logs::pass;
use crate::streams::inventory::kind::Kind;
use crate::upstream::api::ErrorResponse;

const AUDIT_PAGE: &[u8] = include_bytes!("../../tests/fixtures/openai/audit_logs_page.json");
const USERS_PAGE: &[u8] = include_bytes!("../../tests/fixtures/openai/users_page.json");
const ROLES_PAGE: &[u8] = br#"{"object":"list","data":[{"object":"role","id":"role_01","name":"Owner","permissions":["api.organization.read"],"resource_type":"api.organization","predefined_role":true}],"has_more":true,"next":"role_01"}"#;
const FILES_PAGE: &[u8] = include_bytes!("../../tests/fixtures/compliance/compliance_log_files_page.json");
const AUTH_RECORD: &[u8] = include_bytes!("../../tests/fixtures/compliance/compliance_auth_log_record.json");
const ERROR_BODY: &[u8] =
    br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;

fn ctx() -> Context {
    Context {
        org_id: Some("org-props".into()),
    }
}

/// Everything the audit-log stream does with one record: its view, its dedup key, and its
/// event (normalized, or carried as an `other` event).
fn read_audit_record(record: &Record) {
    let _ = AuditLog::deserialize(&**record);
    let members = record.members();
    let _ = pass::dedup_key(record, &members, 0);
    let event = crate::streams::to_event(
        "audit_logs",
        Source::AuditLog,
        &ctx(),
        &Metrics::new(),
        normalize::audit_log(&members, &ctx()),
        || Value::clone(record),
    );
    assert!(!event.id.is_empty());
}

/// Everything the compliance stream does with one record.
fn read_compliance_record(record: &Value) {
    let _ = ComplianceRecord::deserialize(record);
    let event = crate::streams::to_event(
        "compliance:AUTH_LOG",
        Source::Compliance,
        &ctx(),
        &Metrics::new(),
        normalize::compliance(record, &ctx()),
        || record.clone(),
    );
    assert!(!event.id.is_empty());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn audit_log_pages_parse_or_fail_with_a_typed_error(bytes in inputs_like(AUDIT_PAGE)) {
        if let Ok(page) = serde_json::from_slice::<ListAuditLogsResponse>(&bytes) {
            for record in &page.data {
                read_audit_record(record);
                // The fixture is pretty-printed, as OpenAI's pages are: `raw` must still be
                // one line of the event's NDJSON line, and the same record.
                let line = serde_json::to_string(&Raw::text(record.text().to_owned())).expect("encodes");
                prop_assert!(!line.contains(['\n', '\r']), "raw spans lines: {line}");
                prop_assert_eq!(&serde_json::from_str::<Value>(&line).expect("json"), &**record);
            }
        }
    }

    #[test]
    fn any_json_record_becomes_an_event(record in json()) {
        read_audit_record(&Record::from(record.clone()));
        read_compliance_record(&record);
    }

    #[test]
    fn inventory_pages_of_both_families_parse_or_fail_with_a_typed_error(
        classic in inputs_like(USERS_PAGE),
        cursor in inputs_like(ROLES_PAGE),
    ) {
        let mut items = Vec::new();
        if let Ok(page) = serde_json::from_slice::<ClassicList>(&classic) {
            items.extend(page.data);
        }
        if let Ok(page) = serde_json::from_slice::<CursorList>(&cursor) {
            items.extend(page.data);
        }
        for item in &items {
            for kind in Kind::ALL {
                let _ = kind.view(item);
            }
        }
    }

    #[test]
    fn compliance_list_bodies_parse_or_fail_with_a_typed_error(bytes in inputs_like(FILES_PAGE)) {
        if let Ok(page) = serde_json::from_slice::<LogFilesPage>(&bytes) {
            for file in &page.data {
                let _ = crate::streams::compliance::files::budget(std::time::Duration::from_secs(1), file.file_size);
            }
        }
    }

    #[test]
    fn compliance_records_damaged_anywhere_still_become_events(bytes in inputs_like(AUTH_RECORD)) {
        if let Ok(record) = serde_json::from_slice::<Value>(&bytes) {
            read_compliance_record(&record);
        }
    }

    #[test]
    fn error_bodies_parse_or_fail_with_a_typed_error(bytes in inputs_like(ERROR_BODY)) {
        let _ = serde_json::from_slice::<ErrorResponse>(&bytes);
    }

    #[test]
    fn retry_after_is_ignored_or_bounded_whatever_it_says(text in prop_oneof![
        "[0-9]{0,25}",
        "[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
        ".{0,40}",
    ]) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.insert(RETRY_AFTER, value);
        }
        if let Some(delay) = retry::retry_after(&headers, SystemTime::now()) {
            prop_assert!(delay <= retry::MAX_RETRY_AFTER);
        }
    }
}
