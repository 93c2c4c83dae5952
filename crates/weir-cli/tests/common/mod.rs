//! Helpers for tests that run the `weir` binary: a `weir server` child on
//! 127.0.0.1 port 0 over a temp data dir (killed by PID on drop), and a runner for
//! one CLI invocation with stdin, a time limit, and its captured output.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a process gets to start or to finish; generous for a loaded machine.
pub(crate) const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The stable part of the broker's ready line, followed by the bound address(es).
const READY: &str = "weir broker ready on ";

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

/// A `weir server` child process with its own data dir; killed on drop.
pub(crate) struct Server {
    child: Child,
    /// `host:port` to bootstrap from.
    pub(crate) addr: String,
    _data: tempfile::TempDir,
}

impl Server {
    /// Starts a server and waits for its ready line.
    pub(crate) fn start() -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let mut child = weir()
            .args(["server", "--data-dir"])
            .arg(data.path())
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir server");
        let lines = lines_of(child.stderr.take().expect("piped stderr"));
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut seen = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(after) = line.split(READY).nth(1) {
                        let first = after.split([' ', ',']).next().unwrap_or_default();
                        break first.to_owned();
                    }
                    seen.push(line);
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "weir server not ready ({e:?}); stderr:\n{}",
                        seen.join("\n")
                    );
                }
            }
        };
        assert!(
            addr.parse::<std::net::SocketAddr>().is_ok(),
            "no address in the ready line: {addr:?}"
        );
        // Keep draining stderr so the server never blocks on a full pipe.
        thread::spawn(move || for _line in lines {});
        Server {
            child,
            addr,
            _data: data,
        }
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
        // Child::kill signals this child's PID only (SIGKILL).
        let _ = self.child.kill();
        let _ = self.child.wait();
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
