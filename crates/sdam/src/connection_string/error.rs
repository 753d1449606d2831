//! Errors (the connection string is rejected) and warnings (something in it was ignored).

use std::fmt;

use crate::address::AddressError;

/// Why a connection string, or the DNS answers for a `mongodb+srv` connection string, were
/// rejected. Every variant names the offending part of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionStringError {
    /// The string is longer than [`MAX_LENGTH`](super::MAX_LENGTH) bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The string does not start with `mongodb://` or `mongodb+srv://`.
    InvalidScheme {
        /// The start of the string, up to `://` (or its first characters).
        found: String,
    },
    /// There is no host between the scheme and the `/`, `?` or end of string.
    MissingHost,
    /// More than [`MAX_HOSTS`](super::MAX_HOSTS) hosts.
    TooManyHosts {
        /// How many hosts were given (or returned by DNS).
        count: usize,
    },
    /// A host identifier could not be parsed.
    InvalidHost {
        /// The host identifier, as written in the connection string.
        host: String,
        /// What is wrong with it.
        reason: AddressError,
    },
    /// A Unix domain socket path was written without percent-encoding its slashes.
    UnescapedSocketPath {
        /// The path, as written.
        path: String,
    },
    /// The user information breaks the userinfo rules: an unescaped `@`, a second `:`, a `%`
    /// that does not start an escape, or a character that must be percent-encoded.
    UserinfoNotEncoded {
        /// What was found.
        problem: String,
    },
    /// The username is empty.
    EmptyUsername,
    /// A component is not valid percent-encoded UTF-8.
    InvalidPercentEncoding {
        /// Which component ("auth database", "option value", ...).
        component: &'static str,
        /// The text, as written.
        text: String,
        /// What is wrong.
        problem: String,
    },
    /// The auth database contains a character database names may not contain.
    InvalidDatabaseName {
        /// The decoded name.
        name: String,
        /// The forbidden character.
        character: char,
    },
    /// A key-value pair in the options has no `=`.
    OptionWithoutValue {
        /// The text of the pair.
        pair: String,
    },
    /// A `mongodb+srv` connection string names more than one host.
    SrvMultipleHosts {
        /// The host list, as written.
        hosts: String,
    },
    /// A `mongodb+srv` connection string gives a port.
    SrvWithPort {
        /// The host identifier, as written.
        host: String,
    },
    /// A `mongodb+srv` host is not a DNS name (an IP literal, a socket path, an empty label).
    InvalidSrvHost {
        /// The host, as written.
        host: String,
    },
    /// An option that is only valid with `mongodb+srv` was given with `mongodb://`.
    SrvOptionWithoutSrv {
        /// The option name, as written.
        option: String,
    },
    /// Two options that must not appear together, or appear with these values together.
    ConflictingOptions {
        /// The first option (and value, when the value matters), as written.
        first: String,
        /// The second option (and value, when the value matters), as written.
        second: String,
    },
    /// An option's value is incompatible with the number or kind of hosts.
    OptionConflictsWithHosts {
        /// The option and value, as written.
        option: String,
        /// Why, e.g. "requires exactly one host, found 2".
        problem: String,
    },
    /// An option that may be given only once appeared more than once.
    RepeatedOption {
        /// The option name.
        option: String,
    },
    /// An option requires another option that is missing.
    MissingRequiredOption {
        /// The option that was given.
        option: String,
        /// The option it requires.
        requires: &'static str,
    },
    /// An option's value is invalid and the spec makes that an error rather than a warning.
    InvalidOptionValue {
        /// The option name, as written.
        option: String,
        /// The value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The SRV lookup returned no records.
    NoSrvRecords {
        /// The name that was looked up.
        name: String,
    },
    /// An SRV record's target does not share the connection string host's domain.
    SrvTargetOutsideDomain {
        /// The record's target.
        target: String,
        /// The domain it must end with.
        domain: String,
    },
    /// An SRV record's target and port do not form a valid address.
    InvalidSrvTarget {
        /// The record's target.
        target: String,
        /// The record's port.
        port: u16,
        /// What is wrong.
        reason: AddressError,
    },
    /// More than one TXT record was returned for the host.
    MultipleTxtRecords {
        /// The name that was looked up.
        name: String,
        /// How many records were returned.
        count: usize,
    },
    /// A TXT record sets an option other than `authSource`, `replicaSet` and `loadBalanced`.
    TxtOptionNotAllowed {
        /// The option name.
        option: String,
    },
    /// A TXT record is not a valid options string.
    InvalidTxtRecord {
        /// The record's text.
        text: String,
        /// Why it could not be parsed.
        reason: Box<Self>,
    },
}

