//! A real SOCKS5 proxy on loopback for the adapters' proxy tests: the server side of
//! `fast-socks5` (RFC 1928 / RFC 1929) on its own thread and tokio runtime, with the policy
//! the test asks for (no authentication, a username and password, refusing every CONNECT, or
//! stalling), a record of the destinations clients asked for (as they sent them: a domain
//! name arrives unresolved), and an alias name only the proxy can resolve.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use fast_socks5::server::{run_tcp_proxy, DnsResolveHelper as _, Socks5ServerProtocol};
use fast_socks5::util::target_addr::TargetAddr;
use fast_socks5::ReplyError;

/// What a [`Socks5Proxy`] does with each client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyBehaviour {
    /// No authentication; connects wherever asked.
    Open,
    /// Requires this username and password (RFC 1929); connects wherever asked.
    Password {
        /// The username it accepts.
        username: String,
        /// The password it accepts.
        password: String,
    },
    /// No authentication; refuses every CONNECT ("connection not allowed by ruleset").
    RefuseConnections,
    /// Accepts the TCP connection and never answers the greeting.
    Stall,
}

/// A SOCKS5 proxy on `127.0.0.1`; stopped (runtime and thread ended, sockets closed) when
/// dropped.
#[derive(Debug)]
pub struct Socks5Proxy {
    port: u16,
    requested: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Socks5Proxy {
    /// The name the proxy resolves to `127.0.0.1` itself (and nothing else can resolve):
    /// a client that reaches a server by this name sent it to the proxy unresolved.
    pub const ALIAS: &'static str = "mongodb.behind-the-proxy.test";

    /// Starts the proxy on an ephemeral loopback port.
    pub fn start(behaviour: ProxyBehaviour) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let requested: Arc<Mutex<Vec<String>>> = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let record = Arc::clone(&requested);
        let thread =
            std::thread::Builder::new().name(format!("testserver-socks5-{port}")).spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                    let accept = async {
                        loop {
                            let Ok((socket, _)) = listener.accept().await else { continue };
                            let (behaviour, record) = (behaviour.clone(), Arc::clone(&record));
                            tokio::spawn(async move {
                                let _ = serve(socket, &behaviour, &record).await;
                            });
                        }
                    };
                    tokio::select! {
                        () = accept => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here ends every connection task and closes its sockets.
            })?;
        Ok(Self { port, requested, stop: Some(stop), thread: Some(thread) })
    }

    /// The port it listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The destinations clients asked for, as `host:port` exactly as sent (names unresolved).
    pub fn requested(&self) -> Vec<String> {
        self.requested.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for Socks5Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    socket: tokio::net::TcpStream,
    behaviour: &ProxyBehaviour,
    requested: &Mutex<Vec<String>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let protocol = match behaviour {
        ProxyBehaviour::Stall => {
            // Hold the connection, say nothing, until the client or the runtime goes.
            let mut socket = socket;
            let mut sink = [0u8; 64];
            while tokio::io::AsyncReadExt::read(&mut socket, &mut sink).await? > 0 {}
            return Ok(());
        }
        ProxyBehaviour::Password { username, password } => {
            Socks5ServerProtocol::accept_password_auth(socket, |u, p| u == *username && p == *password)
                .await?
                .0
        }
        ProxyBehaviour::Open | ProxyBehaviour::RefuseConnections => {
            Socks5ServerProtocol::accept_no_auth(socket).await?
        }
    };
    let (protocol, _command, target) = protocol.read_command().await?;
    requested.lock().unwrap_or_else(PoisonError::into_inner).push(target.to_string());
    if *behaviour == ProxyBehaviour::RefuseConnections {
        protocol.reply_error(&ReplyError::ConnectionNotAllowed).await?;
        return Ok(());
    }
    let (protocol, _command, target) = match target {
        TargetAddr::Domain(name, port) if name == Socks5Proxy::ALIAS => {
            (protocol, _command, TargetAddr::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
        }
        other => (protocol, _command, other).resolve_dns().await?,
    };
    run_tcp_proxy(protocol, &target, Duration::from_secs(5), true).await?;
    Ok(())
}
