//! Performance machinery of selection: latency windows read from a [`ServerMap`]'s compact
//! entries (type and round-trip time beside each description pointer, per-type counts and
//! fastest round-trip times in each chunk's summary), without an intermediate list and
//! without reading the descriptions the filter rejects.
//!
//! Each must equal the general path: the topology-type rules of
//! `selection::topology_rules::Rules` (mode, then tag sets) followed by
//! `selection::latency_window::retain_in_window`, the path `selection::explain` always takes.
//! The latency window itself is not written again here: both apply
//! [`latency_window::Window`](crate::selection::latency_window::Window). When an entry cannot
//! answer (a round-trip time too long for nanoseconds) they return `false` and the caller takes
//! the general path. Checked by the property tests `selection_matches_the_spec_rules` and
//! `tag_set_fast_path_matches_the_spec_rules` (`selection/proptests.rs`: the same servers in
//! the same order as a reference written from the spec and as `explain`), and after every
//! step of the `testing` harness (`testing::invariants`, under proptest and the `selection`
//! and `topology_transitions` fuzz targets).

use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

use super::{ServerMap, TypeSet, NO_RTT};
use crate::read_preference::TagSet;
use crate::selection::latency_window::Window;
use crate::server_description::ServerDescription;

/// How many candidates' tag set ranks [`ServerMap::in_window_tagged`] keeps on the stack.
const KEPT_RANKS: usize = 32;
/// A kept rank: the candidate matches none of the tag sets it was compared with.
const NO_RANK: u16 = u16::MAX;

impl ServerMap {
    /// Appends to `out`, in address order, the servers whose type is in `types` and whose
    /// round-trip time is within `local_threshold` of the fastest of them (servers without one
    /// stay): the latency window of server-selection.md over a type filter, read from the
    /// chunks' compact entries without touching the descriptions.
    ///
    /// Returns `false`, adding nothing, if a round-trip time is too long to compare in
    /// nanoseconds (more than 584 years); the caller then takes the general path.
    pub(crate) fn in_window_of_type<'a>(
        &'a self,
        types: TypeSet,
        local_threshold: Duration,
        out: &mut SmallVec<[&'a Arc<ServerDescription>; crate::selection::INLINE_SERVERS]>,
    ) -> bool {
        if self.chunks.iter().any(|c| c.summary.huge_rtt) {
            return false;
        }
        // The fastest candidate and the number of candidates, from the chunks' summaries.
        let mut fastest = NO_RTT;
        let mut count = 0;
        for chunk in &self.chunks {
            for t in types.indexes() {
                fastest = fastest.min(chunk.summary.fastest.get(t).copied().unwrap_or(NO_RTT));
                count += chunk.summary.of_type.get(t).map_or(0, |&n| n as usize);
            }
        }
        if count > out.inline_size() {
            out.reserve_exact(count);
        }
        let window = window_nanos(fastest, local_threshold);
        for chunk in &self.chunks {
            out.extend(
                chunk
                    .entries
                    .iter()
                    .filter(|e| types.contains(e.server_type) && window.contains(e.rtt()))
                    .map(|e| &e.sd),
            );
        }
        true
    }

    /// The servers of `types` that match the first of `tag_sets` matching any of them, inside
    /// the latency window of those servers: the candidates, tag sets and latency window steps
    /// of server-selection.md in one scan of the compact entries, without an intermediate
    /// list. Leaves `out` empty when no candidate matches any tag set (or there is none).
    ///
    /// `false` (and `out` untouched) when a round-trip time is too long for the compact
    /// entries; the caller then takes the general path.
    pub(crate) fn in_window_tagged<'a>(
        &'a self,
        types: TypeSet,
        tag_sets: &[TagSet],
        local_threshold: Duration,
        out: &mut SmallVec<[&'a Arc<ServerDescription>; crate::selection::INLINE_SERVERS]>,
    ) -> bool {
        if self.chunks.iter().any(|c| c.summary.huge_rtt) {
            return false;
        }
        // The first tag set that matches a candidate (`used`), and the fastest round-trip time
        // among the candidates it matches. A candidate only needs the sets up to `used`. The
        // first candidates' ranks (the first set each matches) are kept for the second scan.
        let mut ranks = [NO_RANK; KEPT_RANKS];
        let keep_ranks = tag_sets.len() < usize::from(NO_RANK);
        let mut used = tag_sets.len();
        let mut fastest = NO_RTT;
        let mut count = 0;
        let mut k = 0;
        for e in self.chunks.iter().flat_map(|c| c.entries.iter()) {
            if !types.contains(e.server_type) {
                continue;
            }
            let last = used.min(tag_sets.len().saturating_sub(1));
            let rank =
                tag_sets.get(..=last).and_then(|sets| sets.iter().position(|ts| ts.matches(&e.sd.tags)));
            if let (Some(slot), Some(i)) = (ranks.get_mut(k), rank) {
                // `i < tag_sets.len() < NO_RANK` when `keep_ranks`.
                *slot = u16::try_from(i).unwrap_or(NO_RANK);
            }
            k += 1;
            let Some(i) = rank else { continue };
            if i < used {
                used = i;
                fastest = e.rtt_nanos;
                count = 1;
            } else {
                fastest = fastest.min(e.rtt_nanos);
                count += 1;
            }
        }
        let Some(tag_set) = tag_sets.get(used) else { return true };
        if count > out.inline_size() {
            out.reserve_exact(count);
        }
        let window = window_nanos(fastest, local_threshold);
        let mut k = 0;
        for e in self.chunks.iter().flat_map(|c| c.entries.iter()) {
            if !types.contains(e.server_type) {
                continue;
            }
            let matches = match ranks.get(k) {
                Some(&rank) if keep_ranks => usize::from(rank) == used,
                _ => tag_set.matches(&e.sd.tags),
            };
            k += 1;
            if matches && window.contains(e.rtt()) {
                out.push(&e.sd);
            }
        }
        true
    }
}

/// The latency [`Window`] in the compact entries' nanoseconds, anchored at `fastest`
/// ([`NO_RTT`]: no candidate has a round-trip time).
#[inline]
fn window_nanos(fastest: u64, local_threshold: Duration) -> Window<u64> {
    let threshold = u64::try_from(local_threshold.as_nanos()).unwrap_or(u64::MAX);
    Window::new((fastest != NO_RTT).then_some(fastest), threshold)
}
