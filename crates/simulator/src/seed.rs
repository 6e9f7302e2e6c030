//! The initial organization for a seed: people, projects, keys, groups, roles, certificates,
//! external storage, with the awkward cases a security feed must notice built in.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::activity;
use super::config::SimConfig;
use super::geo::{HOME_LOCATIONS, SCRIPT_AGENT, USER_AGENTS};
use super::ids::{alnum, uuid};
use super::logfiles::ComplianceStore;
use super::org::{Collection, OrgState, OwnerRef, Person};

const DAY: i64 = 86_400;

static NAMES: &[(&str, &str)] = &[
    ("Dana", "Ortiz"),
    ("Sam", "Patel"),
    ("Alice", "Martin"),
    ("Bob", "Turner"),
    ("Chen", "Wei"),
    ("Priya", "Nair"),
    ("Lars", "Nilsson"),
    ("Maria", "Garcia"),
    ("Tom", "Becker"),
    ("Aisha", "Bello"),
    ("Kenji", "Sato"),
    ("Olivia", "Brown"),
    ("Noah", "Kim"),
    ("Eva", "Novak"),
];

static MODELS: &[(&str, i64, i64)] = &[
    ("gpt-4o", 5_000, 800_000),
    ("gpt-4o-mini", 10_000, 4_000_000),
    ("text-embedding-3-small", 3_000, 1_000_000),
];

/// Build the organization as it stood `cfg.history` ago, then play the history forward.
pub(crate) fn build(cfg: &SimConfig, now_us: i64) -> OrgState {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let org_id = format!("org-{}", alnum(&mut rng, 24).to_lowercase());
    let workspace_id = uuid(&mut rng);
    let compliance = ComplianceStore::new(
        cfg.compliance_file_interval,
        cfg.compliance_file_max_events,
        cfg.compliance_duplicate_probability,
        cfg.seed,
    );
    let mut st = OrgState::new(rng, org_id, workspace_id, compliance);
    let now = now_us / 1_000_000;
    let start = now - i64::try_from(cfg.history.as_secs()).unwrap_or(0);
    people(&mut st, start);
    projects(&mut st, start);
    keys(&mut st, start, now);
    groups_roles_certs(&mut st, start);
    external_storage(&mut st, start);
    invites(&mut st, start);
    super::size::grow(&mut st, cfg.size, start, now);
    st.compliance.discard = !cfg.history_compliance;
    activity::history(&mut st, start, now, cfg.history_events);
    st.compliance.discard = false;
    st
}

fn people(st: &mut OrgState, start: i64) {
    let mut names = NAMES.to_vec();
    names.shuffle(&mut st.rng);
    // Ten members plus one former member whose key outlived them.
    for (i, (first, last)) in names.iter().take(11).enumerate() {
        let id = st.new_id("user-", 24);
        let person = Person {
            id: id.clone(),
            name: format!("{first} {last}"),
            email: format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase()),
            home: st.rng.random_range(0..HOME_LOCATIONS),
            agent: st.rng.random_range(0..SCRIPT_AGENT),
        };
        st.add_person(person.clone());
        if i == 10 {
            continue;
        }
        let role = if i < 2 { "owner" } else { "reader" };
        let added_at = start - st.rng.random_range(30..400) * DAY;
        let seq = st.next_seq();
        let mut user = json!({"object": "organization.user", "id": id, "name": person.name,
            "email": person.email, "role": role, "added_at": added_at});
        if i % 4 == 3 {
            user["is_scim_managed"] = json!(true);
        }
        st.users.insert(seq, &id, user);
    }
    let _ = USER_AGENTS;
}

