//! A connection string to a topology configuration and TLS options (`Client::from_uri`).

use sdam::{ConnectionString, TopologyConfig};

use crate::{Error, TlsOptions};

/// Parses a `mongodb://` or `mongodb+srv://` connection string into the topology
/// configuration and the TLS options it asks for (`tls=true` or `mongodb+srv` without
/// `tls=false`, with `tlsCAFile` and `tlsAllowInvalidCertificates` / `tlsInsecure`); `None`:
/// plain TCP. An adapter built without TLS support refuses `Some`.
pub fn config_from_uri(uri: &str) -> Result<(TopologyConfig, Option<TlsOptions>), Error> {
    let cs = ConnectionString::parse(uri)?;
    let config = TopologyConfig::from_connection_string(&cs);
    let o = cs.options();
    let tls = cs.tls_enabled().then(|| TlsOptions {
        ca_file: o.tls_ca_file.as_ref().map(Into::into),
        allow_invalid_certificates: o.tls_allow_invalid_certificates.or(o.tls_insecure).unwrap_or(false),
    });
    Ok((config, tls))
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
            Some(TlsOptions {
                ca_file: Some(PathBuf::from("/etc/ca.pem")),
                allow_invalid_certificates: false
            })
        );
        let (_, tls) = config_from_uri("mongodb://a/?tls=true&tlsInsecure=true").unwrap();
        assert!(tls.unwrap().allow_invalid_certificates);
        let (_, tls) = config_from_uri("mongodb://a/?tls=true&tlsAllowInvalidCertificates=true").unwrap();
        assert!(tls.unwrap().allow_invalid_certificates);
        // mongodb+srv implies TLS unless told otherwise.
        let (_, tls) = config_from_uri("mongodb+srv://cluster0.example.com/").unwrap();
        assert_eq!(tls, Some(TlsOptions::default()));
        let (_, tls) = config_from_uri("mongodb+srv://cluster0.example.com/?tls=false").unwrap();
        assert_eq!(tls, None);
    }

    #[test]
    fn bad_connection_strings_are_errors() {
        assert!(matches!(config_from_uri("http://a"), Err(Error::ConnectionString(_))));
    }
}
