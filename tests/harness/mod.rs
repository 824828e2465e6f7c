//! Shared helpers for the end-to-end tests.
//!
//! Binaries Cargo builds for this package are located with
//! `env!("CARGO_BIN_EXE_<name>")` inside the test binary itself, since Cargo
//! sets those variables only for tests. [`Server`] runs a real
//! `switchyard serve` on port 0 (the binary path is passed in for that
//! reason) and reads its address from its output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Held by tests that load the machine (the crash test, each server test)
/// so they do not run at the same time: the crash test's 300 ms leases must
/// not lapse because a server test took the CPU.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Tokens every test server knows, one per role.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";
/// The operator's token.
pub const OPERATOR_TOKEN: &str = "e2e-operator-token";
/// The viewer's token.
pub const VIEWER_TOKEN: &str = "e2e-viewer-token";

/// A `switchyard serve` process on a free port and a temporary data
/// directory. Killed when dropped unless it was stopped.
pub struct Server {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Lines the server printed up to and including its address.
    pub startup_lines: Vec<String>,
    /// Lines the server prints after its address.
    lines: mpsc::Receiver<String>,
    /// The data directory (handed back by [`Server::terminate`] for restarts).
    data_dir: Option<tempfile::TempDir>,
}

/// A server that exited after SIGTERM.
pub struct Stopped {
    /// How it exited.
    pub status: ExitStatus,
    /// What it printed after its address.
    pub lines: Vec<String>,
    /// Its data directory, to restart on.
    pub data_dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bin serve` with the three test tokens and `extra_args`.
    pub fn start(bin: &Path, extra_args: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Server::start_in(bin, data_dir, extra_args, true)
    }

    /// Starts a server in `data_dir`; `with_tokens: false` leaves auth to
    /// the server (it generates an admin token).
    pub fn start_in(
        bin: &Path,
        data_dir: tempfile::TempDir,
        extra_args: &[&str],
        with_tokens: bool,
    ) -> Server {
        let config = data_dir.path().join("test.toml");
        let tokens = if with_tokens {
            format!(
                "[auth]\nadmin_token = \"{ADMIN_TOKEN}\"\n\
                 [[auth.tokens]]\ntoken = \"{OPERATOR_TOKEN}\"\nrole = \"operator\"\n\
                 [[auth.tokens]]\ntoken = \"{VIEWER_TOKEN}\"\nrole = \"viewer\"\n"
            )
        } else {
            String::new()
        };
        std::fs::write(&config, tokens).expect("write config");
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(data_dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env_remove("SWITCHYARD_ADMIN_TOKEN")
            .env("SWITCHYARD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn switchyard serve");
        let stdout = child.stdout.take().expect("stdout");
        let lines = forward_lines(stdout);
        let mut server = Server {
            child,
            url: String::new(),
            startup_lines: Vec::new(),
            lines,
            data_dir: Some(data_dir),
        };
        let line = server.wait_for_line("listening on ");
        server.url = line
            .split("listening on ")
            .nth(1)
            .expect("address")
            .trim()
            .to_owned();
        server
    }

    /// Waits for (and returns) the next output line containing `needle`;
    /// fails when the server exits first or stays silent for a minute.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(needle) => {
                    self.startup_lines.push(line.clone());
                    return line;
                }
                Ok(line) => self.startup_lines.push(line),
                Err(e) => panic!("server printed no line with `{needle}` ({e})"),
            }
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_ref().expect("data dir").path()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> Stopped {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let status = self.child.wait().expect("wait for server");
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        Stopped {
            status,
            lines,
            data_dir: self.data_dir.take().expect("data dir"),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}
