//! SOCKS5 for monitoring connections (socks5-support/socks5.md): the proxy settings, and a
//! sans-IO client handshake (RFC 1928, with RFC 1929 username/password authentication) that
//! both adapters drive over their own sockets and deadlines.
//!
//! The destination host is sent to the proxy as written, never resolved here ("Drivers MUST
//! NOT attempt to perform DNS A or AAAA record resolution of the destination hostname"): a
//! name goes as a domain name (ATYP 3), an IP literal as an IPv4 or IPv6 address.

use std::fmt;
use std::net::IpAddr;

/// The port a proxy listens on when `proxyPort` is not given (socks5.md, "proxyPort").
pub const DEFAULT_PROXY_PORT: u16 = 1080;

/// A SOCKS5 proxy for every monitoring connection (`proxyHost`, `proxyPort`,
/// `proxyUsername`, `proxyPassword`).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// The proxy's host name or IP address.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// Username and password, for a proxy that requires them (RFC 1929).
    pub credentials: Option<(String, String)>,
}

impl ProxyOptions {
    /// A proxy without authentication.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self { host: host.into(), port, credentials: None }
    }
}

impl fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.credentials.as_ref().map(|(user, _)| (user, "<redacted>")))
            .finish()
    }
}

/// Why a SOCKS5 handshake failed. The adapters report it as a network error, as the spec
/// requires ("the same as a network error").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Socks5Error {
    /// The destination host name, the username or the password is longer than 255 bytes, or
    /// empty.
    InvalidField {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        length: usize,
    },
    /// The proxy answered with another protocol version.
    BadVersion {
        /// The version byte received.
        version: u8,
    },
    /// The proxy accepts none of the offered authentication methods (it answered 0xFF), or
    /// chose one that was not offered.
    NoAcceptableMethod {
        /// The method the proxy chose.
        method: u8,
    },
    /// The proxy refused the username and password.
    AuthenticationFailed {
        /// The status byte (non-zero).
        status: u8,
    },
    /// The proxy could not or would not connect to the destination.
    ConnectFailed {
        /// The reply code (RFC 1928, section 6).
        code: u8,
    },
    /// The proxy's reply has an unknown address type.
    BadAddressType {
        /// The address type byte.
        address_type: u8,
    },
    /// More bytes were fed than [`Socks5Connect::bytes_needed`] asked for.
    TooManyBytes,
}

impl fmt::Display for Socks5Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidField { field, length } => {
                write!(f, "the SOCKS5 {field} must be 1 to 255 bytes long, not {length}")
            }
            Self::BadVersion { version } => write!(f, "the proxy answered SOCKS version {version}, not 5"),
            Self::NoAcceptableMethod { method: 0xFF } => {
                f.write_str("the proxy accepts none of the offered authentication methods")
            }
            Self::NoAcceptableMethod { method } => {
                write!(f, "the proxy chose authentication method {method}, which was not offered")
            }
            Self::AuthenticationFailed { status } => {
                write!(f, "the proxy refused the username and password (status {status})")
            }
            Self::ConnectFailed { code } => write!(f, "the proxy did not connect: {}", reply_text(*code)),
            Self::BadAddressType { address_type } => {
                write!(f, "the proxy's reply has unknown address type {address_type}")
            }
            Self::TooManyBytes => {
                f.write_str("more bytes were fed to the SOCKS5 handshake than it asked for")
            }
        }
    }
}

impl std::error::Error for Socks5Error {}

/// RFC 1928, section 6: the reply codes.
fn reply_text(code: u8) -> String {
    let text = match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => return format!("reply code {code}"),
    };
    format!("{text} (reply code {code})")
}

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const CONNECT: u8 = 0x01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the method selection (2 bytes).
    Method,
    /// Waiting for the username/password status (2 bytes).
    Auth,
    /// Waiting for the reply's first 4 bytes (version, code, reserved, address type).
    ReplyHead,
    /// Waiting for the domain name's length byte.
    ReplyNameLength,
    /// Waiting for the rest of the bound address and port.
    ReplyTail,
    Connected,
}

