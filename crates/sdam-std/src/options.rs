//! Client options beyond the topology configuration.

#[cfg(feature = "tls")]
use crate::TlsOptions;

/// Options of a [`Client`](crate::Client) that are not part of [`sdam::TopologyConfig`].
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Connect with TLS (`None`: plain TCP).
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
}
