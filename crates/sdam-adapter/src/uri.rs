//! A connection string to a topology configuration and TLS options (`Client::from_uri`).

use sdam::connection_string::Warning;
use sdam::{ConnectionString, ServerAddress, TopologyConfig};

use crate::socks5::{ProxyOptions, DEFAULT_PROXY_PORT};
use crate::{Error, TlsOptions};

/// What a connection string asks of an adapter: the topology configuration, TLS and a
/// SOCKS5 proxy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UriSettings {
    /// The core's configuration (seeds, replica set name, timeouts, monitoring mode, ...).
    pub topology: TopologyConfig,
    /// TLS (`tls=true`, or `mongodb+srv` without `tls=false`); `None`: plain TCP.
    pub tls: Option<TlsOptions>,
    /// A SOCKS5 proxy for every monitoring connection (`proxyHost`, ...); `None`: direct.
    pub proxy: Option<ProxyOptions>,
}

/// Parses a `mongodb://` or `mongodb+srv://` connection string into what the adapters need.
///
/// Every option that changes how or where a monitoring connection connects is honoured or
/// refused here, with an error naming it; none is ignored:
///
/// | options | what happens |
/// | --- | --- |
/// | hosts, `replicaSet`, `directConnection`, `loadBalanced`, `srvServiceName`, `srvMaxHosts`, `heartbeatFrequencyMS`, `serverMonitoringMode`, `connectTimeoutMS`, `appName`, `compressors` | the core's configuration (the handshake offers the compressors; monitoring messages are never compressed, OP_COMPRESSED.md) |
/// | `tls`/`ssl`, `tlsCAFile`, `tlsCertificateKeyFile`, `tlsCertificateKeyFilePassword`, `tlsAllowInvalidCertificates`, `tlsAllowInvalidHostnames`, `tlsInsecure` | [`TlsOptions`]; any of them while TLS is off is refused |
/// | `tlsDisableOCSPEndpointCheck`, `tlsDisableCertificateRevocationCheck` | `true` is what happens (rustls checks neither); `false` is refused |
/// | `proxyHost`, `proxyPort`, `proxyUsername`, `proxyPassword` | [`ProxyOptions`] (socks5.md); a Unix domain socket host with a proxy is refused |
/// | an invalid value of any of these (which the connection string spec would only warn about and ignore) | refused |
/// | an unknown option named like a TLS or proxy option (`tlsCRLFile`, `sslPEMKeyFile`, `proxyType`, ...) | refused |
///
/// Options about application connections (pool sizes, `socketTimeoutMS`, credentials and
/// `authMechanism`: monitoring connections do not authenticate, read and write concerns,
/// `timeoutMS`, ...) do not change monitoring connections and are left to the driver. An
/// adapter built without TLS support refuses `tls: Some`.
pub fn config_from_uri(uri: &str) -> Result<UriSettings, Error> {
    let cs = ConnectionString::parse(uri)?;
    refuse_invalid_connection_values(&cs)?;
    let topology = TopologyConfig::from_connection_string(&cs);
    let tls = tls_options(&cs)?;
    let proxy = proxy_options(&cs)?;
    Ok(UriSettings { topology, tls, proxy })
}

/// Options whose value changes how or where monitoring connections connect.
const CONNECTION_OPTIONS: [&str; 23] = [
    "tls",
    "ssl",
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "tlsCertificateKeyFilePassword",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
    "tlsInsecure",
    "tlsDisableOCSPEndpointCheck",
    "tlsDisableCertificateRevocationCheck",
    "proxyHost",
    "proxyPort",
    "proxyUsername",
    "proxyPassword",
    "directConnection",
    "loadBalanced",
    "replicaSet",
    "srvServiceName",
    "srvMaxHosts",
    "connectTimeoutMS",
    "heartbeatFrequencyMS",
    "serverMonitoringMode",
    "compressors",
];

