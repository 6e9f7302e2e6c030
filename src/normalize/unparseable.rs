//! The event for an upstream record that cannot be normalized: it still travels (category
//! `other`, the reason in `details`, the record in `raw`), so nothing is dropped, and its id
//! is a hash of the record so a re-read produces the same id.

use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Context, Event, Source};

/// The stable name of a record that cannot be read (`sha256-<hex of its JSON>`): the upstream
/// part of its event id, and what a stream remembers it by so a re-read does not resend it.
pub fn unparseable_key(record: &Value) -> String {
    format!("sha256-{}", hex::encode(Sha256::digest(record.to_string().as_bytes())))
}

/// An `other` event carrying `record` unchanged and `reason` in `details.normalize_error`.
pub fn unparseable(source: Source, record: &Value, ctx: &Context, reason: &str) -> Event {
    let event_type = record
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unparseable")
        .to_string();
    let mut event = Event::new(
        super::event_id(source, ctx.org_id.as_deref(), &unparseable_key(record)),
        source,
        ctx.org_id.clone(),
        event_type,
        Utc::now(),
    );
    event.details = json!({ "normalize_error": reason });
    event.raw = Some(record.clone().into());
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unparseable_record_keeps_its_content_and_gets_a_stable_id() {
        let ctx = Context {
            org_id: Some("org-1".into()),
        };
        let record = json!({"type": "api_key.created", "id": 7});
        let a = unparseable(Source::AuditLog, &record, &ctx, "id is not a string");
        let b = unparseable(Source::AuditLog, &record, &ctx, "id is not a string");
        assert_eq!(a.id, b.id);
        assert!(a.id.starts_with("openai.audit_log:org-1:sha256-"));
        assert_eq!(a.category, "other");
        assert_eq!(a.raw, Some(record.into()));
        assert_eq!(a.details["normalize_error"], "id is not a string");
    }
}
