//! Round-trip time statistics for one server: the moving average that server selection's
//! latency window uses, and the minimum over recent samples that monitoring reports.
//!
//! server-selection.md, "Calculation of Average Round Trip Times", and server-monitoring.md,
//! "Measuring RTT".

use std::time::Duration;

/// How many recent samples the minimum RTT covers (server-monitoring.md, "Measuring RTT").
pub const MIN_RTT_WINDOW: usize = 10;

/// [`MIN_RTT_WINDOW`] as the type of [`RttStats`]' counters.
#[allow(clippy::cast_possible_truncation)] // checked by the assertion below
const WINDOW: u8 = MIN_RTT_WINDOW as u8;
const _: () = assert!(MIN_RTT_WINDOW <= u8::MAX as usize);

/// The next average RTT after `sample`, given the previous average `old`.
///
/// server-selection.md, "Calculation of Average Round Trip Times": with no previous average
/// the sample is taken as is; otherwise `new = 0.2 * sample + 0.8 * old` (alpha = 0.2),
/// computed exactly in nanoseconds and rounded to the nearest nanosecond.
pub fn next_average(old: Option<Duration>, sample: Duration) -> Duration {
    match old {
        None => sample,
        Some(old) => {
            // 0.2 * x + 0.8 * old == (x + 4 * old) / 5, rounded half up; in 64 bits whenever
            // it fits (any RTT below 116 years), which divides by a multiplication instead of
            // a call to 128-bit division.
            let small = u64::try_from(sample.as_nanos()).ok().zip(u64::try_from(old.as_nanos()).ok());
            match small.and_then(|(x, o)| o.checked_mul(4)?.checked_add(x)?.checked_add(2)) {
                Some(sum) => Duration::from_nanos(sum / 5),
                None => duration_from_nanos((sample.as_nanos() + 4 * old.as_nanos() + 2) / 5),
            }
        }
    }
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9 and fits a u32.
    let sub = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
    Duration::new(secs, sub)
}

/// A server's RTT statistics: the exponentially weighted moving average and the minimum of
/// the last [`MIN_RTT_WINDOW`] samples.
///
/// Feed every RTT sample to [`RttStats::add_sample`]; call [`RttStats::reset`] when the
/// server is marked Unknown (server-selection.md: "When a server becomes unavailable, its
/// average RTT MUST be cleared"), so that the first sample after it becomes available again
/// is taken as the new average. A `Duration` cannot be negative, so negative RTTs are
/// rejected by construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RttStats {
    average: Option<Duration>,
    /// The recent samples in nanoseconds (half the size of `Duration`s: the statistics sit in
    /// every monitor, which each check reads and writes). A sample of more than 584 years
    /// counts as 584 years for the minimum; the average takes it exactly.
    recent: [u64; MIN_RTT_WINDOW],
    /// How many entries of `recent` hold samples (at most `MIN_RTT_WINDOW`).
    len: u8,
    /// Where the next sample goes in `recent`.
    next: u8,
}

impl RttStats {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one RTT measurement.
    pub fn add_sample(&mut self, rtt: Duration) {
        self.average = Some(next_average(self.average, rtt));
        if let Some(slot) = self.recent.get_mut(usize::from(self.next)) {
            *slot = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        }
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
    }

    /// The moving average, or `None` before the first sample (an Unknown server has no
    /// average RTT).
    pub fn average(&self) -> Option<Duration> {
        self.average
    }

    /// The minimum of the last [`MIN_RTT_WINDOW`] samples; zero until at least two samples
    /// have been gathered (server-monitoring.md, "Measuring RTT").
    pub fn minimum(&self) -> Duration {
        if self.len < 2 {
            return Duration::ZERO;
        }
        self.recent
            .iter()
            .take(usize::from(self.len))
            .copied()
            .min()
            .map_or(Duration::ZERO, Duration::from_nanos)
    }

    /// How many samples the minimum currently covers.
    pub fn sample_count(&self) -> usize {
        usize::from(self.len)
    }

