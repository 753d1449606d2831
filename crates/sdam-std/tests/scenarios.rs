//! The shared scenario suite (sdam-testserver) against the std adapter, over real loopback
//! TCP, plus adapter-specific integration tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::{ApplicationError, Event, ServerAddress, TopologyConfig, TopologyDescription};
use sdam_std::{Client, ClientEvent, ClientOptions, Subscription};
use sdam_testserver::scenarios::{EventStream, Harness};

#[path = "scenarios/environment.rs"]
mod environment;
#[path = "scenarios/pool_ready.rs"]
mod pool_ready;

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

fn wait_for(client: &Client, what: &str, check: impl Fn(&TopologyDescription) -> bool) {
    let start = std::time::Instant::now();
    while !check(&client.description()) {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn from_uri_and_guards() {
    use sdam_testserver::{MemberSpec, ReplicaSet, Role};
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .unwrap();
    let client =
        Client::from_uri(&format!("{}&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=5000", set.uri()))
            .unwrap();
    let guard = client.select_server(SelectionCriteria::write()).unwrap();
    assert_eq!(guard.address(), &set.address(0).unwrap());
    assert_eq!(guard.description().server_type, sdam::ServerType::RSPrimary);
    drop(guard);
    let before = set.hello_count(1).unwrap();
    client.request_check();
    client.request_check();
    wait_for(&client, "both members", |d| {
        d.servers.iter().all(|s| s.server_type != sdam::ServerType::Unknown)
    });
    assert!(set.hello_count(1).unwrap() >= before);
    client.close();
}

#[cfg(feature = "tls")]
#[test]
fn tls_from_uri_with_ca_file_and_with_invalid_certificates_allowed() {
    use sdam_testserver::{MemberSpec, ReplicaSet, Role};
    let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).tls().start().unwrap();
    let ca = sdam_testserver::scenarios::write_ca_file(&set).unwrap();
    let seed = set.address(0).unwrap();
    let uri = format!(
        "mongodb://{seed}/?replicaSet=rs0&tls=true&tlsCAFile={}&serverSelectionTimeoutMS=5000",
        ca.display()
    );
    let client = Client::from_uri(&uri).unwrap();
    assert_eq!(client.select_server(SelectionCriteria::write()).unwrap().address(), &seed);
    client.close();

    let uri = format!("mongodb://{seed}/?replicaSet=rs0&tls=true&tlsAllowInvalidCertificates=true&serverSelectionTimeoutMS=5000");
    let client = Client::from_uri(&uri).unwrap();
    assert_eq!(client.select_server(SelectionCriteria::write()).unwrap().address(), &seed);
    client.close();

    // Without the CA, the server's certificate is not trusted: the check error says so.
    let uri = format!("mongodb://{seed}/?replicaSet=rs0&tls=true&serverSelectionTimeoutMS=1000");
    let client = Client::from_uri(&uri).unwrap();
    let err = client.select_server(SelectionCriteria::write()).unwrap_err().to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    client.close();
    let _ = std::fs::remove_file(ca);

    let err = Client::from_uri("mongodb://a/?tls=true&tlsCAFile=/nonexistent/ca.pem").unwrap_err();
    assert!(err.to_string().contains("cannot read tlsCAFile /nonexistent/ca.pem"), "{err}");
}

#[test]
fn mongodb_srv_goes_through_the_dns_thread() {
    // `.invalid` never resolves (RFC 6761): whether the resolver answers NXDOMAIN, fails or
    // times out, the selection error names the SRV lookup.
    let client = Client::from_uri(
        "mongodb+srv://cluster0.example.invalid/?serverSelectionTimeoutMS=1500&connectTimeoutMS=500&tls=false",
    )
    .unwrap();
    assert!(client.nodes().is_empty());
    let err = client.select_server(SelectionCriteria::write()).unwrap_err().to_string();
    assert!(err.contains("cluster0.example.invalid"), "{err}");
    client.close();
}
