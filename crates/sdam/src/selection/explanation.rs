//! Why each server was or was not chosen: attached to every failed selection and available
//! on demand for a successful one (server-selection.md, "Server Selection Errors": errors
//! should let users tell why selection failed).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::address::ServerAddress;
use crate::read_preference::TagSet;
use crate::server_description::{ServerDescription, ServerType};
use crate::topology_description::TopologyDescription;

use super::criteria::SelectionCriteria;
use super::pipeline::{self, ImmediateFailure};
use crate::compatibility::{
    MAX_WIRE_VERSION as CLIENT_MAX_WIRE_VERSION, MIN_WIRE_VERSION as CLIENT_MIN_WIRE_VERSION,
};

/// Why a server was not chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The server's type is Unknown: not checked yet, or its last check failed (see
    /// [`ServerExplanation::last_error`]).
    Unknown,
    /// The server's type is not one this topology type, operation and mode select.
    WrongType {
        /// The server's type.
        server_type: ServerType,
        /// The rule that excludes it, e.g. "mode secondary reads only from secondaries".
        rule: &'static str,
    },
    /// The secondary's estimated staleness exceeds `maxStalenessSeconds`.
    Stale {
        /// The estimated staleness (max-staleness.md, "Client").
        staleness: Duration,
        /// The read preference's maximum.
        max_staleness: Duration,
    },
    /// `maxStalenessSeconds` is set but this secondary's staleness cannot be estimated (it,
    /// or the primary, has not reported `lastWrite`, or has no update time).
    StalenessUnknown,
    /// The server matches none of the tag sets that selection used.
    NoTagSetMatched {
        /// The index of the first tag set that matched some candidate (the one selection
        /// used), or `None` when no tag set matched any candidate.
        used_tag_set: Option<usize>,
        /// That tag set, when there is one.
        tag_set: Option<TagSet>,
    },
    /// The server's average RTT is above the latency window.
    OutsideLatencyWindow {
        /// The server's average RTT.
        round_trip_time: Duration,
        /// The fastest suitable server's average RTT (one end of the window).
        fastest: Duration,
        /// localThresholdMS (the window's width).
        local_threshold: Duration,
    },
    /// The server is deprioritized for this retry and other servers are suitable.
    Deprioritized,
    /// The server's wire version range does not overlap this client's; the whole topology is
    /// incompatible.
    IncompatibleWireVersion {
        /// The server's `minWireVersion`.
        min_wire_version: i32,
        /// The server's `maxWireVersion`.
        max_wire_version: i32,
    },
    /// Another server's wire version makes the topology incompatible, so no server can be
    /// selected.
    TopologyIncompatible,
    /// The read preference is invalid for this topology, so no server can be selected.
    InvalidReadPreference,
    /// The application-provided selector removed it.
    RejectedBySelector,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("unknown: not available (unchecked or unreachable)"),
            Self::WrongType { server_type, rule } => write!(f, "wrong type {server_type}: {rule}"),
            Self::Stale { staleness, max_staleness } => write!(
                f,
                "stale by {} s: estimated staleness {} s exceeds maxStalenessSeconds {}",
                seconds(staleness.saturating_sub(*max_staleness)),
                seconds(*staleness),
                max_staleness.as_secs()
            ),
            Self::StalenessUnknown => {
                f.write_str("staleness unknown: no lastWriteDate or update time to estimate it from")
            }
            Self::NoTagSetMatched { used_tag_set: None, .. } => {
                f.write_str("no tag set matched (no tag set matches any candidate)")
            }
            Self::NoTagSetMatched { used_tag_set: Some(i), tag_set } => {
                write!(f, "no tag set matched: does not match tag set #{i}")?;
                if let Some(t) = tag_set {
                    write!(f, " {t}")?;
                }
                f.write_str(", the first one that matches a candidate")
            }
            Self::OutsideLatencyWindow { round_trip_time, fastest, local_threshold } => write!(
                f,
                "outside the latency window by {} ms: average RTT {} ms > fastest {} ms + localThresholdMS {}",
                millis(round_trip_time.saturating_sub(fastest.saturating_add(*local_threshold))),
                millis(*round_trip_time),
                millis(*fastest),
                millis(*local_threshold)
            ),
            Self::Deprioritized => f.write_str("deprioritized for this retry; other servers are suitable"),
            Self::IncompatibleWireVersion { min_wire_version, max_wire_version } => write!(
                f,
                "incompatible wire version: server supports {min_wire_version}..={max_wire_version}, \
                 client supports {CLIENT_MIN_WIRE_VERSION}..={CLIENT_MAX_WIRE_VERSION}"
            ),
            Self::TopologyIncompatible => {
                f.write_str("not considered: another server's wire version makes the topology incompatible")
            }
            Self::InvalidReadPreference => {
                f.write_str("not considered: the read preference is invalid for this topology")
            }
            Self::RejectedBySelector => f.write_str("rejected by the application-provided selector"),
        }
    }
}

