//! The audit-event store: every event ever recorded, indexed for newest-first range scans
//! (effective_at desc, ties by id desc), the request filters, and cursor paging. The
//! organization owns one; the endpoint in `audit_logs.rs` pages it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use serde_json::Value;

use super::http::{ApiError, Query, bad_request};

/// Sort key: listing order is this key *descending*.
type Key = (i64, String);

/// Types only the `tenant_only=true` pass returns.
pub fn is_tenant_scoped(event_type: &str) -> bool {
    event_type.starts_with("tenant.")
        || event_type == "role.bound_to_resource"
        || event_type == "role.unbound_from_resource"
}

#[derive(Debug)]
struct Entry {
    /// The record as JSON text: a history of a million records kept as `Value` trees would
    /// take several GB, as text about one.
    json: Box<str>,
    event_type: String,
    project: Option<String>,
    /// User id, API-key tracking id and service-account id: anything `actor_ids[]` may name.
    actor_ids: Vec<String>,
    actor_email: Option<String>,
    resource_ids: Vec<String>,
}

/// Every audit event ever recorded, indexed for newest-first range scans. The normal and
/// the tenant-scoped pass live in separate maps so neither pass scans the other's events.
#[derive(Debug, Default)]
pub(crate) struct AuditStore {
    normal: BTreeMap<Key, Entry>,
    tenant: BTreeMap<Key, Entry>,
    index: HashMap<String, Key>,
}

/// A parsed, validated request.
#[derive(Debug, Default)]
pub(crate) struct AuditQuery {
    /// Inclusive bounds, after folding gt/lt into gte/lte (1-second resolution).
    pub lo: Option<i64>,
    pub hi: Option<i64>,
    pub after: Option<String>,
    pub before: Option<String>,
    pub limit: usize,
    pub tenant_only: bool,
    pub event_types: Vec<String>,
    pub project_ids: Vec<String>,
    pub actor_ids: Vec<String>,
    pub actor_emails: Vec<String>,
    pub resource_ids: Vec<String>,
}

impl AuditQuery {
    pub(crate) fn parse(q: &Query) -> Result<Self, ApiError> {
        let mut lo = q.int("effective_at[gte]")?;
        if let Some(gt) = q.int("effective_at[gt]")? {
            lo = Some(lo.map_or(gt + 1, |l| l.max(gt + 1)));
        }
        let mut hi = q.int("effective_at[lte]")?;
        if let Some(lt) = q.int("effective_at[lt]")? {
            hi = Some(hi.map_or(lt - 1, |h| h.min(lt - 1)));
        }
        let parsed = AuditQuery {
            lo,
            hi,
            after: q.get("after").map(str::to_owned),
            before: q.get("before").map(str::to_owned),
            limit: q.limit(1, 100, 20)?,
            tenant_only: q.bool("tenant_only")?,
            event_types: q.all("event_types"),
            project_ids: q.all("project_ids"),
            actor_ids: q.all("actor_ids"),
            actor_emails: q.all("actor_emails"),
            resource_ids: q.all("resource_ids"),
        };
        if parsed.tenant_only && parsed.event_types.iter().any(|t| !is_tenant_scoped(t)) {
            return Err(bad_request(
                "event_types",
                "When tenant_only is true, every event type must be tenant-scoped.",
            ));
        }
        if parsed.after.is_some() && parsed.before.is_some() {
            return Err(bad_request("before", "Pass at most one of 'after' and 'before'."));
        }
        Ok(parsed)
    }

    fn matches(&self, e: &Entry) -> bool {
        let any = |want: &[String], have: &[String]| want.is_empty() || want.iter().any(|w| have.contains(w));
        is_tenant_scoped(&e.event_type) == self.tenant_only
            && (self.event_types.is_empty() || self.event_types.contains(&e.event_type))
            && (self.project_ids.is_empty() || e.project.as_ref().is_some_and(|p| self.project_ids.contains(p)))
            && any(&self.actor_ids, &e.actor_ids)
            && (self.actor_emails.is_empty() || e.actor_email.as_ref().is_some_and(|m| self.actor_emails.contains(m)))
            && any(&self.resource_ids, &e.resource_ids)
    }
}

