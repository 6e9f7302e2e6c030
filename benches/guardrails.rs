//! Benchmark: the built-in guardrails pack's cost per event over a realistic mixed event set
//! (audit logs, ChatGPT compliance records with message and tool-call text, inventory).
//! Run: `cargo bench --bench guardrails`. Prints the median ns/event over several runs.
//! `BENCH_NEWEST_FIRST=1` feeds the events newest first, as an audit-log backfill delivers them;
//! `BENCH_EVENTS_FILE=<ndjson>` replays events a sink received instead of the built-in mix;
//! `BENCH_RUNS=<n>` runs each measurement n times instead of 9; `BENCH_POLLUTE_KIB=<n>` evicts
//! the cache between two events as the pipeline's other stages do (`pollute_kib`);
//! `BENCH_DISABLED_RULES=<id>,<id>` switches rules off, as `guardrails.disabled_rules` does,
//! to price one rule by the difference.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

/// The daemon's allocator (src/main.rs), so the figures are what the daemon pays.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use openai_audit_ingest::guardrails::{Engine, Inputs, RuleSet};
use openai_audit_ingest::normalize::{self, Actor, Context, Event, Geo, Source};
use serde_json::{Value, json};

const EVENTS: usize = 20_000;
const COUNTRIES: [&str; 4] = ["US", "GB", "DE", "BR"];
/// A place in each country (latitude, longitude), as the upstream strings carry them.
const PLACES: [(&str, &str); 4] = [
    ("37.751", "-97.822"),
    ("51.5085", "-0.1257"),
    ("52.5244", "13.4105"),
    ("-23.5475", "-46.6361"),
];
/// Runs per measurement; `BENCH_RUNS` overrides it (1 under callgrind).
const RUNS: usize = 9;

/// `BENCH_POLLUTE_KIB=<n>`: n KiB written between two events, each event timed on its own
/// (compare with `BENCH_POLLUTE_KIB=0`, which times the same way: a clock read costs tens of
/// nanoseconds).
fn pollute_kib() -> Option<usize> {
    std::env::var("BENCH_POLLUTE_KIB").ok().and_then(|v| v.parse().ok())
}

fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(RUNS)
}

/// The target from the issue: under 2 µs per event.
const TARGET_NS: f64 = 2_000.0;

const AUDIT_TYPES: &[(&str, u32)] = &[
    ("login.succeeded", 30),
    ("login.failed", 6),
    ("api_key.created", 4),
    ("api_key.updated", 2),
    ("user.updated", 2),
    ("invite.sent", 2),
    ("role.bound_to_resource", 2),
    ("service_account.created", 1),
    ("tenant.policy.attached", 1),
    ("tenant.user.looked_up", 2),
    ("project.created", 1),
    ("scim.disabled", 1),
];

const TEXTS: &[&str] = &[
    "Summarize the Q3 numbers for me and list the three biggest changes against Q2, with a short explanation for each.",
    "Here is a summary of the quarterly numbers. Revenue grew 12% quarter over quarter, driven mostly by the enterprise tier.",
    "The check fails because a required dependency is missing from the lockfile; run the install again and commit the result.",
    "Can you review this config? OPENAI_API_KEY=sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp and region us-east-1",
];

/// Where user `i % 97` lives: an index into [`COUNTRIES`] and [`PLACES`].
fn home(i: usize) -> usize {
    (i % 97) % 4
}

