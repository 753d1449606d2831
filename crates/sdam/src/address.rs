//! Server addresses: parsing and normalization.
//!
//! SDAM compares addresses as strings after normalization (server-discovery-and-monitoring.md,
//! "Address"): host names are lower-cased, a missing port is 27017, IPv6 literals are written
//! in brackets, and a host that ends in `.sock` is a Unix domain socket path.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The port a MongoDB server listens on when none is given.
pub const DEFAULT_PORT: u16 = 27017;

/// The longest host or socket path accepted, in bytes. DNS names are at most 253 bytes and
/// Unix socket paths at most 108; anything longer is hostile or garbage.
pub const MAX_HOST_LEN: usize = 1024;

/// A normalized server address: a TCP host and port, or a Unix domain socket path.
///
/// Two addresses are equal when they name the same server after normalization, so
/// `"A:27017"`, `"a"` and `"a:27017"` are one address. Cloning is cheap (the host is shared).
#[derive(Clone, Eq)]
pub enum ServerAddress {
    /// A TCP endpoint. `host` is lower-cased; an IPv6 literal is stored without brackets.
    Tcp {
        /// Host name, IPv4 literal or IPv6 literal (without brackets), lower-cased.
        host: Arc<str>,
        /// TCP port, never 0.
        port: u16,
    },
    /// A Unix domain socket, named by its path (which ends in `.sock`).
    Unix {
        /// The socket's path, as given (case preserved).
        path: Arc<str>,
    },
}

/// Compares two strings as `str`'s `Ord` does (bytes, then length), in line: the hosts of
/// server addresses are short, and a call to `memcmp` costs more than comparing them here.
#[inline]
fn cmp_short(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() > 32 || b.len() > 32 {
        return a.cmp(b);
    }
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for ServerAddress {
    /// TCP addresses first, by host then port; then Unix sockets by path. The same host text
    /// (shared by clones) compares equal without reading it.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Self::Tcp { host: a, port: p }, Self::Tcp { host: b, port: q }) => {
                let hosts = if Arc::ptr_eq(a, b) { Ordering::Equal } else { cmp_short(a, b) };
                hosts.then(p.cmp(q))
            }
            (Self::Tcp { .. }, Self::Unix { .. }) => Ordering::Less,
            (Self::Unix { .. }, Self::Tcp { .. }) => Ordering::Greater,
            (Self::Unix { path: a }, Self::Unix { path: b }) => {
                if Arc::ptr_eq(a, b) {
                    Ordering::Equal
                } else {
                    a.cmp(b)
                }
            }
        }
    }
}

impl PartialEq for ServerAddress {
    /// The same variant with equal fields (what a derived `PartialEq` compares), shared host
    /// text first, short text in line.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Tcp { host: a, port: p }, Self::Tcp { host: b, port: q }) => {
                p == q && (Arc::ptr_eq(a, b) || cmp_short(a, b).is_eq())
            }
            (Self::Unix { path: a }, Self::Unix { path: b }) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        }
    }
}

impl std::hash::Hash for ServerAddress {
    /// The variant and its fields (consistent with `PartialEq`).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Tcp { host, port } => {
                host.hash(state);
                port.hash(state);
            }
            Self::Unix { path } => path.hash(state),
        }
    }
}

impl PartialOrd for ServerAddress {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a string is not a valid server address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// The host part is empty (`""`, `":27017"`).
    EmptyHost,
    /// The port is not a number from 1 to 65535.
    InvalidPort(String),
    /// An IPv6 literal is missing its closing bracket or is followed by garbage.
    InvalidIpv6(String),
    /// The host contains a character no host name, IP literal or socket path may contain.
    InvalidHost(String),
    /// The host or path is longer than [`MAX_HOST_LEN`] bytes.
    TooLong(usize),
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyHost => f.write_str("empty host in server address"),
            Self::InvalidPort(p) => write!(f, "invalid port {p:?}: expected a number from 1 to 65535"),
            Self::InvalidIpv6(s) => write!(f, "invalid IPv6 address {s:?}: expected [addr] or [addr]:port"),
            Self::InvalidHost(s) => write!(f, "invalid host {s:?}"),
            Self::TooLong(n) => write!(f, "server address is {n} bytes long (at most {MAX_HOST_LEN})"),
        }
    }
}

impl std::error::Error for AddressError {}

impl ServerAddress {
    /// A TCP address from a host and port; the host is validated and lower-cased.
    pub fn tcp(host: &str, port: u16) -> Result<Self, AddressError> {
        if port == 0 {
            return Err(AddressError::InvalidPort("0".into()));
        }
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        check_host(host)?;
        Ok(Self::Tcp { host: lower(host), port })
    }