/// Formats a duration in seconds with up to three decimals ("12", "0.001").
fn seconds(d: Duration) -> String {
    trim(format!("{:.3}", d.as_secs_f64()))
}

/// Formats a duration in milliseconds with up to three decimals ("15", "2.5").
fn millis(d: Duration) -> String {
    trim(format!("{:.3}", d.as_secs_f64() * 1000.0))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The outcome for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The server that was chosen.
    Selected,
    /// Suitable and inside the latency window, but the in-window choice (two random
    /// candidates, fewer operations wins) picked another, or nothing was picked yet.
    InWindow,
    /// Not chosen, and why.
    Rejected(Rejection),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Selected => f.write_str("selected"),
            Self::InWindow => f.write_str("suitable and in the latency window, not chosen"),
            Self::Rejected(r) => write!(f, "{r}"),
        }
    }
}

/// What selection decided about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerExplanation {
    /// The server.
    pub address: ServerAddress,
    /// Its type when selection looked at it.
    pub server_type: ServerType,
    /// Its average RTT when selection looked at it.
    pub round_trip_time: Option<Duration>,
    /// The outcome.
    pub verdict: Verdict,
    /// The error of its last check ([`ServerDescription::error`]), for unreachable servers.
    pub last_error: Option<Arc<str>>,
}

impl fmt::Display for ServerExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.address, self.server_type)?;
        if let Some(rtt) = self.round_trip_time {
            write!(f, ", {} ms", millis(rtt))?;
        }
        write!(f, "): {}", self.verdict)?;
        if let Some(e) = &self.last_error {
            write!(f, " (last check error: {e})")?;
        }
        Ok(())
    }
}

/// Why each server of a topology was or was not chosen for some criteria.
///
/// A failed selection's error carries one; [`explain`] builds one for any selection, for
/// example to show "why this server" after a success. `Display` prints one server a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Explanation {
    /// The criteria, as shown in logs.
    pub criteria: String,
    /// The topology the decision was made on.
    pub topology: Arc<TopologyDescription>,
    /// One entry per server, in address order.
    pub servers: Vec<ServerExplanation>,
}

impl Explanation {
    /// The entry for `address`.
    pub fn server(&self, address: &ServerAddress) -> Option<&ServerExplanation> {
        self.servers.iter().find(|s| &s.address == address)
    }

    /// The verdict for `address`.
    pub fn verdict(&self, address: &ServerAddress) -> Option<&Verdict> {
        self.server(address).map(|s| &s.verdict)
    }

    /// The chosen server, if any.
    pub fn selected(&self) -> Option<&ServerAddress> {
        self.servers.iter().find(|s| s.verdict == Verdict::Selected).map(|s| &s.address)
    }

    /// Whether any server is of a type other than Unknown.
    pub fn any_available(&self) -> bool {
        self.servers.iter().any(|s| s.server_type != ServerType::Unknown)
    }