    /// Forgets every sample: the server became Unknown (server-selection.md, "Calculation of
    /// Average Round Trip Times").
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: f64) -> Duration {
        Duration::from_secs_f64(x / 1000.0)
    }

    #[test]
    fn first_sample_is_the_average() {
        assert_eq!(next_average(None, ms(10.0)), ms(10.0));
        assert_eq!(next_average(None, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn moving_average_uses_alpha_point_two() {
        assert_eq!(next_average(Some(Duration::ZERO), Duration::from_millis(5)), Duration::from_millis(1));
        assert_eq!(
            next_average(Some(Duration::from_millis(1)), Duration::from_millis(1000)),
            Duration::from_micros(200_800)
        );
        assert_eq!(
            next_average(Some(Duration::from_micros(3_100)), Duration::from_millis(36)),
            Duration::from_micros(9_680)
        );
        // Huge values do not overflow.
        let big = Duration::from_secs(u64::MAX / 2);
        assert!(next_average(Some(big), big) >= big);
    }

    #[test]
    fn minimum_needs_two_samples_and_covers_the_last_ten() {
        let mut s = RttStats::new();
        assert_eq!(s.average(), None);
        assert_eq!(s.minimum(), Duration::ZERO);
        s.add_sample(Duration::from_millis(7));
        assert_eq!(s.minimum(), Duration::ZERO, "one sample is not enough");
        s.add_sample(Duration::from_millis(9));
        assert_eq!(s.minimum(), Duration::from_millis(7));
        for _ in 0..9 {
            s.add_sample(Duration::from_millis(20));
        }
        // Eleven samples so far: the 7 ms one has dropped out of the last ten.
        assert_eq!(s.minimum(), Duration::from_millis(9));
        s.add_sample(Duration::from_millis(20));
        assert_eq!(s.minimum(), Duration::from_millis(20));
        assert_eq!(s.sample_count(), MIN_RTT_WINDOW);
    }

    /// The window keeps nanoseconds: the minimum is exact to the nanosecond, and a sample of
    /// more than 584 years counts as 584 years for the minimum (never a panic or a wrap).
    #[test]
    fn the_minimum_is_exact_to_the_nanosecond_and_saturates() {
        let mut s = RttStats::new();
        s.add_sample(Duration::new(3, 123_456_789));
        s.add_sample(Duration::new(3, 123_456_790));
        assert_eq!(s.minimum(), Duration::new(3, 123_456_789));
        let mut huge = RttStats::new();
        huge.add_sample(Duration::MAX);
        huge.add_sample(Duration::MAX);
        assert_eq!(huge.minimum(), Duration::from_nanos(u64::MAX));
        assert_eq!(huge.average(), Some(Duration::MAX));
    }

    #[test]
    fn reset_clears_average_and_minimum() {
        let mut s = RttStats::new();
        s.add_sample(Duration::from_millis(50));
        s.add_sample(Duration::from_millis(40));
        s.reset();
        assert_eq!(s.average(), None);
        assert_eq!(s.minimum(), Duration::ZERO);
        s.add_sample(Duration::from_millis(3));
        assert_eq!(s.average(), Some(Duration::from_millis(3)), "first sample after reset is the average");
    }

    proptest::proptest! {
        /// The 64-bit path is the exact formula: `(x + 4 * old + 2) / 5` nanoseconds, in 128
        /// bits, for RTTs of every size (the largest ones take the 128-bit path).
        #[test]
        fn the_average_is_the_exact_formula(
            x_secs in proptest::prop_oneof![0u64..100, 0u64..=u64::MAX],
            x_sub in 0u32..1_000_000_000,
            o_secs in proptest::prop_oneof![0u64..100, 0u64..=u64::MAX],
            o_sub in 0u32..1_000_000_000,
        ) {
            let (x, old) = (Duration::new(x_secs, x_sub), Duration::new(o_secs, o_sub));
            let exact = duration_from_nanos((x.as_nanos() + 4 * old.as_nanos() + 2) / 5);
            proptest::prop_assert_eq!(next_average(Some(old), x), exact);
        }
    }
}
