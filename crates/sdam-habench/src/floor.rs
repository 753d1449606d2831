//! The floor the scripted servers allow: the least any client can spend on H1 and H2's paths,
//! measured with `RawClient` (blocking sockets, no monitoring, no SDAM logic) doing only the
//! exchanges a client cannot skip.

use std::time::{Duration, Instant};

use bson::rawdoc;
use sdam_testserver::RawClient;

use crate::deploy;

type Result<T> = std::result::Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// H1's floor: connect to the seed, one hello, connect again, one insert.
pub(crate) fn discovery() -> Result<f64> {
    let set = deploy::replica_set(3).map_err(err)?;
    let seed = set.address(0).map_err(err)?.to_string();
    let start = Instant::now();
    let mut monitor = RawClient::connect(&seed).map_err(err)?;
    monitor.command(&rawdoc! { "hello": 1, "$db": "admin" }).map_err(err)?;
    let mut app = RawClient::connect(&seed).map_err(err)?;
    app.command(&crate::conn::insert(1)).map_err(err)?;
    Ok(ms(start.elapsed()))
}

/// H2's floor (streaming): an awaitable hello waiting on member 1 when it is elected; from
/// the election to the pushed reply, a new connection and one insert.
pub(crate) fn failover() -> Result<f64> {
    let set = deploy::replica_set(3).map_err(err)?;
    let target = set.address(1).map_err(err)?.to_string();
    let mut monitor = RawClient::connect(&target).map_err(err)?;
    let first = monitor.command(&rawdoc! { "hello": 1, "$db": "admin" }).map_err(err)?;
    let tv = first.get_document("topologyVersion").map_err(err)?.to_owned();
    let awaitable =
        rawdoc! { "hello": 1, "topologyVersion": tv, "maxAwaitTimeMS": 10_000i64, "$db": "admin" };
    monitor.send(&awaitable, true).map_err(err)?;
    set.crash(0).map_err(err)?;
    // Let the server thread settle into its wait, as in H2 (the election comes 500 ms later).
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    set.elect(1).map_err(err)?;
    let pushed = monitor.read_reply().map_err(err)?;
    if !pushed.body.get_bool("isWritablePrimary").map_err(err)? {
        return Err("the pushed reply does not name member 1 primary".into());
    }
    let mut app = RawClient::connect(&target).map_err(err)?;
    app.command(&crate::conn::insert(1)).map_err(err)?;
    Ok(ms(start.elapsed()))
}
