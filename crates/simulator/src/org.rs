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
///
/// The k-th live item is found in O(1) (`nth`), so picking one at random does not copy the
/// list: the history of a large organization picks a member, a key or a project for nearly
/// every activity. A collection made with [`Collection::flagged`] also keeps, in listing
/// order, the items a predicate holds for (owners among users, active projects, pending
/// invites); an item handed out by `get_mut` is checked again before the next flagged query.
#[derive(Debug, Default)]
pub(crate) struct Collection {
    items: BTreeMap<u64, (String, Value)>,
    index: HashMap<String, u64>,
    /// Positions of the live items, ascending.
    live: Vec<u64>,
    flag: Option<fn(&Value) -> bool>,
    /// Positions of the live items `flag` holds for, ascending.
    flagged: Vec<u64>,
    /// Positions handed out by `get_mut` since `flagged` was last brought up to date.
    unchecked: Vec<u64>,
}

/// Inserts `seq` into the ascending `list` (usually at the end: positions only grow).
fn insert_sorted(list: &mut Vec<u64>, seq: u64) {
    match list.last() {
        Some(&last) if last >= seq => {
            if let Err(at) = list.binary_search(&seq) {
                list.insert(at, seq);
            }
        }
        _ => list.push(seq),
    }
}

fn remove_sorted(list: &mut Vec<u64>, seq: u64) {
    if let Ok(at) = list.binary_search(&seq) {
        list.remove(at);
    }
}

impl Collection {
    /// A collection that also lists, in order, the items `flag` holds for.
    pub(crate) fn flagged(flag: fn(&Value) -> bool) -> Self {
        Collection {
            flag: Some(flag),
            ..Collection::default()
        }
    }
    pub(crate) fn insert(&mut self, seq: u64, id: &str, v: Value) {
        if self.flag.is_some_and(|f| f(&v)) {
            insert_sorted(&mut self.flagged, seq);
        }
        self.items.insert(seq, (id.to_owned(), v));
        self.index.insert(id.to_owned(), seq);
        insert_sorted(&mut self.live, seq);
    }
    pub(crate) fn get(&self, id: &str) -> Option<&Value> {
        self.items.get(self.index.get(id)?).map(|(_, v)| v)
    }
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        let seq = *self.index.get(id)?;
        let (_, v) = self.items.get_mut(&seq)?;
        if self.flag.is_some() {
            self.unchecked.push(seq);
        }
        Some(v)
    }
    pub(crate) fn remove(&mut self, id: &str) -> Option<Value> {
        let seq = *self.index.get(id)?;
        let (_, v) = self.items.remove(&seq)?;
        remove_sorted(&mut self.live, seq);
        remove_sorted(&mut self.flagged, seq);
        Some(v)
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
    /// The id of the `k`-th live item in listing order.
    pub(crate) fn nth(&self, k: usize) -> Option<&str> {
        self.id_at(*self.live.get(k)?)
    }
    /// How many live items the flag holds for.
    pub(crate) fn flagged_len(&mut self) -> usize {
        self.settle();
        self.flagged.len()
    }
    /// The id of the `k`-th flagged item in listing order.
    pub(crate) fn flagged_nth(&mut self, k: usize) -> Option<&str> {
        self.settle();
        self.id_at(*self.flagged.get(k)?)
    }
    /// The id of the last flagged item in listing order.
    pub(crate) fn flagged_last(&mut self) -> Option<&str> {
        self.settle();
        self.id_at(*self.flagged.last()?)
    }
    fn id_at(&self, seq: u64) -> Option<&str> {
        self.items.get(&seq).map(|(id, _)| id.as_str())
    }
    /// Checks the flag again on every item `get_mut` handed out.
    fn settle(&mut self) {
        let Some(flag) = self.flag else {
            return;
        };
        for seq in std::mem::take(&mut self.unchecked) {
            let holds = self.items.get(&seq).is_some_and(|(_, v)| flag(v));
            match (holds, self.flagged.binary_search(&seq)) {
                (true, Err(at)) => self.flagged.insert(at, seq),
                (false, Ok(at)) => {
                    self.flagged.remove(at);
                }
                _ => {}
            }
        }
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
    /// Everyone who ever was a member, in the order they joined; add with `add_person`
    /// (it keeps `person`'s index).
    pub people: Vec<Person>,
    people_index: HashMap<String, usize>,
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
    /// Which project a key id was created in (kept after the key is deleted).
    pub key_projects: HashMap<String, String>,
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
            people_index: HashMap::new(),
            users: Collection::flagged(|v| v["role"] == "owner"),
            invites: Collection::flagged(|v| v["status"] == "pending"),
            projects: Collection::flagged(|v| v["status"] == "active"),
            admin_keys: Collection::default(),
            groups: Collection::default(),
            roles: Collection::default(),
            certificates: Collection::default(),
            external_storage: Collection::default(),
            project_users: BTreeMap::new(),
            project_service_accounts: BTreeMap::new(),
            project_keys: BTreeMap::new(),
            key_projects: HashMap::new(),
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
        self.people.get(*self.people_index.get(user_id)?).cloned()
    }

    pub(crate) fn add_person(&mut self, person: Person) {
        self.people_index.entry(person.id.clone()).or_insert(self.people.len());
        self.people.push(person);
    }

    /// A current member, preferring owners when `owner` is set (admin actions need one).
    pub(crate) fn pick_user(&mut self, owner: bool) -> Option<Person> {
        let n = if owner {
            self.users.flagged_len()
        } else {
            self.users.len()
        };
        if n == 0 {
            return None;
        }
        let k = self.rng.random_range(0..n);
        let id = if owner {
            self.users.flagged_nth(k)
        } else {
            self.users.nth(k)
        }?
        .to_owned();
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
