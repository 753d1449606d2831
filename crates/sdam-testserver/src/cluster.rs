//! The deployment handle: builders that bind every listener first (so every member's reply
//! names the others' real ports), and thread-safe controls that change the script.

use std::fmt;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bson::oid::ObjectId;
use sdam::ServerAddress;

use crate::builder::check_role;
use crate::connection::Connection;
use crate::listener::{bind, Acceptor};
use crate::member::{Deployment, Fault, MemberSpec, MemberState, Role, State};

/// A control call that could not be carried out.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// No member has this index.
    UnknownMember(usize),
    /// The role does not fit the deployment (e.g. a mongos in a replica set).
    InvalidRole(Role),
    /// A deployment needs at least one member.
    NoMembers,
    /// Binding or accepting failed.
    Io(io::Error),
    /// The TLS material could not be generated.
    Tls(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownMember(i) => write!(f, "no member with index {i}"),
            Self::InvalidRole(r) => write!(f, "role {r:?} does not fit this deployment"),
            Self::NoMembers => f.write_str("a deployment needs at least one member"),
            Self::Io(e) => write!(f, "test server I/O: {e}"),
            Self::Tls(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ClusterError {}

impl From<io::Error> for ClusterError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// State shared by the handle and every server thread.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    /// Notified on every state change (streaming waits watch it).
    pub(crate) changed: Condvar,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsMaterial>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking server thread must not take the whole cluster down with it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running scripted deployment. Every method is thread-safe; dropping the handle shuts
/// every server down (see [`Cluster::shutdown`]).
#[derive(Debug)]
pub struct Cluster {
    pub(crate) inner: Arc<Inner>,
}

impl Cluster {
    /// Starts accepting on `listener` for member `index`, in its current incarnation.
    pub(crate) fn serve(&self, index: usize, listener: TcpListener) -> Result<(), ClusterError> {
        let incarnation = self.inner.lock().members[index].incarnation;
        let inner = Arc::clone(&self.inner);
        let acceptor = Acceptor::spawn(listener, move |stream| accept(&inner, index, incarnation, stream))?;
        let mut state = self.inner.lock();
        let shutdown = state.shutdown;
        match state.members.get_mut(index) {
            Some(m) if m.incarnation == incarnation && !shutdown => m.acceptor = Some(acceptor),
            _ => {
                drop(state);
                acceptor.stop();
            }
        }
        Ok(())
    }

    /// Runs `change` on member `index` under the lock, then wakes streaming waits.
    fn change<R>(&self, index: usize, change: impl FnOnce(&mut State) -> R) -> Result<R, ClusterError> {
        let mut state = self.inner.lock();
        if index >= state.members.len() {
            return Err(ClusterError::UnknownMember(index));
        }
        let r = change(&mut state);
        drop(state);
        self.inner.changed.notify_all();
        Ok(r)
    }

    fn read<R>(&self, index: usize, read: impl FnOnce(&MemberState) -> R) -> Result<R, ClusterError> {
        self.inner.lock().members.get(index).map(read).ok_or(ClusterError::UnknownMember(index))
    }

    /// Number of members (including removed ones: indexes never change).
    pub fn len(&self) -> usize {
        self.inner.lock().members.len()
    }

    /// Whether the deployment has no member (never true for a started cluster).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The replica set name, if this is a replica set.
    pub fn set_name(&self) -> Option<String> {
        match &self.inner.lock().deployment {
            Deployment::ReplicaSet(name) => Some(name.clone()),
            _ => None,
        }
    }

    /// Member `index`'s address, `127.0.0.1:port`.
    pub fn address(&self, index: usize) -> Result<ServerAddress, ClusterError> {
        let port = self.read(index, |m| m.port)?;
        ServerAddress::tcp("127.0.0.1", port).map_err(|e| ClusterError::Io(io::Error::other(e.to_string())))
    }

    /// Every member's address, in index order.
    pub fn addresses(&self) -> Vec<ServerAddress> {
        (0..self.len()).filter_map(|i| self.address(i).ok()).collect()
    }

    /// A `mongodb://` URI listing every member (with `replicaSet` for a replica set).
    pub fn uri(&self) -> String {
        let hosts: Vec<String> = self.addresses().iter().map(ToString::to_string).collect();
        match self.set_name() {
            Some(name) => format!("mongodb://{}/?replicaSet={name}", hosts.join(",")),
            None => format!("mongodb://{}/", hosts.join(",")),
        }
    }

    /// Member `index`'s role.
    pub fn role(&self, index: usize) -> Result<Role, ClusterError> {
        self.read(index, |m| m.role)
    }

    /// Member `index`'s `topologyVersion` (`processId`, `counter`).
    pub fn topology_version(&self, index: usize) -> Result<(ObjectId, i64), ClusterError> {
        self.read(index, |m| (m.process_id, m.counter))
    }

    /// How many `hello` / legacy hello requests member `index` received.
    pub fn hello_count(&self, index: usize) -> Result<u64, ClusterError> {
        self.read(index, |m| m.hello_count)
    }

    /// How many other commands member `index` received.
    pub fn command_count(&self, index: usize) -> Result<u64, ClusterError> {
        self.read(index, |m| m.command_count)
    }

    /// The `client.driver.name` and `client.application.name` of the handshakes member
    /// `index` answered (distinct pairs, first seen first, at most 16).
    pub fn handshakes(&self, index: usize) -> Result<Vec<(String, String)>, ClusterError> {
        self.read(index, |m| m.handshakes.clone())
    }

    /// Connections currently open on member `index` (server side).
    pub fn open_connections(&self, index: usize) -> Result<usize, ClusterError> {
        self.read(index, |m| m.connections.len())
    }

    /// Connections currently open on every member.
    pub fn total_open_connections(&self) -> usize {
        self.inner.lock().members.iter().map(|m| m.connections.len()).sum()
    }

    /// Whether member `index` is running.
    pub fn is_up(&self, index: usize) -> Result<bool, ClusterError> {
        self.read(index, |m| m.up)
    }

    /// Kills member `index`: closes its listener (connections are refused) and every open
    /// connection.
    pub fn crash(&self, index: usize) -> Result<(), ClusterError> {
        let acceptor = self.change(index, |state| {
            let m = &mut state.members[index];
            m.up = false;
            m.incarnation += 1;
            for c in m.connections.values() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
            m.acceptor.take()
        })?;
        if let Some(a) = acceptor {
            a.stop();
        }
        Ok(())
    }

    /// Starts member `index` again on the same port, with a new `processId`. A member that
    /// was primary comes back as a secondary.
    pub fn restart(&self, index: usize) -> Result<(), ClusterError> {
        let (up, port) = self.read(index, |m| (m.up, m.port))?;
        if up {
            return Ok(());
        }
        let listener = bind(port)?;
        self.change(index, |state| {
            let m = &mut state.members[index];
            m.up = true;
            m.process_id = ObjectId::new();
            m.counter = 0;
            if m.role == Role::Primary {
                m.role = Role::Secondary;
                state.bump_all();
            }
        })?;
        self.serve(index, listener)
    }

    /// The primary `index` steps down: the set has no primary until [`elect`](Self::elect).
    pub fn step_down(&self, index: usize) -> Result<(), ClusterError> {
        self.change(index, |state| {
            if state.members[index].role == Role::Primary {
                state.members[index].role = Role::Secondary;
                state.bump_all();
            }
        })
    }

    /// Member `index` wins an election: a new, larger electionId; the old primary (if any)
    /// becomes a secondary.
    pub fn elect(&self, index: usize) -> Result<(), ClusterError> {
        let role = self.role(index)?;
        if !matches!(role, Role::Primary | Role::Secondary) {
            return Err(ClusterError::InvalidRole(role));
        }
        self.change(index, |state| {
            for m in &mut state.members {
                if m.role == Role::Primary {
                    m.role = Role::Secondary;
                }
            }
            state.members[index].role = Role::Primary;
            state.new_term();
            state.bump_all();
        })
    }

    /// Replaces member `index`'s tags (the replica set config changes: setVersion + 1).
    pub fn set_tags<K: Into<String>, V: Into<String>>(
        &self,
        index: usize,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), ClusterError> {
        let tags: Vec<(String, String)> = tags.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.change(index, |state| {
            state.members[index].tags = tags;
            state.set_version += 1;
            state.bump_all();
        })
    }

    /// Sets the latency injected before each of member `index`'s replies.
    pub fn set_latency(&self, index: usize, latency: Duration) -> Result<(), ClusterError> {
        self.change(index, |state| {
            state.members[index].latency = latency;
            state.members[index].counter += 1;
        })
    }

    /// Switches member `index` between streaming and answering awaitable hellos at once.
    pub fn set_streaming(&self, index: usize, streaming: bool) -> Result<(), ClusterError> {
        self.change(index, |state| {
            state.members[index].streaming = streaming;
            state.members[index].counter += 1;
        })
    }

    /// Makes member `index`'s replies misbehave (or behave again with [`Fault::None`]).
    pub fn set_fault(&self, index: usize, fault: Fault) -> Result<(), ClusterError> {
        self.change(index, |state| {
            state.members[index].fault = fault;
            state.members[index].counter += 1;
        })
    }

    /// Adds a member to the replica set (reconfig: setVersion + 1); returns its index.
    pub fn add_member(&self, spec: MemberSpec) -> Result<usize, ClusterError> {
        check_role(&self.inner.lock().deployment, spec.role)?;
        let listener = bind(0)?;
        let port = listener.local_addr()?.port();
        let index = {
            let mut state = self.inner.lock();
            state.members.push(MemberState::new(&spec, port));
            if matches!(state.deployment, Deployment::ReplicaSet(_)) {
                state.set_version += 1;
            }
            state.bump_all();
            state.members.len() - 1
        };
        self.inner.changed.notify_all();
        if spec.up {
            self.serve(index, listener)?;
        }
        Ok(index)
    }

    /// Removes member `index` from the replica set config (setVersion + 1). It keeps running
    /// and answers like a node without a valid config.
    pub fn remove_member(&self, index: usize) -> Result<(), ClusterError> {
        self.change(index, |state| {
            state.members[index].in_config = false;
            state.set_version += 1;
            state.bump_all();
        })
    }

    /// The PEM of the CA that signed the servers' certificate (TLS deployments only).
    #[cfg(feature = "tls")]
    pub fn ca_pem(&self) -> Option<&str> {
        self.inner.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// A client certificate signed by the deployment's CA, followed by its private key, PEM
    /// (what `tlsCertificateKeyFile` points to); with a `password` the key is an encrypted
    /// PKCS#8 key (`tlsCertificateKeyFilePassword`). TLS deployments only.
    #[cfg(feature = "tls")]
    pub fn client_identity_pem(&self, password: Option<&str>) -> Option<String> {
        self.inner.tls.as_ref().and_then(|t| t.client_identity_pem(password).ok())
    }

    /// Stops every server: closes listeners and connections and joins every thread.
    pub fn shutdown(&self) {
        let acceptors: Vec<Acceptor> = {
            let mut state = self.inner.lock();
            state.shutdown = true;
            let acceptors = state.members.iter_mut().filter_map(|m| m.acceptor.take()).collect();
            for m in &state.members {
                for c in m.connections.values() {
                    let _ = c.shutdown(std::net::Shutdown::Both);
                }
            }
            acceptors
        };
        self.inner.changed.notify_all();
        for a in acceptors {
            a.stop();
        }
        let threads = std::mem::take(
            &mut *self.inner.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Registers and serves a connection accepted by member `index`.
fn accept(inner: &Arc<Inner>, index: usize, incarnation: u64, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let id = {
        let mut state = inner.lock();
        let shutdown = state.shutdown;
        let Some(m) = state.members.get_mut(index) else { return };
        if shutdown || !m.up || m.incarnation != incarnation {
            return;
        }
        let Ok(clone) = stream.try_clone() else { return };
        let id = m.next_connection_id;
        m.next_connection_id += 1;
        m.connections.insert(id, clone);
        id
    };
    let conn_inner = Arc::clone(inner);
    let spawned = thread::Builder::new().name(format!("testserver-conn-{index}-{id}")).spawn(move || {
        #[cfg(feature = "tls")]
        if let Some(tls) = &conn_inner.tls {
            let Ok(server) = rustls::ServerConnection::new(Arc::clone(&tls.config)) else {
                forget_connection(&conn_inner, index, id);
                return;
            };
            let transport = rustls::StreamOwned::new(server, stream);
            Connection::new(Arc::clone(&conn_inner), index, incarnation, id, transport).run();
            return;
        }
        Connection::new(conn_inner, index, incarnation, id, stream).run();
    });
    let mut threads = inner.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    threads.retain(|t| !t.is_finished());
    match spawned {
        Ok(handle) => threads.push(handle),
        Err(_) => forget_connection(inner, index, id),
    }
}

/// Deregisters connection `id` of member `index` (its thread ended).
pub(crate) fn forget_connection(inner: &Inner, index: usize, id: u64) {
    if let Some(m) = inner.lock().members.get_mut(index) {
        m.connections.remove(&id);
    }
}
