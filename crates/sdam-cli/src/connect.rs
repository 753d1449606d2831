//! What `watch` and `select` share to reach a deployment: the connection string (with its TLS
//! options: `tls`, `tlsCAFile`, `tlsAllowInvalidCertificates`, `mongodb+srv` implying TLS),
//! a CA file and name servers given as flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use sdam::{ConnectionString, TopologyConfig};
use sdam_tokio::{ClientOptions, DnsOptions, TlsOptions};

/// How to reach the deployment.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectArgs {
    /// The connection string (`mongodb://host1,host2/?replicaSet=rs0` or `mongodb+srv://...`).
    pub(crate) uri: String,
    /// CA certificates (PEM) to verify the servers with; turns TLS on (like `tls=true&tlsCAFile=`).
    #[arg(long, value_name = "PATH")]
    pub(crate) tls_ca_file: Option<PathBuf>,
    /// A name server (`ip:port`) for the SRV and TXT lookups of `mongodb+srv`, instead of the
    /// system's; repeat for more.
    #[arg(long = "dns-server", value_name = "ADDR")]
    pub(crate) dns_servers: Vec<SocketAddr>,
}

impl ConnectArgs {
    /// The topology configuration and the adapter options; prints the connection string's
    /// warnings.
    pub(crate) fn client_parts(&self) -> Result<(TopologyConfig, ClientOptions), String> {
        let cs = ConnectionString::parse(&self.uri).map_err(|e| format!("invalid URI: {e}"))?;
        for warning in cs.warnings() {
            eprintln!("warning: {warning}");
        }
        let (config, tls) =
            sdam_adapter::config_from_uri(&self.uri).map_err(|e| format!("invalid URI: {e}"))?;
        let tls = match (&self.tls_ca_file, tls) {
            (Some(ca), tls) => Some(TlsOptions { ca_file: Some(ca.clone()), ..tls.unwrap_or_default() }),
            (None, tls) => tls,
        };
        let options = ClientOptions {
            tls,
            dns: DnsOptions { name_servers: self.dns_servers.clone() },
            ..ClientOptions::default()
        };
        Ok((config, options))
    }
}
