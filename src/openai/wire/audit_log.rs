//! Audit-log wire types, exactly as OpenAI sends them (`openai-openapi.yaml`). Everything the
//! spec does not mark required is optional, and unknown fields are ignored: the untouched
//! record travels on as `raw`.

use std::ops::Deref;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{JsonText, MemberSpan, Members};

/// `ListAuditLogsResponse`: one page, newest first. Items stay JSON so `raw` is the record
/// exactly as received; [`AuditLog`] is a typed view of one item.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ListAuditLogsResponse {
    pub object: String,
    pub data: Vec<Record>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

/// One upstream record (an item of a page, a record of a compliance log file): its JSON text
/// as received (what the event's `raw` carries, written out unchanged) and, once something
/// reads it as a [`Value`], that text parsed. The audit-log path reads its records through
/// [`Members`] of the text — found while its page was read
/// ([`read_audit_log_page`](super::read_audit_log_page)) — and never builds the tree; the
/// compliance path reads the tree. Deserializes from JSON text only
/// (`serde_json::from_slice`/`from_str`/`from_reader`): the text is what `RawValue` keeps.
#[derive(Debug, Clone)]
pub struct Record {
    text: JsonText,
    tree: OnceLock<Value>,
    /// Where its members lie in `text`, when the reader of its page found them.
    members: Option<Box<[MemberSpan]>>,
    /// Its `actor`, when the reader of its page parsed it on the way ([`Record::take_actor`]).
    actor: Option<Box<AuditLogActor>>,
}

impl Record {
    /// The record whose JSON text is `text`; its tree is parsed when first read.
    pub fn new(text: impl Into<JsonText>) -> Self {
        Self {
            text: text.into(),
            tree: OnceLock::new(),
            members: None,
            actor: None,
        }
    }

    /// A record of a page read in one pass: its text, where its members lie in it, and its
    /// `actor` when that was parsed on the way.
    pub(crate) fn with_members(text: JsonText, members: Box<[MemberSpan]>, actor: Option<Box<AuditLogActor>>) -> Self {
        Self {
            text,
            tree: OnceLock::new(),
            members: Some(members),
            actor,
        }
    }

    /// The record of `text` and `tree`, which the caller parsed from that very text.
    pub(crate) fn from_parsed(text: impl Into<JsonText>, tree: Value) -> Self {
        Self {
            text: text.into(),
            tree: OnceLock::from(tree),
            members: None,
            actor: None,
        }
    }

    /// The item's JSON text as received.
    pub fn text(&self) -> &JsonText {
        &self.text
    }

    /// The record's members, read from its text without building its tree.
    pub fn members(&self) -> Members<'_> {
        match &self.members {
            Some(spans) => Members::at(self.text.get(), spans),
            None => Members::of(self.text.get()),
        }
    }

    /// The `actor` member as the reader of its page parsed it, taken out (`None` afterwards,
    /// and whenever the page was read without parsing it: then read it from
    /// [`Record::members`]). It is the same as `members().parse::<AuditLogActor>("actor")`.
    pub fn take_actor(&mut self) -> Option<AuditLogActor> {
        self.actor.take().map(|actor| *actor)
    }

    /// The text, to keep without copying it.
    pub fn into_text(self) -> JsonText {
        self.text
    }

    /// The text and the tree, to keep both without copying either.
    pub fn into_parts(self) -> (JsonText, Value) {
        let tree = self.tree.into_inner().unwrap_or_else(|| tree_of(&self.text));
        (self.text, tree)
    }
}

/// Text that `RawValue` accepted is JSON, but `RawValue` does not count nesting: a record more
/// than 128 levels deep (`serde_json`'s limit) has no tree, and reads as its text, a JSON
/// string, so what is derived from its tree (the digest an unreadable record is remembered
/// by) still tells such records apart. It travels on as its text in `raw`.
pub(crate) fn tree_of(text: &JsonText) -> Value {
    serde_json::from_str(text.get()).unwrap_or_else(|_| Value::String(text.get().to_string()))
}

impl Deref for Record {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.tree.get_or_init(|| tree_of(&self.text))
    }
}

impl From<Value> for Record {
    fn from(tree: Value) -> Self {
        let text = serde_json::value::to_raw_value(&tree).unwrap_or_else(|_| {
            RawValue::from_string("null".to_string()).unwrap_or_else(|_| unreachable!("null is JSON"))
        });
        Self::from_parsed(text, tree)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Self::new)
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(serializer)
    }
}

/// The fields of an `AuditLog` the daemon reads. The payload sits under a key equal to the
/// event type (`"api_key.created": {…}`) and is read from the raw record.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuditLog {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds.
    pub effective_at: i64,
    #[serde(default)]
    pub project: Option<AuditLogProject>,
    #[serde(default)]
    pub actor: Option<AuditLogActor>,
}

/// Project of a project-scoped action (admin-key actions land on the default project).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuditLogProject {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `AuditLogActor`: a browser session or an API key.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuditLogActor {
    /// `session` or `api_key`.
    #[serde(rename = "type", default)]
    pub actor_type: Option<String>,
    #[serde(default)]
    pub session: Option<AuditLogActorSession>,
    #[serde(default)]
    pub api_key: Option<AuditLogActorApiKey>,
}

/// `AuditLogActorSession`, with the live-data extras the schema omits.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuditLogActorSession {
    #[serde(default)]
    pub user: Option<AuditLogActorUser>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub ja3: Option<String>,
    #[serde(default)]
    pub ja4: Option<String>,
    #[serde(default)]
    pub ip_address_details: Option<IpAddressDetails>,
}

/// `AuditLogActorUser`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuditLogActorUser {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// `AuditLogActorApiKey`: the key's tracking id and whom it belongs to.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuditLogActorApiKey {
    #[serde(default)]
    pub id: Option<String>,
    /// `user` or `service_account`.
    #[serde(rename = "type", default)]
    pub key_type: Option<String>,
    #[serde(default)]
    pub user: Option<AuditLogActorUser>,
    #[serde(default)]
    pub service_account: Option<AuditLogActorServiceAccount>,
}

/// `AuditLogActorServiceAccount`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuditLogActorServiceAccount {
    #[serde(default)]
    pub id: Option<String>,
}

/// Geolocation of a session's address; every value is a string, sometimes empty.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IpAddressDetails {
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_code: Option<String>,
    #[serde(default)]
    pub asn: Option<String>,
    #[serde(default)]
    pub latitude: Option<String>,
    #[serde(default)]
    pub longitude: Option<String>,
}
