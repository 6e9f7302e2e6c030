//! Changes to the organization: each one updates the inventory and appends its audit event
//! in the same step, and the public [`Org`] methods tests drive.

use std::sync::Arc;

use rand::Rng;
use serde_json::{Value, json};

use super::activity;
use super::clock::now_micros;
use super::generated::GeneratedLines;
use super::geo::HOME_LOCATIONS;
use super::ids::alnum;
use super::logfiles::{LineSource, RAW_LINE_KEY};
use super::org::{Actor, Org, OrgState, OwnerRef, Person};

impl OrgState {
    /// An external storage configuration for `project` in the inventory.
    pub(crate) fn insert_external_storage(
        &mut self,
        project: &str,
        provider: &str,
        status: &str,
        created: i64,
    ) -> String {
        let id = self.new_id("extstor_", 20);
        let details = match provider {
            "aws" => json!({"type": "aws", "bucket": format!("s3://{}-openai", project.to_lowercase()),
                            "role_arn": "arn:aws:iam::111122223333:role/openai-storage"}),
            "azure" => json!({"type": "azure", "container": format!("{}-openai", project.to_lowercase()),
                              "storage_account": "corpopenai"}),
            _ => json!({"type": "gcp", "bucket": format!("gs://{}-openai", project.to_lowercase()),
                        "service_account": "openai-storage@corp.iam.gserviceaccount.com"}),
        };
        let seq = self.next_seq();
        self.external_storage.insert(
            seq,
            &id,
            json!({"object": "organization.external_storage", "id": id, "created_at": created,
                   "geography": "us", "project_id": project, "provider": details, "status": status}),
        );
        id
    }

