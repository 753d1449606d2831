//! The high-availability story of a MongoDB driver, told with real sockets against an
//! in-process scripted replica set and three mongoses: `cargo run --example failover`.
//!
//! Non-blocking start and discovery from one seed, reads and writes routed by read
//! preference, the primary killed, the retryable error, the new primary found, the old one
//! rejoining as a secondary, secondary reads with tag sets, and mongos load balancing in the
//! latency window.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bson::rawdoc;
use sdam::selection::SelectionCriteria;
use sdam::{
    ApplicationError, ApplicationErrorKind, ErrorPhase, ReadPreference, ReadPreferenceMode, ServerAddress,
    ServerType, TagSet, TopologyDescription,
};
use sdam_testserver::{Cluster, MemberSpec, Mongos, RawClient, ReplicaSet, Role};
use sdam_tokio::{Client, ClientEvent};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    let say = |text: &str| println!("[{:>6.3}s] {text}", started.elapsed().as_secs_f64());

    println!("== 1. A replica set, a client, and discovery from one seed\n");
    let rs = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).tags([("dc", "ny")]))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "ny")]))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "sf")]))
        .start()?;
    let names: Vec<String> = rs.addresses().iter().map(ToString::to_string).collect();
    say(&format!("scripted replica set rs0 listening on {}", names.join(", ")));
    let uri = format!("mongodb://{}/?replicaSet=rs0&heartbeatFrequencyMS=500", names[0]);
    let t0 = Instant::now();
    let client = Client::from_uri(&uri)?;
    say(&format!("Client::from_uri({uri:?}) returned in {} µs", t0.elapsed().as_micros()));
    say(&format!("nodes() right after construction: {:?} (monitors run in the background)", client.nodes()));
    wait_for(&client, "the whole set is discovered", |td| {
        td.servers.len() == 3 && td.servers.iter().all(|s| s.server_type != ServerType::Unknown)
    })
    .await?;
    say(&format!("discovered from one seed: {}", describe(&client.description())));

    println!("\n== 2. Operations routed by read preference\n");
    let primary = run_write(&client, "insert #1").await?;
    say(&format!("insert #1 -> {primary} (writes go to the primary)"));
    for mode in [ReadPreferenceMode::SecondaryPreferred, ReadPreferenceMode::Nearest] {
        let criteria = SelectionCriteria::read(ReadPreference::new(mode));
        let server = client.select_server(criteria).await?;
        command(server.address(), rawdoc! {"find": "orders", "$db": "shop"}).await?;
        say(&format!(
            "find with {} -> {} ({})",
            mode.as_str(),
            server.address(),
            server.description().server_type
        ));
    }

    println!("\n== 3. The primary dies\n");
    // The pool generation a connection opened now would carry (its errors are built with it).
    let generation = client.pool_generation(&primary).unwrap_or(0);
    rs.crash(0)?;
    say(&format!("killed the primary {primary}: its listener and connections are closed"));
    match command(&primary, rawdoc! {"insert": "orders", "documents": [{"n": 2}], "$db": "shop"}).await {
        Ok(_) => say("(the write went through before the crash was visible)"),
        Err(io) => {
            // What a driver does with a network error on a server's connection: report it.
            // This one happened while connecting, which by itself changes nothing (SDAM,
            // "Network error when reading or writing"); the monitor's broken connection tells.
            let mut error = ApplicationError::new(primary.clone(), generation, ApplicationErrorKind::Network);
            error.phase = ErrorPhase::ConnectionEstablishment;
            say(&format!(
                "insert #2 failed on {primary}: {io} -> retryable: {}",
                if error.is_retryable() { "yes" } else { "no" }
            ));
            client.report_error(error);
        }
    }
    wait_for(&client, "the monitor sees the primary gone", |td| {
        td.server(&primary).is_none_or(|s| s.server_type != ServerType::RSPrimary)
    })
    .await?;
    let old = client.description();
    let old_type = old.server(&primary).map(|s| s.server_type);
    say(&format!("the topology marked {primary} {old_type:?}, pool cleared: {}", describe(&old)));
    rs.elect(1)?;
    say(&format!("the set elects {} (new electionId)", names[1]));
    let t1 = Instant::now();
    let new_primary = run_write(&client, "insert #2 (retry)").await?;
    say(&format!(
        "retry of insert #2 -> {new_primary}: the selection waited {} ms for the new primary",
        t1.elapsed().as_millis()
    ));

    println!("\n== 4. The old primary comes back\n");
    rs.restart(0)?;
    say(&format!("restarted {primary} on the same port"));
    wait_for(&client, "the old primary rejoins as a secondary", |td| {
        td.server(&primary).is_some_and(|s| s.server_type == ServerType::RSSecondary)
    })
    .await?;
    say(&format!("{primary} rejoined as RSSecondary: {}", describe(&client.description())));

    println!("\n== 5. Secondary reads with tag sets\n");
    for tag_sets in [vec![tags(&[("dc", "sf")])], vec![tags(&[("dc", "eu")]), tags(&[("dc", "ny")])]] {
        let shown: Vec<String> = tag_sets.iter().map(ToString::to_string).collect();
        let rp = ReadPreference::new(ReadPreferenceMode::Secondary).with_tag_sets(tag_sets)?;
        let server = client.select_server(SelectionCriteria::read(rp)).await?;
        let tags = server.description().tags.to_string();
        say(&format!("secondary read, tag sets [{}] -> {} {tags}", shown.join(", "), server.address()));
    }
    client.close().await;
    say("client closed: every monitor task and socket is gone");
    rs.shutdown();

    println!("\n== 6. mongos load balancing in the latency window\n");
    let mongos = Mongos::builder()
        .member(MemberSpec::new(Role::Mongos).latency(Duration::from_millis(20)))
        .member(MemberSpec::new(Role::Mongos).latency(Duration::from_millis(35)))
        .member(MemberSpec::new(Role::Mongos).latency(Duration::from_millis(40)))
        .start()?;
    say("three mongoses answering in 20, 35 and 40 ms");
    for threshold in [None, Some(30)] {
        spread(&mongos, threshold, &say).await?;
    }
    mongos.shutdown();
    say("done");
    Ok(())
}

