//! Simulated activity: the pre-generated history with its scripted scenarios, and the
//! background task that keeps the organization busy at `events_per_second`.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use tokio::sync::watch;

use super::clock::now_micros;
use super::geo::{HOME_LOCATIONS, LOCATIONS, SCRIPT_AGENT};
use super::ids::alnum;
use super::org::{Actor, Collection, OrgState, OwnerRef};
use super::records;
use super::shared::Shared;

const TENANT_TYPES: &[&str] = &[
    "tenant.sso_connection.updated",
    "tenant.session_revocation.started",
    "tenant.policy.detached",
    "tenant.policy.attached",
    "tenant.user.looked_up",
    "tenant.group.member.added",
    "tenant.billing.alerts.updated",
    "tenant.trusted_access.business_verification.started",
    "tenant.trusted_access.application.submitted",
];

/// Fill `[start, now)` with `n` random activities and the scripted scenarios a security
/// feed must surface, then cut the compliance files that time has already closed.
pub(crate) fn history(st: &mut OrgState, start: i64, now: i64, n: usize) {
    let (start_us, now_us) = (start * 1_000_000, now * 1_000_000);
    let span = (now_us - start_us).max(1);
    let mut times: Vec<i64> = (0..n).map(|_| st.rng.random_range(start_us..start_us + span)).collect();
    times.sort_unstable();
    for t in times {
        random_activity(st, t);
    }
    let at = |frac: f64| start_us + (span as f64 * frac) as i64;
    brute_force_then_success(st, at(0.55));
    new_country_login(st, at(0.7));
    tenant_bundle(st, at(0.4));
    st.compliance.cut_until(now_us);
}

/// Five failures from several foreign addresses within one second, then a success: the
/// classic credential-stuffing shape, and a tie on `effective_at` for pagination tests.
fn brute_force_then_success(st: &mut OrgState, at_us: i64) {
    let Some(victim) = st.pick_user(false) else {
        return;
    };
    let at = at_us / 1_000_000;
    for i in 0..5 {
        let loc = HOME_LOCATIONS + i % (LOCATIONS.len() - HOME_LOCATIONS);
        let mut person = victim.clone();
        person.agent = SCRIPT_AGENT;
        login(st, &Actor::Session { person, loc }, at, false);
        records::auth_log(st, &victim, loc, SCRIPT_AGENT, "login_failed", at_us + i as i64);
    }
    let loc = HOME_LOCATIONS + 1;
    login(
        st,
        &Actor::Session {
            person: victim.clone(),
            loc,
        },
        at + 1,
        true,
    );
    records::auth_log(st, &victim, loc, victim.agent, "login_success", at_us + 1_000_000);
}

/// A member logs in from a country never seen for them before.
fn new_country_login(st: &mut OrgState, at_us: i64) {
    if let Some(person) = st.pick_user(false) {
        let loc = LOCATIONS.len() - 1;
        login(
            st,
            &Actor::Session {
                person: person.clone(),
                loc,
            },
            at_us / 1_000_000,
            true,
        );
        records::auth_log(st, &person, loc, person.agent, "login_success", at_us);
    }
}

fn tenant_bundle(st: &mut OrgState, at_us: i64) {
    let at = at_us / 1_000_000;
    let actor = st.admin_actor();
    st.create_admin_key(at, &actor);
    for (i, ty) in TENANT_TYPES.iter().take(3).enumerate() {
        st.record(ty, at + i as i64, &actor, None, None);
    }
    bind_connector(st, at + 5, &actor);
}

fn bind_connector(st: &mut OrgState, at: i64, actor: &Actor) {
    let ws = st.workspace_id.clone();
    let connector = format!("connector_{}", alnum(&mut st.rng, 16).to_lowercase());
    let id = format!("{ws}__{connector}");
    let role = st.roles.ids().first().cloned().unwrap_or_default();
    let payload = json!({"id": id, "role_id": role, "resource_id": id,
        "resource_type": "workspace_connector", "permissions": ["connector.use"],
        "workspace_id": ws, "connector_id": connector, "connector_name": "Google Drive",
        "enabled": true, "source": "role_toggle"});
    st.record("role.bound_to_resource", at, actor, None, Some(payload));
}

