//! Entry point: command line → configuration (exit 2 when invalid) → the runtime (one worker
//! thread unless `TOKIO_WORKER_THREADS` says otherwise) → the command.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use openai_audit_ingest::cli::{Cli, Command};
use openai_audit_ingest::commands::{self, say_err};
use openai_audit_ingest::config::{self, Requirements};
use openai_audit_ingest::runtime;

/// jemalloc instead of glibc's malloc: a third of the daemon's CPU went to glibc's allocator
/// (arena consolidation and unlinking), and jemalloc halves that cost at the same peak RSS
/// (benches/README.md). Its settings are compiled in (.cargo/config.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let needs = match cli.command {
        Command::Run | Command::Once { .. } | Command::Check => Requirements::Pipeline,
        Command::Replay { .. } => Requirements::Sink,
        Command::Config | Command::Health | Command::Demo { .. } | Command::Simulate { .. } => Requirements::None,
    };
    let settings = match config::load(cli.config.as_deref(), &env, needs) {
        Ok(settings) => settings,
        Err(err) => {
            say_err(&format!("openai-audit-ingest: {err}"));
            return ExitCode::from(2);
        }
    };
    let workers = match runtime::workers(env.get(runtime::WORKERS_VAR).map(String::as_str)) {
        Ok(n) => n,
        Err(err) => {
            say_err(&format!("openai-audit-ingest: {err}"));
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime::build(workers) {
        Ok(rt) => rt,
        Err(err) => {
            say_err(&format!(
                "openai-audit-ingest: failed to start the async runtime: {err}"
            ));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(commands::execute(cli.command, settings))
}
