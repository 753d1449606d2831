//! The typed connection string options (uri-options.md, "List of specified options") and the
//! parser for one `key=value` pair.

use std::fmt;
use std::time::Duration;

use super::error::{ConnectionStringError, Warning};
use crate::read_preference::{ReadPreferenceMode, TagSet};

/// A secret string (a password). Its `Debug` output is redacted so that logging a parsed
/// connection string does not leak it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

pub use crate::monitor::ServerMonitoringMode;

/// A wire protocol compressor (OP_COMPRESSED.md, "Compressors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compressor {
    /// Snappy.
    Snappy,
    /// zlib, at the level given by `zlibCompressionLevel`.
    Zlib,
    /// Zstandard.
    Zstd,
}

impl Compressor {
    /// The compressor's name in `compressors`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snappy => "snappy",
            Self::Zlib => "zlib",
            Self::Zstd => "zstd",
        }
    }

    /// Parses a compressor name, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Snappy, Self::Zlib, Self::Zstd].into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authentication mechanism (auth.md, "Supported Authentication Methods").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// `SCRAM-SHA-1`.
    ScramSha1,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `MONGODB-X509`.
    MongoDbX509,
    /// `GSSAPI` (Kerberos).
    Gssapi,
    /// `PLAIN` (LDAP).
    Plain,
    /// `MONGODB-AWS`.
    MongoDbAws,
    /// `MONGODB-OIDC`.
    MongoDbOidc,
}

impl AuthMechanism {
    /// The mechanism's name, as written in `authMechanism`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::MongoDbX509 => "MONGODB-X509",
            Self::Gssapi => "GSSAPI",
            Self::Plain => "PLAIN",
            Self::MongoDbAws => "MONGODB-AWS",
            Self::MongoDbOidc => "MONGODB-OIDC",
        }
    }

    /// Parses a mechanism name, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::ScramSha1,
            Self::ScramSha256,
            Self::MongoDbX509,
            Self::Gssapi,
            Self::Plain,
            Self::MongoDbAws,
            Self::MongoDbOidc,
        ]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The write concern's `w` (uri-options.md, "w": a non-negative integer or a string).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WriteConcernW {
    /// Acknowledged by this many members (0: unacknowledged).
    Nodes(u32),
    /// `majority`.
    Majority,
    /// A custom write concern name (a tag set name defined in the replica set config).
    Custom(String),
}

impl fmt::Display for WriteConcernW {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nodes(n) => write!(f, "{n}"),
            Self::Majority => f.write_str("majority"),
            Self::Custom(s) => f.write_str(s),
        }
    }
}

