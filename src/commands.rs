//! One function per command: what `main` calls once the configuration is valid.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::time::Duration;

use crate::app::App;
use crate::cli::Command;
use crate::config::{self, Settings};
use crate::metrics::Metrics;
use crate::streams::Mode;
pub use crate::telemetry::{say_err, say_out};
use crate::{check, shutdown, telemetry};

/// Runs `command` with validated `settings` and returns the process exit status.
pub async fn execute(command: Command, settings: Settings) -> ExitCode {
    match command {
        Command::Run => {
            telemetry::init(&settings.log);
            pipeline(&settings, Mode::Forever, None).await
        }
        Command::Once { deadline } => {
            telemetry::init(&settings.log);
            pipeline(&settings, Mode::Once, Some(deadline)).await
        }
        Command::Check => {
            telemetry::init(&settings.log);
            let findings = check::run(&settings).await;
            if findings.iter().all(|f| f.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Config => {
            say_out(&config::render_redacted(&settings));
            ExitCode::SUCCESS
        }
        Command::Health => match settings.server.listen {
            None => {
                say_err("openai-audit-ingest health: server.listen is \"\", so there is no /readyz to probe");
                ExitCode::FAILURE
            }
            Some(addr) => {
                let (ready, said) = crate::server::probe(addr).await;
                say_out(&format!("{said}\n"));
                if ready { ExitCode::SUCCESS } else { ExitCode::FAILURE }
            }
        },
        Command::Replay { deadline } => {
            telemetry::init(&settings.log);
            crate::replay::run(&settings, deadline).await
        }
        Command::Demo {
            duration,
            seed,
            events_per_second,
            protocol,
            schema,
            orgs,
            users,
            projects,
        } => {
            let options = crate::demo::DemoOptions {
                duration,
                seed,
                events_per_second,
                protocol,
                schema,
                orgs: usize::from(orgs),
                size: openai_audit_simulator::OrgSize { users, projects },
            };
            crate::demo::run(settings, options).await
        }
        Command::Simulate {
            listen,
            seed,
            events_per_second,
            orgs,
            users,
            projects,
        } => {
            telemetry::init(&settings.log);
            let cfg = openai_audit_simulator::SimConfig {
                listen,
                seed,
                events_per_second,
                size: openai_audit_simulator::OrgSize { users, projects },
                ..openai_audit_simulator::SimConfig::default()
            };
            match openai_audit_simulator::serve_orgs_until(cfg, usize::from(orgs), async {
                shutdown::signal().await;
            })
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    say_err(&format!("openai-audit-ingest simulate: {err}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn pipeline(settings: &Settings, mode: Mode, deadline: Option<Duration>) -> ExitCode {
    // Listening before anything starts: a stop that arrives while the app is being built is
    // honoured as a graceful stop once it is.
    let signals = shutdown::Signals::install();
    let app = match App::build(settings, mode, Metrics::new()).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error.message = %crate::errors::chain(&err), "failed to start");
            say_err(&format!("openai-audit-ingest: {}", crate::errors::chain(&err)));
            return ExitCode::FAILURE;
        }
    };
    signals.forward(app.stop_token(), app.abort_token(), app.reloader());
    let outcome = app.run_until_stopped(deadline).await;
    if outcome.success(mode) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
