//! The audit-log window pass (`streams::audit_logs::pass`, the code the stream runs) over an
//! in-memory upstream that lists newest first with `after=<last_id>`: for arbitrary event
//! sets with ties on one second, late arrivals within the overlap, small pages, and crashes
//! at any page (a checkpoint only for what was delivered; whatever was in flight lost), every
//! event arrives at least once — and, without a crash, exactly once.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::config;
use crate::openai::wire::ListAuditLogsResponse;
use crate::streams::audit_logs::AuditState;
use crate::streams::audit_logs::pass::{Slicing, WindowPass};

/// Where the first events lie, in Unix seconds.
const T0: i64 = 1_000_000;
/// Far enough back that the first window covers everything.
const LOOKBACK: Duration = Duration::from_secs(100_000);

/// One upstream event: its id, its time, and when the upstream starts listing it (a late
/// arrival is listed after its time has passed).
#[derive(Debug, Clone)]
struct Upstream {
    id: String,
    at: i64,
    visible: i64,
}

/// The page the API returns for `effective_at[gte..=lte]` after `after`, at `now`: newest
/// first, ties by id descending, like the simulator and live data.
fn list(events: &[Upstream], gte: i64, lte: i64, after: Option<&str>, limit: usize, now: i64) -> ListAuditLogsResponse {
    let mut listed: Vec<&Upstream> = events
        .iter()
        .filter(|e| e.visible <= now && (gte..=lte).contains(&e.at))
        .collect();
    listed.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    let from = match after {
        Some(cursor) => listed.iter().position(|e| e.id == cursor).map_or(0, |i| i + 1),
        None => 0,
    };
    let page: Vec<&Upstream> = listed.iter().skip(from).take(limit).copied().collect();
    let has_more = from + page.len() < listed.len();
    ListAuditLogsResponse {
        object: "list".into(),
        data: page
            .iter()
            .map(|e| {
                json!({"object": "organization.audit_log", "id": e.id, "type": "login.succeeded", "effective_at": e.at})
                    .into()
            })
            .collect(),
        first_id: page.first().map(|e| e.id.clone()),
        last_id: page.last().map(|e| e.id.clone()),
        has_more,
    }
}

/// A crash while a page is being delivered: `delivered` of its records arrive, nothing after
/// them, and the checkpoint stays at the last one saved.
#[derive(Debug, Clone, Copy)]
struct Crash {
    cycle: usize,
    page: usize,
    delivered: usize,
}

/// How a run pages: the stream's settings, and — for a split window — in which order its
/// slices take turns.
#[derive(Debug, Clone)]
struct Plan {
    overlap: Duration,
    limit: usize,
    lookback: Duration,
    slicing: Option<Slicing>,
    /// At each step the part `schedule[step % len] % parts` moves: it fetches and takes its
    /// next page, or — holding one — delivers it and checkpoints.
    schedule: Vec<usize>,
}

impl Plan {
    fn whole(overlap: Duration, limit: usize) -> Self {
        Self {
            overlap,
            limit,
            lookback: LOOKBACK,
            slicing: None,
            schedule: vec![0],
        }
    }
}

/// A part of the window being paged, and the page it has taken but not yet delivered.
struct Part {
    pass: WindowPass,
    held: Option<(Vec<String>, bool)>,
}