fn login(st: &mut OrgState, actor: &Actor, at: i64, ok: bool) {
    if ok {
        st.record("login.succeeded", at, actor, None, None);
    } else {
        let payload = json!({"error_code": "invalid_credentials",
            "error_message": "The username or password provided is incorrect."});
        st.record("login.failed", at, actor, None, Some(payload));
    }
}

/// Append one compliance event of `event_type` at `at_us`; its `event_id`.
pub(crate) fn compliance_event(st: &mut OrgState, event_type: &str, at_us: i64) -> Option<String> {
    let person = st.pick_user(false)?;
    let record = records::build(st, event_type, &person, at_us)?;
    let id = record["event_id"].as_str().map(str::to_owned);
    st.compliance.push(event_type, at_us, record);
    id
}

/// One random thing that happens in a busy organization, at `at_us`.
pub(crate) fn random_activity(st: &mut OrgState, at_us: i64) {
    let at = at_us / 1_000_000;
    let roll = st.rng.random_range(0..1000u32);
    let actor = any_actor(st);
    match roll {
        0..250 => {
            if let Some(p) = st.pick_user(false) {
                let loc = p.home;
                login(st, &Actor::Session { person: p.clone(), loc }, at, true);
                records::auth_log(st, &p, loc, p.agent, "login_success", at_us);
            }
        }
        250..290 => {
            if let Some(p) = st.pick_user(false) {
                let loc = p.home;
                login(st, &Actor::Session { person: p.clone(), loc }, at, false);
                records::auth_log(st, &p, loc, p.agent, "login_failed", at_us);
            }
        }
        290..540 => {
            compliance_event(st, "CONVERSATION_MESSAGE", at_us);
            compliance_event(st, "CONVERSATION_MESSAGE", at_us + 1500);
        }
        540..620 => {
            compliance_event(st, "APP_LOG", at_us);
        }
        620..640 => {
            compliance_event(st, "APP_AUTH_LOG", at_us);
        }
        640..690 => {
            compliance_event(st, "CUSTOM_AGENTS_LOG", at_us);
        }
        690..750 => {
            compliance_event(st, "CODEX_LOG", at_us);
        }
        750..760 => {
            compliance_event(st, "CODEX_SECURITY_LOG", at_us);
        }
        760..790 => {
            compliance_event(st, "AUDIT_LOG", at_us);
        }
        790..830 => {
            let Some(project) = random_active_project(st) else {
                return;
            };
            let owner = match st.project_users.get(&project).map(|c| c.ids()) {
                Some(ids) if !ids.is_empty() => OwnerRef::User(ids[st.rng.random_range(0..ids.len())].clone()),
                _ => return,
            };
            st.create_api_key(at, &actor, &project, &owner);
        }
        830..850 => {
            if let Some(key) = random_key(st) {
                st.update_api_key(at, &actor, &key);
            }
        }
        850..865 => {
            if let Some(key) = random_key(st) {
                st.delete_api_key(at, &actor, &key);
            }
        }
        865..877 => {
            let n = st.people.len();
            st.add_user(at, &actor, &format!("Temp Worker{n}"), "reader");
        }
        877..887 => {
            if let Some(p) = st.pick_user(false) {
                let role = if st.users.get(&p.id).is_some_and(|u| u["role"] == "owner") {
                    "reader"
                } else {
                    "owner"
                };
                st.change_role(at, &actor, &p.id, role);
            }
        }
        887..892 => {
            if st.users.len() > 8
                && let Some(p) = st.pick_user(false)
                && st.users.get(&p.id).is_some_and(|u| u["role"] != "owner")
            {
                st.delete_user(at, &actor, &p.id);
            }
        }
        892..910 => {
            let n = st.invites.len();
            st.send_invite(at, &actor, &format!("candidate{n}@example.com"));
        }
        910..920 => {
            if let Some(id) = st.invites.flagged_last().map(str::to_owned) {
                st.accept_invite(at, &id);
            }
        }
        920..925 => {
            let n = st.projects.len();
            st.create_project(at, &actor, &format!("Experiment {n}"));
        }
        925..928 => {
            let n = st.projects.flagged_len();
            if n > 3
                && let Some(p) = st.projects.flagged_nth(n - 1).map(str::to_owned)
            {
                st.archive_project(at, &actor, &p);
            }
        }
        928..940 => {
            if let Some(p) = st.pick_user(false) {
                let org = st.org_id.clone();
                let payload = json!({"id": alnum(&mut st.rng, 12), "principal_id": p.id,
                    "principal_type": "user", "resource_id": org,
                    "resource_type": "api.organization"});
                st.record("role.assignment.created", at, &actor, None, Some(payload));
            }
        }
        940..948 => {
            if let Some(p) = random_active_project(st) {
                st.create_service_account(at, &actor, &p);
            }
        }
        948..985 => {
            let ty = TENANT_TYPES[st.rng.random_range(0..TENANT_TYPES.len())];
            st.record(ty, at, &actor, None, None);
        }
        985..992 => bind_connector(st, at, &actor),
        _ => {
            st.create_admin_key(at, &actor);
        }
    }
}

