//! TLS for the scripted servers: a CA, a server certificate (for `localhost`/`127.0.0.1`
//! unless told otherwise) and a client certificate, generated with rcgen at start, served with
//! rustls (ring); optionally requiring clients to present a certificate signed by the CA.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::builder::TlsSpec;

/// The server side of TLS: the rustls configuration, the CA certificate clients must trust,
/// and a client identity the servers accept.
#[derive(Debug)]
pub(crate) struct TlsMaterial {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) ca_pem: String,
    /// The client certificate, PEM.
    client_cert_pem: String,
    /// The client key, PKCS#8 DER.
    client_key_der: Vec<u8>,
}

impl TlsMaterial {
    /// The client certificate followed by its key, PEM: the key as `PRIVATE KEY`, or with a
    /// `password` as `ENCRYPTED PRIVATE KEY` (PBES2: PBKDF2-SHA256, AES-256-CBC).
    pub(crate) fn client_identity_pem(&self, password: Option<&str>) -> Result<String, String> {
        let key = match password {
            None => {
                pkcs8::der::pem::encode_string("PRIVATE KEY", pkcs8::LineEnding::LF, &self.client_key_der)
                    .map_err(|e| e.to_string())?
            }
            Some(password) => {
                let info = pkcs8::PrivateKeyInfo::try_from(self.client_key_der.as_slice())
                    .map_err(|e| e.to_string())?;
                // Fixed salt and IV: test material, and no randomness needed.
                let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
                    2048,
                    b"sdam-testserver",
                    &[7; 16],
                )
                .map_err(|e| e.to_string())?;
                let encrypted = info.encrypt_with_params(params, password).map_err(|e| e.to_string())?;
                encrypted
                    .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
                    .map_err(|e| e.to_string())?
                    .to_string()
            }
        };
        Ok(format!("{}{key}", self.client_cert_pem))
    }
}

/// Generates a fresh CA, server certificate and client certificate: the default spec (names
/// `localhost` and `127.0.0.1`, no client certificate required).
pub(crate) fn generate() -> Result<TlsMaterial, String> {
    generate_with(&TlsSpec::default())
}

/// Generates fresh TLS material as `spec` says.
pub(crate) fn generate_with(spec: &TlsSpec) -> Result<TlsMaterial, String> {
    fn err(what: &'static str) -> impl Fn(rcgen::Error) -> String {
        move |e| format!("generating the test {what}: {e}")
    }
    let ca_key = KeyPair::generate().map_err(err("CA key"))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err("CA"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "sdam-testserver CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err("CA certificate"))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(err("server key"))?;
    let mut params = CertificateParams::new(spec.server_names.clone()).map_err(err("server"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, spec.server_names.first().map_or("server", String::as_str));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let server_cert = params.signed_by(&server_key, &issuer).map_err(err("server certificate"))?;

    let client_key = KeyPair::generate().map_err(err("client key"))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err("client"))?;
    params.distinguished_name.push(DnType::CommonName, "sdam-test-client");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let client_cert = params.signed_by(&client_key, &issuer).map_err(err("client certificate"))?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("configuring the test TLS server: {e}"))?;
    let builder = if spec.require_client_certificate {
        let mut roots = RootCertStore::empty();
        roots.add(ca_cert.der().clone()).map_err(|e| format!("trusting the test CA: {e}"))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("configuring client certificate checks: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(vec![server_cert.der().clone()], key)
        .map_err(|e| format!("configuring the test TLS server: {e}"))?;
    Ok(TlsMaterial {
        config: Arc::new(config),
        ca_pem: ca_cert.pem(),
        client_cert_pem: client_cert.pem(),
        client_key_der: client_key.serialize_der(),
    })
}
