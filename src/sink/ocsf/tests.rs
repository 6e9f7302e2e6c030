//! The OCSF mapping over every type the normalize tables know, checked against the rules of
//! OCSF 1.5.0 this test can state on its own (our own small tables below). The official
//! schema check is in CI: `writes_one_ocsf_event_per_mapped_type` (ignored, run by
//! `.ci/run`) writes the events it checks here, and `tools/ocsf/` validates them.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::normalize::{Actor, Finding, Geo, Project, Target, audit_log_mapping, compliance_mapping};

const AUDIT_TYPES: &str = include_str!("../../../tests/fixtures/audit_log_event_types.txt");
const COMPLIANCE_TSV: &str = include_str!("../../normalize/compliance_types.tsv");
const INVENTORY_TSV: &str = include_str!("../../streams/inventory/inventory_types.tsv");

/// Attributes each class requires (OCSF 1.5.0, without profiles), besides the base event's.
fn required(class_uid: u64) -> &'static [&'static str] {
    match class_uid {
        3001 | 3002 => &["user"],
        3004 => &["entity"],
        3005 => &["user", "privileges"],
        3006 => &["group"],
        6003 => &["actor", "api", "src_endpoint"],
        2004 => &["finding_info"],
        _ => &[],
    }
}

/// Top-level attributes the class has without a profile (what this mapping may write).
fn allowed(class_uid: u64) -> HashSet<&'static str> {
    let mut keys: HashSet<&str> = [
        "activity_id",
        "activity_name",
        "category_uid",
        "category_name",
        "class_uid",
        "class_name",
        "type_uid",
        "type_name",
        "severity_id",
        "severity",
        "status_id",
        "status",
        "time",
        "message",
        "metadata",
        "unmapped",
        "raw_data",
    ]
    .into();
    let extra: &[&str] = match class_uid {
        3002 => &["user", "service", "actor", "src_endpoint", "http_request"],
        3001 => &["user", "actor", "src_endpoint", "http_request"],
        3004 => &["entity", "actor", "src_endpoint", "http_request"],
        3005 => &[
            "user",
            "privileges",
            "resources",
            "actor",
            "src_endpoint",
            "http_request",
        ],
        3006 => &["group", "user", "actor", "src_endpoint", "http_request"],
        6003 => &["actor", "api", "src_endpoint", "http_request", "resources"],
        2004 => &["finding_info", "evidences"],
        _ => &[],
    };
    keys.extend(extra);
    keys
}

fn rows(tsv: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    tsv.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

/// `(source, type, sub_type, target_type)` of every type the normalize tables know, and a
/// finding event.
fn every_type() -> Vec<(Source, String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for t in AUDIT_TYPES.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let target = audit_log_mapping(t).and_then(|m| m.target_type).map(str::to_string);
        out.push((Source::AuditLog, t.to_string(), None, target));
    }
    for row in rows(COMPLIANCE_TSV) {
        let (record_type, sub) = match row[0].split_once(':') {
            Some((t, sub)) => (t, Some(sub)),
            None => (row[0], None),
        };
        let target = compliance_mapping(record_type, sub)
            .and_then(|m| m.target_type)
            .map(str::to_string);
        out.push((
            Source::Compliance,
            record_type.to_string(),
            sub.map(str::to_string),
            target,
        ));
    }
    for row in rows(INVENTORY_TSV) {
        let target = (row[4] != "-").then(|| row[4].to_string());
        out.push((Source::Inventory, row[0].to_string(), None, target));
    }
    out.push((Source::Guardrails, "credential_stuffing".to_string(), None, None));
    out
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
}