    /// A one-line summary in the spirit of server-selection.md, "Server Selection Errors":
    /// with available servers, `no server is suitable for {criteria}`; otherwise the servers'
    /// check errors (one if they are all the same). With no servers because `mongodb+srv`
    /// seed list discovery keeps failing, the discovery error
    /// ([`TopologyDescription::srv_error`]).
    pub fn summary(&self) -> String {
        if self.servers.is_empty() {
            return match &self.topology.srv_error {
                Some(e) => format!("no servers known for {}: {e}", self.criteria),
                None => format!("no servers known for {}", self.criteria),
            };
        }
        if self.any_available() {
            return format!("no server is suitable for {}", self.criteria);
        }
        let mut errors: Vec<&str> = self.servers.iter().filter_map(|s| s.last_error.as_deref()).collect();
        errors.sort_unstable();
        errors.dedup();
        if errors.is_empty() {
            format!("no server is available for {} (none checked yet)", self.criteria)
        } else {
            format!("no server is available for {}: {}", self.criteria, errors.join(", "))
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in a {} topology", self.criteria, self.topology.topology_type)?;
        if self.servers.is_empty() {
            f.write_str(": no servers")?;
            if let Some(e) = &self.topology.srv_error {
                write!(f, " ({e})")?;
            }
            return Ok(());
        }
        for s in &self.servers {
            write!(f, "\n  {s}")?;
        }
        Ok(())
    }
}

/// Records rejections while the selection pipeline runs. The fast path uses [`Ignore`].
pub(crate) trait Observer {
    /// Whether `reject` records anything; when false, callers skip the passes that only
    /// find servers to reject.
    const RECORDS: bool = true;
    /// `server` is out, for the reason `why` builds (called only by observers that record,
    /// so the fast path never builds one).
    fn reject(&mut self, server: &ServerDescription, why: impl FnOnce() -> Rejection);
    /// Forget everything recorded: a second pass (including deprioritized servers) starts.
    fn restart(&mut self);
}

/// An observer that records nothing (and allocates nothing).
pub(crate) struct Ignore;

impl Observer for Ignore {
    const RECORDS: bool = false;
    #[inline]
    fn reject(&mut self, _: &ServerDescription, _: impl FnOnce() -> Rejection) {}
    #[inline]
    fn restart(&mut self) {}
}

/// An observer that keeps the first rejection of each server.
#[derive(Default)]
pub(crate) struct Recorder {
    rejections: Vec<(ServerAddress, Rejection)>,
}

impl Observer for Recorder {
    fn reject(&mut self, server: &ServerDescription, why: impl FnOnce() -> Rejection) {
        if !self.rejections.iter().any(|(a, _)| a == &server.address) {
            self.rejections.push((server.address.clone(), why()));
        }
    }

    fn restart(&mut self) {
        self.rejections.clear();
    }
}

/// Explains a selection for `criteria` on `topology`: for each server, whether it was
/// `chosen`, in the latency window, or why it was rejected.
///
/// Pass the address a successful selection returned as `chosen` (or `None` to see which
/// servers were eligible). The decision is recomputed, so explain against the same topology
/// the selection used.
pub fn explain(
    topology: &TopologyDescription,
    criteria: &SelectionCriteria,
    chosen: Option<&ServerAddress>,
) -> Explanation {
    explain_shared(Arc::new(topology.clone()), criteria, chosen)
}

/// [`explain`] for a topology already behind an `Arc` (no copy is made).
pub fn explain_shared(
    topology: Arc<TopologyDescription>,
    criteria: &SelectionCriteria,
    chosen: Option<&ServerAddress>,
) -> Explanation {
    let mut recorder = Recorder::default();
    let window = pipeline::window_with(&topology, criteria, &mut recorder);
    let servers = topology
        .servers
        .iter()
        .map(|sd| {
            let verdict = match &window {
                Err(ImmediateFailure::IncompatibleTopology(_)) => Verdict::Rejected(incompatibility(sd)),
                Err(ImmediateFailure::InvalidReadPreference(_)) => {
                    Verdict::Rejected(Rejection::InvalidReadPreference)
                }
                Ok(list) if list.iter().any(|w| w.address == sd.address) => {
                    if chosen == Some(&sd.address) {
                        Verdict::Selected
                    } else {
                        Verdict::InWindow
                    }
                }
                Ok(_) => Verdict::Rejected(
                    recorder
                        .rejections
                        .iter()
                        .find(|(a, _)| a == &sd.address)
                        .map(|(_, r)| r.clone())
                        // Every path of the pipeline records a reason; this is a safe default.
                        .unwrap_or(Rejection::WrongType {
                            server_type: sd.server_type,
                            rule: "not a candidate",
                        }),
                ),
            };
            ServerExplanation {
                address: sd.address.clone(),
                server_type: sd.server_type,
                round_trip_time: sd.round_trip_time,
                verdict,
                last_error: sd.error.clone(),
            }
        })
        .collect();
    drop(window);
    Explanation { criteria: criteria.to_string(), topology, servers }
}

fn incompatibility(sd: &ServerDescription) -> Rejection {
    if sd.server_type == ServerType::Unknown {
        Rejection::Unknown
    } else if crate::compatibility::is_compatible(sd) {
        Rejection::TopologyIncompatible
    } else {
        Rejection::IncompatibleWireVersion {
            min_wire_version: sd.min_wire_version,
            max_wire_version: sd.max_wire_version,
        }
    }
}
