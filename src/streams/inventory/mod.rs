//! The `inventory` stream: every `inventory.interval` (and once at start) list the whole
//! organization, compare each kind with the previous snapshot, emit observations, changes,
//! one snapshot event per kind and derived signals, then leave the new snapshot as the
//! checkpoint — saved only once every event of the run is acknowledged.
//!
//! Layout: [`kind`] (what is listed and compared), [`fetch`] (listing), [`diff`] and
//! [`signals`] (pure), [`events`] (their normalized events, pure), this file (the run and
//! its state).

pub(crate) mod diff;
pub(crate) mod events;
pub(crate) mod fetch;
pub(crate) mod kind;
pub(crate) mod signals;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use self::diff::{ChangeKind, Coverage, Item, KindSnapshot};
use self::events::SnapshotSummary;
use self::fetch::{ListError, Listing, Listings};
use self::kind::Kind;
use super::{Checkpoint, CycleError, CycleReport, Stream};
use crate::metrics::Metrics;
use crate::normalize::{self, Context, Event};
use crate::openai::AdminApi;
use crate::pipeline::{Emitter, Stopped};

/// Stream name.
pub const NAME: &str = "inventory";

/// What the inventory checkpoint holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InventoryState {
    /// Runs started from this state; the next run's snapshot id is `generation + 1`, so a
    /// run replayed after a crash reuses the snapshot ids of the run it repeats.
    #[serde(default)]
    pub generation: u64,
    /// Kind name → the objects seen, by key.
    #[serde(default)]
    pub kinds: BTreeMap<String, KindSnapshot>,
    /// Signal name → subject → hash of the condition last reported.
    #[serde(default)]
    pub signals: BTreeMap<String, BTreeMap<String, String>>,
}

impl Checkpoint for InventoryState {}

/// The inventory stream's settings (`[inventory]`).
#[derive(Debug, Clone)]
pub struct InventorySettings {
    pub enabled: bool,
    pub interval: Duration,
    /// A key unused for longer than this is reported as stale.
    pub stale_key_days: u32,
}

/// The organization inventory.
#[derive(Debug)]
pub struct InventoryStream {
    client: AdminApi,
    settings: InventorySettings,
    ctx: Context,
    state: InventoryState,
    metrics: Metrics,
}

impl InventoryStream {
    /// The stream, resuming from `state` (its checkpoint, or the default on a first start).
    pub fn new(
        client: AdminApi,
        settings: InventorySettings,
        ctx: Context,
        state: InventoryState,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            settings,
            ctx,
            state,
            metrics,
        }
    }
}

/// Counts for the cycle's log line.
#[derive(Debug, Default)]
struct Totals {
    objects: usize,
    observed: usize,
    added: usize,
    removed: usize,
    changed: usize,
    signals: usize,
    unreadable: usize,
}

/// One run's events and the state that follows from them (pure once the listing is done).
struct Run {
    events: Vec<Event>,
    next: InventoryState,
    totals: Totals,
    incomplete: Vec<&'static str>,
}

