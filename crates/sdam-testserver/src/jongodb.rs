//! Launching [jongodb](https://github.com/midagedev/jongodb), a MongoDB-compatible server
//! shipped as a native binary in an npm package, for the adapters' interop tests.
//!
//! `scripts/install-jongodb.sh` installs it under the repository's `target/jongodb`. The tests
//! find the binary through `SDAM_JONGODB_BIN`, else at that install path; without it they
//! print [`SKIP_MESSAGE`] and pass, so the workspace's tests run without it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What an interop test prints when the binary is absent.
pub const SKIP_MESSAGE: &str = "skipped: jongodb not installed, run scripts/install-jongodb.sh";

/// Set (as `.ci/run` does) to make the interop scenario fail instead of skipping when the
/// binary is absent.
pub const REQUIRE_ENV: &str = "SDAM_REQUIRE_JONGODB";

/// The environment variable naming the binary.
pub const BIN_ENV: &str = "SDAM_JONGODB_BIN";

/// Where `scripts/install-jongodb.sh` puts the binary, relative to the repository root.
pub const INSTALL_PATH: &str =
    "target/jongodb/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb";

/// How long a launch may take before it is given up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// jongodb's `--topology-profile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// The default profile: a standalone server.
    Standalone,
    /// `single_node_replicaset` with this replica set name: a one-member replica set.
    SingleNodeReplicaSet(String),
}

/// The jongodb binary: `SDAM_JONGODB_BIN` if set (it must exist), else the install path if
/// the install script ran; `None` when neither exists.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(INSTALL_PATH);
    path.is_file().then_some(path)
}

/// A running jongodb process; killed when dropped.
#[derive(Debug)]
pub struct Jongodb {
    child: Child,
    uri: String,
    port: u16,
}

impl Jongodb {
    /// Starts `binary` on 127.0.0.1 (`port` 0: an ephemeral one) with `profile` and waits for it
    /// to print its `JONGODB_URI=` line.
    pub fn start(binary: &std::path::Path, profile: &Profile, port: u16) -> Result<Self, String> {
        let mut command = Command::new(binary);
        command.arg("--host=127.0.0.1").arg(format!("--port={port}"));
        if let Profile::SingleNodeReplicaSet(name) = profile {
            command
                .arg("--topology-profile=single_node_replicaset")
                .arg(format!("--replica-set-name={name}"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", binary.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err("jongodb's stdout was not captured".into());
        };
        // A thread keeps reading stdout (so the server never blocks on a full pipe) and hands
        // over the URI line.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(uri) = line.trim().strip_prefix("JONGODB_URI=") {
                    let _ = tx.send(uri.to_owned());
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let uri = loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("jongodb exited before printing its URI: {status}"));
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(uri) => break uri,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("jongodb printed no JONGODB_URI line within {START_TIMEOUT:?}"));
                }
            }
        };
        let port = uri_port(&uri).ok_or_else(|| format!("no port in jongodb's URI {uri}"))?;
        Ok(Self { child, uri, port })
    }

    /// Like [`start`](Self::start) on a fixed port, retrying for up to `limit` while the port
    /// is still held by the previous process.
    pub fn restart_on(
        binary: &std::path::Path,
        profile: &Profile,
        port: u16,
        limit: Duration,
    ) -> Result<Self, String> {
        let deadline = Instant::now() + limit;
        loop {
            match Self::start(binary, profile, port) {
                Ok(server) => return Ok(server),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The connection string it printed.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the process and waits for it to exit.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Jongodb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The port of the first host of a `mongodb://host:port/...` URI.
fn uri_port(uri: &str) -> Option<u16> {
    let rest = uri.strip_prefix("mongodb://")?;
    let hosts = rest.split(['/', '?']).next()?;
    let first = hosts.split(',').next()?;
    first.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::uri_port;

    #[test]
    fn port_of_printed_uris() {
        assert_eq!(uri_port("mongodb://127.0.0.1:38961/test?replicaSet=rs0"), Some(38961));
        assert_eq!(uri_port("mongodb://127.0.0.1:27017"), Some(27017));
        assert_eq!(uri_port("mongodb://127.0.0.1/test"), None);
        assert_eq!(uri_port("http://x:1"), None);
    }
}
