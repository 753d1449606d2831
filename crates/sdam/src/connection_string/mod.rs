//! Connection strings: `mongodb://` and `mongodb+srv://` (connection-string-spec.md,
//! uri-options.md, initial-dns-seedlist-discovery.md).
//!
//! [`ConnectionString::parse`] turns the text into hosts, credentials, the auth database and
//! typed [`Options`], rejecting what the specs call errors and collecting what they call
//! warnings. For `mongodb+srv`, the [`srv`] module provides the DNS names to look up and turns
//! the answers into the seed list; the lookups themselves are the caller's I/O.
//!
//! ```
//! use sdam::connection_string::ConnectionString;
//!
//! let cs = ConnectionString::parse("mongodb://u:p%40ss@a:27018,b/admin?replicaSet=rs&w=majority").unwrap();
//! assert_eq!(cs.hosts().len(), 2);
//! assert_eq!(cs.password(), Some("p@ss"));
//! assert_eq!(cs.options().replica_set.as_deref(), Some("rs"));
//! ```

mod error;
mod options;
mod percent;
pub mod srv;

use std::fmt;
use std::str::FromStr;

pub use error::{ConnectionStringError, Warning};
pub use options::{AuthMechanism, Compressor, Options, Secret, ServerMonitoringMode, WriteConcernW};

use crate::address::{AddressError, ServerAddress, DEFAULT_PORT};
use options::{OptionParser, Source};

/// The longest connection string accepted, in bytes. Real ones are well under 4 KiB; the cap
/// bounds the work hostile input can cause.
pub const MAX_LENGTH: usize = 64 * 1024;

/// The most hosts a connection string (or an SRV answer) may name.
pub const MAX_HOSTS: usize = 1000;

/// The longest DNS name, in bytes (RFC 1035).
const MAX_DNS_NAME_LEN: usize = 253;

const SCHEME: &str = "mongodb://";
const SRV_SCHEME: &str = "mongodb+srv://";

/// A parsed, validated connection string.
///
/// For `mongodb://` the seed list is [`hosts`](Self::hosts). For `mongodb+srv://` it is
/// empty until the DNS answers are applied with [`resolve_srv`](Self::resolve_srv), which
/// returns a connection string whose `hosts` is the seed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    srv_host: Option<String>,
    hosts: Vec<ServerAddress>,
    username: Option<String>,
    password: Option<Secret>,
    database: Option<String>,
    options: Options,
    warnings: Vec<Warning>,
}

