//! The seeded organization: inventory, people, and the one mutation path that changes the
//! inventory and appends the matching audit event together, so the two always agree.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::audit_store::AuditStore;
use super::geo::{LOCATIONS, Location, USER_AGENTS};
use super::ids::alnum;
use super::logfiles::ComplianceStore;

/// An ordered, id-addressable list of inventory objects. Deleted ids keep their position so a
/// client holding one as an `after` cursor can still continue its walk.
#[derive(Debug, Default)]
pub(crate) struct Collection {
    items: BTreeMap<u64, (String, Value)>,
    index: HashMap<String, u64>,
}

impl Collection {
    pub(crate) fn insert(&mut self, seq: u64, id: &str, v: Value) {
        self.items.insert(seq, (id.to_owned(), v));
        self.index.insert(id.to_owned(), seq);
    }
    pub(crate) fn get(&self, id: &str) -> Option<&Value> {
        self.items.get(self.index.get(id)?).map(|(_, v)| v)
    }
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        let seq = self.index.get(id)?;
        self.items.get_mut(seq).map(|(_, v)| v)
    }
    pub(crate) fn remove(&mut self, id: &str) -> Option<Value> {
        let seq = self.index.get(id)?;
        self.items.remove(seq).map(|(_, v)| v)
    }
    /// Where `id` sits (or sat) in the listing.
    pub(crate) fn position(&self, id: &str) -> Option<u64> {
        self.index.get(id).copied()
    }
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, &str, &Value)> {
        self.items.iter().map(|(s, (id, v))| (*s, id.as_str(), v))
    }
    pub(crate) fn ids(&self) -> Vec<String> {
        self.items.values().map(|(id, _)| id.clone()).collect()
    }
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

/// Someone who can act: a user of the org (present or already removed).
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub id: String,
    pub name: String,
    pub email: String,
    pub home: usize,
    pub agent: usize,
}

/// Who owns a project key.
pub(crate) enum OwnerRef {
    User(String),
    ServiceAccount(String),
}

/// Who performed an audited action.
#[derive(Debug, Clone)]
pub(crate) enum Actor {
    /// A browser session of a person, from a location.
    Session { person: Person, loc: usize },
    /// An admin API key owned by a person; attributed to the default project.
    AdminKey { key_id: String, person: Person },
    /// A service account's project key.
    ServiceAccountKey { key_id: String, sa_id: String },
}

/// Everything the simulator knows; guarded by one mutex so every change is atomic.
#[derive(Debug)]
pub(crate) struct OrgState {
    pub rng: ChaCha8Rng,
    seq: u64,
    pub org_id: String,
    pub workspace_id: String,
    pub default_project: String,
    pub people: Vec<Person>,
    pub users: Collection,
    pub invites: Collection,
    pub projects: Collection,
    pub admin_keys: Collection,
    pub groups: Collection,
    pub roles: Collection,
    pub certificates: Collection,
    /// Where projects keep their data (`organization.external_storage`).
    pub external_storage: Collection,
    pub project_users: BTreeMap<String, Collection>,
    pub project_service_accounts: BTreeMap<String, Collection>,
    pub project_keys: BTreeMap<String, Collection>,
    pub project_rate_limits: BTreeMap<String, Collection>,
    pub group_users: BTreeMap<String, Collection>,
    pub audit: AuditStore,
    pub compliance: ComplianceStore,
}

impl OrgState {
    pub(crate) fn new(rng: ChaCha8Rng, org_id: String, workspace_id: String, compliance: ComplianceStore) -> Self {
        OrgState {
            rng,
            seq: 0,
            org_id,
            workspace_id,
            default_project: String::new(),
            people: Vec::new(),
            users: Collection::default(),
            invites: Collection::default(),
            projects: Collection::default(),
            admin_keys: Collection::default(),
            groups: Collection::default(),
            roles: Collection::default(),
            certificates: Collection::default(),
            external_storage: Collection::default(),
            project_users: BTreeMap::new(),
            project_service_accounts: BTreeMap::new(),
            project_keys: BTreeMap::new(),
            project_rate_limits: BTreeMap::new(),
            group_users: BTreeMap::new(),
            audit: AuditStore::default(),
            compliance,
        }
    }

