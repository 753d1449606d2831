//! TLS: discovery over TLS with the test CA, and a plaintext client refused.

use std::path::PathBuf;
use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::ServerType;

use super::{addr, config, start, types_are, wait_for, Harness};
use crate::{Cluster, MemberSpec, ReplicaSet, Role, Standalone, TlsSpec};

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
    write_pem(cluster, "ca", pem)
}

/// Writes `pem` to a file named after the cluster and `what` in the temporary directory.
pub fn write_pem(cluster: &Cluster, what: &str, pem: &str) -> std::io::Result<PathBuf> {
    let port = cluster.address(0).map_err(|e| std::io::Error::other(e.to_string()))?;
    let name = format!("sdam-testserver-{what}-{}-{}.pem", std::process::id(), port.port().unwrap_or(0));
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, pem)?;
    Ok(path)
}

/// The base URI of a one-server TLS deployment, with short timeouts.
fn base_uri(cluster: &Cluster) -> String {
    format!(
        "mongodb://{}/?tls=true&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=1500&connectTimeoutMS=1000",
        addr(cluster, 0)
    )
}

/// Starts a client from `uri` and selects a server for writes: its address or the explained
/// error.
fn select_from_uri<H: Harness>(uri: &str) -> Result<sdam::ServerAddress, String> {
    let client = H::from_uri(uri).map_err(|e| format!("from_uri: {e}"))?;
    let result = client.select(SelectionCriteria::write());
    client.close();
    result
}

/// A server that requires client certificates: reached with `tlsCertificateKeyFile` (plain
/// and encrypted keys with `tlsCertificateKeyFilePassword`, with `tlsCAFile` or with
/// `tlsAllowInvalidCertificates`); refused without a certificate; a wrong or missing
/// password is an error at `from_uri` that names the option.
pub fn tls_client_certificates<H: Harness>() {
    let spec = TlsSpec { require_client_certificate: true, ..TlsSpec::default() };
    let server = Standalone::builder().tls_with(spec).start().expect("the TLS server starts");
    let address = addr(&server, 0);
    let ca = write_ca_file(&server).expect("CA file");
    let plain =
        write_pem(&server, "client", &server.client_identity_pem(None).expect("identity")).expect("file");
    let password = "s3cret pass";
    let encrypted_pem = server.client_identity_pem(Some(password)).expect("encrypted identity");
    assert!(encrypted_pem.contains("ENCRYPTED PRIVATE KEY"));
    let encrypted = write_pem(&server, "client-encrypted", &encrypted_pem).expect("file");
    let base = base_uri(&server);
    let (ca_s, plain_s, encrypted_s) = (ca.display(), plain.display(), encrypted.display());

    let uri = format!("{base}&tlsCAFile={ca_s}&tlsCertificateKeyFile={plain_s}");
    assert_eq!(select_from_uri::<H>(&uri), Ok(address.clone()), "client certificate, plain key");
    let uri = format!(
        "{base}&tlsCAFile={ca_s}&tlsCertificateKeyFile={encrypted_s}&tlsCertificateKeyFilePassword=s3cret%20pass"
    );
    assert_eq!(select_from_uri::<H>(&uri), Ok(address.clone()), "client certificate, encrypted key");
    let uri = format!("{base}&tlsAllowInvalidCertificates=true&tlsCertificateKeyFile={plain_s}");
    assert_eq!(select_from_uri::<H>(&uri), Ok(address.clone()), "client certificate, any server certificate");

    let uri = format!(
        "{base}&tlsCAFile={ca_s}&tlsCertificateKeyFile={encrypted_s}&tlsCertificateKeyFilePassword=wrong"
    );
    let error = select_from_uri::<H>(&uri).expect_err("a wrong password");
    assert!(error.starts_with("from_uri") && error.contains("tlsCertificateKeyFilePassword"), "{error}");
    let uri = format!("{base}&tlsCAFile={ca_s}&tlsCertificateKeyFile={encrypted_s}");
    let error = select_from_uri::<H>(&uri).expect_err("no password");
    assert!(error.starts_with("from_uri") && error.contains("tlsCertificateKeyFilePassword"), "{error}");
    let uri = format!("{base}&tlsCAFile={ca_s}&tlsCertificateKeyFile=/nonexistent/client.pem");
    let error = select_from_uri::<H>(&uri).expect_err("no such file");
    assert!(error.contains("tlsCertificateKeyFile /nonexistent/client.pem"), "{error}");

    let uri = format!("{base}&tlsCAFile={ca_s}");
    let error = select_from_uri::<H>(&uri).expect_err("no client certificate");
    assert!(error.to_lowercase().contains("certificate"), "the check error says why: {error}");
    for path in [ca, plain, encrypted] {
        let _ = std::fs::remove_file(path);
    }
}

/// A server whose certificate names another host: refused by default, reached with
/// `tlsAllowInvalidHostnames` (the chain is still checked: without the CA it is refused) and
/// with `tlsInsecure`.
pub fn tls_host_name_checks<H: Harness>() {
    let spec = TlsSpec { server_names: vec!["db.elsewhere.example".into()], ..TlsSpec::default() };
    let server = Standalone::builder().tls_with(spec).start().expect("the TLS server starts");
    let address = addr(&server, 0);
    let ca = write_ca_file(&server).expect("CA file");
    let base = base_uri(&server);
    let ca_s = ca.display();

    let error = select_from_uri::<H>(&format!("{base}&tlsCAFile={ca_s}")).expect_err("wrong host name");
    assert!(error.contains("not valid for name"), "the check error says why: {error}");
    let uri = format!("{base}&tlsCAFile={ca_s}&tlsAllowInvalidHostnames=true");
    assert_eq!(select_from_uri::<H>(&uri), Ok(address.clone()), "tlsAllowInvalidHostnames");
    let error =
        select_from_uri::<H>(&format!("{base}&tlsAllowInvalidHostnames=true")).expect_err("unknown issuer");
    assert!(error.to_lowercase().contains("issuer"), "the chain is still checked: {error}");
    assert_eq!(select_from_uri::<H>(&format!("{base}&tlsInsecure=true")), Ok(address), "tlsInsecure");
    let _ = std::fs::remove_file(ca);
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
