//! `demo`: the whole job on an embedded default. Starts the simulator and its receiver on
//! free loopback ports, points the real pipeline at them, prints a live summary of what the
//! receiver got, and stops after `--duration` or on Ctrl-C.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::secrets::Rotating;
use serde_json::Value;

use crate::app::App;
use crate::config::{OrgSettings, Settings};
use crate::metrics::Metrics;
use crate::sink::Schema;
use crate::sink::auth::Credentials;
use crate::sink::protocol::Protocol;
use crate::streams::Mode;
use crate::telemetry::LogFormat;
use crate::{shutdown, telemetry};
use openai_audit_simulator::{Receiver, SimConfig, Simulator};

/// Where the demo writes the received events and its state.
pub const OUTPUT_DIR: &str = "demo-output";

const RECEIVER_TOKEN: &str = "demo-receiver-token";

/// What `demo` was asked for on the command line.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Stop after this long (default: until Ctrl-C).
    pub duration: Option<Duration>,
    /// Seed of the simulated organization.
    pub seed: u64,
    /// Simulated activity rate.
    pub events_per_second: f64,
    /// The protocol spoken to the simulated receiver.
    pub protocol: Protocol,
    /// The event shape inside the protocol's envelope.
    pub schema: Schema,
    /// How many simulated organizations (`[[orgs]]` blocks when more than one).
    pub orgs: usize,
    /// How big each simulated organization is grown.
    pub size: openai_audit_simulator::OrgSize,
}

/// Runs the demo; `base` supplies everything the demo does not override.
pub async fn run(base: Settings, options: DemoOptions) -> ExitCode {
    let DemoOptions {
        duration,
        seed,
        events_per_second,
        protocol,
        schema,
        orgs,
        size,
    } = options;
    let mut log = base.log.clone();
    log.format = LogFormat::Pretty;
    if std::env::var_os("RUST_LOG").is_none() {
        // The summary is the demo's output; logs stay for what needs attention.
        log.level = "warn".to_string();
    }
    telemetry::init(&log);

    let out_dir = PathBuf::from(OUTPUT_DIR);
    // Each demo starts from nothing, so the backfill is part of what it shows.
    if let Err(err) = reset_dir(&out_dir) {
        eprintln!(
            "openai-audit-ingest demo: failed to prepare {}: {err}",
            out_dir.display()
        );
        return ExitCode::FAILURE;
    }
    let received_file = out_dir.join("received.ndjson");
    let sims = match openai_audit_simulator::start_orgs(
        SimConfig {
            seed,
            events_per_second,
            receiver_token: Some(RECEIVER_TOKEN.to_string()),
            receiver_file: Some(received_file.clone()),
            size,
            ..SimConfig::default()
        },
        orgs,
    )
    .await
    {
        Ok(sims) => sims,
        Err(err) => {
            eprintln!("openai-audit-ingest demo: failed to start the simulator: {err}");
            return ExitCode::FAILURE;
        }
    };
    let settings = match demo_settings(base, &sims, &out_dir, protocol, schema) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("openai-audit-ingest demo: {err}");
            for sim in sims {
                sim.shutdown().await;
            }
            return ExitCode::FAILURE;
        }
    };
    let sim = &sims[0];

    println!("openai-audit-ingest demo");
    println!("  simulated OpenAI Admin API   {}", sim.admin_base_url());
    println!(
        "  simulated receiver (sink)    {} ({}, schema {}, {} auth, {} compression)",
        settings.sink.url,
        protocol.as_str(),
        <&'static str>::from(schema),
        settings.sink.credentials.scheme,
        <&'static str>::from(settings.sink.compression)
    );
    println!("  received events are written  {}", received_file.display());
    println!("  simulated Compliance API     {}", sim.compliance_base_url());
    if sims.len() > 1 {
        let ids: Vec<&str> = sims.iter().map(Simulator::org_id).collect();
        println!(
            "  {} organizations, each its own simulator, keys and history: {}",
            sims.len(),
            ids.join(", ")
        );
    }
    println!(
        "  streams: audit_logs, audit_logs_tenant, compliance:<TYPE> per event type (backfill of the simulated history, then live activity)"
    );
    println!("           inventory (a snapshot of the simulated org every 20s: observations, changes, signals)");
    match duration {
        Some(d) => println!("  stopping after {}", humantime::format_duration(d)),
        None => println!("  press Ctrl-C to stop"),
    }
    println!();

    let app = match App::build(&settings, Mode::Forever, Metrics::new()).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("openai-audit-ingest demo: {err}");
            return ExitCode::FAILURE;
        }
    };
    let stop = app.stop_token();
    shutdown::Signals::install().forward(stop.clone(), app.abort_token(), app.reloader());
    if let Some(d) = duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.cancel();
        });
    }
    let started = Instant::now();
    let run = app.run_until_stopped(None);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            _ = tick.tick() => println!("{}", Summary::of(sim.receiver()).line(started.elapsed())),
        }
    };
    let last = Summary::of(sim.receiver());
    println!();
    println!("{}", last.line(started.elapsed()));
    println!("{}", last.breakdown());
    println!("events written to {}", received_file.display());
    for sim in sims {
        sim.shutdown().await;
    }
    if outcome.success(Mode::Forever) && last.duplicates == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn reset_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)
}