/// Runs selections against the mongoses and shows how they spread.
async fn spread(mongos: &Cluster, threshold: Option<u64>, say: &impl Fn(&str)) -> Result<(), Error> {
    let hosts: Vec<String> = mongos.addresses().iter().map(ToString::to_string).collect();
    let mut uri = format!("mongodb://{}/?heartbeatFrequencyMS=500", hosts.join(","));
    if let Some(ms) = threshold {
        uri.push_str(&format!("&localThresholdMS={ms}"));
    }
    let client = Client::from_uri(&uri)?;
    // Let a few RTT samples settle the moving averages.
    wait_for(&client, "all three mongoses are known", |td| {
        td.servers.iter().all(|s| s.server_type == ServerType::Mongos)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut counts: BTreeMap<ServerAddress, u32> = BTreeMap::new();
    for _ in 0..600 {
        let server = client.select_server(SelectionCriteria::write()).await?;
        *counts.entry(server.address().clone()).or_default() += 1;
    }
    let td = client.description();
    // In member order: the 20, 35 and 40 ms mongoses.
    let shown: Vec<String> = mongos
        .addresses()
        .iter()
        .map(|a| {
            let rtt = td.server(a).and_then(|s| s.round_trip_time).unwrap_or_default();
            format!("{a} (avg {} ms): {}", rtt.as_millis(), counts.get(a).copied().unwrap_or(0))
        })
        .collect();
    let window = threshold.unwrap_or(15);
    say(&format!("localThresholdMS={window}: 600 operations -> {}", shown.join(", ")));
    client.close().await;
    Ok(())
}

/// Selects the primary and runs an insert there.
async fn run_write(client: &Client, what: &str) -> Result<ServerAddress, Error> {
    let server = client.select_server(SelectionCriteria::write()).await?;
    let reply =
        command(server.address(), rawdoc! {"insert": "orders", "documents": [{"what": what}], "$db": "shop"})
            .await?;
    if reply.get_f64("ok").unwrap_or(0.0) != 1.0 && reply.get_i32("ok").unwrap_or(0) != 1 {
        return Err(format!("{what} failed: {reply:?}").into());
    }
    Ok(server.address().clone())
}

/// Sends one command on a fresh connection, as an application operation would.
async fn command(
    address: &ServerAddress,
    body: bson::RawDocumentBuf,
) -> std::io::Result<bson::RawDocumentBuf> {
    let target = address.to_string();
    tokio::task::spawn_blocking(move || RawClient::connect(target)?.command(&body))
        .await
        .map_err(std::io::Error::other)?
}

/// Waits (at most 10 s) until the topology satisfies `done`.
async fn wait_for(
    client: &Client,
    what: &str,
    done: impl Fn(&TopologyDescription) -> bool,
) -> Result<(), Error> {
    let mut events = client.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&client.description()) {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ClientEvent::Sdam(_) | _)) => {}
            Ok(None) => return Err(format!("the client closed while waiting until {what}").into()),
            Err(_) => return Err(format!("timed out waiting until {what}").into()),
        }
    }
    Ok(())
}

fn tags(pairs: &[(&str, &str)]) -> TagSet {
    TagSet(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

/// `a:1 RSPrimary, b:2 RSSecondary, ...`
fn describe(td: &TopologyDescription) -> String {
    let servers: Vec<String> =
        td.servers.iter().map(|s| format!("{} {}", s.address, s.server_type)).collect();
    format!("{} [{}]", td.topology_type, servers.join(", "))
}
