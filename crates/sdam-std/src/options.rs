//! Client options beyond the topology configuration.

#[cfg(feature = "tls")]
use crate::TlsOptions;

/// Options of a [`Client`](crate::Client) that are not part of [`sdam::TopologyConfig`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Connect with TLS (`None`: plain TCP).
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
    /// The most bytes of events each subscription queues (as
    /// [`event_size`](sdam_adapter::subscribers::event_size) accounts them, a heartbeat's
    /// whole reply included) before it drops its oldest and reports a
    /// [`ClientEvent::Lagged`](crate::ClientEvent::Lagged). Default 16 MiB.
    pub event_buffer_bytes: usize,
    /// Where `mongodb+srv` lookups go (default: the system's resolver configuration).
    #[cfg(feature = "dns")]
    pub dns: sdam_adapter::DnsOptions,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            #[cfg(feature = "tls")]
            tls: None,
            event_buffer_bytes: sdam_adapter::subscribers::DEFAULT_EVENT_BUFFER_BYTES,
            #[cfg(feature = "dns")]
            dns: sdam_adapter::DnsOptions::default(),
        }
    }
}