/// The client side of one SOCKS5 CONNECT handshake, without the socket.
///
/// Drive it like this, over a connection to the proxy:
/// 1. write what [`take_output`](Self::take_output) returns, if anything;
/// 2. stop once [`is_connected`](Self::is_connected): the connection is now a tunnel to the
///    destination (TLS, if any, starts here);
/// 3. read at most [`bytes_needed`](Self::bytes_needed) bytes, [`feed`](Self::feed) them, and
///    go to 1.
///
/// It never asks for more bytes than the proxy's next message holds, so nothing of the tunnel
/// is read by mistake.
///
/// ```
/// use sdam_adapter::socks5::Socks5Connect;
///
/// let mut socks = Socks5Connect::new("db1.example.com", 27017, None)?;
/// assert_eq!(socks.take_output(), Some(vec![5, 1, 0])); // version 5, one method: none
/// assert_eq!(socks.bytes_needed(), 2);
/// socks.feed(&[5, 0])?;                                 // "no authentication"
/// let request = socks.take_output().expect("the CONNECT request");
/// assert_eq!(&request[..5], &[5, 1, 0, 3, 15]);         // CONNECT, domain name of 15 bytes
/// socks.feed(&[5, 0, 0, 1])?;                           // succeeded, bound to an IPv4 address
/// socks.feed(&[127, 0, 0, 1, 0x04, 0x38])?;
/// assert!(socks.is_connected());
/// # Ok::<(), sdam_adapter::socks5::Socks5Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Socks5Connect {
    state: State,
    /// Bytes to write.
    output: Vec<u8>,
    /// The bytes of the message being received.
    input: Vec<u8>,
    /// How many bytes complete the message being received.
    expected: usize,
    /// The CONNECT request, sent after authentication.
    request: Vec<u8>,
    /// The RFC 1929 request, when credentials were given.
    auth: Option<Vec<u8>>,
}

impl Socks5Connect {
    /// A handshake asking the proxy to connect to `host:port`, authenticating with
    /// `credentials` (username, password) if given: the greeting then offers both "no
    /// authentication" and "username/password", else only the first (socks5.md, "Connection
    /// Establishment").
    ///
    /// # Errors
    /// [`Socks5Error::InvalidField`] for an empty or longer than 255-byte host name, username
    /// or password.
    pub fn new(host: &str, port: u16, credentials: Option<(&str, &str)>) -> Result<Self, Socks5Error> {
        let mut request = vec![VERSION, CONNECT, 0];
        // An IP literal (brackets of an IPv6 address removed) is an address; anything else is
        // a name for the proxy to resolve.
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                request.push(1);
                request.extend_from_slice(&ip.octets());
            }
            Ok(IpAddr::V6(ip)) => {
                request.push(4);
                request.extend_from_slice(&ip.octets());
            }
            Err(_) => {
                request.push(3);
                request.push(field_length("destination host name", host)?);
                request.extend_from_slice(host.as_bytes());
            }
        }
        request.extend_from_slice(&port.to_be_bytes());
        let auth = match credentials {
            None => None,
            Some((user, password)) => {
                let mut auth = vec![1, field_length("username", user)?];
                auth.extend_from_slice(user.as_bytes());
                auth.push(field_length("password", password)?);
                auth.extend_from_slice(password.as_bytes());
                Some(auth)
            }
        };
        let output =
            if auth.is_some() { vec![VERSION, 2, NO_AUTH, USER_PASS] } else { vec![VERSION, 1, NO_AUTH] };
        Ok(Self { state: State::Method, output, input: Vec::new(), expected: 2, request, auth })
    }

    /// Bytes to write to the proxy now, if any.
    pub fn take_output(&mut self) -> Option<Vec<u8>> {
        (!self.output.is_empty()).then(|| std::mem::take(&mut self.output))
    }

    /// How many bytes to read next, at most (0 once connected).
    #[must_use]
    pub fn bytes_needed(&self) -> usize {
        self.expected.saturating_sub(self.input.len())
    }

    /// Whether the proxy connected to the destination: the connection is now a tunnel.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Takes bytes read from the proxy (at most [`bytes_needed`](Self::bytes_needed)).
    ///
    /// # Errors
    /// Any [`Socks5Error`] the proxy's answer calls for; the connection must then be closed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Socks5Error> {
        if bytes.len() > self.bytes_needed() {
            return Err(Socks5Error::TooManyBytes);
        }
        self.input.extend_from_slice(bytes);
        if self.bytes_needed() > 0 {
            return Ok(());
        }
        let message = std::mem::take(&mut self.input);
        match self.state {
            State::Method => {
                check_version(message.first().copied())?;
                let method = message.get(1).copied().unwrap_or(0xFF);
                match (method, self.auth.take()) {
                    (NO_AUTH, _) => self.send_request(),
                    (USER_PASS, Some(auth)) => {
                        self.output = auth;
                        self.state = State::Auth;
                        self.expected = 2;
                    }
                    (method, _) => return Err(Socks5Error::NoAcceptableMethod { method }),
                }
            }
            State::Auth => match message.get(1).copied() {
                Some(0) => self.send_request(),
                status => return Err(Socks5Error::AuthenticationFailed { status: status.unwrap_or(0xFF) }),
            },
            State::ReplyHead => {
                check_version(message.first().copied())?;
                let code = message.get(1).copied().unwrap_or(0xFF);
                if code != 0 {
                    return Err(Socks5Error::ConnectFailed { code });
                }
                match message.get(3).copied() {
                    Some(1) => self.expect(State::ReplyTail, 4 + 2),
                    Some(4) => self.expect(State::ReplyTail, 16 + 2),
                    Some(3) => self.expect(State::ReplyNameLength, 1),
                    other => return Err(Socks5Error::BadAddressType { address_type: other.unwrap_or(0) }),
                }
            }
            State::ReplyNameLength => {
                let length = usize::from(message.first().copied().unwrap_or(0));
                self.expect(State::ReplyTail, length + 2);
            }
            State::ReplyTail => self.expect(State::Connected, 0),
            State::Connected => {}
        }
        Ok(())
    }

    fn send_request(&mut self) {
        self.output = std::mem::take(&mut self.request);
        self.expect(State::ReplyHead, 4);
    }

    fn expect(&mut self, state: State, bytes: usize) {
        self.state = state;
        self.expected = bytes;
    }
}

