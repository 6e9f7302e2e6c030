//! The command line: global options and one subcommand per job.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::sink::Schema;
use crate::sink::protocol::Protocol;

fn parse_protocol(text: &str) -> Result<Protocol, String> {
    text.parse()
        .map_err(|_| format!("one of {}", <Protocol as strum::VariantNames>::VARIANTS.join(", ")))
}

fn parse_schema(text: &str) -> Result<Schema, String> {
    text.parse()
        .map_err(|_| format!("one of {}", <Schema as strum::VariantNames>::VARIANTS.join(", ")))
}

/// Ships OpenAI Admin API audit logs, organization inventory and ChatGPT Compliance Logs to
/// your ingestion service, losing nothing across crashes and outages.
#[derive(Debug, Parser)]
#[command(name = "openai-audit-ingest", version, about)]
pub struct Cli {
    /// TOML configuration file; without one the embedded defaults and the environment apply.
    #[arg(long, global = true, env = "OAI_INGEST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon until SIGINT/SIGTERM (graceful: flush, checkpoint, exit 0).
    Run,
    /// Run one cycle of every enabled stream, flush, and exit (0 ok, 1 failed).
    Once {
        /// Give up after this long, leaving checkpoints behind anything undelivered.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        deadline: Duration,
    },
    /// Validate the configuration, verify each credential and permission, probe the sink.
    Check,
    /// Print the effective configuration with secrets redacted.
    Config,
    /// Start the built-in simulator and a local receiver, run the pipeline, show results.
    Demo {
        /// Stop after this long (default: until Ctrl-C).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Seed of the simulated organization.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Simulated activity rate.
        #[arg(long, default_value_t = 20.0)]
        events_per_second: f64,
        /// The sink protocol the demo speaks to the simulated receiver.
        #[arg(long, default_value = "ndjson", value_parser = parse_protocol)]
        protocol: Protocol,
        /// The event shape inside the protocol's envelope.
        #[arg(long, default_value = "v1", value_parser = parse_schema)]
        schema: Schema,
        /// How many simulated organizations, each with its own ids, keys and history.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
        orgs: u16,
        /// Grow each simulated organization to this many users (benchmarks at scale).
        #[arg(long)]
        users: Option<usize>,
        /// Grow each simulated organization to this many projects (40 members, 3 service
        /// accounts and 10 keys each).
        #[arg(long)]
        projects: Option<usize>,
    },
    /// Re-send dead-lettered events through the current sink; remove only what was acknowledged.
    Replay {
        /// Give up after this long, keeping whatever was not delivered.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        deadline: Duration,
    },
    /// Probe the local /readyz (for a container HEALTHCHECK): exit 0 when ready, 1 otherwise.
    Health,
    /// Serve the simulated OpenAI Admin + Compliance APIs and a receiver, for tests.
    Simulate {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Seed of the simulated organization.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Simulated activity rate.
        #[arg(long, default_value_t = 5.0)]
        events_per_second: f64,
        /// How many simulated organizations, each on its own port (listen, listen + 1, …)
        /// with its own ids, keys and history; prints the `[[orgs]]` blocks to use them.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
        orgs: u16,
        /// Grow each simulated organization to this many users (benchmarks at scale).
        #[arg(long)]
        users: Option<usize>,
        /// Grow each simulated organization to this many projects (40 members, 3 service
        /// accounts and 10 keys each).
        #[arg(long)]
        projects: Option<usize>,
    },
}