/// The connection string spec ignores an invalid value with a warning; for an option that
/// decides how or where to connect (`tls=yes please` would mean plaintext) that is refused.
fn refuse_invalid_connection_values(cs: &ConnectionString) -> Result<(), Error> {
    for warning in cs.warnings() {
        if let Warning::UnsupportedOption { option } = warning {
            // An unknown option named like a TLS or proxy setting (another driver's
            // `tlsCRLFile`, a legacy `sslPEMKeyFile`) would otherwise change nothing.
            let lower = option.to_ascii_lowercase();
            if ["tls", "ssl", "proxy"].iter().any(|prefix| lower.starts_with(prefix)) {
                return Err(Error::Unsupported(format!(
                    "{option}: unknown option; it looks like a TLS or proxy setting, which is not ignored"
                )));
            }
        }
        if let Warning::InvalidValue { option, value, expected } = warning {
            if CONNECTION_OPTIONS.iter().any(|o| o.eq_ignore_ascii_case(option)) {
                let shown =
                    if option.to_ascii_lowercase().contains("password") { "<redacted>" } else { value };
                return Err(Error::Unsupported(format!(
                    "{option}: invalid value {shown:?} (expected {expected}); it decides how monitoring connections connect, so it is not ignored"
                )));
            }
        }
    }
    Ok(())
}