/// A normalized event of this type, with every optional part filled (`full`) or none.
fn sample(source: Source, event_type: &str, sub: Option<&str>, target: Option<&str>, full: bool) -> Event {
    let id = format!(
        "{}:org-abc:{event_type}-{}",
        source.as_str(),
        if full { "full" } else { "bare" }
    );
    let mut event = Event::new(
        id,
        source,
        Some("org-abc".into()),
        event_type.into(),
        at("2026-07-31T21:30:46.120Z"),
    );
    event.ingested_at = at("2026-07-31T21:31:02.120Z");
    let mut details = json!({});
    if let Some(sub) = sub {
        details["sub_type"] = json!(sub);
    }
    if source == Source::Guardrails {
        event.category = "finding".into();
        event.action = "detected".into();
        details = json!({"rule": event_type, "title": "Credential stuffing", "severity": "high", "evidence": ["e1", "e2"], "group": null});
        event.findings.push(Finding {
            rule: event_type.into(),
            severity: Severity::High,
            title: "Credential stuffing".into(),
            message: "20 failed logins from 203.0.113.7".into(),
            attack: vec!["T1110.004".into(), "T1078".into()],
        });
    }
    if full {
        event.outcome = if event_type.contains("failed") {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        event.actor = Some(Actor {
            actor_type: "user".into(),
            id: Some("user-Rb71".into()),
            email: Some("sam.patel@example.com".into()),
            api_key_id: Some("key_abc".into()),
            ip: Some("81.2.69.142".into()),
            user_agent: Some("Mozilla/5.0".into()),
            geo: Some(Geo {
                country: Some("GB".into()),
                city: Some("London".into()),
                region: None,
                asn: Some("20712".into()),
                latitude: Some(51.50853),
                longitude: Some(-0.12574),
            }),
        });
        event.target = target.map(|t| Target {
            target_type: t.into(),
            id: Some(format!("{t}_9VkLp2")),
            name: Some("Billing service".into()),
        });
        event.project = Some(Project {
            id: Some("proj_Ab12".into()),
            name: None,
        });
        details["data"] = json!({"scopes": ["api.model.request"], "note": null});
        event.raw = Some(json!({"id": "raw-1", "type": event_type}).into());
        if source != Source::Guardrails {
            event.findings.push(Finding {
                rule: "risky_key_created".into(),
                severity: Severity::Medium,
                title: "Risky key".into(),
                message: "an unrestricted key".into(),
                attack: vec!["T1098.001".into()],
            });
        }
    } else {
        // A sparse actor: an email that OCSF would refuse and an address that is no IP.
        event.actor = (source == Source::Compliance).then(|| Actor {
            actor_type: "agent".into(),
            email: Some("not an email".into()),
            ip: Some("unknown".into()),
            ..Actor::default()
        });
    }
    event.details = details;
    event
}

/// Every event the test checks: each type, filled and sparse.
fn samples() -> Vec<(String, Event)> {
    let mut out = Vec::new();
    for (source, t, sub, target) in every_type() {
        for full in [true, false] {
            let label = format!(
                "{} {t}{}",
                source.as_str(),
                sub.as_deref().map(|s| format!(":{s}")).unwrap_or_default()
            );
            out.push((label, sample(source, &t, sub.as_deref(), target.as_deref(), full)));
        }
    }
    out
}

fn no_nulls(value: &Value, path: &str, problems: &mut Vec<String>) {
    match value {
        Value::Null => problems.push(format!("{path} is null")),
        Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && k == "unmapped" {
                    continue;
                }
                no_nulls(v, &format!("{path}/{k}"), problems);
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| no_nulls(v, &format!("{path}/{i}"), problems)),
        _ => {}
    }
}

fn has_any(object: &Value, keys: &[&str]) -> bool {
    keys.iter().any(|k| object.get(k).is_some())
}