fn projects(st: &mut OrgState, start: i64) {
    let specs = [
        ("Default project", "GLOBAL", false),
        ("Billing service", "US_STORAGE_PROCESSING", false),
        ("Support bot", "GLOBAL", false),
        ("Data pipeline", "EU_STORAGE_PROCESSING", false),
        ("Legacy chatbot", "GLOBAL", true),
    ];
    for (i, (name, residency, archived)) in specs.into_iter().enumerate() {
        let id = st.new_id("proj_", 24);
        let created = start - (500 - 60 * i as i64) * DAY;
        add_project(st, &id, name, created, residency, archived.then_some(start - 20 * DAY));
        if i == 0 {
            st.default_project = id.clone();
        }
        // Members: the owners everywhere, a few readers here and there.
        let members: Vec<Person> = st.people[..10]
            .iter()
            .enumerate()
            .filter(|(j, _)| *j < 2 || (j + i) % 3 == 0)
            .map(|(_, p)| p.clone())
            .collect();
        for (j, p) in members.iter().enumerate() {
            add_member(st, &id, p, j < 2, created + DAY);
        }
        st.project_service_accounts.entry(id.clone()).or_default();
        if i > 0 {
            let sa_name = format!("{}-sa", name.to_lowercase().replace(' ', "-"));
            add_service_account(st, &id, &sa_name, created + 2 * DAY);
        }
        rate_limits(st, &id);
        st.project_keys.entry(id.clone()).or_default();
    }
}

/// A member service account named `name` in project `project`; returns its id.
/// Lists a project (`archived_at` set: archived); its members, keys and limits are the
/// caller's to add.
pub(crate) fn add_project(
    st: &mut OrgState,
    id: &str,
    name: &str,
    created_at: i64,
    residency: &str,
    archived_at: Option<i64>,
) {
    let seq = st.next_seq();
    st.projects.insert(
        seq,
        id,
        json!({"id": id, "object": "organization.project", "name": name, "created_at": created_at,
            "archived_at": archived_at, "status": if archived_at.is_some() { "archived" } else { "active" },
            "residency": residency}),
    );
}

pub(crate) fn add_service_account(st: &mut OrgState, project: &str, name: &str, created_at: i64) -> String {
    let sa = st.new_id("svc_acct_", 16);
    let seq = st.next_seq();
    st.project_service_accounts
        .entry(project.to_string())
        .or_default()
        .insert(
            seq,
            &sa,
            json!({"object": "organization.project.service_account", "id": sa,
            "name": name, "role": "member", "created_at": created_at}),
        );
    sa
}

/// `p` as a member (an owner when `owner`) of `project`.
pub(crate) fn add_member(st: &mut OrgState, project: &str, p: &Person, owner: bool, added_at: i64) {
    let seq = st.next_seq();
    st.project_users.entry(project.to_string()).or_default().insert(
        seq,
        &p.id,
        json!({"object": "organization.project.user", "id": p.id, "name": p.name,
            "email": p.email, "role": if owner { "owner" } else { "member" },
            "added_at": added_at}),
    );
}

/// One rate limit per model for `project`.
pub(crate) fn rate_limits(st: &mut OrgState, project: &str) {
    for (model, rpm, tpm) in MODELS {
        let seq = st.next_seq();
        let rl = format!("rl-{model}");
        st.project_rate_limits.entry(project.to_string()).or_default().insert(
            seq,
            &rl,
            json!({"object": "project.rate_limit", "id": rl, "model": model,
                "max_requests_per_1_minute": rpm, "max_tokens_per_1_minute": tpm,
                "max_requests_per_1_day": rpm * 1000}),
        );
    }
}

fn keys(st: &mut OrgState, start: i64, now: i64) {
    let projects = st.projects.ids();
    let former = st.people[10].clone();
    for (i, project) in projects.iter().enumerate() {
        let owners: Vec<String> = st.project_users[project].ids();
        let sa = st.project_service_accounts[project].ids().first().cloned();
        for k in 0..3 {
            let last_used = match (i + k) % 4 {
                0 => json!(null),                                      // never used
                1 => json!(now - st.rng.random_range(100..200) * DAY), // stale > 90 days
                _ => json!(now - st.rng.random_range(60..7200)),
            };
            let owner = if k == 2 {
                match &sa {
                    Some(sa) => OwnerRef::ServiceAccount(sa.clone()),
                    None => continue,
                }
            } else if i == 1 && k == 1 {
                OwnerRef::User(former.id.clone())
            } else {
                OwnerRef::User(owners[(i + k) % owners.len()].clone())
            };
            let created = start - st.rng.random_range(10..300) * DAY;
            let service_account = matches!(owner, OwnerRef::ServiceAccount(_));
            let key = st.insert_project_key(project, &owner, created, last_used);
            // Service-account keys may be created with an expiry; user keys never have one.
            if service_account && let Some(v) = st.project_keys.get_mut(project).and_then(|c| c.get_mut(&key)) {
                v["expires_at"] = json!(now + 180 * DAY);
            }
        }
    }
    for (name, expires) in [("ops-automation", Some(now + 10 * DAY)), ("siem-readonly", None)] {
        let id = st.new_id("key_", 16);
        let p = st.people[0].clone();
        let seq = st.next_seq();
        let redacted = format!("sk-admin...{}", alnum(&mut st.rng, 3).to_lowercase());
        st.admin_keys.insert(
            seq,
            &id,
            json!({"object": "organization.admin_api_key", "id": id, "name": name,
                "redacted_value": redacted, "created_at": start - 90 * DAY, "expires_at": expires,
                "last_used_at": now - 300,
                "owner": {"type": "user", "object": "organization.user", "id": p.id,
                          "name": p.name, "created_at": start - 400 * DAY, "role": "owner"}}),
        );
    }
}

