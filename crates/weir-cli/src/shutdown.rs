//! SIGTERM and SIGINT as a clean shutdown.

use std::io;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Exit code for a second signal: the conventional 128 + SIGINT.
const FORCED_EXIT_CODE: i32 = 130;

/// Cancels `token` on the first SIGTERM or SIGINT (Ctrl-C), and exits at once on
/// the second, for when a drain hangs.
///
/// Handlers are installed before this returns, so a signal that arrives any time
/// after (say, right after the ready line) is a clean shutdown rather than the
/// default kill.
pub(crate) fn cancel_on_signal(token: CancellationToken) -> io::Result<()> {
    let mut signals = Signals::install()?;
    tokio::spawn(async move {
        let name = signals.next().await;
        info!("{name} received; shutting down (send it again to exit at once)");
        token.cancel();
        let name = signals.next().await;
        warn!("{name} received again; exiting without waiting for connections to drain");
        std::process::exit(FORCED_EXIT_CODE);
    });
    Ok(())
}

/// SIGTERM and SIGINT as a stream, for commands that handle them themselves
/// (`weir dev-cluster` forwards them to its children).
#[cfg(unix)]
pub(crate) struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    /// SIGHUP too, when asked for: a supervisor whose terminal closes must stop
    /// its children rather than die and leave them running.
    hangup: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    /// Installs the handlers: from now on these signals no longer kill the process.
    pub(crate) fn install() -> io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: None,
        })
    }

    /// As [`Signals::install`], with SIGHUP as a third stop signal.
    pub(crate) fn install_with_hangup() -> io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut signals = Self::install()?;
        signals.hangup = Some(signal(SignalKind::hangup())?);
        Ok(signals)
    }

    /// Waits for the next signal and returns its name.
    pub(crate) async fn next(&mut self) -> &'static str {
        let Self {
            terminate,
            interrupt,
            hangup,
        } = self;
        let hangup = async {
            match hangup {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            _ = hangup => "SIGHUP",
        }
    }
}

#[cfg(not(unix))]
pub(crate) struct Signals;

#[cfg(not(unix))]
impl Signals {
    pub(crate) fn install() -> io::Result<Self> {
        Ok(Self)
    }

    pub(crate) fn install_with_hangup() -> io::Result<Self> {
        Ok(Self)
    }

    pub(crate) async fn next(&mut self) -> &'static str {
        // If Ctrl-C cannot be watched, never report one rather than shut down.
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}
