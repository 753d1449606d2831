//! Builders: every member's listener is bound first, so every reply names the others' real
//! ports.

use std::sync::{Arc, Condvar, Mutex};

use crate::cluster::{Cluster, ClusterError, Inner};
use crate::listener::bind;
use crate::member::{Deployment, MemberSpec, MemberState, Role, State};

/// Builds a deployment. Start from [`ReplicaSet::builder`], [`Mongos::builder`] or
/// [`Standalone::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClusterBuilder {
    deployment: Deployment,
    members: Vec<MemberSpec>,
    tls: Option<TlsSpec>,
}

/// How a TLS deployment's servers present themselves (`ClusterBuilder::tls_with`, with the
/// `tls` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSpec {
    /// Refuse clients that present no certificate signed by the deployment's CA.
    pub require_client_certificate: bool,
    /// The DNS names and IP addresses in the server certificate.
    pub server_names: Vec<String>,
}

impl Default for TlsSpec {
    /// No client certificate required; the certificate names `localhost` and `127.0.0.1`.
    fn default() -> Self {
        Self { require_client_certificate: false, server_names: vec!["localhost".into(), "127.0.0.1".into()] }
    }
}

/// Replica set deployments.
#[derive(Debug)]
pub struct ReplicaSet;

impl ReplicaSet {
    /// A replica set named `name`; add members with [`ClusterBuilder::member`].
    pub fn builder(name: &str) -> ClusterBuilder {
        ClusterBuilder { deployment: Deployment::ReplicaSet(name.to_owned()), members: Vec::new(), tls: None }
    }
}

/// Sharded deployments: a set of mongos routers.
#[derive(Debug)]
pub struct Mongos;

impl Mongos {
    /// A set of mongoses; add them with [`ClusterBuilder::member`] (`Role::Mongos`).
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder { deployment: Deployment::Sharded, members: Vec::new(), tls: None }
    }
}

/// Standalone servers.
#[derive(Debug)]
pub struct Standalone;

impl Standalone {
    /// One standalone server.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            deployment: Deployment::Standalone,
            members: vec![MemberSpec::new(Role::Standalone)],
            tls: None,
        }
    }
}

impl ClusterBuilder {
    /// Adds a member.
    pub fn member(mut self, spec: MemberSpec) -> Self {
        self.members.push(spec);
        self
    }

    /// Serves over TLS with a certificate generated at start (see [`Cluster::ca_pem`]).
    #[cfg(feature = "tls")]
    pub fn tls(mut self) -> Self {
        self.tls = Some(TlsSpec::default());
        self
    }

    /// Serves over TLS as `spec` says: the names in the server certificate, and whether
    /// clients must present a certificate (see [`Cluster::client_identity_pem`]).
    #[cfg(feature = "tls")]
    pub fn tls_with(mut self, spec: TlsSpec) -> Self {
        self.tls = Some(spec);
        self
    }

    /// Binds every member's listener on 127.0.0.1 (ephemeral ports), then starts serving.
    pub fn start(self) -> Result<Cluster, ClusterError> {
        if self.members.is_empty() {
            return Err(ClusterError::NoMembers);
        }
        for spec in &self.members {
            check_role(&self.deployment, spec.role)?;
        }
        let mut listeners = Vec::new();
        let mut state = State::new(self.deployment);
        for spec in &self.members {
            let listener = bind(0)?;
            state.members.push(MemberState::new(spec, listener.local_addr()?.port()));
            // A member that starts down only reserves its port.
            listeners.push(spec.up.then_some(listener));
        }
        #[cfg(feature = "tls")]
        let tls = self.tls.as_ref().map(crate::tls::generate_with).transpose().map_err(ClusterError::Tls)?;
        let _ = &self.tls;
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            changed: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            #[cfg(feature = "tls")]
            tls,
        });
        let cluster = Cluster { inner };
        for (index, listener) in listeners.into_iter().enumerate() {
            if let Some(listener) = listener {
                cluster.serve(index, listener)?;
            }
        }
        Ok(cluster)
    }
}

pub(crate) fn check_role(deployment: &Deployment, role: Role) -> Result<(), ClusterError> {
    let fits = match deployment {
        Deployment::ReplicaSet(_) => !matches!(role, Role::Mongos | Role::Standalone),
        Deployment::Sharded => role == Role::Mongos,
        Deployment::Standalone => role == Role::Standalone,
    };
    if fits {
        Ok(())
    } else {
        Err(ClusterError::InvalidRole(role))
    }
}
