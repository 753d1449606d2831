//! The adapter's errors: caller mistakes when building a client, and failed selections.

use std::fmt;

use sdam::selection::SelectionError;

/// A client could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The topology configuration is not allowed (see [`sdam::ConfigError`]).
    Config(sdam::ConfigError),
    /// The connection string is invalid.
    ConnectionString(sdam::ConnectionStringError),
    /// TLS was asked for but cannot be set up (bad CA file, or the `tls` feature is off).
    Tls(String),
    /// A thread could not be started.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid topology configuration: {e}"),
            Self::ConnectionString(e) => write!(f, "invalid connection string: {e}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Io(e) => write!(f, "starting the client: {e}"),
        }
    }
}

impl std::error::Error for Error {}

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

/// A server selection failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SelectError {
    /// No suitable server (timed out, incompatible topology, invalid read preference); the
    /// error explains, per server, why it was not chosen.
    Selection(Box<SelectionError>),
    /// The client was closed.
    Closed,
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Selection(e) => e.fmt(f),
            Self::Closed => f.write_str("the client is closed"),
        }
    }
}

impl std::error::Error for SelectError {}
