//! Stop signals fanned out to every task: the first SIGINT or SIGTERM cancels the stop token
//! (stop fetching, flush, save checkpoints); a second one during the drain cancels the abort
//! token (stop at once; checkpoints stay behind anything undelivered).

use tokio::signal::unix::{Signal, SignalKind, signal as unix_signal};
use tokio_util::sync::CancellationToken;

/// Cancels `stop` on the first SIGINT or SIGTERM and `abort` on the second, listening from
/// this call on.
pub fn on_signals(stop: CancellationToken, abort: CancellationToken) {
    Signals::install().forward(stop, abort);
}

/// The two stop signals, listened to for as long as this lives; `None` when the handlers
/// could not be installed.
pub struct Signals(Option<Listening>);

struct Listening {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Starts listening now: a signal that arrives before [`Signals::forward`] is kept for it,
    /// not left to its default action (ending the process without a drain).
    pub fn install() -> Self {
        match (
            unix_signal(SignalKind::terminate()),
            unix_signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Self(Some(Listening { term, int })),
            _ => {
                // Without signal handlers the process can still be stopped, just not gracefully.
                tracing::error!("failed to install signal handlers");
                Self(None)
            }
        }
    }

    /// Cancels `stop` on the first signal and `abort` on the second.
    pub fn forward(self, stop: CancellationToken, abort: CancellationToken) {
        let Some(mut signals) = self.0 else { return };
        tokio::spawn(async move {
            let first = signals.next().await;
            tracing::info!(
                signal = first,
                "stop requested; flushing and saving checkpoints (send it again to stop at once)"
            );
            stop.cancel();
            let second = signals.next().await;
            tracing::warn!(
                signal = second,
                "second stop request; stopping at once: undelivered events stay behind the checkpoints and are fetched again on the next start"
            );
            abort.cancel();
        });
    }
}

/// Completes on the first SIGINT or SIGTERM and names it.
pub async fn signal() -> &'static str {
    match Signals::install().0 {
        Some(mut signals) => signals.next().await,
        None => std::future::pending().await,
    }
}

impl Listening {
    /// The next stop signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