/// A run: cycles at the given times, crashing where told; returns every delivery in order.
/// A crash at step `page` of a cycle delivers `delivered` records of the page the moving part
/// holds; every other page taken but not delivered is lost with it, and the restart reads the
/// last checkpoint.
fn run(events: &[Upstream], times: &[i64], crashes: &[Crash], plan: &Plan) -> Vec<String> {
    let mut saved = AuditState::default();
    let mut delivered = Vec::new();
    for (cycle, &now) in times.iter().enumerate() {
        // A restart reads the checkpoint back from its JSON, as the daemon does.
        let mut state: AuditState =
            serde_json::from_value(serde_json::to_value(&saved).expect("encodes")).expect("decodes");
        let (pass, future) = WindowPass::begin(&mut state, now, plan.overlap, plan.lookback);
        assert!(future.is_none(), "the clock only moves forward here");
        let passes = match plan.slicing {
            Some(slicing) => pass.split(&mut state, slicing).unwrap_or_else(|| vec![pass]),
            None => vec![pass],
        };
        let mut parts: Vec<Part> = passes.into_iter().map(|pass| Part { pass, held: None }).collect();
        let mut step = 0;
        while !parts.is_empty() {
            let i = plan.schedule[step % plan.schedule.len()] % parts.len();
            let crash = crashes.iter().find(|c| c.cycle == cycle && c.page == step);
            step += 1;
            let part = &mut parts[i];
            let Some((ids, more)) = part.held.take() else {
                let w = &part.pass.window;
                let page = list(events, w.start, w.end, w.after.as_deref(), plan.limit, now);
                let taken = part.pass.take(&mut state, &page, None).expect("a well-behaved listing");
                let ids = taken
                    .records
                    .iter()
                    .filter_map(|(_, r, _)| r.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect();
                part.held = Some((ids, taken.more));
                if crash.is_some() {
                    break;
                }
                continue;
            };
            if let Some(crash) = crash {
                delivered.extend(ids.into_iter().take(crash.delivered));
                break;
            }
            delivered.extend(ids);
            if more {
                saved = part.pass.mark(&mut state);
            } else {
                let done = parts.swap_remove(i);
                let (state_now, complete) = done.pass.finish(&mut state);
                assert_eq!(complete, parts.is_empty(), "the window completes with its last part");
                saved = state_now;
            }
        }
    }
    delivered
}

/// Event sets with many ties (few distinct seconds) and late arrivals within `overlap`.
fn scenario() -> impl Strategy<Value = (Vec<Upstream>, Vec<i64>, Duration, usize)> {
    (0u64..=120, 1usize..=5).prop_flat_map(|(overlap, limit)| {
        let event = (0i64..60, 0..=overlap as i64, any::<u16>());
        let steps = prop::collection::vec(1i64..40, 1..8);
        (prop::collection::vec(event, 0..40), steps).prop_map(move |(raw, steps)| {
            let events: Vec<Upstream> = raw
                .into_iter()
                .enumerate()
                .map(|(n, (offset, late, salt))| Upstream {
                    // Ids sort in no relation to time, as real ids do.
                    id: format!("audit_log-{salt:05}-{n:03}"),
                    at: T0 + offset,
                    visible: T0 + offset + late,
                })
                .collect();
            // Cycles while events keep arriving, then two after the last one is listed.
            let mut times = Vec::new();
            let mut now = T0;
            for step in steps {
                now += step;
                times.push(now);
            }
            let last_visible = events.iter().map(|e| e.visible).max().unwrap_or(T0);
            let end = now.max(last_visible);
            times.push(end + 1);
            times.push(end + 2);
            (events, times, Duration::from_secs(overlap), limit)
        })
    })
}

fn counts(delivered: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for id in delivered {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    counts
}

/// Every event delivered exactly once.
fn exactly_once(events: &[Upstream], delivered: &[String]) -> Result<(), TestCaseError> {
    let counts = counts(delivered);
    for e in events {
        prop_assert_eq!(
            counts.get(e.id.as_str()).copied(),
            Some(1),
            "{} at {} listed from {}",
            e.id,
            e.at,
            e.visible
        );
    }
    prop_assert_eq!(delivered.len(), events.len());
    Ok(())
}

/// Every event delivered at least once.
fn none_lost(events: &[Upstream], delivered: &[String]) -> Result<(), TestCaseError> {
    let counts = counts(delivered);
    for e in events {
        prop_assert!(
            counts.contains_key(e.id.as_str()),
            "{} at {} listed from {} was lost",
            e.id,
            e.at,
            e.visible
        );
    }
    Ok(())
}

/// The crashes drawn, except in the last two cycles: they are the restart that catches up.
fn crashes_before_catch_up(times: &[i64], drawn: Vec<(usize, usize, usize)>) -> Vec<Crash> {
    let last = times.len() - 2;
    drawn
        .into_iter()
        .filter(|(cycle, _, _)| *cycle < last)
        .map(|(cycle, page, delivered)| Crash { cycle, page, delivered })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn without_a_crash_every_event_arrives_exactly_once((events, times, overlap, limit) in scenario()) {
        exactly_once(&events, &run(&events, &times, &[], &Plan::whole(overlap, limit)))?;
    }

    #[test]
    fn with_crashes_at_any_page_every_event_arrives_at_least_once(
        (events, times, overlap, limit) in scenario(),
        crashes in prop::collection::vec((0usize..10, 0usize..24, 0usize..6), 0..6),
    ) {
        let crashes = crashes_before_catch_up(&times, crashes);
        none_lost(&events, &run(&events, &times, &crashes, &Plan::whole(overlap, limit)))?;
    }

    #[test]
    fn slices_paged_in_any_interleaving_deliver_every_event_exactly_once(
        (events, times, overlap, limit) in scenario(),
        parts in 2usize..6,
        schedule in prop::collection::vec(0usize..8, 1..12),
    ) {
        exactly_once(&events, &run(&events, &times, &[], &sliced(overlap, limit, parts, schedule)))?;
    }

    #[test]
    fn slices_crashing_at_any_step_lose_nothing(
        (events, times, overlap, limit) in scenario(),
        parts in 2usize..6,
        schedule in prop::collection::vec(0usize..8, 1..12),
        crashes in prop::collection::vec((0usize..10, 0usize..40, 0usize..6), 0..6),
    ) {
        let crashes = crashes_before_catch_up(&times, crashes);
        none_lost(&events, &run(&events, &times, &crashes, &sliced(overlap, limit, parts, schedule)))?;
    }
}

/// Every window split (however short) into up to `parts` slices of at least a second. The
/// first window reaches back 500 s: far enough that a restart before the first checkpoint
/// (a new first start, reading `lookback` back from its own clock) still covers every event —
/// anything older is outside the lookback by definition — yet close enough that the events
/// (60 s of them) spread over more than one slice of the later, shorter windows.
fn sliced(overlap: Duration, limit: usize, parts: usize, schedule: Vec<usize>) -> Plan {
    Plan {
        overlap,
        limit,
        lookback: Duration::from_secs(500),
        slicing: Some(Slicing {
            min_window: Duration::ZERO,
            parts,
            min_slice: Duration::from_secs(1),
        }),
        schedule,
    }
}