/// The embedded defaults pointed at the simulators (the first as `[openai]`, every one as an
/// `[[orgs]]` block when there are several), with short intervals so things move, the sink
/// speaking `protocol` to the first one's receiver endpoint for it.
pub fn demo_settings(
    mut s: Settings,
    sims: &[Simulator],
    out_dir: &Path,
    protocol: Protocol,
    schema: Schema,
) -> Result<Settings, String> {
    let sim = sims.first().ok_or("no simulated organization")?;
    s.openai.base_url = crate::config::api_root_url(sim.admin_base_url());
    s.openai.admin_key = Some(Rotating::fixed(
        "openai.admin_key",
        SecretString::from(sim.admin_key().to_string()),
    ));
    s.openai.organization_id = Some(sim.org_id().to_string());
    // The audit-log polls every 2 s would use the whole default budget (60/min) and starve
    // the inventory run; the simulator has no limit of its own.
    s.openai.requests_per_minute = std::num::NonZeroU32::new(600).unwrap_or(s.openai.requests_per_minute);
    s.audit_logs.enabled = true;
    s.audit_logs.tenant_events = true;
    s.audit_logs.poll_interval = Duration::from_secs(2);
    s.audit_logs.initial_lookback = Duration::from_secs(3 * 3600);
    s.inventory.enabled = true;
    // Short, so inventory changes from the simulated activity show up while the demo runs.
    s.inventory.interval = Duration::from_secs(20);
    s.compliance.enabled = true;
    s.compliance.api.api_key = Some(Rotating::fixed(
        "compliance.api_key",
        SecretString::from(sim.compliance_key().to_string()),
    ));
    s.compliance.api.base_url = crate::config::api_root_url(sim.compliance_base_url());
    s.compliance.api.principal_id = sim.workspace_id().to_string();
    s.compliance.streams.poll_interval = Duration::from_secs(2);
    s.compliance.streams.initial_lookback = Duration::from_secs(3 * 3600);
    s.sink.url = sim
        .receiver_url_for(protocol.as_str())
        .ok_or_else(|| format!("the simulated receiver does not play {}", protocol.as_str()))?;
    s.sink.protocol = protocol;
    s.sink.schema = schema;
    s.sink.credentials = Credentials {
        token: Some(Rotating::fixed(
            "sink.auth_token",
            SecretString::from(RECEIVER_TOKEN.to_string()),
        )),
        ..Credentials::none(protocol.default_auth())
    };
    s.sink.compression = protocol.default_compression();
    s.sink.flush_interval = Duration::from_millis(500);
    s.state.dir = out_dir.join("state");
    s.server.listen = None;
    if sims.len() > 1 {
        s.orgs = sims.iter().map(|one| org_of(&s, one)).collect();
    }
    Ok(s)
}