impl ConnectionString {
    /// Parses and validates a connection string.
    ///
    /// Errors are the cases the specs say MUST be rejected; invalid option values and
    /// unknown options are ignored and reported by [`warnings`](Self::warnings).
    pub fn parse(s: &str) -> Result<Self, ConnectionStringError> {
        if s.len() > MAX_LENGTH {
            return Err(ConnectionStringError::TooLong { len: s.len() });
        }
        // connection-string-spec.md, "Scheme"; initial-dns-seedlist-discovery.md adds
        // mongodb+srv. Schemes are case-insensitive (RFC 3986 section 3.1).
        let (srv, rest) = if let Some(rest) = strip_prefix_ignore_case(s, SRV_SCHEME) {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(s, SCHEME) {
            (false, rest)
        } else {
            let found = match s.find("://") {
                Some(i) => &s[..i + 3],
                None => truncate(s, 20),
            };
            return Err(ConnectionStringError::InvalidScheme { found: found.to_owned() });
        };

        // connection-string-spec.md, "Host Information": it ends at the first "/" (the slash
        // is optional when there is no auth database), or at "?", or at the end. Userinfo may
        // contain neither character unescaped.
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (host_info, after) = rest.split_at(end);
        let (db_part, options_part) = match after.strip_prefix('/') {
            Some(path) => match path.split_once('?') {
                Some((db, opts)) => (db, Some(opts)),
                None => (path, None),
            },
            None => ("", after.strip_prefix('?')),
        };

        // "Reference Implementation", step 3: the userinfo ends at the last "@".
        let (userinfo, hosts_text) = match host_info.rfind('@') {
            Some(i) => (Some(&host_info[..i]), &host_info[i + 1..]),
            None => (None, host_info),
        };
        if userinfo.is_none() && db_part.contains('/') && db_part.contains('@') {
            // Something like "alice/@host/db": userinfo with an unescaped slash.
            return Err(ConnectionStringError::UserinfoNotEncoded {
                problem: "contains an unescaped '/'".into(),
            });
        }
        let (username, password) = match userinfo {
            Some(ui) => {
                let (u, p) = parse_userinfo(ui)?;
                (Some(u), p)
            }
            None => (None, None),
        };

        if hosts_text.is_empty() {
            // connection-string-spec.md, "Host": a socket path with unescaped slashes.
            let path = db_part.trim_end_matches('/');
            if path.contains(".sock") {
                return Err(ConnectionStringError::UnescapedSocketPath { path: format!("/{path}") });
            }
            return Err(ConnectionStringError::MissingHost);
        }
        let (hosts, srv_host) = if srv {
            (Vec::new(), Some(parse_srv_host(hosts_text)?))
        } else {
            (parse_hosts(hosts_text)?, None)
        };

        // connection-string-spec.md, "Auth Database": percent-decoded, then checked for the
        // characters database names may not contain (periods are allowed, for namespaces).
        let database = if db_part.is_empty() {
            None
        } else {
            let name = decode(db_part, "auth database")?;
            if let Some(character) = name.chars().find(|c| matches!(c, '/' | '\\' | ' ' | '"' | '$')) {
                return Err(ConnectionStringError::InvalidDatabaseName { name, character });
            }
            Some(name)
        };

        let mut parser = OptionParser::new(Source::Uri);
        if let Some(opts) = options_part {
            parse_options(opts, &mut parser)?;
        }
        parser.check_conflicts()?;

        // initial-dns-seedlist-discovery.md, "URI Validation": srvServiceName and srvMaxHosts
        // are errors without mongodb+srv.
        if !srv {
            for canonical in ["srvServiceName", "srvMaxHosts"] {
                if let Some(option) = parser.written(canonical) {
                    return Err(ConnectionStringError::SrvOptionWithoutSrv { option: option.to_owned() });
                }
            }
        }
        // uri-options.md, "directConnection URI option with multiple seeds or SRV URI".
        if srv && parser.options.direct_connection == Some(true) {
            return Err(ConnectionStringError::OptionConflictsWithHosts {
                option: "directConnection=true".into(),
                problem: "cannot be used with mongodb+srv, which may resolve to several hosts".into(),
            });
        }
        check_topology_options(&parser.options, (!srv).then_some(hosts.len()))?;

        let OptionParser { mut options, warnings, .. } = parser;
        // initial-dns-seedlist-discovery.md, "Validation Before Querying DNS": mongodb+srv
        // implies TLS unless the connection string turns it off.
        if srv && options.tls.is_none() {
            options.tls = Some(true);
        }
        Ok(Self { srv_host, hosts, username, password, database, options, warnings })
    }

    /// Whether the scheme is `mongodb+srv`.
    pub fn is_srv(&self) -> bool {
        self.srv_host.is_some()
    }

    /// The host name of a `mongodb+srv` connection string (lower-cased, without a trailing
    /// dot); `None` for `mongodb://`.
    pub fn srv_host(&self) -> Option<&str> {
        self.srv_host.as_deref()
    }

    /// The seed list: the hosts of a `mongodb://` connection string in the order given, or
    /// the SRV hosts once [`resolve_srv`](Self::resolve_srv) has run (empty before).
    pub fn hosts(&self) -> &[ServerAddress] {
        &self.hosts
    }

    /// The percent-decoded username, if the connection string has user information.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The percent-decoded password (`Some("")` for `user:@host`, `None` for `user@host`).
    pub fn password(&self) -> Option<&str> {
        self.password.as_ref().map(Secret::expose)
    }

    /// The percent-decoded auth database (the path after the hosts), if any. Its presence
    /// alone does not request authentication (connection-string-spec.md, "Auth Database").
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// The typed options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// What was ignored while parsing (and while applying a TXT record), for WARN logs.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Whether connections use TLS: `tls`/`ssl` if given, else on for `mongodb+srv` and off
    /// for `mongodb://` (uri-options.md, "tls").
    pub fn tls_enabled(&self) -> bool {
        self.options.tls.unwrap_or(false)
    }
}

impl FromStr for ConnectionString {
    type Err = ConnectionStringError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ConnectionString {
    /// A summary without credentials: scheme, hosts (or SRV host) and auth database.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.srv_host {
            Some(h) if self.hosts.is_empty() => write!(f, "{SRV_SCHEME}{h}")?,
            _ => {
                f.write_str(if self.is_srv() { SRV_SCHEME } else { SCHEME })?;
                for (i, h) in self.hosts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{h}")?;
                }
            }
        }
        f.write_str("/")?;
        if let Some(db) = &self.database {
            f.write_str(db)?;
        }
        Ok(())
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// At most `n` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn decode(text: &str, component: &'static str) -> Result<String, ConnectionStringError> {
    percent::decode(text).map_err(|e| ConnectionStringError::InvalidPercentEncoding {
        component,
        text: text.to_owned(),
        problem: e.to_string(),
    })
}

