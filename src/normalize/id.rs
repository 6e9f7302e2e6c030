//! The one rule for event ids (DESIGN.md): `<source>:<organization or _>:<local id>`, where
//! the local id is the upstream record's own id or, for events the daemon derives
//! (inventory changes, findings, unparseable records), a content digest that a replay
//! reproduces. Deterministic, and unique across sources and organizations.

use super::Source;

/// The id of an event of `source` for organization `org` whose local id is `local`.
pub fn event_id(source: Source, org: Option<&str>, local: &str) -> String {
    let (source, org) = (source.as_str(), org.unwrap_or("_"));
    let mut id = String::with_capacity(source.len() + org.len() + local.len() + 2);
    id.push_str(source);
    id.push(':');
    id.push_str(org);
    id.push(':');
    id.push_str(local);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_source_the_organization_and_the_local_id() {
        assert_eq!(
            event_id(Source::AuditLog, Some("org-1"), "audit_log-abc"),
            "openai.audit_log:org-1:audit_log-abc"
        );
        assert_eq!(event_id(Source::Guardrails, None, "rule:d1"), "guardrails:_:rule:d1");
    }
}