/// Users sign in from their own address and country; one event in 400 comes from elsewhere
/// (travel, or an attacker), so stateful rules see both the ordinary and the odd.
fn audit(ty: &str, i: usize) -> Event {
    let user = i % 97;
    let (ip, place) = if i.is_multiple_of(400) {
        (format!("203.0.113.{}", i % 251), (home(i) + 1) % 4)
    } else {
        (format!("198.51.{}.{}", user % 7, user), home(i))
    };
    let (country, (latitude, longitude)) = (COUNTRIES[place], PLACES[place]);
    let record = json!({
        "id": format!("audit_log-{i}"),
        "type": ty,
        "effective_at": 1_770_000_000 + i as i64,
        "actor": {"type": "session", "session": {
            "user": {"id": format!("user-{}", i % 97), "email": format!("user{}@example.com", i % 97)},
            "ip_address": ip,
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
            "ip_address_details": {"country": country, "city": "X", "latitude": latitude, "longitude": longitude}}},
        ty: {"id": format!("obj_{i}"), "data": {"scopes": ["api.model.request"], "role": "reader"}},
    });
    normalize::audit_log(
        &openai_audit_ingest::openai::wire::Record::from(record).members(),
        &Context {
            org_id: Some("org-bench".into()),
        },
    )
    .unwrap()
}

fn compliance(ty: &str, i: usize, raw: Value) -> Event {
    let mut e = Event::new(
        format!("chatgpt.compliance:ws:{ty}-{i}"),
        Source::Compliance,
        Some("ws".into()),
        ty.into(),
        chrono::DateTime::from_timestamp(1_770_000_000 + i as i64, 0).unwrap(),
    );
    e.actor = Some(Actor {
        actor_type: "user".into(),
        email: Some(format!("user{}@example.com", i % 97)),
        ip: Some(format!("198.51.{}.{}", i % 97 % 7, i % 97)),
        geo: Some(Geo {
            country: Some(COUNTRIES[home(i)].into()),
            ..Geo::default()
        }),
        ..Actor::default()
    });
    e.raw = Some(raw.into());
    e
}

/// A compliance record in the public shape (the samples' envelope, the person at home, on
/// another client than in the audit log), with `fields` on top, normalized by the real
/// normalizer.
fn workspace(ty: &str, i: usize, fields: Value) -> Event {
    let (country, (latitude, longitude)) = (COUNTRIES[home(i)], PLACES[home(i)]);
    let mut record = json!({
        "event_id": format!("{ty}-{i}"), "type": ty,
        "timestamp": chrono::DateTime::from_timestamp(1_770_000_000 + i as i64, 0).unwrap().to_rfc3339(),
        "principal": {"id": "ws", "type": "CHATGPT_WORKSPACE"},
        "actor": {"type": "ACCOUNT_USER", "user_id": format!("user-{}", i % 97), "user_email": format!("user{}@example.com", i % 97)},
        "request_metadata": {"client_ip": format!("198.51.{}.{}", i % 97 % 7, i % 97),
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0 Safari/537.36",
            "client_ip_details": {"country": country, "city": "X", "latitude": latitude, "longitude": longitude}},
    });
    if let (Some(r), Value::Object(extra)) = (record.as_object_mut(), fields) {
        r.extend(extra);
    }
    normalize::compliance(
        &record,
        &Context {
            org_id: Some("ws".into()),
        },
    )
    .unwrap()
}

