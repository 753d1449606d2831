//! The hello commands monitors send (handshake.md, server-monitoring.md).
//!
//! The core builds every command; adapters only frame and send the bytes.

use std::time::Duration;

use bson::{doc, Document, RawDocumentBuf};

use crate::server_description::TopologyVersion;

/// The most bytes the `client` metadata document may take, BSON overhead included
/// (handshake.md, "Limitations").
pub const MAX_METADATA_BYTES: usize = 512;

/// The most bytes an application name may take (handshake.md, "Limitations").
pub const MAX_APP_NAME_BYTES: usize = 128;

/// A Function-as-a-Service environment (handshake.md, "client.env"). When one is flagged,
/// `serverMonitoringMode=auto` means polling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FaasEnv {
    /// `aws.lambda`, `azure.func`, `gcp.func` or `vercel`.
    pub name: String,
    /// `timeout_sec`.
    pub timeout_sec: Option<i32>,
    /// `memory_mb`.
    pub memory_mb: Option<i32>,
    /// `region`.
    pub region: Option<String>,
}

impl FaasEnv {
    /// An environment with just a name.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
}

/// The `client` document of the handshake (handshake.md, "Hello Command").
///
/// The OS type and architecture default to the ones this crate was compiled for (constants,
/// not runtime probes: the core does no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientMetadata {
    /// `application.name` (`appName`), at most 128 bytes.
    pub app_name: Option<String>,
    /// `driver.name`.
    pub driver_name: String,
    /// `driver.version`.
    pub driver_version: String,
    /// `os.type`.
    pub os_type: String,
    /// `os.name`.
    pub os_name: Option<String>,
    /// `os.architecture`.
    pub os_architecture: Option<String>,
    /// `os.version`.
    pub os_version: Option<String>,
    /// `platform`: the language runtime and anything else worth logging.
    pub platform: Option<String>,
    /// `env`: the FaaS environment, if any.
    pub env: Option<FaasEnv>,
}

impl Default for ClientMetadata {
    fn default() -> Self {
        Self {
            app_name: None,
            driver_name: "sdam".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            os_type: os_type().into(),
            os_name: None,
            os_architecture: Some(std::env::consts::ARCH.into()),
            os_version: None,
            platform: Some("Rust".into()),
            env: None,
        }
    }
}

fn os_type() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" | "ios" => "Darwin",
        "windows" => "Windows",
        "" => "unknown",
        other => other,
    }
}

impl ClientMetadata {
    /// The `client` document, shrunk to at most 512 bytes in the spec's order: drop `env`
    /// fields but `name`, drop `os` fields but `type`, drop `env`, truncate `platform`.
    pub fn to_document(&self) -> Document {
        let mut env = self.env.clone();
        let mut os_full = true;
        let mut platform = self.platform.clone();
        for step in 0..=4 {
            let d = self.build(env.as_ref(), os_full, platform.as_deref());
            let size = bson_len(&d);
            if size <= MAX_METADATA_BYTES {
                return d;
            }
            match step {
                0 => {
                    if let Some(e) = env.as_mut() {
                        *e = FaasEnv::named(e.name.clone());
                    }
                }
                1 => os_full = false,
                2 => env = None,
                3 => {
                    if let Some(p) = platform.as_mut() {
                        let excess = size - MAX_METADATA_BYTES;
                        let mut keep = p.len().saturating_sub(excess);
                        while !p.is_char_boundary(keep) {
                            keep -= 1;
                        }
                        p.truncate(keep);
                    }
                }
                _ => {}
            }
        }
        // Only an overlong driver name or version could still be too big: keep the required fields.
        doc! { "driver": { "name": truncate(&self.driver_name, 64), "version": truncate(&self.driver_version, 64) }, "os": { "type": truncate(&self.os_type, 32) } }
    }

