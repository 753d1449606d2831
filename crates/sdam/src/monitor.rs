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

/// Who runs the monitors (ARCHITECTURE.md, "Monitoring is the core's or the driver's").
///
/// Either way every check result goes through the same server-monitoring rules (heartbeat
/// events, paired; the RTT moving average and minimum; a failed check closes the monitoring
/// connection, marks the server Unknown and clears its pool; the one retry after a network
/// error; the check in flight cancelled on an application's network error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MonitorOwner {
    /// The core's monitors (the default): the core schedules every check and asks the I/O
    /// layer for each exchange ([`Command::SendHello`](crate::Command::SendHello),
    /// [`Command::ReadReply`](crate::Command::ReadReply)), which it answers with
    /// [`Input::MonitorReply`](crate::Input::MonitorReply) /
    /// [`Input::MonitorFailed`](crate::Input::MonitorFailed).
    #[default]
    Core,
    /// The driver runs its own monitors: the core sends no `SendHello` at all and takes the
    /// check results by address ([`Input::CheckStarted`](crate::Input::CheckStarted),
    /// [`Input::HelloReply`](crate::Input::HelloReply),
    /// [`Input::CheckFailed`](crate::Input::CheckFailed)). What the core would have done to
    /// a monitor's schedule it asks of the driver's with
    /// [`Command::RequestCheck`](crate::Command::RequestCheck) and
    /// [`Command::CancelCheck`](crate::Command::CancelCheck).
    Driver,
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
        /// When the core fails it as a timeout if no answer came (`None`: no limit).
        deadline: Option<Instant>,
        /// The connection it runs on, as heartbeat events name it.
        connection: ConnectionId,
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
    /// When the monitoring connection in use (or the last one) was opened: a new one opens no
    /// sooner than [`MIN_HEARTBEAT_FREQUENCY`] after it (the streaming failure loop bound).
    pub(crate) last_open: Option<Instant>,
    /// Driver-owned monitoring: the driver runs the schedule, the core never starts a check.
    pub(crate) driver_owned: bool,
    /// Driver-owned monitoring: the check in flight was cancelled by the core; the next result
    /// reported before a new `CheckStarted` is that check's, and is ignored.
    pub(crate) cancelled: bool,
}

/// The RTT measurement schedule of a streaming monitor (server-monitoring.md, "Measuring RTT").
#[derive(Debug, Clone, Copy)]
pub(crate) struct RttTask {
    /// Its dedicated connection, once one was asked for.
    pub(crate) connection: Option<ConnectionId>,
    /// The exchange in flight, if any.
    pub(crate) request: Option<RequestId>,
    /// When the exchange in flight is failed as a timeout (`None`: no limit).
    pub(crate) deadline: Option<Instant>,
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
            last_open: None,
            driver_owned: false,
            cancelled: false,
        }
    }

    /// A monitor whose schedule the driver runs: it never has a deadline of its own.
    pub(crate) fn driver_owned(now: Instant) -> Self {
        Self { driver_owned: true, ..Self::new(now, false) }
    }

    /// The earliest moment this monitor needs the topology's attention.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if self.driver_owned {
            return None;
        }
        let check = match self.phase {
            Phase::Idle { next_check } => Some(next_check),
            // The exchange in flight times out then.
            Phase::Checking { deadline, .. } => deadline,
        };
        let rtt = self.rtt_task.and_then(|t| if t.request.is_none() { Some(t.next_at) } else { t.deadline });
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

    /// A check reported by address starts at `now` (server-monitoring.md, "Monitoring";
    /// driver-owned monitoring): no deadline of the core's, on the driver's monitoring
    /// connection (`fresh` the first time), or on `fresh` for a core monitor whose exchange was
    /// abandoned. Returns the connection its heartbeat events name.
    pub(crate) fn begin_check_by_address(
        &mut self,
        fresh: ConnectionId,
        request: RequestId,
        awaited: bool,
        now: Instant,
    ) -> ConnectionId {
        self.cancelled = false;
        let connection = if self.driver_owned { *self.connection.get_or_insert(fresh) } else { fresh };
        self.phase =
            Phase::Checking { request, started: now, awaited, handshake: false, deadline: None, connection };
        connection
    }

    /// Goes to sleep after a check that ended at `now`: the next check is a heartbeat later.
    pub(crate) fn sleep(&mut self, now: Instant, heartbeat: Duration) {
        self.last_check_end = Some(now);
        self.phase = Phase::Idle { next_check: now + heartbeat };
    }

    /// Checks again at once (after a successful streaming-capable reply, or the one retry
    /// after a network error on a known server).
    pub(crate) fn check_now(&mut self, now: Instant) {
        self.check_at(now, now);
    }

    /// Checks again at `at` (not before `now`) after a check that ended at `now`.
    pub(crate) fn check_at(&mut self, now: Instant, at: Instant) {
        self.last_check_end = Some(now);
        self.phase = Phase::Idle { next_check: at.max(now) };
    }

    /// The earliest moment a new monitoring connection may open: [`MIN_HEARTBEAT_FREQUENCY`]
    /// after the last one opened. This bounds a server that completes the handshake and then
    /// fails every awaitable hello (the one immediate retry after a network error and the
    /// immediate awaitable hello after a handshake would otherwise feed each other).
    pub(crate) fn earliest_open(&self, now: Instant) -> Instant {
        self.last_open.map_or(now, |t| (t + MIN_HEARTBEAT_FREQUENCY).max(now))
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
        m.phase = Phase::Checking {
            request: RequestId(1),
            started: t0,
            awaited: false,
            handshake: false,
            deadline: None,
            connection: ConnectionId(1),
        };
        m.request_check(t0 + Duration::from_secs(3));
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn rtt_task_deadline_counts_only_when_idle() {
        let t0 = crate::test_instant();
        let mut m = Monitor::new(t0, true);
        m.phase = Phase::Checking {
            request: RequestId(1),
            started: t0,
            awaited: true,
            handshake: false,
            deadline: None,
            connection: ConnectionId(1),
        };
        m.rtt_task = Some(RttTask {
            connection: None,
            request: None,
            deadline: None,
            next_at: t0 + Duration::from_secs(1),
        });
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(1)));
        m.rtt_task =
            Some(RttTask { connection: None, request: Some(RequestId(2)), deadline: None, next_at: t0 });
        assert_eq!(m.next_deadline(), None, "no limit on either exchange");
        let d = t0 + Duration::from_secs(3);
        m.rtt_task =
            Some(RttTask { connection: None, request: Some(RequestId(2)), deadline: Some(d), next_at: t0 });
        assert_eq!(m.next_deadline(), Some(d), "the RTT exchange's deadline");
        m.phase = Phase::Checking {
            request: RequestId(1),
            started: t0,
            awaited: true,
            handshake: false,
            deadline: Some(t0 + Duration::from_secs(2)),
            connection: ConnectionId(1),
        };
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(2)), "the check's deadline");
    }
}