/// The other compliance shapes, in turn: tool calls (MCP and connector, with client context),
/// Codex prompts, tool and MCP calls, agent runs, sign-ins and workspace admin actions.
fn other_compliance(i: usize, shape: usize) -> Event {
    let (country, (latitude, longitude)) = (COUNTRIES[home(i)], PLACES[home(i)]);
    let meta = json!({"openai/userAgent": "ChatGPT/1.2026.320 (Mac OS X 26.1; arm64)",
        "openai/userLocation": {"city": "X", "country": country, "latitude": latitude, "longitude": longitude}});
    match shape % 10 {
        0 => compliance(
            "APP_LOG",
            i,
            json!({"app_name": "Slack", "log_type": "response", "output": [{"response": {"result":
                {"content": [{"type": "text", "text": "Search Results for: in:general (20 results)"}]},
                "action_name": "slack_search_public"}}]}),
        ),
        1 => workspace(
            "APP_LOG",
            i,
            json!({"app_id": format!("asdk_app_{}", i % 13), "app_name": "Jira", "app_type": "MCP", "log_type": "request",
                   "input": {"query": "find tickets about the incident review", "limit": 25, "_meta": meta}}),
        ),
        2 => workspace(
            "CODEX_LOG",
            i,
            json!({"event_type": "PROMPT_RESPONSE_RECEIVED", "client_id": "CODEX_CLI", "event_details": {
                "detail_type": "PROMPT_RESPONSE_RECEIVED", "session_id": "s", "model": "gpt-5.1-codex-max",
                "prompt_text": TEXTS[i % 3], "response_text": TEXTS[(i + 1) % 3], "token_usage": {"input_tokens": 5120}}}),
        ),
        3 => workspace(
            "CODEX_LOG",
            i,
            json!({"event_type": "APP_MCP_CALL", "client_id": "CODEX_CLI", "event_details": {
                "detail_type": "APP_MCP_CALL", "name": format!("tool_{}", i % 7),
                "arguments": {"title": "Rotate the staging token", "labels": ["security"]},
                "tool_meta": {"connector_id": format!("conn-{}", i % 3)}}}),
        ),
        4 => workspace(
            "CODEX_LOG",
            i,
            json!({"event_type": "TOOL_CALL_COMPLETED", "client_id": "CODEX_IDE_VSCODE", "event_details": {
                "detail_type": "TOOL_CALL_COMPLETED", "tool_name": "shell", "tool_input": "make deploy-staging", "status": "success"}}),
        ),
        5 => workspace(
            "CUSTOM_AGENTS_LOG",
            i,
            json!({"event_type": "AGENT_RUN_CREATED", "client_id": "CHATGPT_WEB", "event_details": {
                "detail_type": "AGENT_RUN_CREATED", "agent_id": "agent-77", "run_id": "r",
                "invoker": {"type": "chatgpt", "user_message_text": TEXTS[i % 3]}}}),
        ),
        6 | 7 => workspace(
            "AUTH_LOG",
            i,
            json!({"action_data": {"action": "login_success", "role": "standard-user"}}),
        ),
        8 => workspace(
            "AUDIT_LOG",
            i,
            json!({"action": "CONVERSATION_DELETE", "action_result": "SUCCESS", "action_data": {"conversation_id": format!("c-{i}")}}),
        ),
        _ => workspace(
            "AUDIT_LOG",
            i,
            json!({"action": "LIST_WORKSPACE_LOG_FILES", "action_result": "SUCCESS",
                   "actor": {"type": "API_KEY", "redacted_id": "sk-...RxIA"}, "action_data": {"limit": "100"}}),
        ),
    }
}

/// 60% audit log, 35% compliance (half of it message text, the rest every other shape in
/// turn), 5% inventory; 1 in 50 messages carries a key.
fn mixed() -> Vec<Event> {
    let total: u32 = AUDIT_TYPES.iter().map(|(_, w)| w).sum();
    (0..EVENTS)
        .map(|i| match i % 20 {
            0..12 => {
                let mut pick = (i as u32 * 7919) % total;
                let ty = AUDIT_TYPES
                    .iter()
                    .find(|(_, w)| {
                        if pick < *w {
                            true
                        } else {
                            pick -= w;
                            false
                        }
                    })
                    .map(|(t, _)| *t)
                    .unwrap();
                audit(ty, i)
            }
            12..16 => {
                let text = if i % 50 == 12 { TEXTS[3] } else { TEXTS[i % 3] };
                compliance(
                    "CONVERSATION_MESSAGE",
                    i,
                    json!({"message": {"id": "m", "author": {"type": "user"},
                           "content": {"type": "text", "value": text, "annotations": []}},
                           "conversation": {"id": "c", "title": "Quarterly numbers"}}),
                )
            }
            16 | 17 => other_compliance(i, i / 20 * 2 + i % 20 - 16),
            18 => compliance(
                "AUDIT_LOG",
                i,
                json!({"action": "CONVERSATION_SHARE", "action_data": {}}),
            ),
            _ => {
                let mut e = compliance("inventory.stale_key", i, json!({"id": "key"}));
                e.source = Source::Inventory;
                e.id = format!("openai.inventory:org-bench:key-{i}");
                e
            }
        })
        .collect()
}

