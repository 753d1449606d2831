//! The adapters' errors: caller mistakes when building a client, and failed selections.

use std::fmt;

use sdam::selection::SelectionError;

/// Why a client could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The topology configuration is one the spec forbids (see [`sdam::ConfigError`]).
    Config(sdam::ConfigError),
    /// The connection string is invalid.
    ConnectionString(sdam::ConnectionStringError),
    /// The connection string asks for something this build cannot do (TLS without the
    /// adapter's `tls` feature).
    Unsupported(String),
    /// The TLS settings are unusable (an unreadable CA file, one without certificates, ...).
    Tls(String),
    /// A thread could not be started (`sdam-std`).
    Io(std::io::Error),
    /// Not called from within a tokio runtime (`sdam-tokio`).
    NoRuntime,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid topology configuration: {e}"),
            Self::ConnectionString(e) => write!(f, "invalid connection string: {e}"),
            Self::Unsupported(e) => f.write_str(e),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Io(e) => write!(f, "starting the client: {e}"),
            Self::NoRuntime => f.write_str("sdam-tokio clients must be created inside a tokio runtime"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::ConnectionString(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sdam::ConfigError> for Error {
    fn from(e: sdam::ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<sdam::ConnectionStringError> for Error {
    fn from(e: sdam::ConnectionStringError) -> Self {
        Self::ConnectionString(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// Why a server selection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectError {
    /// The core's verdict: timed out, incompatible topology or invalid read preference, with
    /// each server's reason for not being chosen.
    Selection(Box<SelectionError>),
    /// The client was closed.
    Closed,
}

impl From<Box<SelectionError>> for SelectError {
    /// The core's failed outcome: [`Closed`](Self::Closed) when the topology closed while the
    /// selection waited, the explained error otherwise.
    fn from(error: Box<SelectionError>) -> Self {
        match error.kind {
            sdam::selection::SelectionErrorKind::TopologyClosed => Self::Closed,
            _ => Self::Selection(error),
        }
    }
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Selection(e) => e.fmt(f),
            Self::Closed => f.write_str("the client is closed"),
        }
    }
}

impl std::error::Error for SelectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Selection(e) => Some(e.as_ref()),
            Self::Closed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn errors_explain_themselves_and_keep_their_cause() {
        let e = Error::from(sdam::ConnectionString::parse("http://a").unwrap_err());
        assert!(e.to_string().starts_with("invalid connection string: "), "{e}");
        assert!(e.source().is_some());
        let e = Error::Tls("cannot read tlsCAFile /x.pem: not found".into());
        assert_eq!(e.to_string(), "TLS: cannot read tlsCAFile /x.pem: not found");
        let e = Error::from(std::io::Error::other("no threads left"));
        assert_eq!(e.to_string(), "starting the client: no threads left");
        assert!(e.source().is_some());
        assert_eq!(SelectError::Closed.to_string(), "the client is closed");
    }
}
