//! Staleness estimation for `maxStalenessSeconds` (max-staleness.md, "Client";
//! server-selection.md, "maxStalenessSeconds").

use std::time::{Duration, Instant};

use crate::server_description::{ServerDescription, ServerType};
use crate::topology_description::{TopologyDescription, TopologyType};

/// The estimated staleness of `server` in `topology`, or `None` when it cannot be estimated.
///
/// Non-secondaries have zero staleness. With a known primary P (topology type
/// ReplicaSetWithPrimary) a secondary S's staleness is
/// `(S.lastUpdateTime - S.lastWriteDate) - (P.lastUpdateTime - P.lastWriteDate) + heartbeatFrequencyMS`;
/// without one it is `SMax.lastWriteDate - S.lastWriteDate + heartbeatFrequencyMS`, where
/// SMax is the secondary with the greatest lastWriteDate. The estimate can be negative;
/// it is then reported as zero (still within any maximum).
///
/// It is `None` when S (or P) has no `lastWriteDate`, or with a primary, no update time.
pub fn estimate_staleness(topology: &TopologyDescription, server: &ServerDescription) -> Option<Duration> {
    estimate_nanos(topology, server).map(|n| nanos_to_duration(n.max(0)))
}

/// Whether `server`'s estimated staleness is within `max` (server-selection.md,
/// "maxStalenessSeconds": servers with staleness less than or equal to it are eligible).
/// `Err(None)`: it cannot be estimated; `Err(Some(s))`: it is `s`, too stale.
pub(crate) fn check(
    topology: &TopologyDescription,
    server: &ServerDescription,
    max: Duration,
) -> Result<(), Option<Duration>> {
    let nanos = estimate_nanos(topology, server).ok_or(None)?;
    if nanos <= i128::try_from(max.as_nanos()).unwrap_or(i128::MAX) {
        Ok(())
    } else {
        Err(Some(nanos_to_duration(nanos)))
    }
}

fn estimate_nanos(topology: &TopologyDescription, s: &ServerDescription) -> Option<i128> {
    // max-staleness.md, "Client": non-secondary servers have zero staleness.
    if s.server_type != ServerType::RSSecondary {
        return Some(0);
    }
    let heartbeat = i128::try_from(topology.heartbeat_frequency.as_nanos()).unwrap_or(i128::MAX);
    let s_write = write_nanos(s)?;
    let primary = match topology.topology_type {
        TopologyType::ReplicaSetWithPrimary => topology.primary(),
        _ => None,
    };
    let lag = match primary {
        // max-staleness.md, "Client": with a primary,
        // (S.lastUpdateTime - S.lastWriteDate) - (P.lastUpdateTime - P.lastWriteDate).
        Some(p) => {
            let updates = signed_nanos(s.last_update_time?, p.last_update_time?);
            updates.saturating_sub(s_write.saturating_sub(write_nanos(p)?))
        }
        // max-staleness.md, "Client": without one, SMax.lastWriteDate - S.lastWriteDate.
        None => {
            let max_write = topology
                .servers
                .iter()
                .filter(|sd| sd.server_type == ServerType::RSSecondary)
                .filter_map(|sd| write_nanos(sd))
                .max()
                .unwrap_or(s_write);
            max_write.saturating_sub(s_write)
        }
    };
    Some(lag.saturating_add(heartbeat))
}

/// `lastWriteDate` in nanoseconds since the epoch.
fn write_nanos(sd: &ServerDescription) -> Option<i128> {
    sd.last_write_date.map(|d| i128::from(d.timestamp_millis()) * 1_000_000)
}

/// `a - b` in nanoseconds, negative when `b` is later.
fn signed_nanos(a: Instant, b: Instant) -> i128 {
    let to_i128 = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    match a.checked_duration_since(b) {
        Some(d) => to_i128(d),
        None => -to_i128(b.saturating_duration_since(a)),
    }
}

