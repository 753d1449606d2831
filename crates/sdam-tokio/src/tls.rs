//! TLS for monitoring connections: tokio-rustls with the ring provider. The server name
//! indication and certificate name check use the server's host.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// TLS settings (`tls=true`, `tlsCAFile`, `tlsAllowInvalidCertificates`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file of the certificate authorities to trust; `None`: the Mozilla root store.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (and any host name). For tests only.
    pub allow_invalid_certificates: bool,
}

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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed: {e}"))?;
        let config = if options.allow_invalid_certificates {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots(options.ca_file.as_ref())?).with_no_client_auth()
        };
        Ok(Self { inner: TlsConnector::from(Arc::new(config)) })
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

fn roots(ca_file: Option<&PathBuf>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let Some(path) = ca_file else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    let shown = path.display();
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read tlsCAFile {shown}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tlsCAFile {shown} is not a valid PEM file: {e}"))?;
    if certificates.is_empty() {
        return Err(format!("tlsCAFile {shown} holds no certificate"));
    }
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|e| format!("tlsCAFile {shown} holds an unusable certificate: {e}"))?;
    }
    Ok(roots)
}

/// `tlsAllowInvalidCertificates=true`: any certificate is accepted; the handshake signatures
/// are still checked, so the session is encrypted, only not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
