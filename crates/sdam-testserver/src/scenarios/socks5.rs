//! SOCKS5 (socks5-support/socks5.md) through a real proxy on loopback: every monitoring
//! connection goes through it, with and without a username and password, the destination name
//! is sent to the proxy unresolved, TLS runs over the tunnel, a refusing proxy fails the check
//! as a network error, and a stalling one within connectTimeoutMS.

use std::time::{Duration, Instant};

use sdam::selection::SelectionCriteria;
use sdam::{Event, ServerAddress};

use super::{addr, EventStream, Harness};
use crate::socks5_proxy::{ProxyBehaviour, Socks5Proxy};
use crate::{MemberSpec, ReplicaSet, Role, Standalone};

fn proxy_query(proxy: &Socks5Proxy) -> String {
    format!(
        "proxyHost=127.0.0.1&proxyPort={}&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=3000&connectTimeoutMS=1000",
        proxy.port()
    )
}

fn select_from_uri<H: Harness>(uri: &str) -> Result<ServerAddress, String> {
    let client = H::from_uri(uri).map_err(|e| format!("from_uri: {e}"))?;
    let result = client.select(SelectionCriteria::write());
    client.close();
    result
}

fn password_proxy() -> Socks5Proxy {
    Socks5Proxy::start(ProxyBehaviour::Password { username: "monitor".into(), password: "s3cret".into() })
        .expect("the proxy starts")
}

/// A replica set monitored through a proxy without authentication: every member is reached
/// through it, and a name only the proxy can resolve works as a seed.
pub fn socks5_without_authentication<H: Harness>() {
    let proxy = Socks5Proxy::start(ProxyBehaviour::Open).expect("the proxy starts");
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .expect("the replica set starts");
    let (primary, secondary) = (addr(&set, 0), addr(&set, 1));
    let uri = format!("mongodb://{secondary}/?replicaSet=rs0&{}", proxy_query(&proxy));
    assert_eq!(select_from_uri::<H>(&uri), Ok(primary.clone()));
    let requested = proxy.requested();
    for member in [&primary, &secondary] {
        assert!(requested.contains(&member.to_string()), "{member} through the proxy: {requested:?}");
    }

    let server = Standalone::builder().start().expect("the standalone starts");
    let port = addr(&server, 0).port().unwrap_or(0);
    let alias = format!("{}:{port}", Socks5Proxy::ALIAS);
    let uri = format!("mongodb://{alias}/?{}", proxy_query(&proxy));
    assert_eq!(
        select_from_uri::<H>(&uri).map(|a| a.to_string()),
        Ok(alias.clone()),
        "the name is resolved by the proxy only"
    );
    assert!(proxy.requested().contains(&alias), "the name was sent unresolved: {:?}", proxy.requested());
}

/// A proxy that requires a username and password, and TLS over the tunnel with the server's
/// real name checked against its certificate.
#[cfg(feature = "tls")]
pub fn socks5_with_credentials_and_tls<H: Harness>() {
    let proxy = password_proxy();
    let spec = crate::TlsSpec { server_names: vec![Socks5Proxy::ALIAS.into()], ..crate::TlsSpec::default() };
    let server = Standalone::builder().tls_with(spec).start().expect("the TLS standalone starts");
    let ca = super::write_ca_file(&server).expect("CA file");
    let port = addr(&server, 0).port().unwrap_or(0);
    let alias = format!("{}:{port}", Socks5Proxy::ALIAS);
    let uri = format!(
        "mongodb://{alias}/?tls=true&tlsCAFile={}&proxyUsername=monitor&proxyPassword=s3cret&{}",
        ca.display(),
        proxy_query(&proxy)
    );
    assert_eq!(select_from_uri::<H>(&uri).map(|a| a.to_string()), Ok(alias.clone()));
    assert_eq!(proxy.requested(), vec![alias]);
    let _ = std::fs::remove_file(ca);
}

/// Refusals are network errors that say what the proxy refused: bad credentials, no
/// acceptable authentication method, a CONNECT not allowed.
pub fn socks5_refusals<H: Harness>() {
    let server = Standalone::builder().start().expect("the standalone starts");
    let seed = addr(&server, 0);
    let proxy = password_proxy();
    let uri = format!("mongodb://{seed}/?proxyUsername=monitor&proxyPassword=wrong&{}", proxy_query(&proxy));
    let error = select_from_uri::<H>(&uri).expect_err("bad credentials");
    assert!(error.contains("refused the username and password"), "{error}");
    let uri = format!("mongodb://{seed}/?{}", proxy_query(&proxy));
    let error = select_from_uri::<H>(&uri).expect_err("no credentials");
    assert!(error.contains("none of the offered authentication methods"), "{error}");

    let proxy = Socks5Proxy::start(ProxyBehaviour::RefuseConnections).expect("the proxy starts");
    let uri = format!("mongodb://{seed}/?{}", proxy_query(&proxy));
    let error = select_from_uri::<H>(&uri).expect_err("connection not allowed");
    assert!(error.contains("connection not allowed by ruleset"), "{error}");
}

/// A proxy that never answers the greeting fails the check within connectTimeoutMS (1000 ms,
/// asserted with a 10 % margin), saying it timed out.
pub fn socks5_stalling_proxy_keeps_the_deadline<H: Harness>() {
    let server = Standalone::builder().start().expect("the standalone starts");
    let proxy = Socks5Proxy::start(ProxyBehaviour::Stall).expect("the proxy starts");
    let uri = format!("mongodb://{}/?{}", addr(&server, 0), proxy_query(&proxy));
    let started = Instant::now();
    let client = H::from_uri(&uri).expect("the client starts");
    let mut events = client.subscribe();
    let failure = loop {
        let left = Duration::from_secs(10).checked_sub(started.elapsed());
        match left.and_then(|left| events.next_event(left)) {
            Some(Event::ServerHeartbeatFailed { failure, duration, .. }) => break (failure, duration),
            Some(_) => {}
            None => panic!("no failed check within 10 s"),
        }
    };
    let elapsed = started.elapsed();
    client.close();
    let (failure, duration) = failure;
    assert!(duration <= super::deadlines::LIMIT, "the check failed after {duration:?}: {failure}");
    assert!(elapsed < duration + Duration::from_secs(2), "the first check began {elapsed:?} after the start");
    assert!(super::deadlines::says_it_timed_out(&failure), "{failure}");
}