fn strings(vals: &[&Value]) -> Vec<String> {
    vals.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

impl AuditStore {
    pub(crate) fn insert(&mut self, value: Value) {
        let id = value["id"].as_str().unwrap_or_default().to_owned();
        let event_type = value["type"].as_str().unwrap_or_default().to_owned();
        let at = value["effective_at"].as_i64().unwrap_or_default();
        let actor = &value["actor"];
        let (session, key) = (&actor["session"], &actor["api_key"]);
        let payload = &value[event_type.as_str()];
        let entry = Entry {
            project: value["project"]["id"].as_str().map(str::to_owned),
            actor_ids: strings(&[
                &session["user"]["id"],
                &key["id"],
                &key["user"]["id"],
                &key["service_account"]["id"],
            ]),
            actor_email: session["user"]["email"]
                .as_str()
                .or(key["user"]["email"].as_str())
                .map(str::to_owned),
            resource_ids: strings(&[&payload["id"], &payload["resource_id"]]),
            event_type,
            json: value.to_string().into_boxed_str(),
        };
        let key = (at, id.clone());
        self.index.insert(id, key.clone());
        if is_tenant_scoped(&entry.event_type) {
            self.tenant.insert(key, entry);
        } else {
            self.normal.insert(key, entry);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.normal.len() + self.tenant.len()
    }

    /// Every record of both passes, newest first.
    pub(crate) fn all(&self) -> Vec<Value> {
        let mut all: Vec<(&Key, &Entry)> = self.normal.iter().chain(self.tenant.iter()).collect();
        all.sort_by(|a, b| b.0.cmp(a.0));
        all.into_iter()
            .map(|(_, e)| serde_json::from_str(&e.json).unwrap_or(Value::Null))
            .collect()
    }

    /// One page as `ListAuditLogsResponse` JSON text. A cursor means "strictly after (or
    /// before) that record in listing order, under the same filters", so a closed window
    /// walked with `after` yields each record once however many new records arrive meanwhile.
    pub(crate) fn page(&self, q: &AuditQuery) -> Result<String, ApiError> {
        let cursor = |id: &String, param: &str| {
            self.index
                .get(id)
                .cloned()
                .ok_or_else(|| bad_request(param, &format!("No audit log with id '{id}'.")))
        };
        // Window as [lower, upper) in ascending key space.
        let mut lower: Bound<Key> = q.lo.map_or(Bound::Unbounded, |lo| Bound::Included((lo, String::new())));
        let mut upper: Bound<Key> = q.hi.map_or(Bound::Unbounded, |hi| {
            Bound::Excluded((hi.saturating_add(1), String::new()))
        });
        if let Some(after) = &q.after {
            let k = cursor(after, "after")?;
            upper = match upper {
                Bound::Excluded(u) if u <= k => Bound::Excluded(u),
                _ => Bound::Excluded(k),
            };
        }
        if let Some(before) = &q.before {
            let k = cursor(before, "before")?;
            lower = match lower {
                Bound::Included(l) if l > k => Bound::Included(l),
                _ => Bound::Excluded(k),
            };
        }
        let empty = match (&lower, &upper) {
            (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
            _ => false,
        };
        let mut items: Vec<(&Key, &Entry)> = Vec::new();
        if !empty {
            let map = if q.tenant_only { &self.tenant } else { &self.normal };
            let range = map.range((lower, upper));
            let want = q.limit + 1;
            if q.before.is_some() {
                // Nearest to the cursor first, then flipped back to listing order.
                items = range.filter(|(_, e)| q.matches(e)).take(want).collect();
            } else {
                items = range.rev().filter(|(_, e)| q.matches(e)).take(want).collect();
            }
        }
        let has_more = items.len() > q.limit;
        items.truncate(q.limit);
        if q.before.is_some() {
            items.reverse();
        }
        // The same text `json!` of the parsed records would give (keys in order), spliced.
        let id = |item: Option<&(&Key, &Entry)>| item.map_or(Value::Null, |(k, _)| Value::from(k.1.as_str()));
        let (first, last) = (id(items.first()), id(items.last()));
        let mut body = String::from("{\"data\":[");
        for (i, (_, e)) in items.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&e.json);
        }
        body.push_str(&format!(
            "],\"first_id\":{first},\"has_more\":{has_more},\"last_id\":{last},\"object\":\"list\"}}"
        ));
        Ok(body)
    }
}
