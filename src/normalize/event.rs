//! The normalized event, schema_version 1: the one shape every upstream record becomes.
//! Field names and meanings are the contract in DESIGN.md; change them only with a
//! changelog note.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Raw;

/// Schema version carried by every event.
pub const SCHEMA_VERSION: u32 = 1;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    #[serde(rename = "openai.audit_log")]
    AuditLog,
    #[serde(rename = "openai.inventory")]
    Inventory,
    #[serde(rename = "chatgpt.compliance")]
    Compliance,
    #[serde(rename = "guardrails")]
    Guardrails,
}

impl Source {
    /// The wire name, also the first segment of every event id.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::AuditLog => "openai.audit_log",
            Source::Inventory => "openai.inventory",
            Source::Compliance => "chatgpt.compliance",
            Source::Guardrails => "guardrails",
        }
    }
}

/// Whether the recorded action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    /// The name it is serialized as.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One normalized record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema_version: u32,
    /// Deterministic and unique across sources and organizations: receivers drop repeats by it.
    pub id: String,
    pub source: Source,
    /// The OpenAI organization (or ChatGPT principal) the record belongs to.
    pub org_id: Option<String>,
    /// The upstream event type (`api_key.created`, `AUTH_LOG`, `user.added`, …).
    #[serde(rename = "type")]
    pub event_type: String,
    /// Coarse family from the mapping table (`credential`, `authentication`, …, `other`).
    pub category: String,
    /// Verb from the mapping table (`created`, `deleted`, `login`, …, `unknown`).
    pub action: String,
    pub outcome: Outcome,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub ingested_at: DateTime<Utc>,
    pub actor: Option<Actor>,
    pub target: Option<Target>,
    pub project: Option<Project>,
    /// Source-specific fields worth querying, not in the fixed schema.
    pub details: Value,
    /// Guardrail results attached to this event.
    pub findings: Vec<Finding>,
    /// The upstream record, unchanged (unless the operator turned it off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<Raw>,
}

/// Who did it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// `user`, `service_account`, `api_key`, `agent`, …
    #[serde(rename = "type")]
    pub actor_type: String,
    pub id: Option<String>,
    pub email: Option<String>,
    /// Tracking id of the API key used, when the action came through a key.
    pub api_key_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub geo: Option<Geo>,
}

/// Where the actor's address is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    pub country: Option<String>,
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<String>,
    /// Degrees north, parsed from the upstream string; absent when the source gives none (or
    /// an empty string, or no longitude to go with it). Rules measure travel with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Degrees east; present exactly when `latitude` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

impl Geo {
    /// Sets the coordinates from upstream strings (`"52.52437"`, `"13.41053"`): both must be
    /// numbers within range, else neither is kept.
    pub fn with_coordinates(mut self, latitude: Option<&str>, longitude: Option<&str>) -> Self {
        let parse = |s: Option<&str>, limit: f64| {
            s.and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && v.abs() <= limit)
        };
        if let (Some(lat), Some(lon)) = (parse(latitude, 90.0), parse(longitude, 180.0)) {
            self.latitude = Some(lat);
            self.longitude = Some(lon);
        }
        self
    }

    /// The geo when it says anything at all.
    pub fn non_empty(self) -> Option<Self> {
        (self != Geo::default()).then_some(self)
    }
}

/// What it was done to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub target_type: String,
    pub id: Option<String>,
    pub name: Option<String>,
}

/// The project an action was scoped to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// Severity of a guardrail finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// One guardrail result attached to an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    /// MITRE ATT&CK technique ids of what the rule detects (`T1078.004`); left out when the
    /// rule names none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attack: Vec<String>,
}

impl Event {
    /// Marks an event whose type no mapping table knows (`details.unmapped_type = true`):
    /// what the `unknown_event_type` guardrail and an operator's query look for, apart from
    /// records that could not be normalized at all (also category `other`).
    pub fn mark_unmapped(&mut self) {
        if !self.details.is_object() {
            self.details = Value::Object(Default::default());
        }
        if let Value::Object(details) = &mut self.details {
            details.insert("unmapped_type".to_string(), Value::Bool(true));
        }
    }

    /// An event with the fixed fields set and everything optional empty; normalizers fill in
    /// the rest.
    pub fn new(
        id: String,
        source: Source,
        org_id: Option<String>,
        event_type: String,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            id,
            source,
            org_id,
            event_type,
            category: "other".to_string(),
            action: "unknown".to_string(),
            outcome: Outcome::Unknown,
            occurred_at,
            ingested_at: Utc::now().trunc_subsecs(3),
            actor: None,
            target: None,
            project: None,
            details: Value::Object(Default::default()),
            findings: Vec::new(),
            raw: None,
        }
    }
}
