//! The blocking [`Harness`] over the tokio client: it owns a multi-thread runtime and
//! `block_on`s the async calls.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::{ApplicationError, Event, ServerAddress, TopologyConfig, TopologyDescription};
use sdam_testserver::scenarios::{EventStream, Harness};
use sdam_tokio::{Client, ClientEvent, ClientOptions, Subscription};
use tokio::runtime::Runtime;

/// A tokio client on its own runtime. Field order matters: the client is dropped first.
pub(crate) struct TokioHarness {
    client: Client,
    runtime: Arc<Runtime>,
}

/// A subscription read by blocking on the harness's runtime.
pub(crate) struct TokioEvents {
    subscription: Subscription,
    runtime: Arc<Runtime>,
}

pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

impl Harness for TokioHarness {
    type Events = TokioEvents;

    fn start(config: TopologyConfig, tls_ca_file: Option<&Path>) -> Result<Self, String> {
        let runtime = Arc::new(runtime());
        #[allow(unused_mut)]
        let mut options = ClientOptions::default();
        match tls_ca_file {
            #[cfg(feature = "tls")]
            Some(ca) => {
                options.tls =
                    Some(sdam_tokio::TlsOptions { ca_file: Some(ca.to_path_buf()), ..Default::default() });
            }
            #[cfg(not(feature = "tls"))]
            Some(_) => return Err("TLS needs the tls feature".into()),
            None => {}
        }
        let _inside = runtime.enter();
        let client = Client::with_options(config, options).map_err(|e| e.to_string())?;
        Ok(Self { client, runtime: Arc::clone(&runtime) })
    }

    fn from_uri(uri: &str) -> Result<Self, String> {
        let runtime = Arc::new(runtime());
        let _inside = runtime.enter();
        let client = Client::from_uri(uri).map_err(|e| e.to_string())?;
        Ok(Self { client, runtime: Arc::clone(&runtime) })
    }

    fn select(&self, criteria: SelectionCriteria) -> Result<ServerAddress, String> {
        self.runtime
            .block_on(self.client.select_server(criteria))
            .map(|guard| guard.address().clone())
            .map_err(|e| e.to_string())
    }

    fn description(&self) -> Arc<TopologyDescription> {
        self.client.description()
    }

    fn nodes(&self) -> Vec<ServerAddress> {
        self.client.nodes()
    }

    fn report_error(&self, error: ApplicationError) {
        self.client.report_error(error);
    }

    fn subscribe(&self) -> TokioEvents {
        TokioEvents { subscription: self.client.subscribe(), runtime: Arc::clone(&self.runtime) }
    }

    fn close(&self) {
        self.runtime.block_on(self.client.close());
        let stats = self.client.driver_stats();
        assert_eq!(
            (stats.live_tasks, stats.open_connections),
            (0, 0),
            "close() left tasks or sockets: {stats:?}"
        );
        // The runtime releases a finished task just after waking its JoinHandle: allow a moment.
        let start = std::time::Instant::now();
        while self.runtime.metrics().num_alive_tasks() != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "tasks still alive on the runtime after close()"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl EventStream for TokioEvents {
    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let subscription = &mut self.subscription;
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, async {
                loop {
                    match subscription.recv().await? {
                        ClientEvent::Sdam(event) => return Some(event),
                        _ => continue,
                    }
                }
            })
            .await
            .ok()
            .flatten()
        })
    }
}