/// Every rule this test knows that `doc` (the OCSF form of `event`) breaks.
fn problems(event: &Event, doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let num = |k: &str| doc.get(k).and_then(Value::as_u64);
    let (Some(class_uid), Some(activity), Some(category), Some(type_uid)) = (
        num("class_uid"),
        num("activity_id"),
        num("category_uid"),
        num("type_uid"),
    ) else {
        return vec!["class_uid, activity_id, category_uid and type_uid must be integers".into()];
    };
    let Some(class) = CLASSES.iter().find(|c| u64::from(c.uid) == class_uid) else {
        return vec![format!("class {class_uid} is not one of the seven")];
    };
    if type_uid != class_uid * 100 + activity {
        out.push(format!("type_uid {type_uid} ≠ {class_uid} × 100 + {activity}"));
    }
    if category != u64::from(class.category_uid) || category != class_uid / 1000 {
        out.push(format!("category_uid {category} does not belong to class {class_uid}"));
    }
    if class.activity(activity as u32).is_none() {
        out.push(format!("activity {activity} is not defined for {}", class.name));
    }
    let caption = class.activity(activity as u32);
    let expected_name = if activity == 99 {
        Some(event.action.as_str())
    } else {
        caption
    };
    if doc["activity_name"] != json!(expected_name) {
        out.push("activity_name is not the activity's caption (or, for Other, the action)".into());
    }
    match num("severity_id") {
        Some(0..=6 | 99) => {}
        other => out.push(format!("severity_id {other:?} out of range")),
    }
    let statuses: &[u64] = if class.is_finding() {
        &[0, 1, 2, 3, 4, 5, 99]
    } else {
        &[0, 1, 2, 99]
    };
    if !num("status_id").is_some_and(|s| statuses.contains(&s)) {
        out.push(format!("status_id {:?} out of range", doc.get("status_id")));
    }
    if doc["time"].as_i64() != Some(event.occurred_at.timestamp_millis()) {
        out.push("time is not the event's time in integer milliseconds".into());
    }
    let meta = &doc["metadata"];
    if meta["version"] != json!(VERSION) || !has_any(&meta["product"], &["name", "uid"]) {
        out.push("metadata needs version 1.5.0 and a product with a name".into());
    }
    if meta["uid"] != json!(event.id) {
        out.push("metadata.uid is not the v1 id".into());
    }
    for key in required(class_uid) {
        if doc.get(key).is_none() {
            out.push(format!("{} requires `{key}`", class.name));
        }
    }
    let allowed = allowed(class_uid);
    for key in doc.as_object().map(|m| m.keys()).into_iter().flatten() {
        if !allowed.contains(key.as_str()) {
            out.push(format!(
                "`{key}` is not an attribute of {} (without a profile)",
                class.name
            ));
        }
    }
    // Constraints of the objects written (at_least_one).
    for path in ["/user", "/actor/user", "/evidences/0/actor/user"] {
        if let Some(user) = doc.pointer(path)
            && !has_any(user, &["account", "name", "uid"])
        {
            out.push(format!("{path} needs one of account, name, uid"));
        }
    }
    if let Some(actor) = doc.get("actor")
        && !has_any(
            actor,
            &["process", "user", "invoked_by", "session", "app_name", "app_uid"],
        )
    {
        out.push("actor needs a user or an app".into());
    }
    for path in ["/src_endpoint", "/evidences/0/src_endpoint"] {
        if let Some(endpoint) = doc.pointer(path)
            && !has_any(endpoint, &["ip", "uid", "name", "hostname", "svc_name", "domain"])
        {
            out.push(format!("{path} needs an ip, uid, name or hostname"));
        }
    }
    for path in [
        "/entity",
        "/group",
        "/service",
        "/api/service",
        "/metadata/product/feature",
    ] {
        if let Some(object) = doc.pointer(path)
            && !has_any(object, &["name", "uid", "device", "group", "org", "policy", "user"])
        {
            out.push(format!("{path} needs a name or uid"));
        }
    }
    if class_uid == 3002 && !has_any(doc, &["service", "dst_endpoint"]) {
        out.push("Authentication needs a service or a destination endpoint".into());
    }
    if doc.get("api").is_some() && doc.pointer("/api/operation").is_none() {
        out.push("api needs an operation".into());
    }
    if class_uid == 2004 {
        if doc.pointer("/finding_info/uid").is_none() || doc.pointer("/finding_info/analytic/type_id").is_none() {
            out.push("finding_info needs a uid and its analytic a type_id".into());
        }
        if doc.get("status_id") != Some(&json!(1)) {
            out.push("a new finding's status is New (1)".into());
        }
    }
    if let Some(ip) = doc.pointer("/src_endpoint/ip").and_then(Value::as_str)
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        out.push(format!("src_endpoint.ip `{ip}` is not an IP"));
    }
    for path in ["/user/email_addr", "/actor/user/email_addr"] {
        if let Some(email) = doc.pointer(path).and_then(Value::as_str)
            && !is_email(email)
        {
            out.push(format!("{path} `{email}` is not an email address"));
        }
    }
    if let Some(p) = doc.get("privileges")
        && !p.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        out.push("privileges is a list of strings".into());
    }
    no_nulls(doc, "", &mut out);
    out
}

