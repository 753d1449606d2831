//! TLS for monitoring connections: tokio-rustls with the ring provider. The server name
//! indication and certificate name check use the server's host.

use rustls_pki_types::ServerName;
use sdam_adapter::TlsOptions;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Opens TLS sessions with one client configuration.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: TlsConnector,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl Connector {
    /// Builds the client configuration; a CA file that cannot be read or holds no
    /// certificate is an error that names it.
    pub(crate) fn new(options: &TlsOptions) -> Result<Self, String> {
        Ok(Self { inner: TlsConnector::from(sdam_adapter::tls::client_config(options)?) })
    }

    /// Runs the TLS handshake over `tcp` with `host` as the server name.
    pub(crate) async fn connect(&self, host: &str, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{host} is not a TLS server name: {e}"),
            )
        })?;
        self.inner.connect(name, tcp).await
    }
}