    fn build(&self, env: Option<&FaasEnv>, os_full: bool, platform: Option<&str>) -> Document {
        let mut d = Document::new();
        if let Some(name) = &self.app_name {
            d.insert("application", doc! { "name": truncate(name, MAX_APP_NAME_BYTES) });
        }
        d.insert("driver", doc! { "name": &self.driver_name, "version": &self.driver_version });
        let mut os = doc! { "type": &self.os_type };
        if os_full {
            for (k, v) in [
                ("name", &self.os_name),
                ("architecture", &self.os_architecture),
                ("version", &self.os_version),
            ] {
                if let Some(v) = v {
                    os.insert(k, v);
                }
            }
        }
        d.insert("os", os);
        if let Some(p) = platform {
            d.insert("platform", p);
        }
        if let Some(e) = env {
            let mut ed = doc! { "name": &e.name };
            if let Some(t) = e.timeout_sec {
                ed.insert("timeout_sec", t);
            }
            if let Some(m) = e.memory_mb {
                ed.insert("memory_mb", m);
            }
            if let Some(r) = &e.region {
                ed.insert("region", r);
            }
            d.insert("env", ed);
        }
        d
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn bson_len(d: &Document) -> usize {
    RawDocumentBuf::try_from(d).map_or(usize::MAX, |r| r.as_bytes().len())
}

fn to_raw(d: &Document) -> RawDocumentBuf {
    // A document of strings, integers and subdocuments always converts.
    RawDocumentBuf::try_from(d).unwrap_or_default()
}

/// The first command on a new monitoring connection (handshake.md, "Connection handshake"):
/// legacy hello with `helloOk: true`, or `hello` in load-balanced mode, with the client
/// metadata, the compressors offered and `backpressure: "2"`. Never authenticates.
pub fn handshake_command(metadata: &Document, compressors: &[String], load_balanced: bool) -> RawDocumentBuf {
    let mut d = if load_balanced {
        doc! { "hello": 1, "loadBalanced": true }
    } else {
        doc! { "isMaster": 1 }
    };
    d.insert("helloOk", true);
    d.insert("client", metadata.clone());
    if !compressors.is_empty() {
        d.insert("compression", compressors.to_vec());
    }
    d.insert("backpressure", "2");
    d.insert("$db", "admin");
    to_raw(&d)
}

/// A monitoring check after the handshake: `hello` if the server said `helloOk`, else legacy
/// hello; awaitable (topologyVersion + maxAwaitTimeMS) when streaming (server-monitoring.md,
/// "Streaming hello or legacy hello").
pub fn check_command(use_hello: bool, awaitable: Option<(TopologyVersion, Duration)>) -> RawDocumentBuf {
    let mut d = if use_hello {
        doc! { "hello": 1 }
    } else {
        doc! { "isMaster": 1 }
    };
    d.insert("helloOk", true);
    if let Some((tv, max_await)) = awaitable {
        d.insert("topologyVersion", doc! { "processId": tv.process_id, "counter": tv.counter });
        d.insert("maxAwaitTimeMS", i64::try_from(max_await.as_millis()).unwrap_or(i64::MAX));
    }
    d.insert("$db", "admin");
    to_raw(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_fits_in_512_bytes_in_the_spec_order() {
        let mut m = ClientMetadata { app_name: Some("app".into()), ..ClientMetadata::default() };
        m.os_name = Some("n".repeat(100));
        m.env = Some(FaasEnv { region: Some("r".repeat(100)), ..FaasEnv::named("aws.lambda") });
        m.platform = Some("p".repeat(600));
        let d = m.to_document();
        assert!(bson_len(&d) <= MAX_METADATA_BYTES, "{}", bson_len(&d));
        assert_eq!(d.get_document("os").unwrap().len(), 1, "os reduced to its type");
        assert!(d.get_document("env").is_err(), "env dropped");
        assert!(d.get_str("platform").unwrap().starts_with("ppp"));
        assert_eq!(d.get_document("application").unwrap().get_str("name").unwrap(), "app");

        let small = ClientMetadata::default().to_document();
        assert_eq!(small.get_document("driver").unwrap().get_str("name").unwrap(), "sdam");
        assert!(small.get_document("os").unwrap().get_str("type").is_ok());
    }

    #[test]
    fn commands() {
        let meta = ClientMetadata::default().to_document();
        let h = handshake_command(&meta, &["zstd".into()], false);
        assert_eq!(h.get_i32("isMaster").unwrap(), 1);
        assert!(h.get_bool("helloOk").unwrap());
        assert_eq!(h.get_str("backpressure").unwrap(), "2");
        let lb = handshake_command(&meta, &[], true);
        assert!(lb.get_bool("loadBalanced").unwrap());
        let tv = TopologyVersion { process_id: bson::oid::ObjectId::from_bytes([1; 12]), counter: 4 };
        let c = check_command(true, Some((tv, Duration::from_secs(10))));
        assert_eq!(c.get_i32("hello").unwrap(), 1);
        assert_eq!(c.get_i64("maxAwaitTimeMS").unwrap(), 10_000);
        assert!(c.get_document("client").is_err(), "no metadata after the handshake");
    }
}
