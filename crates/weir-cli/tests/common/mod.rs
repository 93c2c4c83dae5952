//! Helpers for tests that run the `weir` binary: a `weir server` child on
//! 127.0.0.1 port 0 over a temp or given data dir (its stderr kept, signals, exit
//! status; killed by PID on drop), and a runner for one CLI invocation with stdin,
//! a time limit, and its captured output. [`cluster`] runs several servers as one
//! cluster (kill, restart, partition by node id); [`proxy`] is the TCP fault proxy
//! it partitions them with.

#![allow(dead_code)]

pub(crate) mod cluster;
pub(crate) mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a process gets to start or to finish; generous for a loaded machine.
pub(crate) const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The stable part of the broker's ready line, followed by the bound address(es).
pub(crate) const READY: &str = "weir broker ready on ";

/// The ready line of a controller-only node, followed by its controller address.
pub(crate) const CONTROLLER_READY: &str = "weir controller ready on ";

/// The binary under test.
pub(crate) fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env("NO_COLOR", "1").env("RUST_LOG", "warn");
    cmd
}

/// Reads a pipe to its end on a thread, line by line.
pub(crate) fn lines_of(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A `weir server` child process on 127.0.0.1 port 0. Its stderr is read line by
/// line on a thread, so the server never blocks on a full pipe; the lines are kept
/// for assertions and failure messages. Killed (SIGKILL, by PID) on drop while it
/// still runs, so a failing test leaves nothing running.
pub(crate) struct Server {
    child: Child,
    lines: Receiver<String>,
    /// Every stderr line taken from `lines` so far.
    seen: Vec<String>,
    /// `host:port` to bootstrap from; set by [`Server::wait_ready`].
    pub(crate) addr: String,
    /// The temp data dir of [`Server::start`], removed after the server is gone.
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on a temp data dir of its own and waits for its ready line.
    pub(crate) fn start() -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start_in(data.path());
        server._data = Some(data);
        server
    }

    /// Starts a server on `data_dir` (kept by the caller, so a test can restart
    /// on it) and waits for its ready line.
    pub(crate) fn start_in(data_dir: &Path) -> Server {
        let mut server = Server::spawn(data_dir, &[]);
        server.wait_ready();
        server
    }

    /// Spawns `weir server --data-dir DATA_DIR --listen 127.0.0.1:0 EXTRA...`
    /// without waiting for anything (it may be meant to fail).
    pub(crate) fn spawn(data_dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "--data-dir".to_owned(),
            data_dir.display().to_string(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        Server::spawn_args(&args)
    }

    /// Spawns `weir server ARGS` without waiting for anything.
    pub(crate) fn spawn_args(args: &[String]) -> Server {
        let mut child = weir()
            .arg("server")
            .args(args)
            // `WEIR_TEST_SERVER_LOG` raises the servers' log level to debug a test.
            .env(
                "RUST_LOG",
                std::env::var("WEIR_TEST_SERVER_LOG")
                    .unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir server");
        let lines = lines_of(child.stderr.take().expect("piped stderr"));
        Server {
            child,
            lines,
            seen: Vec::new(),
            addr: String::new(),
            _data: None,
        }
    }

    /// The server's process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no line with {needle:?} in time; stderr so far:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "weir exited without {needle:?}; stderr:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Waits for the ready line, sets [`Server::addr`] and returns the first bound
    /// address in it.
    pub(crate) fn wait_ready(&mut self) -> SocketAddr {
        let line = self.wait_for(READY);
        let after = line.split(READY).nth(1).unwrap_or_default();
        let first = after.split([' ', ',']).next().unwrap_or_default();
        let addr = first
            .parse()
            .unwrap_or_else(|_| panic!("no address in ready line {line:?}"));
        self.addr = first.to_owned();
        addr
    }

    /// Sends signal `name` (`TERM`, `INT`, ...) with `kill`, which must succeed.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL: no flush, no checkpoint, no clean-shutdown marker.
    pub(crate) fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Waits for the process to exit (panics after [`PROCESS_TIMEOUT`]), then
    /// takes the rest of its stderr.
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        let Some(status) = wait(&mut self.child, PROCESS_TIMEOUT) else {
            panic!(
                "weir did not exit in {PROCESS_TIMEOUT:?}; stderr:\n{}",
                self.log_text()
            )
        };
        // The reader thread ends at EOF, so this drains everything it read.
        while let Ok(line) = self.lines.recv_timeout(PROCESS_TIMEOUT) {
            self.seen.push(line);
        }
        status
    }

    /// Panics with the stderr so far if the process has exited.
    pub(crate) fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("try_wait");
        assert!(
            status.is_none(),
            "weir exited ({status:?}):\n{}",
            self.log_text()
        );
    }

    /// The stderr lines taken so far: up to the line [`Server::wait_for`] last
    /// returned, or all of them after [`Server::wait_exit`].
    pub(crate) fn lines(&self) -> &[String] {
        &self.seen
    }

    /// [`Server::lines`] as one text.
    pub(crate) fn stderr(&self) -> String {
        self.seen.join("\n")
    }

    /// Every stderr line that has arrived so far, as one text.
    pub(crate) fn log_text(&mut self) -> String {
        self.seen.extend(self.lines.try_iter());
        self.stderr()
    }
}

impl Server {
    /// Runs `weir` with the whitespace-separated `args` against this server.
    pub(crate) fn weir(&self, args: &str, stdin: &str) -> Output {
        let args: Vec<&str> = args.split_whitespace().collect();
        self.weir_args(&args, stdin)
    }

    /// Runs `weir ARGS --bootstrap-server ADDR` (for arguments with spaces).
    pub(crate) fn weir_args(&self, args: &[&str], stdin: &str) -> Output {
        let mut args = args.to_vec();
        args.extend(["--bootstrap-server", self.addr.as_str()]);
        run(&args, stdin)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Child::kill signals this child's PID only (SIGKILL).
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What one CLI run left behind.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Output {
    /// Panics with both streams unless the command succeeded.
    pub(crate) fn ok(self) -> Output {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `weir ARGS` with `stdin` as its input; kills it and panics if it runs
/// longer than [`PROCESS_TIMEOUT`].
pub(crate) fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = weir()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let mut input = child.stdin.take().expect("piped stdin");
    let text = stdin.to_owned();
    let writer = thread::spawn(move || {
        // A command that does not read stdin closes it early; that is fine.
        let _ = input.write_all(text.as_bytes());
    });
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let status = wait(&mut child, PROCESS_TIMEOUT).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("weir {args:?} did not finish in {PROCESS_TIMEOUT:?}")
    });
    let _ = writer.join();
    Output {
        status,
        stdout: stdout.recv_timeout(PROCESS_TIMEOUT).unwrap_or_default(),
        stderr: stderr.recv_timeout(PROCESS_TIMEOUT).unwrap_or_default(),
    }
}

/// Waits up to `limit` for the child to exit.
pub(crate) fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a pipe to its end on a thread; the text arrives on the channel.
fn read_all(mut pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// Waits for the next line from `lines`, or panics after `limit`.
pub(crate) fn next_line(lines: &Receiver<String>, limit: Duration) -> String {
    match lines.recv_timeout(limit) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout) => panic!("no line within {limit:?}"),
        Err(RecvTimeoutError::Disconnected) => panic!("the stream ended"),
    }
}
