//! Client options beyond the topology configuration.

#[cfg(feature = "tls")]
use crate::TlsOptions;

/// Options of a [`Client`](crate::Client) that are not part of [`sdam::TopologyConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Connect with TLS (`None`: plain TCP).
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
    /// The largest reply frame accepted on a monitoring connection; a larger one closes the
    /// connection and fails the check. Default: [`sdam_wire::DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_message_size: usize,
    /// A SOCKS5 proxy for every monitoring connection (`proxyHost`, ...); `None`: direct.
    pub proxy: Option<sdam_adapter::ProxyOptions>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            #[cfg(feature = "tls")]
            tls: None,
            max_message_size: sdam_wire::DEFAULT_MAX_MESSAGE_SIZE,
            proxy: None,
        }
    }
}