    /// A project key in the inventory (no audit event: seeding uses it for pre-history keys).
    pub(crate) fn insert_project_key(
        &mut self,
        project: &str,
        owner: &OwnerRef,
        created: i64,
        last_used: Value,
    ) -> String {
        let id = self.new_id("key_", 16);
        let owner_json = match owner {
            OwnerRef::User(uid) => {
                let p = self.person(uid);
                let role = self
                    .project_users
                    .get(project)
                    .and_then(|c| c.get(uid))
                    .and_then(|v| v["role"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "member".into());
                json!({"type": "user", "user": {"id": uid,
                    "email": p.as_ref().map(|p| p.email.clone()),
                    "name": p.as_ref().map(|p| p.name.clone()),
                    "created_at": created - 86_400, "role": role}})
            }
            OwnerRef::ServiceAccount(sa) => {
                let v = self
                    .project_service_accounts
                    .get(project)
                    .and_then(|c| c.get(sa))
                    .cloned()
                    .unwrap_or(Value::Null);
                json!({"type": "service_account", "service_account": {"id": sa,
                    "name": v["name"], "created_at": v["created_at"], "role": v["role"]}})
            }
        };
        let tail = alnum(&mut self.rng, 4).to_lowercase();
        let name = format!("key-{}", alnum(&mut self.rng, 5).to_lowercase());
        let access = if self.users.get(owner_id(owner)).is_some() || matches!(owner, OwnerRef::ServiceAccount(_)) {
            "active"
        } else {
            "inactive"
        };
        let seq = self.next_seq();
        self.key_projects.insert(id.clone(), project.to_owned());
        self.project_keys.entry(project.to_owned()).or_default().insert(
            seq,
            &id,
            json!({"object": "organization.project.api_key", "id": id, "name": name,
                "redacted_value": format!("sk-proj-***...{tail}"), "created_at": created,
                "last_used_at": last_used, "owner_project_access": access, "owner": owner_json,
                "expires_at": null}),
        );
        id
    }

    pub(crate) fn create_api_key(&mut self, at: i64, actor: &Actor, project: &str, owner: &OwnerRef) -> String {
        let id = self.insert_project_key(project, owner, at, Value::Null);
        let scopes = if self.rng.random_bool(0.5) {
            json!(["api.model.request"])
        } else {
            json!(["api.model.request", "api.files.write"])
        };
        self.record(
            "api_key.created",
            at,
            actor,
            Some(project),
            Some(json!({"id": id, "data": {"scopes": scopes}})),
        );
        id
    }

    /// The project that holds key `key_id`.
    pub(crate) fn key_project(&self, key_id: &str) -> Option<String> {
        let project = self.key_projects.get(key_id)?;
        self.project_keys.get(project)?.get(key_id)?;
        Some(project.clone())
    }

    pub(crate) fn update_api_key(&mut self, at: i64, actor: &Actor, key_id: &str) -> bool {
        let Some(project) = self.key_project(key_id) else {
            return false;
        };
        let payload = json!({"id": key_id,
            "changes_requested": {"scopes": ["api.model.request", "api.files.read"]}});
        self.record("api_key.updated", at, actor, Some(&project), Some(payload));
        true
    }

    pub(crate) fn delete_api_key(&mut self, at: i64, actor: &Actor, key_id: &str) -> bool {
        let Some(project) = self.key_project(key_id) else {
            return false;
        };
        if let Some(c) = self.project_keys.get_mut(&project) {
            c.remove(key_id);
        }
        self.record(
            "api_key.deleted",
            at,
            actor,
            Some(&project),
            Some(json!({"id": key_id})),
        );
        true
    }

    pub(crate) fn add_user(&mut self, at: i64, actor: &Actor, name: &str, role: &str) -> String {
        let id = self.new_id("user-", 24);
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        let person = Person {
            id: id.clone(),
            name: name.to_owned(),
            email: email.clone(),
            home: self.rng.random_range(0..HOME_LOCATIONS),
            agent: self.rng.random_range(0..3),
        };
        self.add_person(person);
        let seq = self.next_seq();
        self.users.insert(
            seq,
            &id,
            json!({"object": "organization.user", "id": id, "name": name, "email": email,
                "role": role, "added_at": at}),
        );
        self.record(
            "user.added",
            at,
            actor,
            None,
            Some(json!({"id": id, "data": {"role": role}})),
        );
        id
    }

    pub(crate) fn change_role(&mut self, at: i64, actor: &Actor, user_id: &str, role: &str) -> bool {
        let Some(user) = self.users.get_mut(user_id) else {
            return false;
        };
        user["role"] = json!(role);
        let payload = json!({"id": user_id, "changes_requested": {"role": role}});
        self.record("user.updated", at, actor, None, Some(payload));
        true
    }

    pub(crate) fn delete_user(&mut self, at: i64, actor: &Actor, user_id: &str) -> bool {
        if self.users.remove(user_id).is_none() {
            return false;
        }
        for c in self.project_users.values_mut().chain(self.group_users.values_mut()) {
            c.remove(user_id);
        }
        self.record("user.deleted", at, actor, None, Some(json!({"id": user_id})));
        true
    }

    pub(crate) fn send_invite(&mut self, at: i64, actor: &Actor, email: &str) -> String {
        let id = self.new_id("invite-", 16);
        let seq = self.next_seq();
        self.invites.insert(
            seq,
            &id,
            json!({"object": "organization.invite", "id": id, "email": email, "role": "reader",
                "status": "pending", "created_at": at, "expires_at": at + 7 * 86_400,
                "projects": []}),
        );
        let payload = json!({"id": id, "data": {"email": email, "role": "member"}});
        self.record("invite.sent", at, actor, None, Some(payload));
        id
    }

    /// Accepting makes the invitee a member: `invite.accepted` then `user.added`.
    pub(crate) fn accept_invite(&mut self, at: i64, invite_id: &str) -> Option<String> {
        let inv = self.invites.get_mut(invite_id)?;
        if inv["status"] != "pending" {
            return None;
        }
        inv["status"] = json!("accepted");
        inv["accepted_at"] = json!(at);
        let email = inv["email"].as_str().unwrap_or("new.member@example.com").to_owned();
        let name: String = email
            .split('@')
            .next()
            .unwrap_or("new.member")
            .split('.')
            .map(capitalize)
            .collect::<Vec<_>>()
            .join(" ");
        let actor = self.admin_actor();
        self.record("invite.accepted", at, &actor, None, Some(json!({"id": invite_id})));
        Some(self.add_user(at, &actor, &name, "reader"))
    }

    pub(crate) fn create_project(&mut self, at: i64, actor: &Actor, name: &str) -> String {
        let id = self.new_id("proj_", 24);
        super::seed::add_project(self, &id, name, at, "GLOBAL", None);
        for map in [
            &mut self.project_users,
            &mut self.project_service_accounts,
            &mut self.project_keys,
            &mut self.project_rate_limits,
        ] {
            map.entry(id.clone()).or_default();
        }
        let payload = json!({"id": id, "data": {"name": name, "title": name}});
        self.record("project.created", at, actor, Some(&id), Some(payload));
        id
    }

    pub(crate) fn archive_project(&mut self, at: i64, actor: &Actor, project_id: &str) -> bool {
        if project_id == self.default_project {
            return false;
        }
        let Some(p) = self.projects.get_mut(project_id) else {
            return false;
        };
        if p["status"] == "archived" {
            return false;
        }
        p["status"] = json!("archived");
        p["archived_at"] = json!(at);
        self.record(
            "project.archived",
            at,
            actor,
            Some(project_id),
            Some(json!({"id": project_id})),
        );
        true
    }

    pub(crate) fn create_service_account(&mut self, at: i64, actor: &Actor, project: &str) -> String {
        let id = self.new_id("svc_acct_", 16);
        let seq = self.next_seq();
        self.project_service_accounts
            .entry(project.to_owned())
            .or_default()
            .insert(
                seq,
                &id,
                json!({"object": "organization.project.service_account", "id": id,
                "name": format!("bot-{}", alnum(&mut self.rng, 4).to_lowercase()),
                "role": "member", "created_at": at}),
            );
        let payload = json!({"id": id, "data": {"role": "member"}});
        self.record("service_account.created", at, actor, Some(project), Some(payload));
        id
    }

    /// A new admin key: tenant-scoped `tenant.admin_api_key.created` plus the inventory entry.
    pub(crate) fn create_admin_key(&mut self, at: i64, actor: &Actor) -> String {
        let id = self.new_id("key_", 16);
        let owner = match actor {
            Actor::Session { person, .. } | Actor::AdminKey { person, .. } => person.clone(),
            Actor::ServiceAccountKey { .. } => self.people[0].clone(),
        };
        let seq = self.next_seq();
        let redacted = format!("sk-admin...{}", alnum(&mut self.rng, 3).to_lowercase());
        self.admin_keys.insert(
            seq,
            &id,
            json!({"object": "organization.admin_api_key", "id": id, "name": "new admin key",
                "redacted_value": redacted, "created_at": at, "expires_at": null, "last_used_at": null,
                "owner": {"type": "user", "object": "organization.user", "id": owner.id,
                          "name": owner.name, "created_at": at, "role": "owner"}}),
        );
        self.record("tenant.admin_api_key.created", at, actor, None, None);
        id
    }
}

fn owner_id(owner: &OwnerRef) -> &str {
    match owner {
        OwnerRef::User(id) | OwnerRef::ServiceAccount(id) => id,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Now, in Unix seconds.
fn now_secs() -> i64 {
    now_micros() / 1_000_000
}

impl Org {
    /// Append an audit event of any type at now, by an owner's session. Returns its id.
    pub fn add_audit_event(&self, event_type: &str, payload: Option<Value>) -> String {
        let mut st = self.lock();
        let actor = st.admin_actor();
        st.record(event_type, now_secs(), &actor, None, payload)
    }

    /// An event that happened at `effective_at` (in the past) but becomes visible only now,
    /// like a late-arriving record upstream.
    pub fn add_late_event(&self, event_type: &str, effective_at: i64) -> String {
        let mut st = self.lock();
        let actor = st.admin_actor();
        st.record(event_type, effective_at, &actor, None, None)
    }

    /// Add a member (`user.added`); returns the user id.
    pub fn add_user(&self, name: &str, role: &str) -> String {
        let mut st = self.lock();
        let actor = st.admin_actor();
        st.add_user(now_secs(), &actor, name, role)
    }

    /// Change a member's role (`user.updated`); false for an unknown user.
    pub fn change_role(&self, user_id: &str, role: &str) -> bool {
        let mut st = self.lock();
        let actor = st.admin_actor();
        st.change_role(now_secs(), &actor, user_id, role)
    }

    /// `n` audited changes, as an administrator makes them between two inventory runs, in
    /// turn: a member's role changes (`user.updated`), a project key is created
    /// (`api_key.created`), a member joins (`user.added`). Returns how many were made (each
    /// with its audit event).
    pub fn make_changes(&self, n: usize) -> usize {
        let mut st = self.lock();
        let actor = st.admin_actor();
        let at = now_secs();
        let projects: Vec<String> = st.projects.iter().map(|(_, id, _)| id.to_owned()).collect();
        let before = st.audit.len();
        for i in 0..n {
            match i % 3 {
                0 => {
                    if let Some(user) = st.pick_user(false) {
                        let role = if st.users.get(&user.id).is_some_and(|u| u["role"] == "reader") {
                            "member"
                        } else {
                            "reader"
                        };
                        st.change_role(at, &actor, &user.id, role);
                    }
                }
                1 => {
                    let owner = st.pick_user(true).map(|p| OwnerRef::User(p.id));
                    if let (Some(project), Some(owner)) = (projects.get(i % projects.len().max(1)), owner) {
                        st.create_api_key(at, &actor, project, &owner);
                    }
                }
                _ => {
                    let name = format!("Bench User {}", alnum(&mut st.rng, 6));
                    st.add_user(at, &actor, &name, "reader");
                }
            }
        }
        st.audit.len() - before
    }

    /// Change a member's role in the inventory only, with no audit event: what a change made
    /// outside the audited paths (or an audit log that lost it) looks like. False for an
    /// unknown user.
    pub fn change_role_unaudited(&self, user_id: &str, role: &str) -> bool {
        match self.lock().users.get_mut(user_id) {
            Some(user) => {
                user["role"] = json!(role);
                true
            }
            None => false,
        }
    }

    /// Remove a member (`user.deleted`); their keys stay, as upstream.
    pub fn delete_user(&self, user_id: &str) -> bool {
        let mut st = self.lock();
        let actor = st.admin_actor();
        st.delete_user(now_secs(), &actor, user_id)
    }

    /// Create a project key owned by an owner (`api_key.created`).
    pub fn create_key(&self, project_id: &str) -> Option<String> {
        let mut st = self.lock();
        st.projects.get(project_id)?;
        let actor = st.admin_actor();
        let owner = st.pick_user(true)?.id;
        Some(st.create_api_key(now_secs(), &actor, project_id, &OwnerRef::User(owner)))
    }

    /// Set (or clear) a project key's `expires_at`; false for an unknown key. No audit event:
    /// an expiry is chosen when the key is created.
    pub fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> bool {
        let mut st = self.lock();
        let Some(project) = st.key_project(key_id) else {
            return false;
        };
        match st.project_keys.get_mut(&project).and_then(|c| c.get_mut(key_id)) {
            Some(key) => {
                key["expires_at"] = json!(expires_at);
                true
            }
            None => false,
        }
    }

    /// Configure external storage for a project (`provider` aws, azure or gcp; status
    /// `pending`); returns its id, `None` for an unknown project. The audit log has no type
    /// for it, so none is written.
    pub fn add_external_storage(&self, project_id: &str, provider: &str) -> Option<String> {
        let mut st = self.lock();
        st.projects.get(project_id)?;
        Some(st.insert_external_storage(project_id, provider, "pending", now_secs()))
    }

    /// Change an external storage's status (`pending`, `validated`, `unhealthy`).
    pub fn set_external_storage_status(&self, id: &str, status: &str) -> bool {
        let mut st = self.lock();
        match st.external_storage.get_mut(id) {
            Some(v) => {
                v["status"] = json!(status);
                true
            }
            None => false,
        }
    }

    /// Delete an external storage configuration; its project falls back to default retention.
    pub fn remove_external_storage(&self, id: &str) -> bool {
        self.lock().external_storage.remove(id).is_some()
    }

    /// The external storage configurations, as listed.
    pub fn external_storage(&self) -> Vec<Value> {
        self.lock().external_storage.iter().map(|(_, _, v)| v.clone()).collect()
    }

    /// Delete a project key (`api_key.deleted`); false for an unknown key.
    pub fn delete_key(&self, key_id: &str) -> bool {
        let mut st = self.lock();
        let actor = st.admin_actor();
        st.delete_api_key(now_secs(), &actor, key_id)
    }

    /// `n` compliance events of `event_type` at now; returns their `event_id`s. They land in
    /// a file at the next cut (or [`Org::cut_compliance_files`]).
    pub fn add_compliance_events(&self, event_type: &str, n: usize) -> Vec<String> {
        let mut st = self.lock();
        let now = now_micros();
        (0..n)
            .filter_map(|i| activity::compliance_event(&mut st, event_type, now + i as i64))
            .collect()
    }

    /// A line of `text`, written verbatim (e.g. malformed JSON), queued for the next file of
    /// `event_type` after the events queued so far.
    pub fn add_compliance_raw_line(&self, event_type: &str, text: &str) {
        let mut st = self.lock();
        let now = now_micros();
        st.compliance.push(event_type, now, json!({ RAW_LINE_KEY: text }));
    }

    /// Size in bytes of the largest compliance file of `event_type` cut so far.
    pub fn compliance_largest_file_bytes(&self, event_type: &str) -> usize {
        self.lock().compliance.largest_file(event_type)
    }

    /// Size in bytes of every compliance file of `event_type` cut so far.
    pub fn compliance_total_bytes(&self, event_type: &str) -> usize {
        self.lock().compliance.total_bytes(event_type)
    }

    /// Serve compliance list bodies, and lay out files cut from now on, as concatenated
    /// pretty-printed JSON documents (`on`) or as documented (one JSON document, JSON Lines).
    pub fn set_compliance_concatenated_json(&self, on: bool) {
        self.lock().compliance.concatenated = on;
    }

    /// Cut every pending compliance event into files now.
    pub fn cut_compliance_files(&self) {
        let mut st = self.lock();
        st.compliance.cut_all(now_micros());
    }

    /// Play `n` random activities at now, as the background task does.
    pub fn step(&self, n: usize) {
        let mut st = self.lock();
        let now = now_micros();
        for _ in 0..n {
            activity::random_activity(&mut st, now);
        }
    }

    /// One compliance file of `event_type` of at least `min_bytes`, made line by line on
    /// request instead of held in memory (events from the last hour, by current members, no
    /// repeats); how many events it holds and its size in bytes. `None` for a type the
    /// simulator does not generate, or an organization without members.
    pub fn add_generated_compliance_file(&self, event_type: &str, min_bytes: usize) -> Option<(usize, usize)> {
        let mut st = self.lock();
        let people: Vec<Person> = st.users.iter().filter_map(|(_, id, _)| st.person(id)).collect();
        let mut lines = GeneratedLines {
            seed: st.rng.random(),
            workspace_id: st.workspace_id.clone(),
            people,
            event_type: event_type.to_owned(),
            start_us: 0,
            step_us: 0,
            count: 64,
        };
        if lines.people.is_empty() || lines.line(0).is_empty() {
            return None;
        }
        // Enough lines for `min_bytes` at the size of the first few, plus a tenth.
        let sample: usize = (0..lines.count).map(|i| lines.line(i).len() + 1).sum();
        lines.count = (min_bytes.div_ceil(sample / lines.count) * 11 / 10).max(1);
        let now = now_micros();
        lines.step_us = (3_600_000_000 / i64::try_from(lines.count).unwrap_or(i64::MAX)).max(1);
        lines.start_us = now - lines.step_us * i64::try_from(lines.count).unwrap_or(0);
        let (count, last) = (lines.count, lines.last_us());
        let size = st.compliance.add_generated(event_type, Arc::new(lines), last, now);
        Some((count, size))
    }

    /// Current members as `/organization/users` serves them.
    pub fn users(&self) -> Vec<Value> {
        self.lock().users.iter().map(|(_, _, v)| v.clone()).collect()
    }

    /// Every project id, archived ones included; the default project first.
    pub fn project_ids(&self) -> Vec<String> {
        self.lock().projects.ids()
    }

    pub fn default_project_id(&self) -> String {
        self.lock().default_project.clone()
    }

    /// Every live project key id.
    pub fn api_key_ids(&self) -> Vec<String> {
        let st = self.lock();
        st.project_keys.values().flat_map(|c| c.ids()).collect()
    }

    /// Every audit record, newest first (both passes).
    pub fn audit_events(&self) -> Vec<Value> {
        self.lock().audit.all()
    }

    pub fn audit_len(&self) -> usize {
        self.lock().audit.len()
    }

    /// `event_id`s of every compliance event of `event_type`, filed or pending.
    pub fn compliance_event_ids(&self, event_type: &str) -> Vec<String> {
        self.lock().compliance.event_ids(event_type)
    }
}
