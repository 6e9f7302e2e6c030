//! One shutdown signal fanned out to every task: SIGINT or SIGTERM cancels the token.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGINT or SIGTERM.
pub fn on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let signal = signal().await;
        tracing::info!(signal, "stop requested; flushing and saving checkpoints");
        token.cancel();
    });
}

/// Completes on the first SIGINT or SIGTERM and names it.
pub async fn signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the process can still be stopped, just not gracefully.
        tracing::error!("failed to install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