/// The SOCKS5 proxy of `cs` (socks5.md, "MongoClient Configuration"); the parser has
/// already refused `proxyPort` and the credentials without `proxyHost`, and a username
/// without a password or the other way round.
fn proxy_options(cs: &ConnectionString) -> Result<Option<ProxyOptions>, Error> {
    let o = cs.options();
    let Some(host) = o.proxy_host.clone() else { return Ok(None) };
    if let Some(unix) = cs.hosts().iter().find(|h| matches!(h, ServerAddress::Unix { .. })) {
        return Err(Error::Unsupported(format!(
            "proxyHost: {unix} is a Unix domain socket, which cannot be reached through a SOCKS5 proxy"
        )));
    }
    let credentials = o.proxy_username.clone().zip(o.proxy_password.as_ref().map(|p| p.expose().to_owned()));
    Ok(Some(ProxyOptions { host, port: o.proxy_port.unwrap_or(DEFAULT_PROXY_PORT), credentials }))
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
    use crate::ProxyOptions;

    fn tls_of(uri: &str) -> Result<Option<TlsOptions>, Error> {
        config_from_uri(uri).map(|s| s.tls)
    }

    #[test]
    fn tls_options_come_from_the_connection_string() {
        let UriSettings { topology: config, tls, .. } =
            config_from_uri("mongodb://a,b/?replicaSet=rs0").unwrap();
        assert_eq!(config.replica_set_name.as_deref(), Some("rs0"));
        assert_eq!(config.seeds.len(), 2);
        assert_eq!(tls, None);
        let tls = tls_of("mongodb://a/?tls=true&tlsCAFile=/etc/ca.pem").unwrap();
        assert_eq!(
            tls,
            Some(TlsOptions { ca_file: Some(PathBuf::from("/etc/ca.pem")), ..TlsOptions::default() })
        );
        let tls = tls_of("mongodb://a/?tls=true&tlsInsecure=true").unwrap();
        let tls = tls.unwrap();
        assert!(tls.allow_invalid_certificates && tls.allow_invalid_hostnames);
        let tls = tls_of("mongodb://a/?tls=true&tlsAllowInvalidCertificates=true").unwrap();
        let tls = tls.unwrap();
        assert!(tls.allow_invalid_certificates && !tls.allow_invalid_hostnames);
        let tls = tls_of("mongodb://a/?tls=true&tlsAllowInvalidHostnames=true").unwrap();
        let tls = tls.unwrap();
        assert!(!tls.allow_invalid_certificates && tls.allow_invalid_hostnames);
        let tls = tls_of(
            "mongodb://a/?tls=true&tlsCertificateKeyFile=/etc/client.pem&tlsCertificateKeyFilePassword=s%3Dcret",
        )
        .unwrap();
        let tls = tls.unwrap();
        assert_eq!(tls.certificate_key_file, Some(PathBuf::from("/etc/client.pem")));
        assert_eq!(tls.certificate_key_file_password.as_deref(), Some("s=cret"));
        assert!(!format!("{tls:?}").contains("s=cret"), "the password is redacted: {tls:?}");
        // Revocation checks are not performed; disabling them is what happens anyway.
        let tls = tls_of("mongodb://a/?tls=true&tlsDisableOCSPEndpointCheck=true").unwrap();
        assert!(tls.is_some());
        // mongodb+srv implies TLS unless told otherwise.
        let tls = tls_of("mongodb+srv://cluster0.example.com/").unwrap();
        assert_eq!(tls, Some(TlsOptions::default()));
        let tls = tls_of("mongodb+srv://cluster0.example.com/?tls=false").unwrap();
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
    fn proxy_options_come_from_the_connection_string() {
        let settings = config_from_uri("mongodb://db.internal:27017/?proxyHost=proxy.local").unwrap();
        assert_eq!(settings.proxy, Some(ProxyOptions::new("proxy.local", 1080)));
        let settings = config_from_uri(
            "mongodb://a/?proxyHost=127.0.0.1&proxyPort=9050&proxyUsername=u&proxyPassword=p%40ss",
        )
        .unwrap();
        assert_eq!(
            settings.proxy,
            Some(ProxyOptions {
                credentials: Some(("u".into(), "p@ss".into())),
                ..ProxyOptions::new("127.0.0.1", 9050)
            })
        );
        assert_eq!(config_from_uri("mongodb://a/").unwrap().proxy, None);
    }

    /// Every option that changes how or where monitoring connections connect is honoured
    /// or refused with an error that names it.
    #[test]
    fn connection_options_that_cannot_be_honoured_are_refused_by_name() {
        for (uri, name) in [
            // Invalid values the connection string spec would ignore with a warning.
            ("mongodb://a/?tls=maybe", "tls"),
            ("mongodb://a/?ssl=1x", "ssl"),
            ("mongodb://a/?tls=true&tlsAllowInvalidHostnames=perhaps", "tlsAllowInvalidHostnames"),
            ("mongodb://a/?tls=true&tlsInsecure=2", "tlsInsecure"),
            ("mongodb://a/?proxyHost=p&proxyPort=http", "proxyPort"),
            ("mongodb://a/?proxyHost=p&proxyPort=70000", "proxyPort"),
            ("mongodb://a/?directConnection=sometimes", "directConnection"),
            ("mongodb://a/?loadBalanced=yes-please", "loadBalanced"),
            ("mongodb://a/?connectTimeoutMS=-5", "connectTimeoutMS"),
            ("mongodb://a/?heartbeatFrequencyMS=10", "heartbeatFrequencyMS"),
            ("mongodb://a/?serverMonitoringMode=sometimes", "serverMonitoringMode"),
            ("mongodb+srv://c.example.com/?srvMaxHosts=-1", "srvMaxHosts"),
            // Unknown options that look like TLS or proxy settings.
            ("mongodb://a/?tls=true&tlsCRLFile=/etc/crl.pem", "tlsCRLFile"),
            ("mongodb://a/?sslPEMKeyFile=/etc/key.pem", "sslPEMKeyFile"),
            ("mongodb://a/?proxyHost=p&proxyType=http", "proxyType"),
            // A proxy cannot reach a Unix domain socket.
            ("mongodb://%2Ftmp%2Fmongodb-27017.sock/?proxyHost=p", "proxyHost"),
        ] {
            let error = config_from_uri(uri).expect_err(uri).to_string();
            assert!(error.starts_with(&format!("{name}:")), "{uri}: {error}");
        }
        // The spec's own rules stay the parser's errors, and name the option too.
        for (uri, name) in [
            ("mongodb://a/?proxyPort=1080", "proxyPort"),
            ("mongodb://a/?proxyHost=p&proxyUsername=u", "proxyUsername"),
            ("mongodb://a,b/?directConnection=true", "directConnection"),
        ] {
            let error = config_from_uri(uri).expect_err(uri).to_string();
            assert!(error.contains(name), "{uri}: {error}");
        }
        // Options about application connections are not the monitors' business and pass.
        assert!(config_from_uri("mongodb://a/?socketTimeoutMS=100&maxPoolSize=5&compressors=zlib&appName=x")
            .is_ok());
    }

    #[test]
    fn bad_connection_strings_are_errors() {
        assert!(matches!(config_from_uri("http://a"), Err(Error::ConnectionString(_))));
    }
}