/// Every option of uri-options.md, typed. `None` (or an empty list) means the option was not
/// given (or was given with an invalid value, which is ignored with a [`Warning`]); the
/// defaults are the consuming spec's, not this struct's.
///
/// Options that take milliseconds are stored as [`Duration`]s; where the spec says 0 means
/// "no timeout", a zero `Duration` keeps that meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    // --- Topology (SDAM) ---
    /// `replicaSet`: the replica set name; its presence makes the initial topology type
    /// ReplicaSetNoPrimary (server-discovery-and-monitoring.md, "Initial TopologyType").
    pub replica_set: Option<String>,
    /// `directConnection`: `true` connects to the one seed as a Single topology; `false`
    /// forbids Single (server-discovery-and-monitoring.md, "Initial TopologyType").
    pub direct_connection: Option<bool>,
    /// `loadBalanced`: the seed is a load balancer (load-balancers.md).
    pub load_balanced: Option<bool>,
    /// `heartbeatFrequencyMS` (at least 500 ms): the interval between server checks.
    pub heartbeat_frequency: Option<Duration>,
    /// `serverMonitoringMode`: streaming or polling monitors.
    pub server_monitoring_mode: Option<ServerMonitoringMode>,
    /// `srvMaxHosts` (`mongodb+srv` only): at most this many SRV hosts are used; 0 means no limit.
    pub srv_max_hosts: Option<u32>,
    /// `srvServiceName` (`mongodb+srv` only): the SRV service name, `mongodb` by default.
    pub srv_service_name: Option<String>,

    // --- Server selection ---
    /// `localThresholdMS`: the latency window's width.
    pub local_threshold: Option<Duration>,
    /// `serverSelectionTimeoutMS` (positive): how long server selection may block.
    pub server_selection_timeout: Option<Duration>,
    /// `serverSelectionTryOnce` (single-threaded drivers): fail after one failed scan.
    pub server_selection_try_once: Option<bool>,
    /// `readPreference`: the read preference mode.
    pub read_preference: Option<ReadPreferenceMode>,
    /// `readPreferenceTags`, one [`TagSet`] per occurrence, in order; an empty value is the
    /// empty tag set `{}`. Empty when not given.
    pub read_preference_tags: Vec<TagSet>,
    /// `maxStalenessSeconds`: a positive staleness bound. `-1` ("no maximum") is stored as
    /// `None`. Values below 90 s are kept: server selection rejects them against the topology
    /// (server-selection.md, "maxStalenessSeconds").
    pub max_staleness: Option<Duration>,

    // --- Timeouts ---
    /// `connectTimeoutMS`: TCP connect timeout; zero means no timeout.
    pub connect_timeout: Option<Duration>,
    /// `socketTimeoutMS`: socket read/write timeout; zero means no timeout.
    pub socket_timeout: Option<Duration>,
    /// `timeoutMS`: client-side operation timeout; zero means no timeout.
    pub timeout: Option<Duration>,

    // --- Connection pool ---
    /// `maxPoolSize`: connections per server; 0 means no maximum.
    pub max_pool_size: Option<u32>,
    /// `minPoolSize`: connections kept open per server.
    pub min_pool_size: Option<u32>,
    /// `maxConnecting` (positive): connections being established at once per pool.
    pub max_connecting: Option<u32>,
    /// `maxIdleTimeMS`: idle connections are closed after this long; zero means never.
    pub max_idle_time: Option<Duration>,
    /// `waitQueueTimeoutMS` (positive, deprecated): how long a checkout may wait.
    pub wait_queue_timeout: Option<Duration>,

    // --- Read and write concern, retries ---
    /// `w`: the default write concern's `w`.
    pub w: Option<WriteConcernW>,
    /// `wTimeoutMS` (deprecated): the default write concern's `wtimeout`; zero means none.
    pub w_timeout: Option<Duration>,
    /// `journal`: the default write concern's `j`.
    pub journal: Option<bool>,
    /// `readConcernLevel`: the default read concern level (any string, passed through).
    pub read_concern_level: Option<String>,
    /// `retryReads`.
    pub retry_reads: Option<bool>,
    /// `retryWrites`.
    pub retry_writes: Option<bool>,
    /// `maxAdaptiveRetries`: overload retries (client backpressure).
    pub max_adaptive_retries: Option<u32>,
    /// `enableOverloadRetargeting` (client backpressure).
    pub enable_overload_retargeting: Option<bool>,

    // --- Authentication ---
    /// `authMechanism`.
    pub auth_mechanism: Option<AuthMechanism>,
    /// `authMechanismProperties`: `key:value` pairs in the order given (a value may contain `:`).
    pub auth_mechanism_properties: Option<Vec<(String, String)>>,
    /// `authSource`: the database to authenticate against.
    pub auth_source: Option<String>,

    // --- Handshake, compression ---
    /// `appName` (at most 128 bytes): sent in the handshake's client metadata.
    pub app_name: Option<String>,
    /// `compressors`: the compressors to offer, in preference order (unknown names dropped).
    pub compressors: Option<Vec<Compressor>>,
    /// `zlibCompressionLevel`: -1 (default) to 9.
    pub zlib_compression_level: Option<i8>,

    // --- TLS ---
    /// `tls` / `ssl`: whether to use TLS. Set to `true` when the scheme is `mongodb+srv` and
    /// neither is given (initial-dns-seedlist-discovery.md, "Validation Before Querying DNS").
    pub tls: Option<bool>,
    /// `tlsInsecure`: relax every TLS check.
    pub tls_insecure: Option<bool>,
    /// `tlsAllowInvalidCertificates`.
    pub tls_allow_invalid_certificates: Option<bool>,
    /// `tlsAllowInvalidHostnames`.
    pub tls_allow_invalid_hostnames: Option<bool>,
    /// `tlsCAFile`: path to the trusted certificate authorities.
    pub tls_ca_file: Option<String>,
    /// `tlsCertificateKeyFile`: path to the client certificate and key.
    pub tls_certificate_key_file: Option<String>,
    /// `tlsCertificateKeyFilePassword`: the client key's password.
    pub tls_certificate_key_file_password: Option<Secret>,
    /// `tlsDisableOCSPEndpointCheck`.
    pub tls_disable_ocsp_endpoint_check: Option<bool>,
    /// `tlsDisableCertificateRevocationCheck`.
    pub tls_disable_certificate_revocation_check: Option<bool>,

    // --- SOCKS5 proxy ---
    /// `proxyHost`: the SOCKS5 proxy's host.
    pub proxy_host: Option<String>,
    /// `proxyPort`: the SOCKS5 proxy's port (1080 by default).
    pub proxy_port: Option<u16>,
    /// `proxyUsername`.
    pub proxy_username: Option<String>,
    /// `proxyPassword`.
    pub proxy_password: Option<Secret>,
}

/// The TLS options that relax a check; any two of the pairs listed in [`TLS_CONFLICTS`]
/// conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsRelax {
    Insecure,
    AllowInvalidCertificates,
    AllowInvalidHostnames,
    DisableOcsp,
    DisableRevocation,
}