    /// Parses `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a socket path ending in `.sock`.
    ///
    /// Percent-decoding of socket paths is the connection string parser's job; this takes
    /// the decoded text.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.len() > MAX_HOST_LEN {
            return Err(AddressError::TooLong(s.len()));
        }
        if s.is_empty() {
            return Err(AddressError::EmptyHost);
        }
        // Unix domain socket (connection-string-spec.md, "Host"): a path ending in ".sock".
        if s.ends_with(".sock") && s.contains('/') {
            return Ok(Self::Unix { path: Arc::from(s) });
        }
        if let Some(rest) = s.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(AddressError::InvalidIpv6(s.into()));
            };
            let host = &rest[..end];
            if host.is_empty()
                || !host.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.' || c == '%')
            {
                return Err(AddressError::InvalidIpv6(s.into()));
            }
            let after = &rest[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None if after.is_empty() => DEFAULT_PORT,
                None => return Err(AddressError::InvalidIpv6(s.into())),
            };
            return Ok(Self::Tcp { host: lower(host), port });
        }
        let (host, port) = match s.rfind(':') {
            Some(i) => {
                if s[..i].contains(':') {
                    // More than one colon without brackets: an unbracketed IPv6 literal.
                    return Err(AddressError::InvalidIpv6(s.into()));
                }
                (&s[..i], parse_port(&s[i + 1..])?)
            }
            None => (s, DEFAULT_PORT),
        };
        check_host(host)?;
        Ok(Self::Tcp { host: lower(host), port })
    }

    /// The host (TCP) or socket path (Unix).
    pub fn host(&self) -> &str {
        match self {
            Self::Tcp { host, .. } => host,
            Self::Unix { path } => path,
        }
    }

    /// The TCP port, or `None` for a Unix socket.
    pub fn port(&self) -> Option<u16> {
        match self {
            Self::Tcp { port, .. } => Some(*port),
            Self::Unix { .. } => None,
        }
    }

    /// `s` split into host and port when it is written in normalized `host:port` form (no
    /// brackets, one colon, a port of 1 to 5 digits in range), without allocating; `None`
    /// otherwise. Such a string parses to `Tcp { host, port }` whenever `host` is the host
    /// of a valid address.
    pub(crate) fn normalized_parts(s: &str) -> Option<(&str, u16)> {
        if s.len() > MAX_HOST_LEN {
            return None;
        }
        let bytes = s.as_bytes();
        let colon = bytes.iter().rposition(|&b| b == b':')?;
        let (host, port) = (bytes.get(..colon)?, bytes.get(colon + 1..)?);
        if host.is_empty() || host[0] == b'[' || host.contains(&b':') || port.is_empty() || port.len() > 5 {
            return None;
        }
        let mut n: u32 = 0;
        for &d in port {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(d - b'0');
        }
        let port = u16::try_from(n).ok().filter(|&p| p != 0)?;
        Some((s.get(..colon)?, port))
    }

    /// Whether this is the TCP address `host:port` (`host` as stored: normalized).
    pub(crate) fn is_parts(&self, host: &str, port: u16) -> bool {
        matches!(self, Self::Tcp { host: h, port: p } if *p == port && cmp_short(h, host).is_eq())
    }

    /// The TCP address `host:port` in `sorted` (ascending), by binary search.
    pub(crate) fn find_parts<'s>(host: &str, port: u16, sorted: &'s [Self]) -> Option<&'s Self> {
        let i = sorted
            .binary_search_by(|a| match a {
                Self::Tcp { host: h, port: p } => cmp_short(h, host).then(p.cmp(&port)),
                Self::Unix { .. } => std::cmp::Ordering::Greater,
            })
            .ok()?;
        sorted.get(i)
    }

    /// Whether `s` names this address once normalized, without allocating.
    pub fn matches_str(&self, s: &str) -> bool {
        match (self, s.rfind(':')) {
            (Self::Unix { path }, _) => &**path == s,
            (Self::Tcp { host, port }, Some(i)) if !s.ends_with(']') => {
                let h = &s[..i];
                let h = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(h);
                h.eq_ignore_ascii_case(host) && s[i + 1..].parse::<u16>().ok() == Some(*port)
            }
            (Self::Tcp { host, port }, _) => {
                let h = s.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(s);
                *port == DEFAULT_PORT && h.eq_ignore_ascii_case(host)
            }
        }
    }
}

fn lower(s: &str) -> Arc<str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Arc::from(s.to_ascii_lowercase())
    } else {
        Arc::from(s)
    }
}

fn parse_port(p: &str) -> Result<u16, AddressError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::InvalidPort(p.into()));
    }
    match p.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(AddressError::InvalidPort(p.into())),
    }
}

fn check_host(host: &str) -> Result<(), AddressError> {
    if host.is_empty() {
        return Err(AddressError::EmptyHost);
    }
    if host.len() > MAX_HOST_LEN {
        return Err(AddressError::TooLong(host.len()));
    }
    // Reserved URI characters and whitespace never appear in a host name or IP literal.
    if host.chars().any(|c| c.is_whitespace() || c.is_control() || "/?#@[],".contains(c)) {
        return Err(AddressError::InvalidHost(host.into()));
    }
    Ok(())
}

