//! Per-server monitors: when each server is checked and what is sent
//! (server-monitoring.md, "Multi-threaded or asynchronous monitoring", "Streaming Protocol",
//! "Measuring RTT").
//!
//! A monitor is a small schedule, not a thread: the topology asks it what is due at `now`
//! and turns the answer into [`Command`](crate::Command)s for the I/O layer.

use std::fmt;
use std::time::{Duration, Instant};

use crate::rtt::RttStats;
use crate::server_description::TopologyVersion;

/// The least time between the end of one check and the start of the next
/// (server-monitoring.md, "minHeartbeatFrequencyMS"); not configurable.
pub const MIN_HEARTBEAT_FREQUENCY: Duration = Duration::from_millis(500);

/// Which monitoring protocol to use (server-monitoring.md, "serverMonitoringMode").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerMonitoringMode {
    /// `poll` on a FaaS platform, `stream` elsewhere (the default).
    #[default]
    Auto,
    /// Use the streaming protocol when the server supports it.
    Stream,
    /// Always use the polling protocol.
    Poll,
}

impl ServerMonitoringMode {
    /// The option value: `auto`, `stream` or `poll`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Stream => "stream",
            Self::Poll => "poll",
        }
    }

    /// Parses an option value, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Auto, Self::Stream, Self::Poll].into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for ServerMonitoringMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one connection the I/O layer holds for the core (a monitoring or RTT
/// connection). Never reused within a topology. Opaque: only the topology makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl ConnectionId {
    pub(crate) fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number, e.g. for a thread name or a log line.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies one exchange the core asked for (a hello, a DNS lookup). Replies and failures
/// name it, so a late reply for a cancelled or superseded exchange is recognised and dropped.
/// Opaque: only the topology makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl RequestId {
    pub(crate) fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number, e.g. for a log line.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a monitor's exchange failed, as reported by the I/O layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// Connection refused, reset or closed; a malformed or oversized frame.
    Network,
    /// No reply within the timeout the command gave.
    Timeout,
}

/// What a monitor is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Sleeping until `next_check`.
    Idle {
        /// When the next check starts (earlier if an immediate check is requested).
        next_check: Instant,
    },
    /// A check is in flight.
    Checking {
        /// The exchange in flight.
        request: RequestId,
        /// When it started (for heartbeat durations).
        started: Instant,
        /// Whether it is an awaitable (streaming) hello.
        awaited: bool,
        /// Whether it is the handshake of a new connection.
        handshake: bool,
    },
}

/// The monitor of one server.
#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    /// The monitoring connection, once one was asked for.
    pub(crate) connection: Option<ConnectionId>,
    /// Whether the server said `helloOk` (use `hello`, not legacy hello).
    pub(crate) hello_ok: bool,
    /// What the monitor is doing.
    pub(crate) phase: Phase,
    /// When the last check ended.
    pub(crate) last_check_end: Option<Instant>,
    /// Whether this server may be streamed (config allows it and it has not shown it can't).
    pub(crate) streaming_allowed: bool,
    /// The topologyVersion of the last successful reply: streaming resumes from it.
    pub(crate) topology_version: Option<TopologyVersion>,
    /// Round-trip statistics.
    pub(crate) rtt: RttStats,
    /// The RTT schedule, running beside a streaming monitor.
    pub(crate) rtt_task: Option<RttTask>,
}

/// The RTT measurement schedule of a streaming monitor (server-monitoring.md, "Measuring RTT").
#[derive(Debug, Clone, Copy)]
pub(crate) struct RttTask {
    /// Its dedicated connection, once one was asked for.
    pub(crate) connection: Option<ConnectionId>,
    /// The exchange in flight, if any.
    pub(crate) request: Option<RequestId>,
    /// When the next measurement starts.
    pub(crate) next_at: Instant,
}

impl Monitor {
    /// A monitor whose first check is due at `now`.
    pub(crate) fn new(now: Instant, streaming_allowed: bool) -> Self {
        Self {
            connection: None,
            hello_ok: false,
            phase: Phase::Idle { next_check: now },
            last_check_end: None,
            streaming_allowed,
            topology_version: None,
            rtt: RttStats::new(),
            rtt_task: None,
        }
    }

    /// The earliest moment this monitor needs the topology's attention.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let check = match self.phase {
            Phase::Idle { next_check } => Some(next_check),
            Phase::Checking { .. } => None,
        };
        let rtt = self.rtt_task.filter(|t| t.request.is_none()).map(|t| t.next_at);
        match (check, rtt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// "Requesting an immediate check": wakes a sleeping monitor, no sooner than
    /// minHeartbeatFrequencyMS after the previous check ended; ignored while a check runs.
    pub(crate) fn request_check(&mut self, now: Instant) {
        if let Phase::Idle { next_check } = &mut self.phase {
            let earliest = self.last_check_end.map_or(now, |end| (end + MIN_HEARTBEAT_FREQUENCY).max(now));
            if earliest < *next_check {
                *next_check = earliest;
            }
        }
    }

    /// Goes to sleep after a check that ended at `now`: the next check is a heartbeat later.
    pub(crate) fn sleep(&mut self, now: Instant, heartbeat: Duration) {
        self.last_check_end = Some(now);
        self.phase = Phase::Idle { next_check: now + heartbeat };
    }

    /// Checks again at once (after a successful streaming-capable reply, or the one retry
    /// after a network error on a known server).
    pub(crate) fn check_now(&mut self, now: Instant) {
        self.last_check_end = Some(now);
        self.phase = Phase::Idle { next_check: now };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediate_checks_honour_min_heartbeat_frequency() {
        let t0 = crate::test_instant();
        let hb = Duration::from_secs(10);
        let mut m = Monitor::new(t0, true);
        assert_eq!(m.next_deadline(), Some(t0));
        m.sleep(t0, hb);
        assert_eq!(m.next_deadline(), Some(t0 + hb));
        // Requested 100 ms after the check ended: runs at 500 ms, not before.
        m.request_check(t0 + Duration::from_millis(100));
        assert_eq!(m.next_deadline(), Some(t0 + MIN_HEARTBEAT_FREQUENCY));
        // Requested later than that: runs at once.
        m.sleep(t0, hb);
        m.request_check(t0 + Duration::from_secs(2));
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(2)));
        // Ignored while a check is in flight.
        m.phase = Phase::Checking { request: RequestId(1), started: t0, awaited: false, handshake: false };
        m.request_check(t0 + Duration::from_secs(3));
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn rtt_task_deadline_counts_only_when_idle() {
        let t0 = crate::test_instant();
        let mut m = Monitor::new(t0, true);
        m.phase = Phase::Checking { request: RequestId(1), started: t0, awaited: true, handshake: false };
        m.rtt_task = Some(RttTask { connection: None, request: None, next_at: t0 + Duration::from_secs(1) });
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(1)));
        m.rtt_task = Some(RttTask { connection: None, request: Some(RequestId(2)), next_at: t0 });
        assert_eq!(m.next_deadline(), None);
    }
}