/// uri-options.md, "Conflicting TLS options", rules 1 to 7: these pairs may not both appear,
/// whatever their values.
const TLS_CONFLICTS: [(TlsRelax, TlsRelax); 7] = [
    (TlsRelax::Insecure, TlsRelax::AllowInvalidCertificates),
    (TlsRelax::Insecure, TlsRelax::AllowInvalidHostnames),
    (TlsRelax::Insecure, TlsRelax::DisableOcsp),
    (TlsRelax::Insecure, TlsRelax::DisableRevocation),
    (TlsRelax::AllowInvalidCertificates, TlsRelax::DisableOcsp),
    (TlsRelax::AllowInvalidCertificates, TlsRelax::DisableRevocation),
    (TlsRelax::DisableOcsp, TlsRelax::DisableRevocation),
];

/// Where an options string comes from: the connection string, or a TXT record (which may
/// only set three options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Uri,
    Txt,
}

/// Parses `key=value` pairs one at a time into [`Options`], collecting warnings and the
/// facts the cross-option checks need.
#[derive(Debug)]
pub(crate) struct OptionParser {
    pub(crate) options: Options,
    pub(crate) warnings: Vec<Warning>,
    source: Source,
    /// Lower-cased keys seen so far, to detect repeats.
    seen: Vec<String>,
    /// Every valid `tls` / `ssl` value, with the key as written.
    tls_values: Vec<(String, bool)>,
    /// Every TLS-relaxing option present (valid value or not), with the key as written.
    tls_relax: Vec<(TlsRelax, String)>,
    /// Keys as written, for error messages, of options whose presence matters.
    pub(crate) written: Vec<(&'static str, String)>,
}

fn parse_int(value: &str) -> Option<i64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn parse_bool(value: &str) -> Option<bool> {
    // connection-string-spec.md, "Values": "true" and "false". The legacy spellings ("1",
    // "yes", "t", ...) are optional and deprecated; this crate does not accept them.
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Splits `k1:v1,k2:v2` (connection-string-spec.md, "Key value pairs": the key ends at the
/// first colon, the value may contain more). `None` if a pair has no colon or an empty key.
fn parse_pairs(value: &str) -> Option<Vec<(String, String)>> {
    if value.is_empty() {
        return Some(Vec::new());
    }
    value
        .split(',')
        .map(|pair| match pair.split_once(':') {
            Some((k, v)) if !k.is_empty() => Some((k.to_owned(), v.to_owned())),
            _ => None,
        })
        .collect()
}

/// Whether `name` is a valid SRV service name: RFC 6335 section 5.1 (letters, digits and
/// non-adjacent inner hyphens, at least one letter), except that it may be up to 62
/// characters long (initial-dns-seedlist-discovery.md, "srvServiceName").
pub(crate) fn valid_srv_service_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 62
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b.iter().any(u8::is_ascii_alphabetic)
        && b.first() != Some(&b'-')
        && b.last() != Some(&b'-')
        && !name.contains("--")
}

/// The longest `appName` accepted, in bytes (mongodb-handshake/handshake.md, "Limitations").
const MAX_APP_NAME_LEN: usize = 128;

/// The longest SOCKS5 username or password, in bytes (RFC 1929).
const MAX_PROXY_CREDENTIAL_LEN: usize = 255;

impl OptionParser {
    pub(crate) fn new(source: Source) -> Self {
        Self {
            options: Options::default(),
            warnings: Vec::new(),
            source,
            seen: Vec::new(),
            tls_values: Vec::new(),
            tls_relax: Vec::new(),
            written: Vec::new(),
        }
    }

    /// The key as written for the option `canonical`, if it was given.
    pub(crate) fn written(&self, canonical: &str) -> Option<&str> {
        self.written.iter().rev().find(|(c, _)| *c == canonical).map(|(_, w)| w.as_str())
    }

    fn invalid(&mut self, key: &str, value: &str, expected: &'static str) {
        self.warnings.push(Warning::InvalidValue {
            option: key.to_owned(),
            value: value.to_owned(),
            expected,
        });
    }

    fn int(&mut self, key: &str, value: &str, min: i64, max: i64, expected: &'static str) -> Option<i64> {
        match parse_int(value) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.invalid(key, value, expected);
                None
            }
        }
    }

    fn millis(
        &mut self,
        key: &str,
        value: &str,
        min: i64,
        max: i64,
        expected: &'static str,
    ) -> Option<Duration> {
        self.int(key, value, min, max, expected).map(|n| Duration::from_millis(n.unsigned_abs()))
    }

    fn u32(&mut self, key: &str, value: &str, min: i64, expected: &'static str) -> Option<u32> {
        // uri-options.md: "All integer options are 32-bit unless specified otherwise".
        self.int(key, value, min, i64::from(i32::MAX), expected).and_then(|n| u32::try_from(n).ok())
    }