/// External storage for two projects: one validated, one still pending.
fn external_storage(st: &mut OrgState, start: i64) {
    let projects = st.projects.ids();
    for (index, provider, status) in [(3, "aws", "validated"), (1, "gcp", "pending")] {
        if let Some(project) = projects.get(index) {
            st.insert_external_storage(project, provider, status, start - 30 * DAY);
        }
    }
}

fn groups_roles_certs(st: &mut OrgState, start: i64) {
    for (i, name) in ["Engineering", "Security", "Support"].into_iter().enumerate() {
        let id = st.new_id("group_", 20);
        let seq = st.next_seq();
        st.groups.insert(
            seq,
            &id,
            json!({"id": id, "name": name, "created_at": start - 200 * DAY,
                "is_scim_managed": i == 0, "group_type": "group"}),
        );
        let members: Vec<Person> = st.people[..10].iter().skip(i).step_by(3).cloned().collect();
        let coll = st.group_users.entry(id.clone()).or_default();
        for p in members {
            st_seq_insert(coll, &p);
        }
    }
    let roles = [
        (
            "owner",
            "Full access to the organization",
            "api.organization",
            true,
            vec!["api.organization.write", "api.management.read"],
        ),
        (
            "reader",
            "Read access to the organization",
            "api.organization",
            true,
            vec!["api.organization.read"],
        ),
        (
            "project owner",
            "Manage a project",
            "api.project",
            true,
            vec!["api.project.write"],
        ),
        (
            "project member",
            "Use a project",
            "api.project",
            true,
            vec!["api.model.request"],
        ),
        (
            "API Group Manager",
            "Allows managing organization groups",
            "api.organization",
            false,
            vec!["api.groups.read", "api.groups.write"],
        ),
    ];
    for (name, desc, rt, predefined, perms) in roles {
        let id = st.new_id("role_", 20);
        let seq = st.next_seq();
        st.roles.insert(
            seq,
            &id,
            json!({"object": "role", "id": id, "name": name, "description": desc,
                "permissions": perms, "resource_type": rt, "predefined_role": predefined}),
        );
    }
    for (name, active) in [("corp-mtls-2026", true), ("corp-mtls-2025", false)] {
        let id = st.new_id("cert_", 20);
        let seq = st.next_seq();
        st.certificates.insert(
            seq,
            &id,
            json!({"object": "organization.certificate", "id": id, "name": name,
                "created_at": start - 100 * DAY, "active": active,
                "certificate_details": {"valid_at": start - 100 * DAY, "expires_at": start + 265 * DAY}}),
        );
    }
}

/// Group membership lists have no global order of their own; a local counter suffices.
fn st_seq_insert(coll: &mut Collection, p: &Person) {
    let seq = coll.len() as u64 + 1;
    coll.insert(seq, &p.id, json!({"id": p.id, "name": p.name, "email": p.email}));
}

fn invites(st: &mut OrgState, start: i64) {
    for (who, age_days, status) in [
        ("jordan.lee", 10, "pending"),
        ("riley.chan", 1, "pending"),
        ("casey.ford", 20, "accepted"),
    ] {
        let id = st.new_id("invite-", 16);
        let created = start - age_days * DAY;
        let seq = st.next_seq();
        let mut v = json!({"object": "organization.invite", "id": id,
            "email": format!("{who}@example.com"), "role": "reader", "status": status,
            "created_at": created, "expires_at": created + 30 * DAY, "projects": []});
        if status == "accepted" {
            v["accepted_at"] = json!(created + DAY);
        }
        st.invites.insert(seq, &id, v);
    }
}
