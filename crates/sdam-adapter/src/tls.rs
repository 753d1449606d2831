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
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

/// TLS settings, as drivers take them from the connection string (uri-options.md, "TLS
/// options"): `tls=true`, `tlsCAFile`, `tlsCertificateKeyFile` and
/// `tlsCertificateKeyFilePassword`, `tlsAllowInvalidCertificates`,
/// `tlsAllowInvalidHostnames`, and `tlsInsecure` (both relaxations).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file of the certificate authorities to trust; `None`: the Mozilla roots of
    /// `webpki-roots`.
    pub ca_file: Option<PathBuf>,
    /// A PEM file holding the client certificate (chain) and its private key, presented to
    /// servers that ask for one (`tlsCertificateKeyFile`). The key is PKCS#8, PKCS#1 (RSA) or
    /// SEC1 (EC), or an encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`) with
    /// [`certificate_key_file_password`](Self::certificate_key_file_password).
    pub certificate_key_file: Option<PathBuf>,
    /// The password of an encrypted client key (`tlsCertificateKeyFilePassword`).
    pub certificate_key_file_password: Option<String>,
    /// Accept any server certificate, and so any host name (`tlsAllowInvalidCertificates`,
    /// `tlsInsecure`); the handshake signatures are still checked, so the session is
    /// encrypted, only not authenticated. For tests only.
    pub allow_invalid_certificates: bool,
    /// Check the server's certificate chain but not that it names the host
    /// (`tlsAllowInvalidHostnames`, `tlsInsecure`).
    pub allow_invalid_hostnames: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_file", &self.ca_file)
            .field("certificate_key_file", &self.certificate_key_file)
            .field(
                "certificate_key_file_password",
                &self.certificate_key_file_password.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_invalid_certificates", &self.allow_invalid_certificates)
            .field("allow_invalid_hostnames", &self.allow_invalid_hostnames)
            .finish()
    }
}

/// The rustls client configuration for `options`, built once per client. A CA file or
/// certificate-key file that cannot be read, is not PEM or holds nothing usable, and a key
/// that cannot be decrypted, are errors that name the option and the file.
#[cfg(feature = "tls")]
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("set-up failed: {e}"))?;
    let builder = if options.allow_invalid_certificates {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let roots = Arc::new(roots(options.ca_file.as_ref())?);
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| format!("set-up of the certificate verifier failed: {e}"))?;
        if options.allow_invalid_hostnames {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(IgnoreHostname(verifier)))
        } else {
            builder.with_webpki_verifier(verifier)
        }
    };
    let config = match &options.certificate_key_file {
        None => {
            if options.certificate_key_file_password.is_some() {
                return Err("tlsCertificateKeyFilePassword is set without tlsCertificateKeyFile".into());
            }
            builder.with_no_client_auth()
        }
        Some(path) => {
            let (chain, key) = client_identity(path, options.certificate_key_file_password.as_deref())?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!("tlsCertificateKeyFile {}: the certificate and key do not fit: {e}", path.display())
            })?
        }
    };
    Ok(Arc::new(config))
}

/// The certificate chain and private key of a `tlsCertificateKeyFile`.
#[cfg(feature = "tls")]
fn client_identity(
    path: &std::path::Path,
    password: Option<&str>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let shown = path.display();
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read tlsCertificateKeyFile {shown}: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tlsCertificateKeyFile {shown} is not a valid PEM file: {e}"))?;
    if chain.is_empty() {
        return Err(format!("tlsCertificateKeyFile {shown} holds no certificate"));
    }
    let key = match (encrypted_key_block(&pem), password) {
        (Some(block), Some(password)) => decrypt_key(block, password).map_err(|e| {
            format!("tlsCertificateKeyFile {shown}: cannot decrypt the private key with tlsCertificateKeyFilePassword: {e}")
        })?,
        (Some(_), None) => {
            return Err(format!(
                "tlsCertificateKeyFile {shown} holds an encrypted private key: set tlsCertificateKeyFilePassword"
            ))
        }
        (None, Some(_)) => {
            return Err(format!(
                "tlsCertificateKeyFilePassword is set but the private key in tlsCertificateKeyFile {shown} is not encrypted"
            ))
        }
        (None, None) => PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("tlsCertificateKeyFile {shown} holds no usable private key: {e}"))?,
    };
    Ok((chain, key))
}

/// The `ENCRYPTED PRIVATE KEY` PEM block of `pem`, if it has one.
#[cfg(feature = "tls")]
fn encrypted_key_block(pem: &str) -> Option<&str> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let start = pem.find(BEGIN)?;
    let end = pem.get(start..)?.find(END)? + start + END.len();
    pem.get(start..end)
}

/// Decrypts an encrypted PKCS#8 key (PBES2) to its PKCS#8 DER.
#[cfg(feature = "tls")]
fn decrypt_key(block: &str, password: &str) -> Result<PrivateKeyDer<'static>, String> {
    let (_, document) = pkcs8::Document::from_pem(block).map_err(|e| e.to_string())?;
    let encrypted =
        pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes()).map_err(|e| e.to_string())?;
    let secret = encrypted.decrypt(password).map_err(|e| e.to_string())?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(secret.as_bytes().to_vec())))
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

/// `tlsAllowInvalidHostnames=true`: the chain is verified as usual; only a certificate that
/// does not name the host is accepted.
#[cfg(feature = "tls")]
#[derive(Debug)]
struct IgnoreHostname(Arc<rustls::client::WebPkiServerVerifier>);

#[cfg(feature = "tls")]
impl ServerCertVerifier for IgnoreHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        // webpki checks the name last, after the chain, so this error means the chain held.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(NotValidForName | NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
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
        TlsOptions { ca_file: Some(path), ..TlsOptions::default() }
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
        let insecure = TlsOptions { allow_invalid_certificates: true, ..TlsOptions::default() };
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