/// connection-string-spec.md, "Userinfo": an "@", a second ":" or a bad "%" is an error;
/// other characters RFC 3986 requires to be encoded are rejected too. Printable non-ASCII
/// characters are tolerated. Never echoes the text (it holds the password).
fn parse_userinfo(ui: &str) -> Result<(String, Option<Secret>), ConnectionStringError> {
    let not_encoded = |problem: String| Err(ConnectionStringError::UserinfoNotEncoded { problem });
    if ui.contains('@') {
        return not_encoded("contains an unescaped '@'".into());
    }
    if ui.matches(':').count() > 1 {
        return not_encoded("contains more than one unescaped ':'".into());
    }
    if percent::check(ui).is_err() {
        return not_encoded("contains a '%' that does not start a %XX escape".into());
    }
    if let Some(c) =
        ui.chars().find(|c| c.is_control() || c.is_whitespace() || "/?#[]\"<>\\^`{|}".contains(*c))
    {
        return not_encoded(format!("contains {c:?}, which must be percent-encoded"));
    }
    let (user, pass) = match ui.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (ui, None),
    };
    let user = decode(user, "username")?;
    if user.is_empty() {
        return Err(ConnectionStringError::EmptyUsername);
    }
    let pass = match pass {
        Some(p) => Some(Secret::new(percent::decode(p).map_err(|e| {
            ConnectionStringError::InvalidPercentEncoding {
                component: "password",
                text: "<redacted>".into(),
                problem: e.to_string(),
            }
        })?)),
        None => None,
    };
    Ok((user, pass))
}

/// connection-string-spec.md, "Host Information": comma-separated host identifiers, each
/// percent-decoded (so that socket paths can be written `%2Ftmp%2Fmongodb.sock`).
fn parse_hosts(text: &str) -> Result<Vec<ServerAddress>, ConnectionStringError> {
    let count = text.bytes().filter(|&b| b == b',').count() + 1;
    if count > MAX_HOSTS {
        return Err(ConnectionStringError::TooManyHosts { count });
    }
    text.split(',')
        .map(|raw| {
            let decoded = decode(raw, "host")?;
            let invalid = |reason| ConnectionStringError::InvalidHost { host: raw.to_owned(), reason };
            // Decoding can produce control characters (`%00`), which no host or path contains.
            if decoded.chars().any(char::is_control) {
                return Err(invalid(AddressError::InvalidHost(decoded)));
            }
            ServerAddress::parse(&decoded).map_err(invalid)
        })
        .collect()
}

/// initial-dns-seedlist-discovery.md, "Validation Before Querying DNS": exactly one host
/// name, without a port. Returns it lower-cased, without a trailing dot.
fn parse_srv_host(text: &str) -> Result<String, ConnectionStringError> {
    if text.contains(',') {
        return Err(ConnectionStringError::SrvMultipleHosts { hosts: text.to_owned() });
    }
    let host = decode(text, "host")?;
    let invalid = || ConnectionStringError::InvalidSrvHost { host: text.to_owned() };
    if host.starts_with('[') || host.contains('/') {
        return Err(invalid());
    }
    if host.contains(':') {
        return Err(ConnectionStringError::SrvWithPort { host: text.to_owned() });
    }
    let name = host.strip_suffix('.').unwrap_or(&host);
    // "Connection String Format" (2024-09-24): one or two labels are allowed, but no label
    // may be empty.
    if name.is_empty() || name.len() > MAX_DNS_NAME_LEN || name.split('.').any(str::is_empty) {
        return Err(invalid());
    }
    // Reuse the address rules for the characters a host may contain.
    let address = ServerAddress::tcp(name, DEFAULT_PORT)
        .map_err(|reason| ConnectionStringError::InvalidHost { host: text.to_owned(), reason })?;
    Ok(address.host().to_owned())
}

