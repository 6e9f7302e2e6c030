//! Growing the seeded organization to a requested size (`--users N --projects M`): the extra
//! people and projects have the shape of a large enterprise organization — 40 members,
//! 3 service accounts, 10 keys and a rate limit per model per project — so the inventory can be
//! measured at the scale it must survive.

use rand::Rng;
use serde_json::json;

use super::ids::alnum;
use super::org::{OrgState, OwnerRef, Person};

const DAY: i64 = 86_400;
/// Members per grown project.
pub const MEMBERS_PER_PROJECT: usize = 40;
/// Service accounts per grown project.
pub const SERVICE_ACCOUNTS_PER_PROJECT: usize = 3;
/// Keys per grown project: a third owned by service accounts, the rest by members.
pub const KEYS_PER_PROJECT: usize = 10;

/// How big the simulated organization is; `None` fields keep the seeded size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrgSize {
    /// Members of the organization (at least the seeded ten).
    pub users: Option<usize>,
    /// Projects (at least the seeded five).
    pub projects: Option<usize>,
}

/// Adds users and projects until the organization has the requested size.
pub(crate) fn grow(st: &mut OrgState, size: OrgSize, start: i64, now: i64) {
    if let Some(users) = size.users {
        while st.users.len() < users {
            add_user(st, start);
        }
    }
    if let Some(projects) = size.projects {
        // Members of the grown projects are drawn from the current members, in turn.
        let members: Vec<Person> = st
            .people
            .iter()
            .filter(|p| st.users.get(&p.id).is_some())
            .cloned()
            .collect();
        let mut next_member = 0;
        while st.projects.len() < projects {
            add_project(st, &members, &mut next_member, start, now);
        }
    }
}

fn add_user(st: &mut OrgState, start: i64) {
    let n = st.users.len();
    let id = st.new_id("user-", 24);
    let tag = alnum(&mut st.rng, 6).to_lowercase();
    let person = Person {
        id: id.clone(),
        name: format!("Member {n}"),
        email: format!("member.{n}.{tag}@example.com"),
        home: 0,
        agent: 0,
    };
    let added_at = start - st.rng.random_range(1..700) * DAY;
    st.add_person(person.clone());
    let seq = st.next_seq();
    st.users.insert(
        seq,
        &id,
        json!({"object": "organization.user", "id": id, "name": person.name,
            "email": person.email, "role": "reader", "added_at": added_at}),
    );
}

fn add_project(st: &mut OrgState, members: &[Person], next_member: &mut usize, start: i64, now: i64) {
    let n = st.projects.len();
    let id = st.new_id("proj_", 24);
    let created = start - st.rng.random_range(30..700) * DAY;
    let name = format!("Project {n}");
    super::seed::add_project(st, &id, &name, created, "GLOBAL", None);
    let mut owners = Vec::new();
    for j in 0..MEMBERS_PER_PROJECT.min(members.len()) {
        let p = &members[*next_member % members.len()];
        *next_member += 1;
        super::seed::add_member(st, &id, p, j < 2, created + DAY);
        owners.push(p.id.clone());
    }
    let mut service_accounts = Vec::new();
    st.project_service_accounts.entry(id.clone()).or_default();
    for k in 0..SERVICE_ACCOUNTS_PER_PROJECT {
        let sa = super::seed::add_service_account(st, &id, &format!("project-{n}-sa-{k}"), created + 2 * DAY);
        service_accounts.push(sa);
    }
    super::seed::rate_limits(st, &id);
    st.project_keys.entry(id.clone()).or_default();
    for k in 0..KEYS_PER_PROJECT {
        let owner = match (
            k % 3,
            service_accounts.get(k % SERVICE_ACCOUNTS_PER_PROJECT),
            owners.get(k),
        ) {
            (0, Some(sa), _) => OwnerRef::ServiceAccount(sa.clone()),
            (_, _, Some(user)) => OwnerRef::User(user.clone()),
            (_, Some(sa), None) => OwnerRef::ServiceAccount(sa.clone()),
            (_, None, None) => continue,
        };
        let last_used = if k % 4 == 0 {
            json!(null)
        } else {
            json!(now - st.rng.random_range(60..200 * DAY))
        };
        let key_created = created + st.rng.random_range(1..30) * DAY;
        st.insert_project_key(&id, &owner, key_created, last_used);
    }
}
