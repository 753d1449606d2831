//! The latency window (server-selection.md, "Filtering suitable servers based on the latency
//! window").

use std::time::Duration;

use super::explanation::{Observer, Rejection};
use super::ServerList;

/// Keeps the servers whose average RTT is within `local_threshold` of the fastest one's.
///
/// server-selection.md, "Filtering suitable servers based on the latency window": the
/// shortest average RTT among suitable servers is `A`; a server is in the window when its
/// RTT is at most `A + localThresholdMS`. A server without an average RTT (a load balancer,
/// which is never monitored) neither anchors the window nor falls outside it.
pub(crate) fn retain_in_window<O: Observer>(
    servers: &mut ServerList<'_>,
    local_threshold: Duration,
    observer: &mut O,
) {
    let Some(fastest) = servers.iter().filter_map(|sd| sd.round_trip_time).min() else {
        return;
    };
    let bound = fastest.saturating_add(local_threshold);
    servers.retain(|sd| match sd.round_trip_time {
        Some(rtt) if rtt > bound => {
            observer.reject(sd, || Rejection::OutsideLatencyWindow {
                round_trip_time: rtt,
                fastest,
                local_threshold,
            });
            false
        }
        _ => true,
    });
}