/// connection-string-spec.md, "Connection Options": `&`-separated `key=value` pairs, keys
/// and values percent-decoded. A pair without `=` is an error; empty pairs are skipped.
fn parse_options(text: &str, parser: &mut OptionParser) -> Result<(), ConnectionStringError> {
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let Some((raw_key, raw_value)) = pair.split_once('=') else {
            return Err(ConnectionStringError::OptionWithoutValue { pair: pair.to_owned() });
        };
        let key = decode(raw_key, "option name")?;
        let value = if key.to_ascii_lowercase().contains("password") {
            percent::decode(raw_value).map_err(|e| ConnectionStringError::InvalidPercentEncoding {
                component: "option value",
                text: "<redacted>".into(),
                problem: e.to_string(),
            })?
        } else {
            decode(raw_value, "option value")?
        };
        parser.apply(&key, &value)?;
    }
    Ok(())
}

/// The checks between options and the hosts; `host_count` is `None` for `mongodb+srv` before
/// DNS resolution. Run again after a TXT record is merged
/// (initial-dns-seedlist-discovery.md, "URI Validation").
pub(crate) fn check_topology_options(
    o: &Options,
    host_count: Option<usize>,
) -> Result<(), ConnectionStringError> {
    let conflict = |first: &str, second: String| {
        Err(ConnectionStringError::ConflictingOptions { first: first.to_owned(), second })
    };
    // uri-options.md, "directConnection URI option with multiple seeds or SRV URI".
    if o.direct_connection == Some(true) {
        if let Some(n) = host_count.filter(|&n| n > 1) {
            return Err(ConnectionStringError::OptionConflictsWithHosts {
                option: "directConnection=true".into(),
                problem: format!("requires exactly one host, found {n}"),
            });
        }
    }
    // load-balancers.md, "URI Validation": loadBalanced=true requires one host, and
    // excludes replicaSet and directConnection=true.
    if o.load_balanced == Some(true) {
        if let Some(n) = host_count.filter(|&n| n > 1) {
            return Err(ConnectionStringError::OptionConflictsWithHosts {
                option: "loadBalanced=true".into(),
                problem: format!("requires exactly one host, found {n}"),
            });
        }
        if let Some(rs) = &o.replica_set {
            return conflict("loadBalanced=true", format!("replicaSet={rs}"));
        }
        if o.direct_connection == Some(true) {
            return conflict("loadBalanced=true", "directConnection=true".into());
        }
    }
    // initial-dns-seedlist-discovery.md, "URI Validation": a positive srvMaxHosts excludes
    // replicaSet and loadBalanced=true.
    if let Some(max) = o.srv_max_hosts.filter(|&m| m > 0) {
        let first = format!("srvMaxHosts={max}");
        if let Some(rs) = &o.replica_set {
            return conflict(&first, format!("replicaSet={rs}"));
        }
        if o.load_balanced == Some(true) {
            return conflict(&first, "loadBalanced=true".into());
        }
    }
    Ok(())
}

/// Parses the options of a TXT record (initial-dns-seedlist-discovery.md, "Default Connection
/// String Options"): a misformatted record or a forbidden option is an error.
pub(crate) fn parse_txt_options(text: &str) -> Result<OptionParser, ConnectionStringError> {
    let mut parser = OptionParser::new(Source::Txt);
    parse_options(text, &mut parser).map_err(|reason| ConnectionStringError::InvalidTxtRecord {
        text: text.to_owned(),
        reason: Box::new(reason),
    })?;
    Ok(parser)
}

impl ConnectionString {
    /// A copy with the seed list, merged options and extra warnings of an SRV resolution.
    pub(crate) fn with_resolution(
        &self,
        hosts: Vec<ServerAddress>,
        options: Options,
        warnings: Vec<Warning>,
    ) -> Self {
        let mut all = self.warnings.clone();
        all.extend(warnings);
        Self { hosts, options, warnings: all, ..self.clone() }
    }
}

#[cfg(test)]
mod tests;