    fn boolean(&mut self, key: &str, value: &str) -> Option<bool> {
        let b = parse_bool(value);
        if b.is_none() {
            self.invalid(key, value, "\"true\" or \"false\"");
        }
        b
    }

    fn string(&mut self, key: &str, value: &str) -> Option<String> {
        if value.is_empty() {
            self.invalid(key, value, "a non-empty string");
            return None;
        }
        Some(value.to_owned())
    }

    /// Applies one decoded `key=value` pair. `key` is as written (percent-decoded).
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> Result<(), ConnectionStringError> {
        // connection-string-spec.md, "Keys": keys are compared after lower-casing A-Z only.
        let lower = key.to_ascii_lowercase();

        // initial-dns-seedlist-discovery.md, "Default Connection String Options": a TXT record
        // may only set authSource, replicaSet and loadBalanced; anything else is an error.
        if self.source == Source::Txt
            && !matches!(lower.as_str(), "authsource" | "replicaset" | "loadbalanced")
        {
            return Err(ConnectionStringError::TxtOptionNotAllowed { option: key.to_owned() });
        }

        let repeated = self.seen.contains(&lower);
        if !repeated {
            self.seen.push(lower.clone());
        }
        let list_valued = lower == "readpreferencetags";
        let proxy = matches!(lower.as_str(), "proxyhost" | "proxyport" | "proxyusername" | "proxypassword");
        if repeated && proxy {
            // The SOCKS5 options may not be repeated (socks5.md; uri-options proxy tests).
            return Err(ConnectionStringError::RepeatedOption { option: key.to_owned() });
        }

        let known = self.apply_known(&lower, key, value)?;
        if !known {
            // connection-string-spec.md, "Keys": unsupported keys are ignored with a warning.
            self.warnings.push(Warning::UnsupportedOption { option: key.to_owned() });
        } else if repeated && !list_valued {
            // connection-string-spec.md, "Repeated Keys": undefined precedence; warn. The
            // last valid value wins.
            self.warnings.push(Warning::RepeatedOption { option: key.to_owned() });
        }
        Ok(())
    }