/// Mostly an owner's browser session; sometimes the admin key or a service account's key,
/// so every actor shape shows up in the feed.
fn any_actor(st: &mut OrgState) -> Actor {
    match st.rng.random_range(0..8u32) {
        0 => {
            let key = st.admin_keys.iter().next().map(|(_, _, v)| v.clone());
            match key.and_then(|k| Some((k["id"].as_str()?.to_owned(), st.person(k["owner"]["id"].as_str()?)?))) {
                Some((key_id, person)) => Actor::AdminKey { key_id, person },
                None => st.admin_actor(),
            }
        }
        1 => {
            let sa_key = st.project_keys.values().flat_map(|c| c.iter()).find_map(|(_, id, v)| {
                let sa = v["owner"]["service_account"]["id"].as_str()?;
                Some((id.to_owned(), sa.to_owned()))
            });
            match sa_key {
                Some((key_id, sa_id)) => Actor::ServiceAccountKey { key_id, sa_id },
                None => st.admin_actor(),
            }
        }
        _ => st.admin_actor(),
    }
}

/// An active project, each as likely (in listing order, so a seed gives the same pick).
fn random_active_project(st: &mut OrgState) -> Option<String> {
    let n = st.projects.flagged_len();
    if n == 0 {
        return None;
    }
    let k = st.rng.random_range(0..n);
    st.projects.flagged_nth(k).map(str::to_owned)
}

/// A live project key, each as likely: projects in id order, keys in listing order.
fn random_key(st: &mut OrgState) -> Option<String> {
    let total: usize = st.project_keys.values().map(Collection::len).sum();
    // Keep a few keys around so the inventory never runs dry.
    if total < 4 {
        return None;
    }
    let mut k = st.rng.random_range(0..total);
    for keys in st.project_keys.values() {
        if k < keys.len() {
            return keys.nth(k).map(str::to_owned);
        }
        k -= keys.len();
    }
    None
}

/// The background task: `eps` activities per second on average, plus compliance cuts.
pub(crate) async fn run(shared: Arc<Shared>, eps: f64, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    let mut carry = 0.0f64;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
        }
        let elapsed = last.elapsed().as_secs_f64();
        last = tokio::time::Instant::now();
        carry += eps * elapsed;
        let due = carry.floor();
        carry -= due;
        let now = now_micros();
        let mut st = shared.org.lock();
        for _ in 0..(due as u64) {
            random_activity(&mut st, now);
        }
        st.compliance.cut_until(now);
    }
}