fn build_run(
    prev: &InventoryState,
    listings: &Listings,
    ctx: &Context,
    settings: &InventorySettings,
    at: DateTime<Utc>,
) -> Run {
    let generation = prev.generation + 1;
    let mut next = InventoryState {
        generation,
        kinds: prev.kinds.clone(),
        signals: prev.signals.clone(),
    };
    let mut events = Vec::new();
    let mut totals = Totals::default();
    let mut incomplete = Vec::new();
    let empty = Listing::default();
    let project_names = project_names(listings, prev);
    let mut complete_items: BTreeMap<Kind, Vec<Item>> = BTreeMap::new();

    for kind in Kind::ALL {
        let listing = listings.get(&kind).unwrap_or(&empty);
        let mut items = Vec::with_capacity(listing.items.len());
        let mut unreadable = 0;
        for (scope, raw) in &listing.items {
            match kind.view(raw) {
                Some((id, fields)) => items.push(Item {
                    id,
                    scope: scope.clone(),
                    fields,
                    raw: raw.clone(),
                }),
                // It still travels; without an id it cannot be tracked, so the kind cannot
                // claim to know everything that exists and derives no removals.
                None => {
                    unreadable += 1;
                    events.push(normalize::unparseable(
                        normalize::Source::Inventory,
                        raw,
                        ctx,
                        &format!("an inventory {} item without a string id", kind.name()),
                    ));
                }
            }
        }
        totals.unreadable += unreadable;
        let complete = listing.complete() && unreadable == 0;
        let coverage = Coverage {
            complete,
            scopes: listing.scopes_done.clone(),
        };
        let prev_kind = prev.kinds.get(kind.name()).cloned().unwrap_or_default();
        let count = items.len();
        if complete {
            complete_items.insert(kind, items.clone());
        } else if listing.unavailable.is_none() {
            incomplete.push(kind.name());
        }
        let (changes, snapshot) = diff::diff(&prev_kind, items, &coverage);
        let mut summary = SnapshotSummary {
            kind: kind.name(),
            snapshot_id: generation.to_string(),
            generation,
            complete,
            count,
            observed: 0,
            added: 0,
            removed: 0,
            changed: 0,
            failures: failures(kind, listing, unreadable),
        };
        for change in &changes {
            match change.change {
                ChangeKind::Observed => summary.observed += 1,
                ChangeKind::Added => summary.added += 1,
                ChangeKind::Removed => summary.removed += 1,
                ChangeKind::Changed => summary.changed += 1,
            }
            let project = change
                .scope
                .as_ref()
                .and_then(|s| project_names.get(s))
                .map(String::as_str);
            events.push(events::inventory_change(kind, change, generation, project, ctx, at));
        }
        totals.objects += count;
        totals.observed += summary.observed;
        totals.added += summary.added;
        totals.removed += summary.removed;
        totals.changed += summary.changed;
        events.push(events::inventory_snapshot(&summary, ctx, at));
        next.kinds.insert(kind.name().to_string(), snapshot);
    }

    let inputs = signals::Inputs {
        users: complete_items.get(&Kind::User).map(Vec::as_slice),
        invites: complete_items.get(&Kind::Invite).map(Vec::as_slice),
        project_keys: complete_items.get(&Kind::ProjectApiKey).map(Vec::as_slice),
        admin_keys: complete_items.get(&Kind::AdminApiKey).map(Vec::as_slice),
        external_storage: complete_items.get(&Kind::ExternalStorage).map(Vec::as_slice),
        external_storage_before: prev.kinds.get(Kind::ExternalStorage.name()),
    };
    for (name, holding) in signals::evaluate(&inputs, at.timestamp(), settings.stale_key_days) {
        // Unevaluable: keep what was reported, so nothing is repeated once it is evaluable.
        let Some(holding) = holding else { continue };
        let reported = prev.signals.get(name);
        let mut now_reported = BTreeMap::new();
        for signal in holding {
            let hash = signal.condition_hash();
            if reported.and_then(|r| r.get(&signal.subject)) != Some(&hash) {
                let mut event = events::inventory_signal(&signal, generation, ctx, at);
                if let Some(project) = event.project.as_mut() {
                    project.name = project.id.as_ref().and_then(|id| project_names.get(id)).cloned();
                }
                events.push(event);
                totals.signals += 1;
            }
            now_reported.insert(signal.subject.clone(), hash);
        }
        next.signals.insert(name.to_string(), now_reported);
    }
    Run {
        events,
        next,
        totals,
        incomplete,
    }
}

