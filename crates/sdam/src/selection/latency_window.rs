//! The latency window (server-selection.md, "Filtering suitable servers based on the latency
//! window"), written once: [`Window`] is the rule. [`retain_in_window`] applies it to a list
//! of descriptions (the general path, which `explain` always takes); the server map's fast
//! paths (`server_map/fast_window.rs`) apply the same [`Window`] to their compact entries, in
//! nanoseconds.

use std::time::Duration;

use super::explanation::{Observer, Rejection};
use super::ServerList;

/// A round-trip time the window compares: a [`Duration`], or whole nanoseconds (`u64`) in the
/// server map's compact entries.
pub(crate) trait RoundTripTime: Copy + Ord {
    /// The largest value.
    const MAX: Self;
    /// `self + other`, saturating at [`MAX`](Self::MAX).
    fn saturating_plus(self, other: Self) -> Self;
}

impl RoundTripTime for Duration {
    const MAX: Self = Self::MAX;
    #[inline]
    fn saturating_plus(self, other: Self) -> Self {
        self.saturating_add(other)
    }
}

impl RoundTripTime for u64 {
    const MAX: Self = Self::MAX;
    #[inline]
    fn saturating_plus(self, other: Self) -> Self {
        self.saturating_add(other)
    }
}

/// The latency window anchored at the fastest suitable server.
///
/// server-selection.md, "Filtering suitable servers based on the latency window": the
/// shortest average RTT among suitable servers is `A`; a server is in the window when its
/// RTT is at most `A + localThresholdMS`. A server without an average RTT (a load balancer,
/// which is never monitored) neither anchors the window nor falls outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window<T> {
    /// `A + localThresholdMS`; the largest value when no suitable server has an average RTT
    /// (then every server is inside).
    bound: T,
}

impl<T: RoundTripTime> Window<T> {
    /// The window whose fastest suitable server's average RTT is `fastest` (`None`: no
    /// suitable server has one).
    #[inline]
    pub(crate) fn new(fastest: Option<T>, local_threshold: T) -> Self {
        Self { bound: fastest.map_or(T::MAX, |a| a.saturating_plus(local_threshold)) }
    }

    /// Whether a suitable server whose average RTT is `rtt` is inside the window.
    #[inline]
    pub(crate) fn contains(self, rtt: Option<T>) -> bool {
        rtt.is_none_or(|rtt| rtt <= self.bound)
    }
}

/// Keeps the servers inside the [`Window`] anchored at the fastest of them.
pub(crate) fn retain_in_window<O: Observer>(
    servers: &mut ServerList<'_>,
    local_threshold: Duration,
    observer: &mut O,
) {
    let Some(fastest) = servers.iter().filter_map(|sd| sd.round_trip_time).min() else {
        return;
    };
    let window = Window::new(Some(fastest), local_threshold);
    servers.retain(|sd| match sd.round_trip_time {
        Some(rtt) if !window.contains(Some(rtt)) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_anchored_at_the_fastest_and_keeps_servers_without_rtt() {
        let ms = Duration::from_millis;
        let window = Window::new(Some(ms(10)), ms(15));
        assert!(window.contains(Some(ms(10))));
        assert!(window.contains(Some(ms(25))));
        assert!(!window.contains(Some(ms(26))));
        assert!(window.contains(None));
        let empty = Window::new(None, ms(15));
        assert!(empty.contains(Some(Duration::MAX)) && empty.contains(None));
        // Saturating: no overflow at the top of the range.
        assert!(Window::new(Some(u64::MAX - 1), 5).contains(Some(u64::MAX)));
    }
}
