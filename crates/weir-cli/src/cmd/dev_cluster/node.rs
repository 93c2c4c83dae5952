//! One node of `weir dev-cluster`: a `weir server` child process, its log file,
//! and what the parent learns from both.
//!
//! The child's stderr goes straight to `DIR/node-N/server.log` (not through a pipe),
//! so a node keeps logging even if the parent is killed. The parent reads the file
//! from where it stood at spawn time: to see the ready line, to echo warnings and
//! errors on the console, and to show the last lines when the node dies.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use anyhow::Context;
use tokio::process::{Child, Command};

/// The broker's ready line; the child is serving once its log has it.
pub(super) const READY: &str = "weir broker ready on ";
/// A controller-only node's ready line.
pub(super) const CONTROLLER_READY: &str = "weir controller ready on ";

/// Log lines kept for the message about a node that died.
const RECENT_LINES: usize = 20;

/// Where one node listens and keeps its files.
#[derive(Debug, Clone)]
pub(super) struct NodeSpec {
    /// `node.id`: 1..=N.
    pub(super) id: u32,
    /// The client listener, `host:port`; `None` on a controller-only node.
    pub(super) client: Option<String>,
    /// The controller listener, `host:port`; `None` on a broker-only node.
    pub(super) controller: Option<String>,
    /// The node's data directory (`DIR/node-N`), which also holds `server.log`.
    pub(super) dir: PathBuf,
}

impl NodeSpec {
    /// `process.roles` when the node has one role only (`None`: both).
    pub(super) fn roles(&self) -> Option<&'static str> {
        match (self.client.is_some(), self.controller.is_some()) {
            (true, false) => Some("broker"),
            (false, true) => Some("controller"),
            _ => None,
        }
    }

    /// `DIR/node-N/server.log`.
    pub(super) fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }
}

/// A running (or exited) node.
#[derive(Debug)]
pub(super) struct Node {
    /// Where it listens.
    pub(super) spec: NodeSpec,
    /// The child process.
    child: Child,
    /// The log file's length when the child was spawned plus what has been read
    /// since: earlier runs' lines are never taken for this run's.
    log_offset: u64,
    /// The start of a line whose newline has not been written yet.
    partial: String,
    /// The last [`RECENT_LINES`] complete lines.
    recent: VecDeque<String>,
    /// The ready line has been seen.
    ready: bool,
    /// The exit status, once reaped.
    exited: Option<ExitStatus>,
}

impl Node {
    /// Creates the node's directory and spawns `exe server ...` for it, in a process
    /// group of its own so a Ctrl-C at the terminal reaches only the parent (which
    /// forwards exactly one SIGTERM; a second signal would make the child skip its
    /// clean shutdown).
    pub(super) fn spawn(exe: &Path, spec: NodeSpec, args: &[String]) -> anyhow::Result<Node> {
        fs::create_dir_all(&spec.dir)
            .with_context(|| format!("cannot create {}", spec.dir.display()))?;
        let log_path = spec.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log_offset = log
            .metadata()
            .with_context(|| format!("cannot stat {}", log_path.display()))?
            .len();
        let mut command = Command::new(exe);
        command
            .arg("server")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            // A safety net for error paths; the normal stop is SIGTERM and a wait.
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start node {} ({})", spec.id, exe.display()))?;
        Ok(Node {
            spec,
            child,
            log_offset,
            partial: String::new(),
            recent: VecDeque::with_capacity(RECENT_LINES),
            ready: false,
            exited: None,
        })
    }

    /// The child's process id, while it has one.
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// True once the ready line has been logged.
    pub(super) fn is_ready(&self) -> bool {
        self.ready
    }

    /// Reads the lines logged since the last call (complete lines only), noting the
    /// ready line and keeping the last few for [`Node::last_lines`].
    pub(super) fn read_log(&mut self) -> Vec<String> {
        let mut bytes = Vec::new();
        let path = self.spec.log_path();
        let read = File::open(&path).and_then(|mut f| {
            f.seek(SeekFrom::Start(self.log_offset))?;
            f.read_to_end(&mut bytes)
        });
        if read.is_err() || bytes.is_empty() {
            return Vec::new();
        }
        self.log_offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut lines = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let line = line.trim_end().to_owned();
            if line.contains(READY) || line.contains(CONTROLLER_READY) {
                self.ready = true;
            }
            if self.recent.len() == RECENT_LINES {
                self.recent.pop_front();
            }
            self.recent.push_back(line.clone());
            lines.push(line);
        }
        lines
    }

    /// The exit status if the child has exited (reaping it).
    pub(super) fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Asks the child to stop cleanly (SIGTERM), if it still runs.
    pub(super) fn terminate(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        #[cfg(unix)]
        {
            let pid = self
                .child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                // Fails only if it has just exited, which the next poll sees.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        #[cfg(not(unix))]
        {
            let _ = self.child.start_kill();
        }
    }

    /// Kills the child at once (SIGKILL) and reaps it.
    pub(super) async fn kill(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill().await;
            self.exited = self.child.try_wait().ok().flatten();
        }
    }

    /// The last lines of this run's log, for a message about its death.
    pub(super) fn last_lines(&mut self) -> String {
        self.read_log();
        let mut text: Vec<&str> = self.recent.iter().map(String::as_str).collect();
        if !self.partial.is_empty() {
            text.push(self.partial.trim_end());
        }
        if text.is_empty() {
            "(nothing logged)".to_owned()
        } else {
            text.join("\n")
        }
    }
}
