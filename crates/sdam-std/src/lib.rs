//! # sdam-std
//!
//! The blocking adapter of the [`sdam`] core, on std threads and `std::net`: the core decides
//! everything, this crate carries out its commands.
//!
//! - One driver thread sleeps until the core's next deadline (or new input), drains its
//!   outputs, publishes events and hands commands to the I/O threads.
//! - One thread per monitoring connection (and per RTT connection when streaming) opens its
//!   socket with the command's connect timeout, sends the prebuilt `hello` as `OP_MSG`
//!   (`sdam-wire`), reads replies under the command's timeout and reports them. Malformed or
//!   oversized frames fail the exchange and close the connection.
//! - [`Client::select_server`] polls the core's selection and sleeps on a `Condvar` until the
//!   description changes (`Command::WakeSelections`) or the selection's deadline.
//! - `mongodb+srv` lookups (`Command::ResolveSrv` / `ResolveTxt`) run on hickory's resolver in
//!   one DNS thread (the default `dns` feature; without it `mongodb+srv` is refused), at the
//!   system's name servers or those of [`ClientOptions::dns`].
//! - Each [`Subscription`] queues at most [`ClientOptions::event_buffer_bytes`] of events; one
//!   that falls behind receives a [`ClientEvent::Lagged`] with the number it missed.
//! - With the `tls` feature, connections use rustls (ring) with `tlsCAFile` /
//!   `tlsAllowInvalidCertificates`; the server name is each address's host.
//!
//! The runtime-independent types ([`ClientEvent`], [`Error`], [`SelectError`], [`ServerGuard`],
//! [`TlsOptions`]) come from `sdam-adapter` and are the same types as `sdam-tokio`'s.
//!
//! ```no_run
//! use sdam::selection::SelectionCriteria;
//!
//! let client = sdam_std::Client::from_uri("mongodb://db1.example.com,db2.example.com/?replicaSet=rs0")?;
//! let server = client.select_server(SelectionCriteria::write())?;
//! println!("writing to {}", server.address());
//! drop(server);
//! client.close();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod connection;
#[cfg(feature = "dns")]
mod dns;
mod driver;
mod events;
mod options;
mod shared;
mod transport;

pub use client::Client;
pub use events::Subscription;
pub use options::ClientOptions;
#[cfg(feature = "dns")]
pub use sdam_adapter::DnsOptions;
#[cfg(feature = "tls")]
pub use sdam_adapter::TlsOptions;
pub use sdam_adapter::{ClientEvent, Error, SelectError, ServerGuard};