fn nanos_to_duration(nanos: i128) -> Duration {
    let nanos = u128::try_from(nanos).unwrap_or(0);
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, u32::try_from(nanos % 1_000_000_000).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerAddress;

    fn base() -> Instant {
        crate::test_instant()
    }

    fn member(
        host: &str,
        server_type: ServerType,
        updated_ms: u64,
        write_ms: i64,
        t0: Instant,
    ) -> ServerDescription {
        let mut sd = ServerDescription::unknown(ServerAddress::parse(host).unwrap());
        sd.server_type = server_type;
        sd.last_update_time = Some(t0 + Duration::from_millis(updated_ms));
        sd.last_write_date = Some(bson::DateTime::from_millis(write_ms));
        sd
    }

    /// The worked example of max-staleness.md, "Estimating Staleness: Example With a Primary
    /// and Continuous Writes" (seconds scaled to milliseconds of the spec's table).
    #[test]
    fn with_primary_follows_the_spec_example() {
        let t0 = base();
        let mut td = TopologyDescription::new(TopologyType::ReplicaSetWithPrimary);
        td.insert_server(member("p", ServerType::RSPrimary, 60_000, 10_000, t0));
        td.insert_server(member("s", ServerType::RSSecondary, 60_000, 0, t0));
        let s = td.server(&ServerAddress::parse("s").unwrap()).unwrap().clone();
        assert_eq!(estimate_staleness(&td, &s), Some(Duration::from_secs(20)));
        td.insert_server(member("s", ServerType::RSSecondary, 70_000, 5_000, t0));
        let s = td.server(&ServerAddress::parse("s").unwrap()).unwrap().clone();
        assert_eq!(estimate_staleness(&td, &s), Some(Duration::from_secs(25)));
        td.insert_server(member("p", ServerType::RSPrimary, 80_000, 30_000, t0));
        assert_eq!(estimate_staleness(&td, &s), Some(Duration::from_secs(25)));
        let p = td.primary().unwrap().clone();
        assert_eq!(estimate_staleness(&td, &p), Some(Duration::ZERO));
        assert_eq!(check(&td, &s, Duration::from_secs(25)), Ok(()));
        assert_eq!(check(&td, &s, Duration::from_secs(24)), Err(Some(Duration::from_secs(25))));
    }

    /// max-staleness.md, "Estimating Staleness: Example With No Primary".
    #[test]
    fn without_primary_uses_the_freshest_secondary() {
        let t0 = base();
        let mut td = TopologyDescription::new(TopologyType::ReplicaSetNoPrimary);
        td.insert_server(member("s1", ServerType::RSSecondary, 0, 20_000, t0));
        td.insert_server(member("s2", ServerType::RSSecondary, 0, 5_000, t0));
        let get = |h: &str| td.server(&ServerAddress::parse(h).unwrap()).unwrap().clone();
        assert_eq!(estimate_staleness(&td, &get("s1")), Some(Duration::from_secs(10)));
        assert_eq!(estimate_staleness(&td, &get("s2")), Some(Duration::from_secs(25)));
    }

    #[test]
    fn missing_data_means_unknown_and_negative_means_zero() {
        let t0 = base();
        let mut td = TopologyDescription::new(TopologyType::ReplicaSetWithPrimary);
        td.heartbeat_frequency = Duration::ZERO;
        td.insert_server(member("p", ServerType::RSPrimary, 0, 0, t0));
        let mut s = member("s", ServerType::RSSecondary, 0, 50_000, t0);
        assert_eq!(estimate_staleness(&td, &s), Some(Duration::ZERO), "negative estimates read as zero");
        s.last_write_date = None;
        assert_eq!(estimate_staleness(&td, &s), None);
        assert_eq!(check(&td, &s, Duration::from_secs(1000)), Err(None));
        let mut s = member("s", ServerType::RSSecondary, 0, 0, t0);
        s.last_update_time = None;
        assert_eq!(estimate_staleness(&td, &s), None);
    }
}