/// The events of an NDJSON file of shipped events, without the findings they were shipped with.
fn shipped(path: &std::path::Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut event: Event = serde_json::from_str(line).unwrap();
            event.findings.clear();
            event
        })
        .collect()
}

/// Median ns/event of the pack over `events`, and the findings of one run.
fn measure(rules: &Arc<RuleSet>, events: &[Event]) -> (Vec<f64>, usize) {
    let mut per_event = Vec::with_capacity(runs());
    let mut findings = 0usize;
    for _ in 0..runs() {
        // Cloning is outside the timed loop: inspect mutates events (findings, redaction).
        let mut batch = events.to_vec();
        let mut engine = Engine::new(Arc::clone(rules), None);
        let mut extra = 0usize;
        let elapsed = match pollute_kib() {
            None => {
                let started = Instant::now();
                for event in &mut batch {
                    extra += engine.inspect(event).len();
                }
                started.elapsed()
            }
            Some(kib) => {
                // What the pipeline's other stages do to the cache between two events: one
                // byte in every 64 of `kib` KiB written, outside the timed part.
                let mut junk = vec![0u8; kib * 1024];
                let mut elapsed = std::time::Duration::ZERO;
                for (i, event) in batch.iter_mut().enumerate() {
                    for j in (0..junk.len()).step_by(64) {
                        junk[j] = junk[j].wrapping_add(i as u8);
                    }
                    let started = Instant::now();
                    extra += engine.inspect(event).len();
                    elapsed += started.elapsed();
                }
                std::hint::black_box(&junk);
                elapsed
            }
        };
        findings = batch.iter().map(|e| e.findings.len()).sum::<usize>() + extra;
        per_event.push(elapsed.as_nanos() as f64 / batch.len().max(1) as f64);
    }
    per_event.sort_by(|a, b| a.total_cmp(b));
    (per_event, findings)
}

fn main() {
    let disabled: Vec<String> = std::env::var("BENCH_DISABLED_RULES")
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    let inputs = Inputs {
        disabled_rules: &disabled,
        ..Inputs::default()
    };
    let rules = Arc::new(RuleSet::build(&inputs).unwrap());
    // `BENCH_EVENTS_FILE=events.ndjson`: events as a sink received them (NDJSON, e.g. from a
    // pipeline bench run against a capturing receiver), inspected in the order they arrived.
    let file = std::env::var_os("BENCH_EVENTS_FILE");
    let mut events = match &file {
        Some(path) => shipped(std::path::Path::new(path)),
        None => mixed(),
    };
    // `BENCH_NEWEST_FIRST=1`: the order a backfill delivers (pages newest first).
    let newest_first = std::env::var("BENCH_NEWEST_FIRST").is_ok_and(|v| v == "1");
    if newest_first {
        events.reverse();
    }
    let (per_event, findings) = measure(&rules, &events);
    let median = per_event[per_event.len() / 2];
    println!(
        "guardrails built-in pack ({} rules): {} events x {} runs, {}, {findings} findings per run",
        rules.rules.len(),
        events.len(),
        runs(),
        match (file.is_some(), newest_first) {
            (true, false) => "in the order received",
            (true, true) => "in the reverse of the order received",
            (false, true) => "newest first",
            (false, false) => "oldest first",
        }
    );
    println!(
        "ns/event: median {median:.0}, min {:.0}, max {:.0}; target {TARGET_NS:.0} (median is {:.1}% of target)",
        per_event[0],
        per_event[per_event.len() - 1],
        100.0 * median / TARGET_NS
    );
    let classes = [
        ("audit log", Source::AuditLog),
        ("compliance", Source::Compliance),
        ("inventory", Source::Inventory),
    ];
    for (name, source) in classes {
        let subset: Vec<Event> = events.iter().filter(|e| e.source == source).cloned().collect();
        if subset.is_empty() {
            continue;
        }
        let (per_event, _) = measure(&rules, &subset);
        println!(
            "  {name:<11} {:>6} events, median {:.0} ns/event",
            subset.len(),
            per_event[per_event.len() / 2]
        );
    }
}