/// The `[[orgs]]` block of one simulated organization, over the demo's sections.
fn org_of(s: &Settings, sim: &Simulator) -> OrgSettings {
    let mut org = s.organizations().remove(0);
    org.scope = Some(sim.org_id().to_string());
    org.openai.base_url = crate::config::api_root_url(sim.admin_base_url());
    org.openai.admin_key = Some(Rotating::fixed(
        "openai.admin_key",
        SecretString::from(sim.admin_key().to_string()),
    ));
    org.openai.organization_id = Some(sim.org_id().to_string());
    org.compliance.api.api_key = Some(Rotating::fixed(
        "compliance.api_key",
        SecretString::from(sim.compliance_key().to_string()),
    ));
    org.compliance.api.base_url = crate::config::api_root_url(sim.compliance_base_url());
    org.compliance.api.principal_id = sim.workspace_id().to_string();
    org
}

/// A field of a received event: v1 at the top level, OCSF under `unmapped.openai`.
fn field<'a>(event: &'a Value, key: &str) -> Option<&'a Value> {
    event
        .get(key)
        .or_else(|| event.pointer(&format!("/unmapped/openai/{key}")))
}

/// What the receiver holds, counted for display.
#[derive(Debug, Default)]
pub struct Summary {
    pub events: usize,
    pub duplicates: usize,
    pub findings: usize,
    /// guardrail rule → findings
    pub by_rule: BTreeMap<String, usize>,
    /// source → category → count
    pub by_source: BTreeMap<String, BTreeMap<String, usize>>,
    /// org_id → count
    pub by_org: BTreeMap<String, usize>,
}

impl Summary {
    /// Counts what `receiver` has received so far.
    pub fn of(receiver: &Receiver) -> Self {
        let mut s = Summary::default();
        let mut seen: HashMap<String, ()> = HashMap::new();
        for event in receiver.events() {
            s.events += 1;
            let id = event
                .get("id")
                .or_else(|| event.pointer("/metadata/uid"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if seen.insert(id, ()).is_some() {
                s.duplicates += 1;
            }
            for finding in field(&event, "findings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                s.findings += 1;
                let rule = finding.get("rule").and_then(Value::as_str).unwrap_or("?");
                *s.by_rule.entry(rule.to_string()).or_default() += 1;
            }
            let text = |k: &str| field(&event, k).and_then(Value::as_str).unwrap_or("?").to_string();
            *s.by_org.entry(text("org_id")).or_default() += 1;
            *s.by_source
                .entry(text("source"))
                .or_default()
                .entry(text("category"))
                .or_default() += 1;
        }
        s
    }

    /// One status line.
    pub fn line(&self, elapsed: Duration) -> String {
        let sources: Vec<String> = self
            .by_source
            .iter()
            .map(|(source, cats)| format!("{source} {}", cats.values().sum::<usize>()))
            .collect();
        format!(
            "[{:>4}s] received {} events ({} duplicates) | {} | findings {}",
            elapsed.as_secs(),
            self.events,
            self.duplicates,
            if sources.is_empty() {
                "nothing yet".to_string()
            } else {
                sources.join(", ")
            },
            self.findings
        )
    }

    /// Events by source and category.
    pub fn breakdown(&self) -> String {
        let mut out = String::from("by source and category:");
        for (source, cats) in &self.by_source {
            out.push_str(&format!("\n  {source}"));
            for (cat, n) in cats {
                out.push_str(&format!("\n    {cat:<16} {n}"));
            }
        }
        if self.by_org.len() > 1 {
            out.push_str("\nby organization:");
            for (org, n) in &self.by_org {
                out.push_str(&format!("\n  {org:<36} {n}"));
            }
        }
        if !self.by_rule.is_empty() {
            out.push_str("\nguardrail findings by rule:");
            for (rule, n) in &self.by_rule {
                out.push_str(&format!("\n  {rule:<36} {n}"));
            }
        }
        out
    }
}
