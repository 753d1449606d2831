//! The hello commands monitors send (handshake.md, server-monitoring.md).
//!
//! The core builds every command; adapters only frame and send the bytes.

use std::fmt;
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

    /// The FaaS environment the variables `lookup` returns describe (handshake.md,
    /// "client.env", "FaaS"), or `None`. `lookup(name)` returns the value of the environment
    /// variable `name`, if set; the core never reads the process environment itself (an
    /// adapter passes `|name| std::env::var(name).ok()`, a test a map).
    ///
    /// The rules: `aws.lambda` when `AWS_EXECUTION_ENV` starts with `AWS_Lambda_` or
    /// `AWS_LAMBDA_RUNTIME_API` is populated, `azure.func` for `FUNCTIONS_WORKER_RUNTIME`,
    /// `gcp.func` for `K_SERVICE` or `FUNCTION_NAME`, `vercel` for `VERCEL` (a variable
    /// counts when set and not empty). Vercel takes precedence over AWS; any other
    /// combination of providers is no FaaS at all. Then, by provider, `region`
    /// (`AWS_REGION`, `FUNCTION_REGION`, `VERCEL_REGION`), `memory_mb`
    /// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `FUNCTION_MEMORY_MB`) and `timeout_sec`
    /// (`FUNCTION_TIMEOUT_SEC`); a missing value, or one that is not an int32, omits its field
    /// and is never an error.
    pub fn detect(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let populated = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let aws = populated("AWS_EXECUTION_ENV").is_some_and(|v| v.starts_with("AWS_Lambda_"))
            || populated("AWS_LAMBDA_RUNTIME_API").is_some();
        let azure = populated("FUNCTIONS_WORKER_RUNTIME").is_some();
        let gcp = populated("K_SERVICE").is_some() || populated("FUNCTION_NAME").is_some();
        let vercel = populated("VERCEL").is_some();
        let name = match (aws, azure, gcp, vercel) {
            (true, false, false, false) => "aws.lambda",
            (false, true, false, false) => "azure.func",
            (false, false, true, false) => "gcp.func",
            // "vercel takes precedence over aws.lambda".
            (_, false, false, true) => "vercel",
            // None, or "any other combination MUST cause the other FaaS values to be entirely
            // omitted".
            _ => return None,
        };
        let int32 = |var: &str| populated(var).and_then(|v| v.trim().parse::<i32>().ok());
        let mut env = Self::named(name);
        match name {
            "aws.lambda" => {
                env.region = populated("AWS_REGION");
                env.memory_mb = int32("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
            }
            "gcp.func" => {
                env.memory_mb = int32("FUNCTION_MEMORY_MB");
                env.timeout_sec = int32("FUNCTION_TIMEOUT_SEC");
                env.region = populated("FUNCTION_REGION");
            }
            "vercel" => env.region = populated("VERCEL_REGION"),
            _ => {}
        }
        Some(env)
    }
}

/// The container runtime the client runs in (handshake.md, "client.env", "Container").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ContainerEnv {
    /// `runtime`: `"docker"` when `/.dockerenv` exists.
    pub runtime: Option<String>,
    /// `orchestrator`: `"kubernetes"` when `KUBERNETES_SERVICE_HOST` is populated.
    pub orchestrator: Option<String>,
}

impl ContainerEnv {
    /// The container information, or `None` if no field would be set. `lookup` reads an
    /// environment variable (as for [`FaasEnv::detect`]); `dockerenv_exists` is whether the
    /// file `/.dockerenv` exists (the adapter checks; the core does no I/O).
    pub fn detect(lookup: impl Fn(&str) -> Option<String>, dockerenv_exists: bool) -> Option<Self> {
        let env = Self {
            runtime: dockerenv_exists.then(|| "docker".to_owned()),
            orchestrator: lookup("KUBERNETES_SERVICE_HOST")
                .filter(|v| !v.is_empty())
                .map(|_| "kubernetes".to_owned()),
        };
        (env != Self::default()).then_some(env)
    }
}

/// What a library that wraps the driver appends to the handshake metadata (handshake.md,
/// "Supporting Wrapping Libraries", `DriverInfoOptions`). An empty string is the same as
/// unset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DriverInfo {
    /// The wrapping library's name, appended to `driver.name`.
    pub name: String,
    /// Its version, appended to `driver.version`.
    pub version: Option<String>,
    /// Its platform, appended to `platform`.
    pub platform: Option<String>,
}

impl DriverInfo {
    /// A library's name, version and platform.
    pub fn new(name: impl Into<String>, version: Option<&str>, platform: Option<&str>) -> Self {
        Self { name: name.into(), version: version.map(str::to_owned), platform: platform.map(str::to_owned) }
    }

    /// The fields as the handshake sees them: empty strings are unset.
    fn normalized(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        fn set(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        (set(&self.name), self.version.as_deref().and_then(set), self.platform.as_deref().and_then(set))
    }
}

/// The delimiter appended driver information is joined with (handshake.md, "Appending
/// metadata").
pub const METADATA_DELIMITER: char = '|';

/// The most [`DriverInfo`]s one client's metadata accepts (each distinct one is appended
/// once; the 512-byte limit truncates what is sent anyway).
pub const MAX_DRIVER_INFOS: usize = 16;

/// Why driver information could not be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// A field contains the delimiter `|` ("Drivers MUST throw an error if any of these
    /// strings contains that character").
    ContainsDelimiter {
        /// The field: `name`, `version` or `platform`.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// More than [`MAX_DRIVER_INFOS`] distinct driver infos.
    TooMany,
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ContainsDelimiter { field, value } => {
                write!(
                    f,
                    "driver info {field} {value:?} contains the metadata delimiter {METADATA_DELIMITER:?}"
                )
            }
            Self::TooMany => write!(f, "at most {MAX_DRIVER_INFOS} driver infos can be appended"),
        }
    }
}

