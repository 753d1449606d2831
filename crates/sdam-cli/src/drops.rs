//! Why a seed left the topology, when its own hello said so: a server reached by one name
//! that calls itself another (`me`), or a member of another replica set. The Docker /
//! Kubernetes / tunnel case: the client reaches `127.0.0.1:27017`, the replica set config says
//! `mongo-0:27017`, and SDAM drops the address it was given
//! (server-discovery-and-monitoring.md, "updateRSWithoutPrimary", "updateRSFromPrimary").

use std::collections::HashMap;

use sdam::{Event, ServerAddress};

/// What a server said about itself in its last successful heartbeat.
#[derive(Debug, Default)]
struct Reported {
    me: Option<ServerAddress>,
    set_name: Option<String>,
}

/// Follows the events and explains the servers closed because of their own replies.
#[derive(Debug, Default)]
pub(crate) struct Drops {
    reported: HashMap<ServerAddress, Reported>,
    set_name: Option<String>,
}

impl Drops {
    /// Expecting the replica set `set_name` (the connection string's `replicaSet`), if any.
    pub(crate) fn new(set_name: Option<String>) -> Self {
        Self { reported: HashMap::new(), set_name }
    }

    /// Takes in one event; for a server closed because its reply names it differently or
    /// puts it in another set, the explanation with a hint.
    pub(crate) fn observe(&mut self, event: &Event) -> Option<String> {
        match event {
            Event::ServerHeartbeatSucceeded { address, reply, .. } => {
                let me = reply.get_str("me").ok().and_then(|me| ServerAddress::parse(me).ok());
                let set_name = reply.get_str("setName").ok().map(str::to_owned);
                self.reported.insert(address.clone(), Reported { me, set_name });
                None
            }
            Event::TopologyDescriptionChanged { new, .. } => {
                if let Some(name) = &new.set_name {
                    self.set_name = Some(name.to_string());
                }
                None
            }
            Event::ServerClosed { address, .. } => {
                let reported = self.reported.remove(address)?;
                if let Some(me) = reported.me.filter(|me| me != address) {
                    return Some(format!(
                        "{address} was dropped: reached as {address} but the server calls itself {me}: \
                         use directConnection=true or make the names resolvable"
                    ));
                }
                match (&self.set_name, &reported.set_name) {
                    (Some(expected), Some(theirs)) if expected != theirs => Some(format!(
                        "{address} was dropped: it is a member of replica set {theirs}, not {expected}: \
                         check replicaSet in the connection string"
                    )),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}