impl FromStr for ServerAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "{host}:{port}"),
            Self::Unix { path } => f.write_str(path),
        }
    }
}

impl fmt::Debug for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A string found by `normalized_parts` + `is_parts` parses to exactly that address.
    /// The hand-written order is the one a derived `Ord` gave: TCP before Unix, then host
    /// (as `str` orders it, short or long), then port; Unix sockets by path.
    #[test]
    fn order_is_tcp_by_host_then_port_then_unix_by_path() {
        let long = "h".repeat(40);
        let hosts = ["a", "ab", "b", "a0", "", "zz", long.as_str(), "hhhh"];
        let mut all = Vec::new();
        for h in hosts.iter().filter(|h| !h.is_empty()) {
            for port in [1, 27017, 27018] {
                all.push(ServerAddress::tcp(h, port).unwrap());
            }
        }
        all.push(ServerAddress::parse("/tmp/a.sock").unwrap());
        all.push(ServerAddress::parse("/tmp/b.sock").unwrap());
        let key = |a: &ServerAddress| match a {
            ServerAddress::Tcp { host, port } => (0, host.to_string(), *port),
            ServerAddress::Unix { path } => (1, path.to_string(), 0),
        };
        for a in &all {
            for b in &all {
                assert_eq!(a.cmp(b), key(a).cmp(&key(b)), "{a} vs {b}");
                assert_eq!(a.cmp(b).is_eq(), a == b, "{a} vs {b}");
                assert_eq!(a.cmp(&b.clone()), a.cmp(b));
            }
        }
    }

    #[test]
    fn normalized_parts_agree_with_parse() {
        let stored: Vec<ServerAddress> =
            ["a:27017", "db1.example.com:1", "10.0.0.1:65535", "[::1]:27017", "/tmp/m.sock"]
                .iter()
                .map(|s| ServerAddress::parse(s).unwrap())
                .collect();
        let inputs = [
            "a:27017",
            "A:27017",
            "a",
            "a:027017",
            "a:0",
            "a:65536",
            "a:",
            ":27017",
            "db1.example.com:1",
            "10.0.0.1:65535",
            "::1:27017",
            "[::1]:27017",
            "/tmp/m.sock",
            "a:2701x",
            "a b:27017",
            "a:+1",
        ];
        for s in inputs {
            let Some((host, port)) = ServerAddress::normalized_parts(s) else { continue };
            for a in &stored {
                if a.is_parts(host, port) {
                    assert_eq!(ServerAddress::parse(s).as_ref(), Ok(a), "{s}");
                }
            }
            let mut sorted = stored.clone();
            sorted.sort();
            if let Some(found) = ServerAddress::find_parts(host, port, &sorted) {
                assert_eq!(ServerAddress::parse(s).as_ref(), Ok(found), "{s}");
            }
        }
        assert_eq!(ServerAddress::normalized_parts("a:27017"), Some(("a", 27017)));
        assert_eq!(ServerAddress::normalized_parts("[::1]:27017"), None);
        assert_eq!(ServerAddress::normalized_parts("a:0"), None);
    }

    fn p(s: &str) -> String {
        ServerAddress::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalizes() {
        assert_eq!(p("A"), "a:27017");
        assert_eq!(p("Example.COM:1234"), "example.com:1234");
        assert_eq!(p("[::1]"), "[::1]:27017");
        assert_eq!(p("[FE80::1]:5"), "[fe80::1]:5");
        assert_eq!(p("127.0.0.1:27018"), "127.0.0.1:27018");
        assert_eq!(p("/tmp/mongodb-27017.sock"), "/tmp/mongodb-27017.sock");
        assert_eq!(ServerAddress::parse("a").unwrap(), ServerAddress::parse("A:27017").unwrap());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in
            ["", ":27017", "a:0", "a:65536", "a:", "a:x", "a:-1", "[::1", "[::1]x", "::1", "a b", "a/b", "[]"]
        {
            assert!(ServerAddress::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(ServerAddress::parse(&"a".repeat(5000)), Err(AddressError::TooLong(5000)));
        assert!(ServerAddress::tcp("a", 0).is_err());
    }

    #[test]
    fn matches_str_agrees_with_parse() {
        let a = ServerAddress::parse("a:27017").unwrap();
        assert!(a.matches_str("a:27017"));
        assert!(a.matches_str("A"));
        assert!(!a.matches_str("a:27018"));
        let v6 = ServerAddress::parse("[::1]").unwrap();
        assert!(v6.matches_str("[::1]:27017"));
        assert!(v6.matches_str("[::1]"));
    }

    #[test]
    fn display_roundtrips() {
        for s in ["a:1", "[::1]:2", "/x/y.sock", "h.example.com:27017"] {
            assert_eq!(p(&p(s)), p(s));
        }
    }
}
