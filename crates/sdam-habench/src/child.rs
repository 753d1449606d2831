//! Child processes: the PyMongo program (`python/habench_peer.py`, run by the interpreter of
//! the environment `scripts/install-pymongo.sh` made) and this binary's own idle subcommand.
//! They talk in lines on stdout; the bench closes their stdin to end them.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The environment variable naming the Python interpreter (default: the install script's).
pub(crate) const PYTHON_ENV: &str = "SDAM_HABENCH_PYTHON";

/// A Python with PyMongo, and the program the bench runs with it.
#[derive(Debug, Clone)]
pub(crate) struct Python {
    pub(crate) interpreter: PathBuf,
    pub(crate) script: PathBuf,
    /// `pymongo.version`.
    pub(crate) pymongo: String,
    /// The interpreter's version.
    pub(crate) python: String,
    /// Whether PyMongo's and bson's C extensions are loaded.
    pub(crate) c_extensions: bool,
}

/// The repository root (this crate is `crates/sdam-habench`).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Python {
    /// `SDAM_HABENCH_PYTHON`, else `target/pymongo-venv/bin/python` if the install script ran.
    /// `Err` says why PyMongo cannot run.
    pub(crate) fn find() -> Result<Self, String> {
        let interpreter = match std::env::var_os(PYTHON_ENV) {
            Some(p) => PathBuf::from(p),
            None => repo_root().join("target/pymongo-venv/bin/python"),
        };
        if !interpreter.exists() {
            return Err(format!(
                "no PyMongo environment at {} (run scripts/install-pymongo.sh or set {PYTHON_ENV})",
                interpreter.display()
            ));
        }
        let output = Command::new(&interpreter)
            .args([
                "-c",
                "import bson, pymongo, sys; print(pymongo.version, sys.version.split()[0], bson.has_c() and pymongo.has_c())",
            ])
            .output()
            .map_err(|e| format!("{}: {e}", interpreter.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} cannot import pymongo: {}",
                interpreter.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let mut words = text.split_whitespace();
        let pymongo = words.next().unwrap_or("?").to_owned();
        let python = words.next().unwrap_or("?").to_owned();
        let c_extensions = words.next() == Some("True");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/habench_peer.py");
        Ok(Self { interpreter, script, pymongo, python, c_extensions })
    }

    /// Runs `habench_peer.py ARGS`.
    pub(crate) fn spawn(&self, args: &[String]) -> Result<Child, String> {
        let mut all = vec![self.script.display().to_string()];
        all.extend_from_slice(args);
        Child::spawn(&self.interpreter, &all)
    }
}

/// A running child with its stdout read line by line in the background.
#[derive(Debug)]
pub(crate) struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    what: String,
}

/// How long any one line may take to come.
pub(crate) const LINE_TIMEOUT: Duration = Duration::from_secs(120);

impl Child {
    /// Starts `program ARGS` with piped stdin/stdout/stderr.
    pub(crate) fn spawn(program: &Path, args: &[String]) -> Result<Self, String> {
        let what = format!("{} {}", program.display(), args.join(" "));
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{what}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().ok_or("no stderr")?;
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // Keep the tail only: a child may write a lot before failing.
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if s.len() > 16 * 1024 {
                    let cut = s.len() - 8 * 1024;
                    let cut = (cut..s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
                    s.drain(..cut);
                }
            }
        });
        let stdin = child.stdin.take();
        Ok(Self { child, stdin, lines, stderr, what })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn failure(&self, why: &str) -> String {
        let stderr = self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        format!("{}: {why}; stderr: {}", self.what, stderr.trim())
    }

    /// The next line of output (within `timeout`).
    pub(crate) fn line(&self, timeout: Duration) -> Result<String, String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self.failure("no output in time")),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.failure("exited")),
        }
    }

    /// Waits for the line `marker` (any other line is an error).
    pub(crate) fn expect(&self, marker: &str) -> Result<(), String> {
        let line = self.line(LINE_TIMEOUT)?;
        if line.trim() == marker {
            Ok(())
        } else {
            Err(self.failure(&format!("expected {marker:?}, got {line:?}")))
        }
    }

    /// The next line, parsed as JSON.
    pub(crate) fn json(&self) -> Result<Value, String> {
        let line = self.line(LINE_TIMEOUT)?;
        serde_json::from_str(&line).map_err(|e| self.failure(&format!("{e} in {line:?}")))
    }

    /// Sends a line to the child.
    pub(crate) fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).map_err(|e| e.to_string())
    }

    /// Closes the child's stdin (it then finishes) and waits for it to exit (killed after
    /// 30 s); `Err` if it failed.
    pub(crate) fn finish(mut self) -> Result<(), String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(self.failure(&format!("exited with {status}"))),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(self.failure("did not exit within 30 s of its stdin closing"));
                }
                Err(e) => return Err(self.failure(&e.to_string())),
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A child left behind by an error path: end it.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
