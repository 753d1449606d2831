//! An authoritative DNS server on `127.0.0.1` (hickory-server, UDP and TCP on one port) for
//! `mongodb+srv` end to end: tests publish SRV and TXT records in an in-memory zone, point a
//! client's resolver at [`DnsServer::address`] and change the records while it runs.
//!
//! The scripted servers listen on `127.0.0.1`, a name the operating system resolves by itself,
//! so SRV targets are `127.0.0.1.`: with a zone such as `0.0.1.` and a `mongodb+srv` host such
//! as `rs.0.0.1`, the target `127.0.0.1` is inside the host's parent domain as the seedlist spec
//! requires (initial-dns-seedlist-discovery.md, "Querying DNS"), and connecting needs no further
//! lookup.
//!
//! ```no_run
//! let dns = sdam_testserver::dns::DnsServer::start("0.0.1")?;
//! dns.set_srv("_mongodb._tcp.rs.0.0.1", &[("127.0.0.1", 27017)], 1)?;
//! dns.set_txt("rs.0.0.1", &["replicaSet=rs0"], 1)?;
//! // ... a client for "mongodb+srv://rs.0.0.1/?tls=false" with name server dns.address()
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;

/// What the zone task is asked to do.
enum Change {
    Replace { name: Name, kind: RecordType, records: Vec<Record>, done: std::sync::mpsc::Sender<()> },
}

/// A running DNS server; stops (its thread ends, its sockets close) when dropped.
pub struct DnsServer {
    address: SocketAddr,
    origin: Name,
    changes: tokio::sync::mpsc::UnboundedSender<Change>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer").field("address", &self.address).field("origin", &self.origin).finish()
    }
}

fn name(s: &str) -> io::Result<Name> {
    let mut n =
        Name::from_str(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{s}: {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}

/// Binds UDP and TCP on the same free loopback port.
fn bind() -> io::Result<(StdUdpSocket, StdTcpListener)> {
    let mut last = None;
    for _ in 0..32 {
        let udp = StdUdpSocket::bind("127.0.0.1:0")?;
        match StdTcpListener::bind(udp.local_addr()?) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port for UDP and TCP")))
}

impl DnsServer {
    /// Starts a server authoritative for the zone `origin` (e.g. `"0.0.1"`), empty but for its
    /// SOA record, on `127.0.0.1` (UDP and TCP, one ephemeral port).
    pub fn start(origin: &str) -> io::Result<Self> {
        let origin = name(origin)?;
        let (udp, tcp) = bind()?;
        let address = udp.local_addr()?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            origin.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
        );
        let soa =
            SOA::new(name(&format!("ns.{origin}"))?, name(&format!("admin.{origin}"))?, 1, 60, 60, 60, 1);
        zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
        let zone = Arc::new(zone);
        let (changes, mut rx) = tokio::sync::mpsc::unbounded_channel::<Change>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = Arc::clone(&zone);
        let zone_origin = origin.clone();
        let thread = std::thread::Builder::new().name("sdam-test-dns".into()).spawn(move || {
            runtime.block_on(async move {
                let mut catalog = Catalog::new();
                catalog.upsert(LowerName::new(&zone_origin), vec![served]);
                let mut server = Server::new(catalog);
                match (tokio::net::UdpSocket::from_std(udp), tokio::net::TcpListener::from_std(tcp)) {
                    (Ok(udp), Ok(tcp)) => {
                        server.register_socket(udp);
                        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
                    }
                    _ => return,
                }
                let mut serial = 2;
                let mut stopped = stopped;
                loop {
                    tokio::select! {
                        change = rx.recv() => match change {
                            Some(Change::Replace { name, kind, records, done }) => {
                                zone.records_mut().await.remove(&RrKey::new(LowerName::new(&name), kind));
                                for record in records {
                                    zone.upsert(record, serial).await;
                                }
                                serial += 1;
                                let _ = done.send(());
                            }
                            None => break,
                        },
                        _ = &mut stopped => break,
                    }
                }
                let _ = server.shutdown_gracefully().await;
            });
        })?;
        Ok(Self { address, origin, changes, stop: Some(stop), thread: Some(thread) })
    }

    /// Where the server listens (UDP and TCP): what a client's name server option takes.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    fn replace(&self, name: Name, kind: RecordType, records: Vec<Record>) -> io::Result<()> {
        let (done, applied) = std::sync::mpsc::channel();
        self.changes
            .send(Change::Replace { name, kind, records, done })
            .map_err(|_| io::Error::other("the DNS server has stopped"))?;
        applied
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| io::Error::other("the DNS server did not apply the change"))
    }

    /// Replaces the SRV records of `owner` (e.g. `_mongodb._tcp.rs.0.0.1`) with one per
    /// `(target, port)`, with time-to-live `ttl` seconds; an empty list removes them.
    pub fn set_srv(&self, owner: &str, targets: &[(&str, u16)], ttl: u32) -> io::Result<()> {
        let owner = name(owner)?;
        let mut records = Vec::new();
        for (target, port) in targets {
            records.push(Record::from_rdata(
                owner.clone(),
                ttl,
                RData::SRV(SRV::new(0, 0, *port, name(target)?)),
            ));
        }
        self.replace(owner, RecordType::SRV, records)
    }

    /// Replaces the TXT records of `owner` with one record of the character strings `strings`
    /// (none: removes them).
    pub fn set_txt(&self, owner: &str, strings: &[&str], ttl: u32) -> io::Result<()> {
        let owner = name(owner)?;
        let records = if strings.is_empty() {
            Vec::new()
        } else {
            let txt = TXT::new(strings.iter().map(|s| (*s).to_owned()).collect());
            vec![Record::from_rdata(owner.clone(), ttl, RData::TXT(txt))]
        };
        self.replace(owner, RecordType::TXT, records)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
