//! Client options beyond the topology configuration.

#[cfg(feature = "tls")]
use std::path::PathBuf;

/// Options of a [`Client`](crate::Client) that are not part of [`sdam::TopologyConfig`].
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Connect with TLS (`None`: plain TCP).
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
}

/// TLS settings, like drivers take them from `tlsCAFile` and `tlsAllowInvalidCertificates`.
/// The server name checked (and sent as SNI) is the host of each server's address.
#[cfg(feature = "tls")]
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities to trust; `None`: the Mozilla roots of
    /// `webpki-roots`.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate and host name (`tlsAllowInvalidCertificates` / `tlsInsecure`).
    pub allow_invalid_certificates: bool,
}
