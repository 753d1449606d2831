//! TLS settings and, with the `tls` feature, the rustls client configuration (ring) both
//! adapters connect with. The server name checked (and sent as SNI) is each address's host.

use std::path::PathBuf;
#[cfg(feature = "tls")]
use std::sync::Arc;

#[cfg(feature = "tls")]
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
#[cfg(feature = "tls")]
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
#[cfg(feature = "tls")]
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
#[cfg(feature = "tls")]
use rustls_pki_types::pem::PemObject;
#[cfg(feature = "tls")]
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// TLS settings, as drivers take them from `tls=true`, `tlsCAFile` and
/// `tlsAllowInvalidCertificates` (or `tlsInsecure`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file of the certificate authorities to trust; `None`: the Mozilla roots of
    /// `webpki-roots`.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate and any host name (`tlsAllowInvalidCertificates` /
    /// `tlsInsecure`); the handshake signatures are still checked. For tests only.
    pub allow_invalid_certificates: bool,
}

/// The rustls client configuration for `options`, built once per client. A CA file that
/// cannot be read, is not PEM or holds no usable certificate is an error that names it.
#[cfg(feature = "tls")]
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("set-up failed: {e}"))?;
    let config = if options.allow_invalid_certificates {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        builder.with_root_certificates(roots(options.ca_file.as_ref())?).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

#[cfg(feature = "tls")]
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

/// `tlsAllowInvalidCertificates=true`: any certificate for any name is accepted; the
/// handshake signatures are still checked, so the session is encrypted, only not
/// authenticated.
#[cfg(feature = "tls")]
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

#[cfg(feature = "tls")]
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

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("sdam-adapter-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn with_ca(path: PathBuf) -> TlsOptions {
        TlsOptions { ca_file: Some(path), allow_invalid_certificates: false }
    }

    #[test]
    fn a_generated_ca_is_trusted_and_the_defaults_build() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let path = temp_file("ca.pem", ca.pem().as_bytes());
        assert!(client_config(&with_ca(path.clone())).is_ok());
        let _ = std::fs::remove_file(path);
        assert!(client_config(&TlsOptions::default()).is_ok());
        let insecure = TlsOptions { ca_file: None, allow_invalid_certificates: true };
        assert!(client_config(&insecure).is_ok());
    }

    #[test]
    fn unusable_ca_files_are_named() {
        let e = client_config(&with_ca("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(e.starts_with("cannot read tlsCAFile /nonexistent/ca.pem"), "{e}");
        let path = temp_file("empty.pem", b"not a certificate\n");
        let e = client_config(&with_ca(path.clone())).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert_eq!(e, format!("tlsCAFile {} holds no certificate", path.display()));
    }
}
