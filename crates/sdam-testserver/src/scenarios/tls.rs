//! TLS: discovery over TLS with the test CA, and a plaintext client refused.

use std::path::PathBuf;
use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::ServerType;

use super::{addr, config, start, types_are, wait_for, Harness};
use crate::{Cluster, MemberSpec, ReplicaSet, Role};

fn tls_set() -> Cluster {
    ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .tls()
        .start()
        .expect("the TLS replica set starts")
}

/// Writes the cluster's CA to a file in the temporary directory (for `tlsCAFile`).
pub fn write_ca_file(cluster: &Cluster) -> std::io::Result<PathBuf> {
    let pem = cluster.ca_pem().ok_or_else(|| std::io::Error::other("not a TLS deployment"))?;
    let port = cluster.address(0).map_err(|e| std::io::Error::other(e.to_string()))?;
    let name = format!("sdam-testserver-ca-{}-{}.pem", std::process::id(), port.port().unwrap_or(0));
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, pem)?;
    Ok(path)
}

/// Over TLS, trusting the generated CA through `tlsCAFile`, the set is discovered and a
/// write goes to the primary.
pub fn tls_discovery<H: Harness>() {
    let set = tls_set();
    let (p, s) = (addr(&set, 0), addr(&set, 1));
    let ca = write_ca_file(&set).expect("the CA file is written");
    let client: H = start(config(&set, vec![s.clone()]), Some(&ca));
    wait_for(&client, "both members over TLS", Duration::from_secs(10), |d| {
        types_are(d, &[(&p, ServerType::RSPrimary), (&s, ServerType::RSSecondary)])
    });
    assert_eq!(client.select(SelectionCriteria::write()), Ok(p));
    client.close();
    let _ = std::fs::remove_file(ca);
}

/// A plaintext client cannot talk to a TLS server: selection fails with an explanation.
pub fn plaintext_client_against_tls_fails<H: Harness>() {
    let set = tls_set();
    let mut config = config(&set, set.addresses());
    config.server_selection_timeout = Duration::from_millis(1500);
    let client: H = start(config, None);
    let error = client.select(SelectionCriteria::write()).expect_err("no server can be used");
    assert!(!error.is_empty());
    client.close();
}