    /// Applies a known option; returns `false` if `lower` names no option.
    fn apply_known(&mut self, lower: &str, key: &str, value: &str) -> Result<bool, ConnectionStringError> {
        const NON_NEG: &str = "a non-negative integer";
        const POSITIVE: &str = "a positive integer";
        const MAX32: i64 = i32::MAX as i64;
        let canonical = match lower {
            "appname" => {
                // handshake.md, "Limitations": the application name is at most 128 bytes.
                if value.len() > MAX_APP_NAME_LEN {
                    self.invalid(key, value, "a name of at most 128 bytes");
                } else if let Some(v) = self.string(key, value) {
                    self.options.app_name = Some(v);
                }
                "appName"
            }
            "authmechanism" => {
                match AuthMechanism::parse(value) {
                    Some(m) => self.options.auth_mechanism = Some(m),
                    None => self.invalid(
                        key,
                        value,
                        "one of SCRAM-SHA-1, SCRAM-SHA-256, MONGODB-X509, GSSAPI, PLAIN, MONGODB-AWS, MONGODB-OIDC",
                    ),
                }
                "authMechanism"
            }
            "authmechanismproperties" => {
                match parse_pairs(value) {
                    Some(p) => self.options.auth_mechanism_properties = Some(p),
                    None => {
                        self.invalid(key, value, "comma-separated key:value pairs (values without commas)");
                    }
                }
                "authMechanismProperties"
            }
            "authsource" => {
                if let Some(v) = self.string(key, value) {
                    self.options.auth_source = Some(v);
                }
                "authSource"
            }
            "compressors" => {
                let mut list = Vec::new();
                for name in value.split(',').filter(|n| !n.is_empty()) {
                    match Compressor::parse(name) {
                        Some(c) if !list.contains(&c) => list.push(c),
                        Some(_) => {}
                        None => self.warnings.push(Warning::UnsupportedCompressor { name: name.to_owned() }),
                    }
                }
                self.options.compressors = Some(list);
                "compressors"
            }
            "connecttimeoutms" => {
                if let Some(d) = self.millis(key, value, 0, MAX32, NON_NEG) {
                    self.options.connect_timeout = Some(d);
                }
                "connectTimeoutMS"
            }
            "directconnection" => {
                if let Some(b) = self.boolean(key, value) {
                    self.options.direct_connection = Some(b);
                }
                "directConnection"
            }
            "enableoverloadretargeting" => {
                if let Some(b) = self.boolean(key, value) {
                    self.options.enable_overload_retargeting = Some(b);
                }
                "enableOverloadRetargeting"
            }
            "heartbeatfrequencyms" => {
                // server-discovery-and-monitoring.md, "heartbeatFrequencyMS": at least
                // minHeartbeatFrequencyMS (500 ms).
                if let Some(d) = self.millis(key, value, 500, MAX32, "an integer of at least 500") {
                    self.options.heartbeat_frequency = Some(d);
                }
                "heartbeatFrequencyMS"
            }
            "journal" => {
                if let Some(b) = self.boolean(key, value) {
                    self.options.journal = Some(b);
                }
                "journal"
            }
            "loadbalanced" => {
                if let Some(b) = self.boolean(key, value) {
                    self.options.load_balanced = Some(b);
                }
                "loadBalanced"
            }
            "localthresholdms" => {
                if let Some(d) = self.millis(key, value, 0, MAX32, NON_NEG) {
                    self.options.local_threshold = Some(d);
                }
                "localThresholdMS"
            }
            "maxadaptiveretries" => {
                if let Some(n) = self.u32(key, value, 0, NON_NEG) {
                    self.options.max_adaptive_retries = Some(n);
                }
                "maxAdaptiveRetries"
            }
            "maxconnecting" => {
                if let Some(n) = self.u32(key, value, 1, POSITIVE) {
                    self.options.max_connecting = Some(n);
                }
                "maxConnecting"
            }
            "maxidletimems" => {
                if let Some(d) = self.millis(key, value, 0, MAX32, NON_NEG) {
                    self.options.max_idle_time = Some(d);
                }
                "maxIdleTimeMS"
            }
            "maxpoolsize" => {
                if let Some(n) = self.u32(key, value, 0, NON_NEG) {
                    self.options.max_pool_size = Some(n);
                }
                "maxPoolSize"
            }
            "maxstalenessseconds" => {
                // max-staleness.md, "API": -1 means no maximum; otherwise a positive number.
                match parse_int(value) {
                    Some(-1) => self.options.max_staleness = None,
                    Some(n) if (1..=MAX32).contains(&n) => {
                        self.options.max_staleness = Some(Duration::from_secs(n.unsigned_abs()));
                    }
                    _ => self.invalid(key, value, "-1 or a positive integer"),
                }
                "maxStalenessSeconds"
            }
            "minpoolsize" => {
                if let Some(n) = self.u32(key, value, 0, NON_NEG) {
                    self.options.min_pool_size = Some(n);
                }
                "minPoolSize"
            }
            "proxyhost" => {
                if let Some(v) = self.string(key, value) {
                    self.options.proxy_host = Some(v);
                }
                "proxyHost"
            }
            "proxyport" => {
                if let Some(n) = self.int(key, value, 1, 65535, "a port from 1 to 65535") {
                    self.options.proxy_port = u16::try_from(n).ok();
                }
                "proxyPort"
            }
            "proxyusername" | "proxypassword" => {
                // RFC 1929: the SOCKS5 username and password are 1 to 255 bytes.
                if value.is_empty() || value.len() > MAX_PROXY_CREDENTIAL_LEN {
                    return Err(ConnectionStringError::InvalidOptionValue {
                        option: key.to_owned(),
                        value: if lower == "proxypassword" { "<redacted>".into() } else { value.into() },
                        expected: "1 to 255 bytes",
                    });
                }
                if lower == "proxyusername" {
                    self.options.proxy_username = Some(value.to_owned());
                    "proxyUsername"
                } else {
                    self.options.proxy_password = Some(Secret::new(value));
                    "proxyPassword"
                }
            }
            "readconcernlevel" => {
                if let Some(v) = self.string(key, value) {
                    self.options.read_concern_level = Some(v);
                }
                "readConcernLevel"
            }
            "readpreference" => {
                match ReadPreferenceMode::parse(value) {
                    Some(m) => self.options.read_preference = Some(m),
                    None => self.invalid(
                        key,
                        value,
                        "primary, primaryPreferred, secondary, secondaryPreferred or nearest",
                    ),
                }
                "readPreference"
            }
            "readpreferencetags" => {
                // uri-options.md, "readPreferenceTags": repeatable, each occurrence one tag set,
                // in order; the empty value is the empty tag set.
                match parse_pairs(value) {
                    Some(tags) => self.options.read_preference_tags.push(TagSet(tags)),
                    None => self.invalid(key, value, "comma-separated key:value pairs"),
                }
                "readPreferenceTags"
            }
            "replicaset" => {
                if let Some(v) = self.string(key, value) {
                    self.options.replica_set = Some(v);
                }
                "replicaSet"
            }
            "retryreads" => {
                if let Some(b) = self.boolean(key, value) {
                    self.options.retry_reads = Some(b);
                }
                "retryReads"
            }
            "retrywrites" => {
                if let Some(b) = self.boolean(key, value) {
                    self.options.retry_writes = Some(b);
                }
                "retryWrites"
            }
            "servermonitoringmode" => {
                match ServerMonitoringMode::parse(value) {
                    Some(m) => self.options.server_monitoring_mode = Some(m),
                    None => self.invalid(key, value, "\"stream\", \"poll\" or \"auto\""),
                }
                "serverMonitoringMode"
            }
            "serverselectiontimeoutms" => {
                // server-selection.md, "serverSelectionTimeoutMS": positive (this crate gives 0
                // no special meaning, so it is rejected).
                if let Some(d) = self.millis(key, value, 1, MAX32, POSITIVE) {
                    self.options.server_selection_timeout = Some(d);
                }
                "serverSelectionTimeoutMS"
            }
            "serverselectiontryonce" => {
                if let Some(b) = self.boolean(key, value) {
                    self.options.server_selection_try_once = Some(b);
                }
                "serverSelectionTryOnce"
            }
            "sockettimeoutms" => {
                if let Some(d) = self.millis(key, value, 0, MAX32, NON_NEG) {
                    self.options.socket_timeout = Some(d);
                }
                "socketTimeoutMS"
            }
            "srvmaxhosts" => {
                if let Some(n) = self.u32(key, value, 0, NON_NEG) {
                    self.options.srv_max_hosts = Some(n);
                }
                "srvMaxHosts"
            }
            "srvservicename" => {
                if valid_srv_service_name(value) {
                    self.options.srv_service_name = Some(value.to_owned());
                } else {
                    self.invalid(key, value, "an RFC 6335 service name of at most 62 characters");
                }
                "srvServiceName"
            }
            "ssl" | "tls" => {
                if let Some(b) = self.boolean(key, value) {
                    self.tls_values.push((key.to_owned(), b));
                    self.options.tls = Some(b);
                }
                "tls"
            }
            "timeoutms" => {
                if let Some(d) = self.millis(key, value, 0, MAX32, NON_NEG) {
                    self.options.timeout = Some(d);
                }
                "timeoutMS"
            }
            "tlsallowinvalidcertificates" => {
                self.tls_relax.push((TlsRelax::AllowInvalidCertificates, key.to_owned()));
                if let Some(b) = self.boolean(key, value) {
                    self.options.tls_allow_invalid_certificates = Some(b);
                }
                "tlsAllowInvalidCertificates"
            }
            "tlsallowinvalidhostnames" => {
                self.tls_relax.push((TlsRelax::AllowInvalidHostnames, key.to_owned()));
                if let Some(b) = self.boolean(key, value) {
                    self.options.tls_allow_invalid_hostnames = Some(b);
                }
                "tlsAllowInvalidHostnames"
            }
            "tlscafile" => {
                if let Some(v) = self.string(key, value) {
                    self.options.tls_ca_file = Some(v);
                }
                "tlsCAFile"
            }
            "tlscertificatekeyfile" => {
                if let Some(v) = self.string(key, value) {
                    self.options.tls_certificate_key_file = Some(v);
                }
                "tlsCertificateKeyFile"
            }
            "tlscertificatekeyfilepassword" => {
                if value.is_empty() {
                    self.invalid(key, value, "a non-empty string");
                } else {
                    self.options.tls_certificate_key_file_password = Some(Secret::new(value));
                }
                "tlsCertificateKeyFilePassword"
            }
            "tlsdisablecertificaterevocationcheck" => {
                self.tls_relax.push((TlsRelax::DisableRevocation, key.to_owned()));
                if let Some(b) = self.boolean(key, value) {
                    self.options.tls_disable_certificate_revocation_check = Some(b);
                }
                "tlsDisableCertificateRevocationCheck"
            }
            "tlsdisableocspendpointcheck" => {
                self.tls_relax.push((TlsRelax::DisableOcsp, key.to_owned()));
                if let Some(b) = self.boolean(key, value) {
                    self.options.tls_disable_ocsp_endpoint_check = Some(b);
                }
                "tlsDisableOCSPEndpointCheck"
            }
            "tlsinsecure" => {
                self.tls_relax.push((TlsRelax::Insecure, key.to_owned()));
                if let Some(b) = self.boolean(key, value) {
                    self.options.tls_insecure = Some(b);
                }
                "tlsInsecure"
            }
            "w" => {
                // uri-options.md, "w": a non-negative integer or a string.
                if value.is_empty() {
                    self.invalid(key, value, "a non-negative integer or a write concern name");
                } else if let Some(n) = parse_int(value) {
                    match u32::try_from(n) {
                        Ok(n) if n <= i32::MAX as u32 => self.options.w = Some(WriteConcernW::Nodes(n)),
                        _ => self.invalid(key, value, "a non-negative integer or a write concern name"),
                    }
                } else if value == "majority" {
                    self.options.w = Some(WriteConcernW::Majority);
                } else {
                    self.options.w = Some(WriteConcernW::Custom(value.to_owned()));
                }
                "w"
            }
            "waitqueuetimeoutms" => {
                if let Some(d) = self.millis(key, value, 1, MAX32, POSITIVE) {
                    self.options.wait_queue_timeout = Some(d);
                }
                "waitQueueTimeoutMS"
            }
            "wtimeoutms" => {
                // uri-options.md, "wTimeoutMS": a non-negative 64-bit integer.
                if let Some(d) = self.millis(key, value, 0, i64::MAX, NON_NEG) {
                    self.options.w_timeout = Some(d);
                }
                "wTimeoutMS"
            }
            "zlibcompressionlevel" => {
                if let Some(n) = self.int(key, value, -1, 9, "an integer from -1 to 9") {
                    self.options.zlib_compression_level = i8::try_from(n).ok();
                }
                "zlibCompressionLevel"
            }
            _ => return Ok(false),
        };
        self.written.push((canonical, key.to_owned()));
        Ok(true)
    }