impl std::error::Error for MetadataError {}

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
    /// `env`: the FaaS environment, if any ([`FaasEnv::detect`]). With
    /// `serverMonitoringMode=auto`, a FaaS environment means polling.
    pub env: Option<FaasEnv>,
    /// `env.container`: the container runtime, if any ([`ContainerEnv::detect`]).
    pub container: Option<ContainerEnv>,
    /// The driver infos appended so far ([`ClientMetadata::append`]), each once.
    appended: Vec<DriverInfo>,
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
            container: None,
            appended: Vec::new(),
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
    /// Fills [`env`](Self::env) and [`container`](Self::container) from the environment:
    /// [`FaasEnv::detect`] and [`ContainerEnv::detect`] with the same `lookup`.
    pub fn detect_environment(&mut self, lookup: impl Fn(&str) -> Option<String>, dockerenv_exists: bool) {
        self.env = FaasEnv::detect(&lookup);
        self.container = ContainerEnv::detect(&lookup, dockerenv_exists);
    }

    /// appendMetadata (handshake.md, "Appending metadata"): appends a wrapping library's
    /// name to `driver.name`, its version to `driver.version` and its platform to `platform`,
    /// each after a `|`, never replacing what is there; an unset (or empty) field appends
    /// nothing. Driver info equal to one appended before (empty strings counting as unset)
    /// changes nothing: returns `Ok(false)`. Fails, changing nothing, if a field contains `|`
    /// or more than [`MAX_DRIVER_INFOS`] would be appended.
    pub fn append(&mut self, info: DriverInfo) -> Result<bool, MetadataError> {
        let (name, version, platform) = info.normalized();
        for (field, value) in [("name", name), ("version", version), ("platform", platform)] {
            if let Some(v) = value.filter(|v| v.contains(METADATA_DELIMITER)) {
                return Err(MetadataError::ContainsDelimiter { field, value: v.to_owned() });
            }
        }
        if self.appended.iter().any(|a| a.normalized() == (name, version, platform)) {
            return Ok(false);
        }
        if self.appended.len() >= MAX_DRIVER_INFOS {
            return Err(MetadataError::TooMany);
        }
        let join = |field: &mut String, value: &str| {
            field.push(METADATA_DELIMITER);
            field.push_str(value);
        };
        if let Some(n) = name {
            join(&mut self.driver_name, n);
        }
        if let Some(v) = version {
            join(&mut self.driver_version, v);
        }
        if let Some(p) = platform {
            match &mut self.platform {
                Some(existing) => join(existing, p),
                None => self.platform = Some(p.to_owned()),
            }
        }
        self.appended.push(info);
        Ok(true)
    }

    /// The `client` document, shrunk to at most 512 bytes in the spec's order: drop `env`
    /// fields but `name`, drop `os` fields but `type`, drop `env`, truncate `platform`.
    pub fn to_document(&self) -> Document {
        let mut env = self.env.clone();
        let mut container = self.container.as_ref();
        let mut with_env = true;
        let mut os_full = true;
        let mut platform = self.platform.clone();
        for step in 0..=4 {
            let d = self.build(with_env.then_some((env.as_ref(), container)), os_full, platform.as_deref());
            let size = bson_len(&d);
            if size <= MAX_METADATA_BYTES {
                return d;
            }
            match step {
                // 1. "Omit fields from env except env.name" (the container too).
                0 => {
                    if let Some(e) = env.as_mut() {
                        *e = FaasEnv::named(e.name.clone());
                    }
                    container = None;
                }
                // 2. "Omit fields from os except os.type".
                1 => os_full = false,
                // 3. "Omit the env document entirely".
                2 => with_env = false,
                // 4. "Truncate platform".
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

    /// `env`: `None` to leave the `env` document out, else the FaaS and container parts.
    fn build(
        &self,
        env: Option<(Option<&FaasEnv>, Option<&ContainerEnv>)>,
        os_full: bool,
        platform: Option<&str>,
    ) -> Document {
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
        let Some((faas, container)) = env else { return d };
        let mut ed = Document::new();
        if let Some(e) = faas {
            ed.insert("name", &e.name);
            if let Some(t) = e.timeout_sec {
                ed.insert("timeout_sec", t);
            }
            if let Some(m) = e.memory_mb {
                ed.insert("memory_mb", m);
            }
            if let Some(r) = &e.region {
                ed.insert("region", r);
            }
        }
        if let Some(c) = container {
            let mut cd = Document::new();
            if let Some(r) = &c.runtime {
                cd.insert("runtime", r);
            }
            if let Some(o) = &c.orchestrator {
                cd.insert("orchestrator", o);
            }
            if !cd.is_empty() {
                ed.insert("container", cd);
            }
        }
        // "If no fields of client.env would be populated, client.env MUST be entirely omitted."
        if !ed.is_empty() {
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
