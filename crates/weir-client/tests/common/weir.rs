//! `weir server` as a user runs it, for end-to-end tests: the built binary, a temp
//! data dir, 127.0.0.1 port 0; killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const READY: &str = "weir broker ready on ";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `weir` binary, built once per test process (a no-op when up to date).
pub fn weir_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>/weir
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&workspace)
            .args(["build", "-q", "-p", "weir-cli", "--bin", "weir"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        // Build into the same target directory as this test.
        if let Some(target) = profile_dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let status = cmd.status().expect("run cargo build for the weir binary");
        assert!(status.success(), "building the weir binary failed");
        let bin = profile_dir.join(format!("weir{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "no weir binary at {}", bin.display());
        bin
    })
}

pub struct WeirServer {
    child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl WeirServer {
    /// A fresh server on a free port.
    pub fn start() -> WeirServer {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_path_buf();
        let mut s = WeirServer::start_in(&dir, "127.0.0.1:0");
        s._temp = Some(temp);
        s
    }

    /// A server over `data_dir`, listening on `listen`.
    pub fn start_in(data_dir: &Path, listen: &str) -> WeirServer {
        let mut child = Command::new(weir_binary())
            .args(["server", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", listen])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "weir server did not get ready; stderr:\n{}",
                    seen.join("\n")
                )
            });
            if let Some(after) = line.split(READY).nth(1) {
                let first: String = after
                    .split([' ', ','])
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                break first;
            }
            seen.push(line);
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _line in rx {});
        WeirServer {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
        }
    }

    /// kill -9: no clean shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Keeps the data dir alive past this server (for a restart).
    pub fn take_temp(&mut self) -> Option<tempfile::TempDir> {
        self._temp.take()
    }
}

impl Drop for WeirServer {
    fn drop(&mut self) {
        self.kill();
    }
}
