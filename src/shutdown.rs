//! Signals fanned out to every task: the first SIGINT or SIGTERM cancels the stop token
//! (stop fetching, flush, save checkpoints); a second one during the drain cancels the abort
//! token (stop at once; checkpoints stay behind anything undelivered). SIGHUP re-reads the
//! secret files and never stops the process.

use tokio::signal::unix::{Signal, SignalKind, signal as unix_signal};
use tokio_util::sync::CancellationToken;

/// The signals, listened to for as long as this lives; `None` when the handlers could not
/// be installed.
pub struct Signals(Option<Listening>);

struct Listening {
    term: Signal,
    int: Signal,
    hup: Signal,
}

/// What a signal asks for.
enum Asked {
    Stop(&'static str),
    Reload,
}

impl Signals {
    /// Starts listening now: a signal that arrives before [`Signals::forward`] is kept for it,
    /// not left to its default action (ending the process without a drain — SIGHUP's too).
    pub fn install() -> Self {
        match (
            unix_signal(SignalKind::terminate()),
            unix_signal(SignalKind::interrupt()),
            unix_signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Self(Some(Listening { term, int, hup })),
            _ => {
                // Without signal handlers the process can still be stopped, just not gracefully.
                tracing::error!("failed to install signal handlers");
                Self(None)
            }
        }
    }

    /// Cancels `stop` on the first stop signal and `abort` on the second; calls `reload` on
    /// each SIGHUP.
    pub fn forward(self, stop: CancellationToken, abort: CancellationToken, reload: impl Fn() + Send + 'static) {
        let Some(mut signals) = self.0 else { return };
        tokio::spawn(async move {
            let mut stops = 0;
            loop {
                match signals.next().await {
                    Asked::Reload => {
                        tracing::info!(signal = "SIGHUP", "reload requested; re-reading the secret files");
                        reload();
                    }
                    Asked::Stop(signal) if stops == 0 => {
                        stops += 1;
                        tracing::info!(
                            signal,
                            "stop requested; flushing and saving checkpoints (send it again to stop at once)"
                        );
                        stop.cancel();
                    }
                    Asked::Stop(signal) => {
                        tracing::warn!(
                            signal,
                            "second stop request; stopping at once: undelivered events stay behind the checkpoints and are fetched again on the next start"
                        );
                        abort.cancel();
                        return;
                    }
                }
            }
        });
    }
}

/// Completes on the first SIGINT or SIGTERM and names it (SIGHUP is ignored).
pub async fn signal() -> &'static str {
    match Signals::install().0 {
        Some(mut signals) => loop {
            if let Asked::Stop(signal) = signals.next().await {
                return signal;
            }
        },
        None => std::future::pending().await,
    }
}

impl Listening {
    /// The next signal.
    async fn next(&mut self) -> Asked {
        tokio::select! {
            _ = self.term.recv() => Asked::Stop("SIGTERM"),
            _ = self.int.recv() => Asked::Stop("SIGINT"),
            _ = self.hup.recv() => Asked::Reload,
        }
    }
}
