//! Listening sockets: one accepting thread per running member, stopped by a flag and a
//! wake-up connection so the listening socket is really closed (a crashed member refuses
//! connections).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A running accept loop.
#[derive(Debug)]
pub(crate) struct Acceptor {
    stop: Arc<AtomicBool>,
    address: SocketAddr,
    thread: JoinHandle<()>,
}

impl Acceptor {
    /// Runs `on_accept` for each connection accepted on `listener` until [`stop`](Self::stop).
    pub(crate) fn spawn(
        listener: TcpListener,
        on_accept: impl Fn(TcpStream) + Send + 'static,
    ) -> io::Result<Self> {
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new().name(format!("testserver-accept-{}", address.port())).spawn(
            move || loop {
                let accepted = listener.accept();
                if flag.load(Ordering::SeqCst) {
                    return; // dropping `listener` closes the port
                }
                match accepted {
                    Ok((stream, _)) => on_accept(stream),
                    // Out of descriptors or an aborted handshake: try again shortly.
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            },
        )?;
        Ok(Self { stop, address, thread })
    }

    /// Stops accepting and closes the listening socket; returns once it is closed.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept(); the loop sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        let _ = self.thread.join();
    }
}

/// Binds `127.0.0.1:port` (0: an ephemeral port), retrying briefly while a previous listener
/// on the same port is still being torn down.
pub(crate) fn bind(port: u16) -> io::Result<TcpListener> {
    let mut attempts = 0;
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts < 100 => {
                attempts += 1;
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}