    /// The checks between options alone (no hosts involved).
    pub(crate) fn check_conflicts(&self) -> Result<(), ConnectionStringError> {
        // uri-options.md, "Conflicting TLS options", rule 8: every tls and ssl value agrees.
        if let Some((first_key, first)) = self.tls_values.first() {
            if let Some((key, value)) = self.tls_values.iter().find(|(_, v)| v != first) {
                return Err(ConnectionStringError::ConflictingOptions {
                    first: format!("{first_key}={first}"),
                    second: format!("{key}={value}"),
                });
            }
        }
        // Rules 1 to 7: pairs of TLS-relaxing options that may not appear together.
        for (a, b) in TLS_CONFLICTS {
            let find = |r: TlsRelax| self.tls_relax.iter().find(|(x, _)| *x == r).map(|(_, k)| k.clone());
            if let (Some(first), Some(second)) = (find(a), find(b)) {
                return Err(ConnectionStringError::ConflictingOptions { first, second });
            }
        }
        // socks5.md, "MongoClient Configuration": proxyPort, proxyUsername and proxyPassword
        // require proxyHost; a username requires a password and vice versa.
        let o = &self.options;
        if o.proxy_host.is_none() {
            for canonical in ["proxyPort", "proxyUsername", "proxyPassword"] {
                if let Some(option) = self.written(canonical) {
                    return Err(ConnectionStringError::MissingRequiredOption {
                        option: option.to_owned(),
                        requires: "proxyHost",
                    });
                }
            }
        }
        match (self.written("proxyUsername"), self.written("proxyPassword")) {
            (Some(u), None) => {
                return Err(ConnectionStringError::MissingRequiredOption {
                    option: u.to_owned(),
                    requires: "proxyPassword",
                })
            }
            (None, Some(p)) => {
                return Err(ConnectionStringError::MissingRequiredOption {
                    option: p.to_owned(),
                    requires: "proxyUsername",
                })
            }
            _ => {}
        }
        // read-write-concern.md: an unacknowledged write concern cannot ask for journaling.
        if o.w == Some(WriteConcernW::Nodes(0)) && o.journal == Some(true) {
            return Err(ConnectionStringError::ConflictingOptions {
                first: format!("{}=0", self.written("w").unwrap_or("w")),
                second: format!("{}=true", self.written("journal").unwrap_or("journal")),
            });
        }
        // server-selection.md, "tag_sets" and "maxStalenessSeconds": mode primary (also the
        // default mode) allows neither non-empty tag sets nor a positive max staleness.
        let primary = matches!(o.read_preference, None | Some(ReadPreferenceMode::Primary));
        if primary {
            let mode = match self.written("readPreference") {
                Some(k) => format!("{k}=primary"),
                None => "readPreference=primary (the default)".to_owned(),
            };
            if o.read_preference_tags.iter().any(|t| !t.is_empty()) {
                return Err(ConnectionStringError::ConflictingOptions {
                    first: mode,
                    second: self.written("readPreferenceTags").unwrap_or("readPreferenceTags").to_owned(),
                });
            }
            if o.max_staleness.is_some() {
                return Err(ConnectionStringError::ConflictingOptions {
                    first: mode,
                    second: self.written("maxStalenessSeconds").unwrap_or("maxStalenessSeconds").to_owned(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<OptionParser, ConnectionStringError> {
        let mut p = OptionParser::new(Source::Uri);
        for (k, v) in pairs {
            p.apply(k, v)?;
        }
        p.check_conflicts()?;
        Ok(p)
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_int("12"), Some(12));
        assert_eq!(parse_int("-1"), Some(-1));
        for bad in ["", "+1", " 1", "1 ", "0x10", "1.5", "-", "99999999999999999999"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pairs_keep_colons_in_values() {
        assert_eq!(
            parse_pairs("TOKEN_RESOURCE:mongodb://foo,ENVIRONMENT:azure").unwrap(),
            vec![("TOKEN_RESOURCE".into(), "mongodb://foo".into()), ("ENVIRONMENT".into(), "azure".into())]
        );
        assert_eq!(parse_pairs("").unwrap(), vec![]);
        assert_eq!(parse_pairs("a:1,b"), None);
        assert_eq!(parse_pairs(":x"), None);
    }

    #[test]
    fn service_names() {
        for ok in ["mongodb", "customname", "a-b", "x1", &"a".repeat(62)] {
            assert!(valid_srv_service_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "123", "a_b", "a.b", &"a".repeat(63)] {
            assert!(!valid_srv_service_name(bad), "{bad}");
        }
    }

    #[test]
    fn repeated_keys_warn_and_last_wins() {
        let p = parse(&[("replicaSet", "a"), ("REPLICASET", "b")]).unwrap();
        assert_eq!(p.options.replica_set.as_deref(), Some("b"));
        assert_eq!(p.warnings, vec![Warning::RepeatedOption { option: "REPLICASET".into() }]);
        // Lists do not warn, and keep their order.
        let p = parse(&[
            ("readPreference", "nearest"),
            ("readPreferenceTags", "dc:ny,rack:1"),
            ("readpreferencetags", ""),
        ])
        .unwrap();
        assert!(p.warnings.is_empty());
        assert_eq!(
            p.options.read_preference_tags,
            vec![TagSet(vec![("dc".into(), "ny".into()), ("rack".into(), "1".into())]), TagSet(vec![])]
        );
        // Proxy options may not be repeated at all.
        assert!(matches!(
            parse(&[("proxyHost", "a"), ("proxyHost", "b")]),
            Err(ConnectionStringError::RepeatedOption { .. })
        ));
    }

    #[test]
    fn invalid_values_warn_and_are_ignored() {
        let p = parse(&[("heartbeatFrequencyMS", "499"), ("journal", ""), ("w", "-1")]).unwrap();
        assert_eq!(p.options.heartbeat_frequency, None);
        assert_eq!(p.options.journal, None);
        assert_eq!(p.options.w, None);
        assert_eq!(p.warnings.len(), 3);
        assert_eq!(
            p.warnings[0].to_string(),
            "unsupported value \"499\" for option 'heartbeatFrequencyMS' ignored: expected an integer of at least 500"
        );
        let p = parse(&[("compressors", "zstd,lz4,zlib,zstd")]).unwrap();
        assert_eq!(p.options.compressors, Some(vec![Compressor::Zstd, Compressor::Zlib]));
        assert_eq!(p.warnings, vec![Warning::UnsupportedCompressor { name: "lz4".into() }]);
    }

    #[test]
    fn tls_conflicts() {
        assert!(parse(&[("tls", "true"), ("ssl", "true"), ("tls", "true")]).is_ok());
        let err = parse(&[("tls", "true"), ("SSL", "false")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "conflicting options: 'tls=true' and 'SSL=false' may not be given together"
        );
        // Presence alone conflicts, even with invalid values.
        assert!(parse(&[("tlsInsecure", "bogus"), ("tlsAllowInvalidHostnames", "false")]).is_err());
        assert!(
            parse(&[("tlsAllowInvalidHostnames", "true"), ("tlsAllowInvalidCertificates", "true")]).is_ok()
        );
    }

    #[test]
    fn read_preference_rules() {
        assert!(parse(&[("readPreferenceTags", "dc:ny")]).is_err());
        assert!(parse(&[("readPreferenceTags", "")]).is_ok());
        assert!(parse(&[("maxStalenessSeconds", "120")]).is_err());
        assert!(parse(&[("maxStalenessSeconds", "-1")]).is_ok());
        let p = parse(&[("readPreference", "secondary"), ("maxStalenessSeconds", "30")]).unwrap();
        assert_eq!(p.options.max_staleness, Some(Duration::from_secs(30)));
    }

    #[test]
    fn write_concern() {
        let w = |v: &str| parse(&[("w", v)]).unwrap().options.w;
        assert_eq!(w("0"), Some(WriteConcernW::Nodes(0)));
        assert_eq!(w("majority"), Some(WriteConcernW::Majority));
        assert_eq!(w("dc1"), Some(WriteConcernW::Custom("dc1".into())));
        assert!(parse(&[("w", "0"), ("journal", "true")]).is_err());
    }

    #[test]
    fn txt_source_allows_three_options() {
        let mut p = OptionParser::new(Source::Txt);
        assert!(p.apply("REPLICASET", "rs").is_ok());
        assert!(p.apply("authSource", "db").is_ok());
        assert!(p.apply("loadBalanced", "false").is_ok());
        assert!(matches!(p.apply("ssl", "false"), Err(ConnectionStringError::TxtOptionNotAllowed { .. })));
    }

    #[test]
    fn secrets_are_redacted() {
        let p = parse(&[("tlsCertificateKeyFilePassword", "hunter2")]).unwrap();
        assert!(!format!("{:?}", p.options).contains("hunter2"));
        assert_eq!(p.options.tls_certificate_key_file_password.unwrap().expose(), "hunter2");
    }
}
