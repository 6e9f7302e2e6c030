//! Stop signals fanned out to every task: the first SIGINT or SIGTERM cancels the stop token
//! (stop fetching, flush, save checkpoints); a second one during the drain cancels the abort
//! token (stop at once; checkpoints stay behind anything undelivered).

use tokio::signal::unix::{Signal, SignalKind, signal as unix_signal};
use tokio_util::sync::CancellationToken;

/// Cancels `stop` on the first SIGINT or SIGTERM and `abort` on the second.
pub fn on_signals(stop: CancellationToken, abort: CancellationToken) {
    tokio::spawn(async move {
        let Some(mut signals) = Signals::install() else {
            return;
        };
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

/// Completes on the first SIGINT or SIGTERM and names it.
pub async fn signal() -> &'static str {
    match Signals::install() {
        Some(mut signals) => signals.next().await,
        None => std::future::pending().await,
    }
}

/// The two stop signals, listened to for as long as this lives.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Option<Self> {
        match (unix_signal(SignalKind::terminate()), unix_signal(SignalKind::interrupt())) {
            (Ok(term), Ok(int)) => Some(Self { term, int }),
            _ => {
                // Without signal handlers the process can still be stopped, just not gracefully.
                tracing::error!("failed to install signal handlers");
                None
            }
        }
    }

    /// The next stop signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
