//! The shared scenario suite (sdam-testserver) against the std adapter, over real loopback
//! TCP, plus adapter-specific integration tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::{ApplicationError, Event, ServerAddress, TopologyConfig, TopologyDescription};
use sdam_std::{Client, ClientEvent, ClientOptions, Subscription};
use sdam_testserver::scenarios::{EventStream, Harness};

struct StdHarness(Client);

struct StdEvents(Subscription);

impl EventStream for StdEvents {
    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.0.recv_timeout(left)? {
                ClientEvent::Sdam(event) => return Some(event),
                _ => continue,
            }
        }
    }
}

impl Harness for StdHarness {
    type Events = StdEvents;

    fn start(config: TopologyConfig, tls_ca_file: Option<&Path>) -> Result<Self, String> {
        #[allow(unused_mut)]
        let mut options = ClientOptions::default();
        match tls_ca_file {
            #[cfg(feature = "tls")]
            Some(path) => {
                options.tls = Some(sdam_std::TlsOptions {
                    ca_file: Some(path.to_owned()),
                    allow_invalid_certificates: false,
                });
            }
            #[cfg(not(feature = "tls"))]
            Some(_) => return Err("built without the tls feature".into()),
            None => {}
        }
        Client::with_options(config, options).map(Self).map_err(|e| e.to_string())
    }

    fn select(&self, criteria: SelectionCriteria) -> Result<ServerAddress, String> {
        self.0.select_server(criteria).map(|guard| guard.address().clone()).map_err(|e| e.to_string())
    }

    fn description(&self) -> Arc<TopologyDescription> {
        self.0.description()
    }

    fn nodes(&self) -> Vec<ServerAddress> {
        self.0.nodes()
    }

    fn report_error(&self, error: ApplicationError) {
        self.0.report_error(error);
    }

    fn subscribe(&self) -> StdEvents {
        StdEvents(self.0.subscribe())
    }

    fn close(&self) {
        self.0.close();
    }
}

sdam_testserver::scenario_tests!(StdHarness);