    /// The next listing position; one counter for all collections keeps order = creation.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn new_id(&mut self, prefix: &str, len: usize) -> String {
        format!("{prefix}{}", alnum(&mut self.rng, len))
    }

    pub(crate) fn person(&self, user_id: &str) -> Option<Person> {
        self.people.iter().find(|p| p.id == user_id).cloned()
    }

    /// A current member, preferring owners when `owner` is set (admin actions need one).
    pub(crate) fn pick_user(&mut self, owner: bool) -> Option<Person> {
        let ids: Vec<String> = self
            .users
            .iter()
            .filter(|(_, _, v)| !owner || v["role"] == "owner")
            .map(|(_, id, _)| id.to_owned())
            .collect();
        if ids.is_empty() {
            return None;
        }
        let id = ids[self.rng.random_range(0..ids.len())].clone();
        self.person(&id)
    }

    pub(crate) fn project_name(&self, id: &str) -> Option<String> {
        self.projects
            .get(id)
            .and_then(|p| p["name"].as_str().map(str::to_owned))
    }

    /// An owner acting from home, the usual actor of an administrative change.
    pub(crate) fn admin_actor(&mut self) -> Actor {
        match self.pick_user(true) {
            Some(person) => {
                let loc = person.home;
                Actor::Session { person, loc }
            }
            None => self.fallback_actor(),
        }
    }

    fn fallback_actor(&self) -> Actor {
        let key_id = self.admin_keys.ids().first().cloned().unwrap_or_default();
        let person = self.people.first().cloned().unwrap_or(Person {
            id: "user-unknown".into(),
            name: "Unknown".into(),
            email: "unknown@example.com".into(),
            home: 0,
            agent: 0,
        });
        Actor::AdminKey { key_id, person }
    }

    /// Append one audit event; the single way an audit record comes to exist.
    pub(crate) fn record(
        &mut self,
        event_type: &str,
        at: i64,
        actor: &Actor,
        project_id: Option<&str>,
        payload: Option<Value>,
    ) -> String {
        let id = self.new_id("audit_log-", 24);
        let mut v = json!({
            "object": "organization.audit_log",
            "id": id,
            "type": event_type,
            "effective_at": at,
            "actor": actor_json(actor),
        });
        // Admin-key actions land on the default project, as the spec says they do.
        let project = match (project_id, actor) {
            (Some(p), _) => Some(p.to_owned()),
            (None, Actor::AdminKey { .. }) => Some(self.default_project.clone()),
            _ => None,
        };
        if let Some(p) = &project {
            v["project"] = json!({"id": p, "name": self.project_name(p)});
        }
        if let Some(p) = payload {
            v[event_type] = p;
        }
        self.audit.insert(v);
        id
    }
}

/// `AuditLogActor` JSON, with the live-data session extras.
pub(crate) fn actor_json(actor: &Actor) -> Value {
    match actor {
        Actor::Session { person, loc } => {
            let l: &Location = &LOCATIONS[*loc % LOCATIONS.len()];
            let (ua, ja3, ja4) = USER_AGENTS[person.agent % USER_AGENTS.len()];
            json!({"type": "session", "session": {
                "user": {"id": person.id, "email": person.email},
                "ip_address": l.ip, "user_agent": ua, "ja3": ja3, "ja4": ja4,
                "ip_address_details": l.details(),
            }})
        }
        Actor::AdminKey { key_id, person } => json!({"type": "api_key", "api_key": {
            "id": key_id, "type": "user", "user": {"id": person.id, "email": person.email}}}),
        Actor::ServiceAccountKey { key_id, sa_id } => json!({"type": "api_key", "api_key": {
            "id": key_id, "type": "service_account", "service_account": {"id": sa_id}}}),
    }
}

/// The organization as tests and `demo` see it: inspect it and change it through the same
/// mutation path the background activity uses.
#[derive(Debug)]
pub struct Org {
    pub(crate) state: Mutex<OrgState>,
}

impl Org {
    pub(crate) fn lock(&self) -> MutexGuard<'_, OrgState> {
        // A test that panicked while holding the lock leaves consistent data behind: every
        // mutation completes before the guard drops.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
