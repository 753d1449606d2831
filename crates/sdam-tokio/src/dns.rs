//! The DNS lookups the core asks for (`Command::ResolveSrv`, `Command::ResolveTxt`), with
//! hickory-resolver on the tokio runtime; `sdam_adapter::dns` maps its answers to the core's
//! records.

use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use sdam::connection_string::srv::{SrvRecord, TxtRecord};
use sdam_adapter::dns::{resolver_config, srv_answer, timed_out, txt_answer};
use sdam_adapter::DnsOptions;
use tokio::sync::OnceCell;

/// The resolver (the system's, or the name servers of [`DnsOptions`]), built on first use
/// (most clients never look anything up).
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    options: DnsOptions,
    cell: OnceCell<Result<Arc<TokioResolver>, String>>,
}

impl Resolver {
    pub(crate) fn new(options: DnsOptions) -> Self {
        Self { options, cell: OnceCell::new() }
    }

    async fn get(&self) -> Result<Arc<TokioResolver>, String> {
        self.cell
            .get_or_init(|| async {
                match resolver_config(&self.options) {
                    Some(config) => Ok(Arc::new(
                        TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                            .build()
                            .map_err(|e| {
                            format!(
                                "could not set up the DNS resolver for {:?}: {e}",
                                self.options.name_servers
                            )
                        })?,
                    )),
                    None => {
                        TokioResolver::builder_tokio().and_then(|b| b.build()).map(Arc::new).map_err(|e| {
                            format!("could not set up the DNS resolver from the system configuration: {e}")
                        })
                    }
                }
            })
            .await
            .clone()
    }

    /// Looks up the SRV records of `name` within `timeout`.
    pub(crate) async fn srv(&self, name: &str, timeout: Duration) -> Result<Vec<SrvRecord>, String> {
        let resolver = self.get().await?;
        match tokio::time::timeout(timeout, resolver.srv_lookup(name)).await {
            Ok(result) => srv_answer(name, result),
            Err(_) => Err(timed_out("SRV", name, timeout)),
        }
    }

    /// Looks up the TXT records of `name` within `timeout`.
    pub(crate) async fn txt(&self, name: &str, timeout: Duration) -> Result<Vec<TxtRecord>, String> {
        let resolver = self.get().await?;
        match tokio::time::timeout(timeout, resolver.txt_lookup(name)).await {
            Ok(result) => txt_answer(name, result),
            Err(_) => Err(timed_out("TXT", name, timeout)),
        }
    }
}