fn check_version(version: Option<u8>) -> Result<(), Socks5Error> {
    match version {
        Some(VERSION) => Ok(()),
        other => Err(Socks5Error::BadVersion { version: other.unwrap_or(0) }),
    }
}

fn field_length(field: &'static str, value: &str) -> Result<u8, Socks5Error> {
    u8::try_from(value.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or(Socks5Error::InvalidField { field, length: value.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_credentials_both_methods_are_offered_and_the_name_is_sent_as_is() {
        let mut socks = Socks5Connect::new("db.internal", 27017, Some(("user", "pw"))).unwrap();
        assert_eq!(socks.take_output(), Some(vec![5, 2, 0, 2]));
        assert_eq!(socks.take_output(), None);
        socks.feed(&[5]).unwrap();
        assert_eq!(socks.bytes_needed(), 1);
        socks.feed(&[2]).unwrap();
        assert_eq!(socks.take_output(), Some(vec![1, 4, b'u', b's', b'e', b'r', 2, b'p', b'w']));
        socks.feed(&[1, 0]).unwrap();
        let mut request = vec![5, 1, 0, 3, 11];
        request.extend_from_slice(b"db.internal");
        request.extend_from_slice(&27017u16.to_be_bytes());
        assert_eq!(socks.take_output(), Some(request));
        socks.feed(&[5, 0, 0, 3]).unwrap();
        socks.feed(&[4]).unwrap();
        assert_eq!(socks.bytes_needed(), 6);
        assert_eq!(socks.feed(&[0; 7]), Err(Socks5Error::TooManyBytes));
        socks.feed(&[b'h', b'o', b's', b't', 0, 1]).unwrap();
        assert!(socks.is_connected());
        assert_eq!(socks.bytes_needed(), 0);
    }

    #[test]
    fn ip_literals_are_addresses() {
        let mut socks = Socks5Connect::new("127.0.0.1", 1, None).unwrap();
        let _ = socks.take_output();
        socks.feed(&[5, 0]).unwrap();
        assert_eq!(socks.take_output(), Some(vec![5, 1, 0, 1, 127, 0, 0, 1, 0, 1]));
        let mut socks = Socks5Connect::new("[::1]", 2, None).unwrap();
        let _ = socks.take_output();
        socks.feed(&[5, 0]).unwrap();
        let request = socks.take_output().unwrap();
        assert_eq!(&request[..4], &[5, 1, 0, 4]);
        assert_eq!(request.len(), 4 + 16 + 2);
        socks.feed(&[5, 0, 0, 4]).unwrap();
        assert_eq!(socks.bytes_needed(), 18);
    }

    #[test]
    fn refusals_are_explained() {
        let mut socks = Socks5Connect::new("a", 1, None).unwrap();
        let error = socks.feed(&[5, 0xFF]).unwrap_err();
        assert_eq!(error.to_string(), "the proxy accepts none of the offered authentication methods");
        let mut socks = Socks5Connect::new("a", 1, None).unwrap();
        assert_eq!(socks.feed(&[5, 2]), Err(Socks5Error::NoAcceptableMethod { method: 2 }), "not offered");
        let mut socks = Socks5Connect::new("a", 1, Some(("u", "p"))).unwrap();
        socks.feed(&[5, 2]).unwrap();
        let error = socks.feed(&[1, 1]).unwrap_err();
        assert_eq!(error.to_string(), "the proxy refused the username and password (status 1)");
        let mut socks = Socks5Connect::new("a", 1, None).unwrap();
        socks.feed(&[5, 0]).unwrap();
        let error = socks.feed(&[5, 2, 0, 1]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the proxy did not connect: connection not allowed by ruleset (reply code 2)"
        );
        let mut socks = Socks5Connect::new("a", 1, None).unwrap();
        assert_eq!(socks.feed(&[4, 0]), Err(Socks5Error::BadVersion { version: 4 }));
        assert!(matches!(
            Socks5Connect::new(&"x".repeat(256), 1, None),
            Err(Socks5Error::InvalidField { field: "destination host name", length: 256 })
        ));
        assert!(Socks5Connect::new("a", 1, Some(("", "p"))).is_err());
        let options =
            ProxyOptions { credentials: Some(("u".into(), "hunter2".into())), ..ProxyOptions::new("p", 1) };
        assert!(!format!("{options:?}").contains("hunter2"));
    }
}