/// Project id → name, from this run's listing and, for projects it missed, the last one.
fn project_names(listings: &Listings, prev: &InventoryState) -> BTreeMap<String, String> {
    let mut names: BTreeMap<String, String> = prev
        .kinds
        .get(Kind::Project.name())
        .map(|k| {
            k.objects
                .iter()
                .filter_map(|(id, s)| Some((id.clone(), s.fields.get("name")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(l) = listings.get(&Kind::Project) {
        for (_, raw) in &l.items {
            if let (Some(id), Some(name)) = (raw["id"].as_str(), raw["name"].as_str()) {
                names.insert(id.to_string(), name.to_string());
            }
        }
    }
    names
}

fn failures(kind: Kind, listing: &Listing, unreadable: usize) -> Vec<String> {
    let mut out: Vec<String> = listing
        .failures
        .iter()
        .map(|(scope, err)| format!("{}: {err}", scope.as_deref().unwrap_or(kind.name())))
        .collect();
    if listing.parents_unknown {
        out.push("the parent list failed, so not every parent was listed".to_string());
    }
    if let Some(err) = &listing.unavailable {
        out.push(format!("not offered to this organization: {}", err.summary()));
    }
    if unreadable > 0 {
        out.push(format!("{unreadable} item(s) without a string id"));
    }
    out
}

/// The first failure of the run, as the cycle's error.
fn first_failure(listings: &Listings) -> Option<CycleError> {
    listings
        .values()
        .flat_map(|l| l.failures.iter())
        .next()
        .map(|(_, err)| match err {
            ListError::Api(e) => CycleError::Api(e.clone()),
            ListError::Upstream(m) => CycleError::Upstream(m.clone()),
        })
}

impl Stream for InventoryStream {
    type State = InventoryState;

    fn name(&self) -> &str {
        NAME
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    async fn cycle(&mut self, out: &Emitter<InventoryState>) -> Result<CycleReport, CycleError> {
        let at = Utc::now().trunc_subsecs(0);
        let listings = tokio::select! {
            biased;
            () = out.stopping() => return Err(CycleError::Stopped(Stopped)),
            l = fetch::list_everything(&self.client, &self.metrics, NAME) => l,
        };
        let run = build_run(&self.state, &listings, &self.ctx, &self.settings, at);
        if let Some(admin_keys) = listings.get(&Kind::AdminApiKey).filter(|l| l.failures.is_empty()) {
            self.metrics
                .set_credential_expiries(&fetch::expiries(&admin_keys.items));
        }
        let emitted = run.events.len() as u64;
        out.emit_all(run.events).await?;
        // The new snapshot replaces the old one only once all of the run's events are
        // acknowledged; a crash before that replays the run with the same ids.
        self.state = run.next;
        out.checkpoint(self.state.clone());
        let t = &run.totals;
        let report = CycleReport {
            pages: listings.values().map(|l| l.pages).sum(),
            events: emitted,
            duplicates: 0,
            summary: format!(
                "snapshot {}: {} objects, {} observed, {} added, {} removed, {} changed, {} signals, {} unreadable{}",
                self.state.generation,
                t.objects,
                t.observed,
                t.added,
                t.removed,
                t.changed,
                t.signals,
                t.unreadable,
                if run.incomplete.is_empty() {
                    String::new()
                } else {
                    format!("; incomplete: {}", run.incomplete.join(", "))
                }
            ),
        };
        // A partial run has done what it safely could; failing the cycle makes the driver
        // retry with backoff instead of waiting a whole interval, and `once` report it.
        match first_failure(&listings) {
            Some(err) => Err(err),
            None if !run.incomplete.is_empty() => Err(CycleError::Upstream(format!(
                "inventory kinds {} could not be read completely",
                run.incomplete.join(", ")
            ))),
            None => Ok(report),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn settings() -> InventorySettings {
        InventorySettings {
            enabled: true,
            interval: Duration::from_secs(3600),
            stale_key_days: 90,
        }
    }

    fn ctx() -> Context {
        Context {
            org_id: Some("org-1".into()),
        }
    }

    fn listings(users: &[Value], user_failure: bool) -> Listings {
        let mut l: Listings = Kind::ALL.into_iter().map(|k| (k, Listing::default())).collect();
        let u = l.get_mut(&Kind::User).expect("users");
        u.items = users.iter().map(|v| (None, v.clone())).collect();
        if user_failure {
            u.failures.push((None, ListError::Upstream("boom".into())));
        }
        l
    }

    fn types(run: &Run) -> Vec<String> {
        run.events
            .iter()
            .filter(|e| e.event_type != "inventory.snapshot")
            .map(|e| e.event_type.clone())
            .collect()
    }

    #[test]
    fn a_replayed_run_produces_the_same_ids_and_an_unchanged_org_no_changes() {
        let at = Utc::now();
        let users = [
            json!({"id": "u1", "role": "owner"}),
            json!({"id": "u2", "role": "reader"}),
        ];
        let first = build_run(
            &InventoryState::default(),
            &listings(&users, false),
            &ctx(),
            &settings(),
            at,
        );
        assert_eq!(
            types(&first),
            vec!["user.observed", "user.observed", "inventory.owners"]
        );
        assert_eq!(
            first
                .events
                .iter()
                .filter(|e| e.event_type == "inventory.snapshot")
                .count(),
            Kind::ALL.len(),
            "one snapshot per kind"
        );
        let changed = [
            json!({"id": "u1", "role": "owner"}),
            json!({"id": "u2", "role": "owner"}),
        ];
        let a = build_run(&first.next, &listings(&changed, false), &ctx(), &settings(), at);
        let b = build_run(&first.next, &listings(&changed, false), &ctx(), &settings(), Utc::now());
        let ids = |r: &Run| r.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(types(&a), vec!["user.changed", "user.observed", "inventory.owners"]);
        let quiet = build_run(&a.next, &listings(&changed, false), &ctx(), &settings(), at);
        assert!(types(&quiet).is_empty(), "{:?}", types(&quiet));
        assert_eq!(quiet.next.generation, 3);
    }

    #[test]
    fn a_failed_kind_removes_nothing_and_its_snapshot_says_so() {
        let at = Utc::now();
        let users = [
            json!({"id": "u1", "role": "owner"}),
            json!({"id": "u2", "role": "reader"}),
        ];
        let first = build_run(
            &InventoryState::default(),
            &listings(&users, false),
            &ctx(),
            &settings(),
            at,
        );
        let partial = build_run(&first.next, &listings(&users[..1], true), &ctx(), &settings(), at);
        assert!(types(&partial).is_empty(), "{:?}", types(&partial));
        assert_eq!(partial.incomplete, vec!["user"]);
        let snap = partial
            .events
            .iter()
            .find(|e| e.event_type == "inventory.snapshot" && e.details["kind"] == "user")
            .expect("snapshot");
        assert_eq!(snap.details["complete"], false);
        assert_eq!(snap.details["failures"][0], "user: boom");
        assert!(partial.next.kinds["user"].objects.contains_key("u2"));
        assert_eq!(partial.next.signals, first.next.signals, "owners not re-evaluated");
    }

    #[test]
    fn an_item_without_an_id_travels_and_blocks_removals() {
        let at = Utc::now();
        let users = [json!({"id": "u1", "role": "owner"}), json!({"id": "u2"})];
        let first = build_run(
            &InventoryState::default(),
            &listings(&users, false),
            &ctx(),
            &settings(),
            at,
        );
        let run = build_run(
            &first.next,
            &listings(&[json!({"id": "u1", "role": "owner"}), json!({"name": "no id"})], false),
            &ctx(),
            &settings(),
            at,
        );
        assert!(run.events.iter().any(|e| e.category == "other"));
        assert!(!types(&run).iter().any(|t| t.ends_with(".removed")));
    }
}