#[test]
fn the_class_table_has_no_malformed_duplicate_or_undefined_rows() {
    let (_, errors) = parse_table(TABLE_TSV);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn every_known_type_has_its_own_row_in_the_class_table() {
    let mut missing = Vec::new();
    for (source, t, sub, _) in every_type() {
        let key = match &sub {
            Some(sub) => format!("{t}:{sub}"),
            None if source == Source::Guardrails => "*".to_string(),
            None => t.clone(),
        };
        if !TABLE.contains_key(&super::key(source.as_str(), &key)) {
            missing.push(format!("{} {key}", source.as_str()));
        }
    }
    assert!(missing.is_empty(), "types without a row: {missing:#?}");
    assert_eq!(every_type().len(), 147 + 73 + 62 + 1, "every table was read");
}

#[test]
fn every_mapped_type_is_a_consistent_event_of_its_class() {
    let mut failures = Vec::new();
    for (label, event) in samples() {
        let doc = map(&event);
        for problem in problems(&event, &doc) {
            failures.push(format!("{label}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_classes_follow_the_design() {
    let class_of = |source, t: &str, sub: Option<&str>| {
        let mut e = sample(source, t, sub, None, false);
        if let Some(sub) = sub {
            e.details = json!({ "sub_type": sub });
        }
        row_of(&e)
    };
    let c = |class, activity| Row { class, activity };
    assert_eq!(class_of(Source::AuditLog, "login.failed", None), c(3002, 1));
    assert_eq!(class_of(Source::AuditLog, "logout.succeeded", None), c(3002, 2));
    assert_eq!(class_of(Source::AuditLog, "invite.sent", None), c(3001, 1));
    assert_eq!(class_of(Source::AuditLog, "user.deleted", None), c(3001, 6));
    assert_eq!(class_of(Source::AuditLog, "role.assignment.created", None), c(3005, 1));
    assert_eq!(
        class_of(Source::AuditLog, "tenant.group.member.added", None),
        c(3006, 3)
    );
    assert_eq!(class_of(Source::AuditLog, "api_key.created", None), c(3004, 1));
    assert_eq!(
        class_of(Source::AuditLog, "certificates.deactivated", None),
        c(3004, 11)
    );
    assert_eq!(
        class_of(Source::Compliance, "AUTH_LOG", Some("login_failed")),
        c(3002, 1)
    );
    assert_eq!(class_of(Source::Compliance, "AUTH_LOG", Some("brand_new")), c(3002, 99));
    assert_eq!(class_of(Source::Compliance, "CONVERSATION_MESSAGE", None), c(6003, 1));
    assert_eq!(class_of(Source::Guardrails, "anything", None), c(2004, 1));
    assert_eq!(class_of(Source::AuditLog, "spaceship.launched", None), c(6003, 99));
}

#[test]
fn a_failed_login_keeps_its_actor_address_and_failure() {
    let event = sample(Source::AuditLog, "login.failed", None, None, true);
    let doc = map(&event);
    assert_eq!(doc["class_uid"], 3002);
    assert_eq!(doc["type_uid"], 300201);
    assert_eq!(doc["status_id"], 2);
    assert_eq!(doc["status"], "Failure");
    assert_eq!(doc["user"]["email_addr"], "sam.patel@example.com");
    assert_eq!(doc["src_endpoint"]["ip"], "81.2.69.142");
    assert_eq!(doc["src_endpoint"]["location"]["country"], "GB");
    assert_eq!(doc["http_request"]["user_agent"], "Mozilla/5.0");
    assert_eq!(doc["metadata"]["tenant_uid"], "org-abc");
    assert_eq!(doc["severity_id"], 3, "the attached medium finding sets the severity");
    assert_eq!(doc["unmapped"]["openai"]["project"]["id"], "proj_Ab12");
    assert_eq!(doc["raw_data"], r#"{"id":"raw-1","type":"login.failed"}"#);
}

#[test]
fn a_finding_names_its_attack_techniques_and_a_place_its_coordinates() {
    let finding = map(&sample(Source::Guardrails, "credential_stuffing", None, None, true));
    assert_eq!(
        finding["finding_info"]["attacks"],
        json!([
            {"technique": {"uid": "T1110"}, "sub_technique": {"uid": "T1110.004"}},
            {"technique": {"uid": "T1078"}},
        ])
    );
    let login = map(&sample(Source::AuditLog, "login.succeeded", None, None, true));
    let location = &login["src_endpoint"]["location"];
    assert_eq!(
        (location["lat"].as_f64(), location["long"].as_f64()),
        (Some(51.50853), Some(-0.12574))
    );
    let sparse = map(&sample(Source::Guardrails, "credential_stuffing", None, None, false));
    assert_eq!(
        sparse["finding_info"]["attacks"].as_array().map(Vec::len),
        Some(2),
        "the finding's own ids"
    );
}

/// Writes one OCSF event per mapped type (filled and sparse) as NDJSON to the file named by
/// `OCSF_SAMPLES`, for `.ci/run` to validate against the official OCSF 1.5.0 schema.
#[test]
#[ignore = "run by .ci/run, which validates the output with tools/ocsf/"]
fn writes_one_ocsf_event_per_mapped_type() {
    let path = std::env::var("OCSF_SAMPLES").expect("OCSF_SAMPLES names the output file");
    let mut out = String::new();
    for (_, event) in samples() {
        out.push_str(&map(&event).to_string());
        out.push('\n');
    }
    std::fs::write(&path, out).expect("write the samples");
}