impl fmt::Display for ConnectionStringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => {
                write!(f, "connection string is {len} bytes long; at most {} are accepted", super::MAX_LENGTH)
            }
            Self::InvalidScheme { found } => write!(
                f,
                "invalid connection string scheme in {found:?}: expected \"mongodb://\" or \"mongodb+srv://\""
            ),
            Self::MissingHost => f.write_str("connection string has no host"),
            Self::TooManyHosts { count } => {
                write!(f, "{count} hosts given; at most {} are accepted", super::MAX_HOSTS)
            }
            Self::InvalidHost { host, reason } => write!(f, "invalid host {host:?}: {reason}"),
            Self::UnescapedSocketPath { path } => write!(
                f,
                "unsupported host {path:?}: UNIX domain socket paths must be URL encoded (write '/' as %2F)"
            ),
            Self::UserinfoNotEncoded { problem } => {
                write!(f, "the username and password must be URL encoded: the user information {problem}")
            }
            Self::EmptyUsername => f.write_str("the username in the connection string is empty"),
            Self::InvalidPercentEncoding { component, text, problem } => {
                write!(f, "invalid percent-encoding in {component} {text:?}: {problem}")
            }
            Self::InvalidDatabaseName { name, character } => {
                write!(f, "invalid auth database name {name:?}: it may not contain {character:?}")
            }
            Self::OptionWithoutValue { pair } => {
                write!(f, "connection string option {pair:?} has no value: expected key=value")
            }
            Self::SrvMultipleHosts { hosts } => {
                write!(f, "a mongodb+srv connection string must name exactly one host, found {hosts:?}")
            }
            Self::SrvWithPort { host } => {
                write!(f, "a mongodb+srv connection string may not give a port, found {host:?}")
            }
            Self::InvalidSrvHost { host } => {
                write!(f, "invalid mongodb+srv host {host:?}: expected a DNS name")
            }
            Self::SrvOptionWithoutSrv { option } => {
                write!(f, "option '{option}' is only valid in a mongodb+srv connection string")
            }
            Self::ConflictingOptions { first, second } => {
                write!(f, "conflicting options: '{first}' and '{second}' may not be given together")
            }
            Self::OptionConflictsWithHosts { option, problem } => {
                write!(f, "option '{option}' {problem}")
            }
            Self::RepeatedOption { option } => {
                write!(f, "option '{option}' may be given only once")
            }
            Self::MissingRequiredOption { option, requires } => {
                write!(f, "option '{option}' requires option '{requires}'")
            }
            Self::InvalidOptionValue { option, value, expected } => {
                write!(f, "invalid value {value:?} for option '{option}': expected {expected}")
            }
            Self::NoSrvRecords { name } => write!(
                f,
                "the SRV lookup of {name:?} returned no records, so the connection string finds no hosts"
            ),
            Self::SrvTargetOutsideDomain { target, domain } => write!(
                f,
                "SRV record target {target:?} is not in the connection string host's domain {domain:?}"
            ),
            Self::InvalidSrvTarget { target, port, reason } => {
                write!(f, "invalid SRV record target {target:?} port {port}: {reason}")
            }
            Self::MultipleTxtRecords { name, count } => {
                write!(f, "found {count} TXT records for {name:?}; at most one is allowed")
            }
            Self::TxtOptionNotAllowed { option } => write!(
                f,
                "option '{option}' may not be set by a TXT record \
                 (only authSource, replicaSet and loadBalanced may)"
            ),
            Self::InvalidTxtRecord { text, reason } => write!(f, "invalid TXT record {text:?}: {reason}"),
        }
    }
}

impl std::error::Error for ConnectionStringError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidHost { reason, .. } | Self::InvalidSrvTarget { reason, .. } => Some(reason),
            Self::InvalidTxtRecord { reason, .. } => Some(&**reason),
            _ => None,
        }
    }
}

/// Something in a connection string (or TXT record) that was ignored, as the connection
/// string spec requires, instead of rejecting the whole string. A driver logs these at WARN.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// An option this crate does not know (connection-string-spec.md, "Keys").
    UnsupportedOption {
        /// The option name, as written.
        option: String,
    },
    /// An option whose value is invalid or empty; the option was ignored
    /// (connection-string-spec.md, "Values").
    InvalidValue {
        /// The option name, as written.
        option: String,
        /// The value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An option that is not a list appeared more than once; the last valid value is used
    /// (connection-string-spec.md, "Repeated Keys").
    RepeatedOption {
        /// The option name, as written the last time.
        option: String,
    },
    /// A compressor this crate does not know was dropped from `compressors`.
    UnsupportedCompressor {
        /// The compressor name.
        name: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedOption { option } => write!(f, "unsupported option '{option}' ignored"),
            Self::InvalidValue { option, value, expected } => {
                write!(f, "unsupported value {value:?} for option '{option}' ignored: expected {expected}")
            }
            Self::RepeatedOption { option } => {
                write!(f, "option '{option}' given more than once; the last valid value is used")
            }
            Self::UnsupportedCompressor { name } => {
                write!(f, "unsupported compressor {name:?} ignored (supported: snappy, zlib, zstd)")
            }
        }
    }
}
