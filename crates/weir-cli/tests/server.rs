//! `weir server` as a user runs it: the built binary, a temp data dir, port 0,
//! signals.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long the binary gets to start or stop; generous for a loaded CI machine.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The stable part of the ready line, followed by the bound address(es).
const READY: &str = "weir broker ready on ";

/// A `weir` process whose stderr is read line by line on a thread; killed on drop
/// so a failing test leaves nothing running.
struct Weir {
    child: Child,
    lines: Receiver<String>,
    /// Every stderr line seen so far, for assertions and failure messages.
    seen: Vec<String>,
}

impl Weir {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn server(data_dir: &Path, extra: &[&str]) -> Self {
        let dir = data_dir.to_str().expect("utf-8 temp path");
        let mut args = vec!["server", "--data-dir", dir, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// Waits for a stderr line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
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

    /// Waits for the ready line and returns the first bound address in it.
    fn wait_ready(&mut self) -> SocketAddr {
        let line = self.wait_for(READY);
        let after = line.split(READY).nth(1).unwrap_or_default();
        let first = after.split([' ', ',']).next().unwrap_or_default();
        first
            .parse()
            .unwrap_or_else(|_| panic!("no address in ready line {line:?}"))
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, then collects the rest of its stderr.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "weir did not exit in time");
            thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF, so this drains everything it read.
        while let Ok(line) = self.lines.recv_timeout(PROCESS_TIMEOUT) {
            self.seen.push(line);
        }
        status
    }

    fn stderr(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn starts_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut weir = Weir::server(&data, &[]);
    let addr = weir.wait_ready();
    assert_ne!(addr.port(), 0);
    TcpStream::connect(addr).expect("the broker accepts connections");
    let lock = std::fs::read_to_string(data.join(".lock")).expect("lock file");
    assert_eq!(lock.trim(), weir.child.id().to_string());

    weir.signal("TERM");
    let status = weir.wait_exit();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        weir.stderr()
    );
    assert!(
        weir.stderr().contains("weir broker stopped"),
        "{}",
        weir.stderr()
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after exit"
    );
}

#[test]
fn second_server_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut first = Weir::server(&data, &[]);
    first.wait_ready();

    let mut second = Weir::server(&data, &[]);
    let status = second.wait_exit();
    assert!(!status.success());
    let message = second.stderr();
    assert!(
        message.contains("is locked by another weir process"),
        "{message}"
    );
    assert!(message.contains(&data.display().to_string()), "{message}");
    assert!(!message.contains(READY), "{message}");

    // Ctrl-C stops the first cleanly, and the directory is free again.
    first.signal("INT");
    let status = first.wait_exit();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        first.stderr()
    );
    let mut third = Weir::server(&data, &[]);
    third.wait_ready();
    third.signal("TERM");
    assert!(third.wait_exit().success());
}

#[test]
fn config_file_and_overrides_apply_and_unknown_keys_only_warn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let properties = dir.path().join("server.properties");
    std::fs::write(
        &properties,
        "# a Kafka server.properties\nnum.network.threads=3\nnum.partitions=4\nno.such.setting=1\n",
    )
    .expect("write properties");
    let config = properties.to_str().expect("utf-8 temp path");
    let mut weir = Weir::server(
        &dir.path().join("data"),
        &["--config", config, "--override", "log.retention.hours=1"],
    );
    weir.wait_ready();
    let stderr = weir.stderr();
    assert!(
        stderr.contains("num.network.threads is a Kafka setting Weir does not use"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown setting no.such.setting"),
        "{stderr}"
    );
    weir.signal("TERM");
    assert!(weir.wait_exit().success());
}

#[test]
fn invalid_settings_fail_with_a_message_that_says_what_to_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let cases = [
        (
            vec!["--override", "num.partitions=many"],
            "invalid value \"many\" for num.partitions",
        ),
        (
            vec!["--override", "num.partitions=0"],
            "num.partitions: must be at least 1",
        ),
        (vec!["--advertise", "0.0.0.0:9092"], "advertised.listeners"),
        (
            vec!["--config", "/no/such/server.properties"],
            "cannot read config file",
        ),
    ];
    for (args, expected) in cases {
        let mut weir = Weir::server(&data, &args);
        let status = weir.wait_exit();
        assert_eq!(status.code(), Some(1), "{args:?}: {}", weir.stderr());
        assert!(
            weir.stderr().contains(expected),
            "{args:?}: {}",
            weir.stderr()
        );
    }
}
