//! A connection string to a topology configuration and TLS options (`Client::from_uri`).

use sdam::{ConnectionString, TopologyConfig};

use crate::{Error, TlsOptions};

/// Parses a `mongodb://` or `mongodb+srv://` connection string into the topology
/// configuration and the TLS options it asks for (`tls=true` or `mongodb+srv` without
/// `tls=false`, with `tlsCAFile`, `tlsCertificateKeyFile`, `tlsCertificateKeyFilePassword`,
/// `tlsAllowInvalidCertificates`, `tlsAllowInvalidHostnames`, `tlsInsecure`); `None`: plain
/// TCP. An adapter built without TLS support refuses `Some`. A TLS option that cannot be
/// honoured (set while TLS is off, or asking for revocation checks) is an
/// [`Error::Unsupported`] naming it.
pub fn config_from_uri(uri: &str) -> Result<(TopologyConfig, Option<TlsOptions>), Error> {
    let cs = ConnectionString::parse(uri)?;
    let config = TopologyConfig::from_connection_string(&cs);
    let tls = tls_options(&cs)?;
    Ok((config, tls))
}

/// The TLS options of `cs` (uri-options.md, "TLS options"), or `None` for plain TCP. The
/// parser has already refused the conflicting combinations (`tlsInsecure` with
/// `tlsAllowInvalidCertificates`, ...).
fn tls_options(cs: &ConnectionString) -> Result<Option<TlsOptions>, Error> {
    let o = cs.options();
    let refuse = |why: String| Err(Error::Unsupported(why));
    if !cs.tls_enabled() {
        // A TLS setting on a plaintext connection would silently do nothing.
        let given = [
            ("tlsCAFile", o.tls_ca_file.is_some()),
            ("tlsCertificateKeyFile", o.tls_certificate_key_file.is_some()),
            ("tlsCertificateKeyFilePassword", o.tls_certificate_key_file_password.is_some()),
            ("tlsAllowInvalidCertificates", o.tls_allow_invalid_certificates.is_some()),
            ("tlsAllowInvalidHostnames", o.tls_allow_invalid_hostnames.is_some()),
            ("tlsInsecure", o.tls_insecure.is_some()),
            ("tlsDisableOCSPEndpointCheck", o.tls_disable_ocsp_endpoint_check.is_some()),
            ("tlsDisableCertificateRevocationCheck", o.tls_disable_certificate_revocation_check.is_some()),
        ];
        if let Some((name, _)) = given.iter().find(|(_, set)| *set) {
            return refuse(format!("{name} is set but TLS is off: add tls=true"));
        }
        return Ok(None);
    }
    // rustls checks neither OCSP nor revocation lists: "disable" is what happens anyway, and
    // asking for the checks cannot be honoured.
    for (name, value) in [
        ("tlsDisableOCSPEndpointCheck", o.tls_disable_ocsp_endpoint_check),
        ("tlsDisableCertificateRevocationCheck", o.tls_disable_certificate_revocation_check),
    ] {
        if value == Some(false) {
            return refuse(format!(
                "{name}=false asks for certificate revocation checks, which these adapters (rustls) do not perform"
            ));
        }
    }
    let insecure = o.tls_insecure.unwrap_or(false);
    Ok(Some(TlsOptions {
        ca_file: o.tls_ca_file.as_ref().map(Into::into),
        certificate_key_file: o.tls_certificate_key_file.as_ref().map(Into::into),
        certificate_key_file_password: o
            .tls_certificate_key_file_password
            .as_ref()
            .map(|p| p.expose().to_owned()),
        allow_invalid_certificates: o.tls_allow_invalid_certificates.unwrap_or(insecure),
        allow_invalid_hostnames: o.tls_allow_invalid_hostnames.unwrap_or(insecure),
    }))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn tls_options_come_from_the_connection_string() {
        let (config, tls) = config_from_uri("mongodb://a,b/?replicaSet=rs0").unwrap();
        assert_eq!(config.replica_set_name.as_deref(), Some("rs0"));
        assert_eq!(config.seeds.len(), 2);
        assert_eq!(tls, None);
        let (_, tls) = config_from_uri("mongodb://a/?tls=true&tlsCAFile=/etc/ca.pem").unwrap();
        assert_eq!(
            tls,
            Some(TlsOptions { ca_file: Some(PathBuf::from("/etc/ca.pem")), ..TlsOptions::default() })
        );
        let (_, tls) = config_from_uri("mongodb://a/?tls=true&tlsInsecure=true").unwrap();
        let tls = tls.unwrap();
        assert!(tls.allow_invalid_certificates && tls.allow_invalid_hostnames);
        let (_, tls) = config_from_uri("mongodb://a/?tls=true&tlsAllowInvalidCertificates=true").unwrap();
        let tls = tls.unwrap();
        assert!(tls.allow_invalid_certificates && !tls.allow_invalid_hostnames);
        let (_, tls) = config_from_uri("mongodb://a/?tls=true&tlsAllowInvalidHostnames=true").unwrap();
        let tls = tls.unwrap();
        assert!(!tls.allow_invalid_certificates && tls.allow_invalid_hostnames);
        let (_, tls) = config_from_uri(
            "mongodb://a/?tls=true&tlsCertificateKeyFile=/etc/client.pem&tlsCertificateKeyFilePassword=s%3Dcret",
        )
        .unwrap();
        let tls = tls.unwrap();
        assert_eq!(tls.certificate_key_file, Some(PathBuf::from("/etc/client.pem")));
        assert_eq!(tls.certificate_key_file_password.as_deref(), Some("s=cret"));
        assert!(!format!("{tls:?}").contains("s=cret"), "the password is redacted: {tls:?}");
        // Revocation checks are not performed; disabling them is what happens anyway.
        let (_, tls) = config_from_uri("mongodb://a/?tls=true&tlsDisableOCSPEndpointCheck=true").unwrap();
        assert!(tls.is_some());
        // mongodb+srv implies TLS unless told otherwise.
        let (_, tls) = config_from_uri("mongodb+srv://cluster0.example.com/").unwrap();
        assert_eq!(tls, Some(TlsOptions::default()));
        let (_, tls) = config_from_uri("mongodb+srv://cluster0.example.com/?tls=false").unwrap();
        assert_eq!(tls, None);
    }

    #[test]
    fn tls_options_that_cannot_be_honoured_are_refused_by_name() {
        for (uri, name) in [
            ("mongodb://a/?tlsCAFile=/etc/ca.pem", "tlsCAFile"),
            ("mongodb://a/?tls=false&tlsCertificateKeyFile=/c.pem", "tlsCertificateKeyFile"),
            (
                "mongodb+srv://c.example.com/?tls=false&tlsAllowInvalidHostnames=true",
                "tlsAllowInvalidHostnames",
            ),
            ("mongodb://a/?tls=true&tlsDisableOCSPEndpointCheck=false", "tlsDisableOCSPEndpointCheck"),
            (
                "mongodb://a/?tls=true&tlsDisableCertificateRevocationCheck=false",
                "tlsDisableCertificateRevocationCheck",
            ),
        ] {
            let error = config_from_uri(uri).unwrap_err().to_string();
            assert!(error.starts_with(name), "{uri}: {error}");
        }
        // The spec's conflicts are the parser's.
        assert!(
            config_from_uri("mongodb://a/?tls=true&tlsInsecure=true&tlsAllowInvalidHostnames=true").is_err()
        );
    }

    #[test]
    fn bad_connection_strings_are_errors() {
        assert!(matches!(config_from_uri("http://a"), Err(Error::ConnectionString(_))));
    }
}
