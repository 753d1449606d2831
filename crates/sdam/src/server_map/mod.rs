//! [`ServerMap`]: the servers of a topology description, sorted by address, stored so that a
//! new snapshot shares almost everything with the one before it.
//!
//! The descriptions live in chunks of consecutive addresses, each chunk behind an `Arc`.
//! Cloning a map copies one pointer per chunk; replacing, adding or removing one server then
//! copies the one chunk it lives in. Chunks hold about `sqrt(len)` servers (at least 16), so
//! an update copies `O(sqrt(len))` pointers, not the whole topology. Each chunk keeps a small
//! summary (primaries, incompatible servers, data-bearing servers and their session timeouts),
//! so the topology-wide facts the update rules need are also read in `O(sqrt(len))`.
//!
//! The latency windows read straight from the chunks (selection's fast paths) are in
//! `fast_window`, which names the general path they must equal and the property tests that
//! check them.

mod fast_window;

use std::cmp::Ordering;
use std::fmt;
use std::iter::FusedIterator;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::address::ServerAddress;
use crate::compatibility;
use crate::server_description::{ServerDescription, ServerType};

/// How many chunk pointers a [`ServerMap`] holds without a separate allocation.
const INLINE_CHUNKS: usize = 2;

/// The smallest chunk size the map aims for.
const MIN_CHUNK: usize = 16;

/// The chunk size the map aims for with `len` servers.
fn target_chunk(len: usize) -> usize {
    len.isqrt().max(MIN_CHUNK)
}

/// A set of server types, for filters that run over many servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeSet(u16);

impl TypeSet {
    /// No type.
    pub(crate) const NONE: Self = Self(0);

    /// The set of these types.
    pub(crate) const fn of(types: &[ServerType]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < types.len() {
            bits |= 1 << types[i] as u16;
            i += 1;
        }
        Self(bits)
    }

    /// Every type but these.
    pub(crate) const fn except(types: &[ServerType]) -> Self {
        Self(!Self::of(types).0)
    }

    /// Whether `t` is in the set.
    #[inline]
    pub(crate) fn contains(self, t: ServerType) -> bool {
        self.0 & (1 << t as u16) != 0
    }
}

/// How many server types there are (the size of per-type tables).
const TYPE_COUNT: usize = ServerType::LoadBalancer as usize + 1;

impl TypeSet {
    /// The indexes (`ServerType as usize`) of the types in the set.
    fn indexes(self) -> impl Iterator<Item = usize> {
        (0..TYPE_COUNT).filter(move |&i| self.0 & (1 << i) != 0)
    }
}

/// Facts about the servers of one chunk that the topology-wide rules and selection read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Summary {
    /// How many servers there are of each type (indexed by `ServerType as usize`).
    of_type: [u32; TYPE_COUNT],
    /// The shortest [`Entry::rtt_nanos`] of each type ([`NO_RTT`] if none has one): the
    /// fastest server of a latency window is found without reading the entries.
    fastest: [u64; TYPE_COUNT],
    /// Servers of type RSPrimary.
    primaries: u32,
    /// Servers whose wire versions do not overlap this client's.
    incompatible: u32,
    /// Data-bearing servers.
    data_bearing: u32,
    /// Data-bearing servers without `logicalSessionTimeoutMinutes`.
    session_timeout_null: u32,
    /// The smallest `logicalSessionTimeoutMinutes` of the others.
    session_timeout_min: Option<i64>,
    /// Whether a round-trip time is too long for [`Entry::rtt_nanos`].
    huge_rtt: bool,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            of_type: [0; TYPE_COUNT],
            fastest: [NO_RTT; TYPE_COUNT],
            primaries: 0,
            incompatible: 0,
            data_bearing: 0,
            session_timeout_null: 0,
            session_timeout_min: None,
            huge_rtt: false,
        }
    }
}

impl Summary {
    fn of(entries: &[Entry]) -> Self {
        let mut s = Self::default();
        // Only the entries are read, never the descriptions they point to: a chunk copied for
        // an update is summarized from the copy alone (but for a session timeout outside 32
        // bits, which no server sends: see `Timeout::InDescription`).
        for e @ Entry { rtt_nanos, server_type, incompatible, .. } in entries {
            let t = *server_type as usize;
            if let (Some(n), Some(f)) = (s.of_type.get_mut(t), s.fastest.get_mut(t)) {
                *n += 1;
                *f = (*f).min(*rtt_nanos);
            }
            s.huge_rtt |= *rtt_nanos == HUGE_RTT;
            s.primaries += u32::from(*server_type == ServerType::RSPrimary);
            s.incompatible += u32::from(*incompatible);
            if server_type.is_data_bearing() {
                s.data_bearing += 1;
                match e.session_timeout() {
                    None => s.session_timeout_null += 1,
                    Some(v) => s.session_timeout_min = Some(s.session_timeout_min.map_or(v, |m| m.min(v))),
                }
            }
        }
        s
    }
}

/// One server of a chunk: its description, with the fields selection filters on and the
/// chunk's [`Summary`] counts copied beside the pointer, so a scan or a summary reads one
/// contiguous array instead of every description.
#[derive(Debug, Clone)]
struct Entry {
    sd: Arc<ServerDescription>,
    /// The round-trip time in nanoseconds; [`NO_RTT`] for none, [`HUGE_RTT`] for one too
    /// long to count in nanoseconds (then the chunk's summary says so).
    rtt_nanos: u64,
    /// The description's `logicalSessionTimeoutMinutes` when `timeout` is
    /// [`Timeout::Here`] (see [`Entry::session_timeout`]). Kept in 32 bits with a one-byte
    /// tag, an entry takes 24 bytes where an `Option<i64>` would make it 40: chunks are
    /// copied on every update.
    session_timeout: i32,
    timeout: Timeout,
    server_type: ServerType,
    /// Whether the server's wire versions do not overlap this client's
    /// ([`compatibility::is_compatible`]).
    incompatible: bool,
}

/// Where an [`Entry`]'s `logicalSessionTimeoutMinutes` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timeout {
    /// The description has none.
    Absent,
    /// In [`Entry::session_timeout`].
    Here,
    /// Only in the description: a value outside 32 bits, which no server sends (servers
    /// send 30), read from the description when it counts.
    InDescription,
}

/// [`Entry::rtt_nanos`] of a server without a round-trip time.
const NO_RTT: u64 = u64::MAX;
/// [`Entry::rtt_nanos`] of a round-trip time of more than 584 years.
const HUGE_RTT: u64 = u64::MAX - 1;

impl Entry {
    /// The round-trip time in nanoseconds, `None` for none.
    #[inline]
    fn rtt(&self) -> Option<u64> {
        (self.rtt_nanos != NO_RTT).then_some(self.rtt_nanos)
    }

    /// The description's `logicalSessionTimeoutMinutes`.
    #[inline]
    fn session_timeout(&self) -> Option<i64> {
        match self.timeout {
            Timeout::Absent => None,
            Timeout::Here => Some(i64::from(self.session_timeout)),
            Timeout::InDescription => self.sd.logical_session_timeout_minutes,
        }
    }

    fn new(sd: Arc<ServerDescription>) -> Self {
        let (session_timeout, timeout) = match sd.logical_session_timeout_minutes.map(i32::try_from) {
            None => (0, Timeout::Absent),
            Some(Ok(minutes)) => (minutes, Timeout::Here),
            Some(Err(_)) => (0, Timeout::InDescription),
        };
        let rtt_nanos = sd
            .round_trip_time
            .map_or(NO_RTT, |d| u64::try_from(d.as_nanos()).unwrap_or(HUGE_RTT).min(HUGE_RTT));
        Self {
            server_type: sd.server_type,
            rtt_nanos,
            session_timeout,
            timeout,
            incompatible: !compatibility::is_compatible(&sd),
            sd,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Chunk {
    /// Never empty while the chunk is in a map.
    entries: Vec<Entry>,
    summary: Summary,
}

impl Chunk {
    fn new(entries: Vec<Entry>) -> Arc<Self> {
        let summary = Summary::of(&entries);
        Arc::new(Self { entries, summary })
    }

    fn resummarize(&mut self) {
        self.summary = Summary::of(&self.entries);
    }
}

/// The servers of a topology, sorted by address, each description shared behind an `Arc`.
///
/// Cloning is cheap and a changed copy shares every untouched part with the original:
/// replacing one server's description copies `O(sqrt(len))` pointers, never other
/// descriptions.
#[derive(Clone, Default)]
pub struct ServerMap {
    /// Inline up to [`INLINE_CHUNKS`]: a small topology's snapshot then holds its chunk list
    /// itself, one allocation fewer per update.
    chunks: SmallVec<[Arc<Chunk>; INLINE_CHUNKS]>,
    len: usize,
}

impl ServerMap {
    /// The description of the server at `address`.
    pub fn get(&self, address: &ServerAddress) -> Option<&Arc<ServerDescription>> {
        self.locate(address).ok().map(|(c, i)| &self.chunks[c].entries[i].sd)
    }

    /// Whether the server at `address` is in the topology.
    pub fn contains(&self, address: &ServerAddress) -> bool {
        self.locate(address).is_ok()
    }

    /// The servers, sorted by address.
    pub fn iter(&self) -> Iter<'_> {
        Iter { chunks: self.chunks.iter(), front: [].iter(), back: [].iter(), remaining: self.len }
    }

    /// The number of servers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no servers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The addresses, sorted.
    pub fn addresses(&self) -> impl Iterator<Item = &ServerAddress> {
        self.iter().map(|sd| &sd.address)
    }

    /// `Ok((chunk, index))` of `address`, or `Err((chunk, index))` where it would be inserted.
    fn locate(&self, address: &ServerAddress) -> Result<(usize, usize), (usize, usize)> {
        let Some(last) = self.chunks.len().checked_sub(1) else { return Err((0, 0)) };
        // The first chunk whose last address is not below `address` (else the last chunk).
        let c = self
            .chunks
            .partition_point(|chunk| chunk.entries.last().is_some_and(|e| e.sd.address < *address))
            .min(last);
        match self.chunks[c].entries.binary_search_by(|e| e.sd.address.cmp(address)) {
            Ok(i) => Ok((c, i)),
            Err(i) => Err((c, i)),
        }
    }

    /// Where the server at `address` is, for [`at`](Self::at) and
    /// [`replace_at`](Self::replace_at): one search for a read and a replacement. Valid until
    /// the map is next changed.
    pub(crate) fn slot(&self, address: &ServerAddress) -> Option<Slot> {
        self.locate(address).ok().map(|(chunk, index)| Slot { chunk, index })
    }

    /// The description at `slot`; `None` if the slot is not valid for this map.
    pub(crate) fn at(&self, slot: Slot) -> Option<&Arc<ServerDescription>> {
        Some(&self.chunks.get(slot.chunk)?.entries.get(slot.index)?.sd)
    }

    /// Replaces the description at `slot` (which must hold `sd`'s address: anything else is
    /// inserted as [`insert`](Self::insert) does); returns the previous one.
    pub(crate) fn replace_at(
        &mut self,
        slot: Slot,
        sd: Arc<ServerDescription>,
    ) -> Option<Arc<ServerDescription>> {
        let found = self.at(slot).is_some_and(|old| old.address == sd.address);
        if !found {
            return self.insert(sd);
        }
        let chunk = Arc::make_mut(&mut self.chunks[slot.chunk]);
        let old = std::mem::replace(&mut chunk.entries[slot.index], Entry::new(sd)).sd;
        chunk.resummarize();
        Some(old)
    }

    /// Inserts or replaces the description of its address; returns the previous one.
    pub(crate) fn insert(&mut self, sd: Arc<ServerDescription>) -> Option<Arc<ServerDescription>> {
        match self.locate(&sd.address) {
            Ok((chunk, index)) => self.replace_at(Slot { chunk, index }, sd),
            Err(_) if self.chunks.is_empty() => {
                self.chunks.push(Chunk::new(vec![Entry::new(sd)]));
                self.len = 1;
                None
            }
            Err((c, i)) => {
                self.len += 1;
                let limit = 2 * target_chunk(self.len);
                let chunk = Arc::make_mut(&mut self.chunks[c]);
                chunk.entries.insert(i, Entry::new(sd));
                if chunk.entries.len() > limit {
                    let upper = chunk.entries.split_off(chunk.entries.len() / 2);
                    chunk.resummarize();
                    self.chunks.insert(c + 1, Chunk::new(upper));
                } else {
                    chunk.resummarize();
                }
                None
            }
        }
    }

    /// Removes the server at `address`; returns its description.
    pub(crate) fn remove(&mut self, address: &ServerAddress) -> Option<Arc<ServerDescription>> {
        let (c, i) = self.locate(address).ok()?;
        let chunk = Arc::make_mut(&mut self.chunks[c]);
        let sd = chunk.entries.remove(i).sd;
        self.len -= 1;
        if chunk.entries.is_empty() {
            self.chunks.remove(c);
        } else {
            chunk.resummarize();
        }
        self.rebalance_if_sparse();
        Some(sd)
    }

    /// Keeps only the servers for which `keep` is true; calls `removed` for each other one,
    /// in address order. Chunks that keep all their servers stay shared.
    pub(crate) fn retain(
        &mut self,
        mut keep: impl FnMut(&ServerDescription) -> bool,
        mut removed: impl FnMut(Arc<ServerDescription>),
    ) {
        let mut c = 0;
        while c < self.chunks.len() {
            let drop_mask: SmallVec<[bool; 128]> =
                self.chunks[c].entries.iter().map(|e| !keep(&e.sd)).collect();
            if !drop_mask.contains(&true) {
                c += 1;
                continue;
            }
            let chunk = Arc::make_mut(&mut self.chunks[c]);
            let mut kept = Vec::with_capacity(chunk.entries.len());
            for (entry, gone) in chunk.entries.drain(..).zip(drop_mask) {
                if gone {
                    self.len -= 1;
                    removed(entry.sd);
                } else {
                    kept.push(entry);
                }
            }
            if kept.is_empty() {
                self.chunks.remove(c);
            } else {
                chunk.entries = kept;
                chunk.resummarize();
                c += 1;
            }
        }
        self.rebalance_if_sparse();
    }

    /// Regroups the servers into chunks of the target size when removals left too many
    /// small chunks (amortized: it takes many removals to get there).
    fn rebalance_if_sparse(&mut self) {
        let target = target_chunk(self.len);
        if self.chunks.len() <= 2 * (self.len / target) + 2 {
            return;
        }
        let all: Vec<Entry> = self.chunks.iter().flat_map(|c| c.entries.iter().cloned()).collect();
        self.chunks = all.chunks(target).map(|part| Chunk::new(part.to_vec())).collect();
    }

    fn summaries(&self) -> impl Iterator<Item = (&Summary, &Chunk)> {
        self.chunks.iter().map(|c| (&c.summary, &**c))
    }

    /// The first server of type RSPrimary.
    pub(crate) fn primary(&self) -> Option<&Arc<ServerDescription>> {
        let (_, chunk) = self.summaries().find(|(s, _)| s.primaries > 0)?;
        chunk.entries.iter().find(|e| e.server_type == ServerType::RSPrimary).map(|e| &e.sd)
    }

    /// The first server whose wire versions do not overlap this client's.
    pub(crate) fn first_incompatible(&self) -> Option<&Arc<ServerDescription>> {
        let (_, chunk) = self.summaries().find(|(s, _)| s.incompatible > 0)?;
        chunk.entries.iter().map(|e| &e.sd).find(|sd| !compatibility::is_compatible(sd))
    }

    /// Whether any server is of a data-bearing type.
    pub(crate) fn has_data_bearing(&self) -> bool {
        self.summaries().any(|(s, _)| s.data_bearing > 0)
    }

    /// The smallest `logicalSessionTimeoutMinutes` among data-bearing servers; `None` if any
    /// of them has none, or there is none.
    pub(crate) fn logical_session_timeout(&self) -> Option<i64> {
        let mut min: Option<i64> = None;
        for (s, _) in self.summaries() {
            if s.session_timeout_null > 0 {
                return None;
            }
            if let Some(v) = s.session_timeout_min {
                min = Some(min.map_or(v, |m| m.min(v)));
            }
        }
        min
    }

    /// Calls `f(previous, new)` for every address in both maps whose description is not the
    /// same `Arc`, in address order, and returns whether both maps hold the same addresses.
    /// Chunks the two maps share are skipped whole and descriptions they share are not read,
    /// so the work is proportional to what changed.
    pub(crate) fn for_each_replaced<'a>(
        previous: &'a Self,
        next: &'a Self,
        mut f: impl FnMut(&'a Arc<ServerDescription>, &'a Arc<ServerDescription>),
    ) -> bool {
        let mut same_addresses = previous.len == next.len;
        let mut p = Cursor::new(previous);
        let mut n = Cursor::new(next);
        loop {
            if p.at_chunk_start() && n.at_chunk_start() {
                if let (Some(a), Some(b)) = (p.chunk(), n.chunk()) {
                    if Arc::ptr_eq(a, b) {
                        p.skip_chunk();
                        n.skip_chunk();
                        continue;
                    }
                }
            }
            let (a, b) = match (p.get(), n.get()) {
                (Some(a), Some(b)) => (a, b),
                (None, None) => return same_addresses,
                _ => return false,
            };
            if Arc::ptr_eq(a, b) {
                p.advance();
                n.advance();
                continue;
            }
            match a.address.cmp(&b.address) {
                Ordering::Equal => {
                    f(a, b);
                    p.advance();
                    n.advance();
                }
                Ordering::Less => {
                    same_addresses = false;
                    p.advance();
                }
                Ordering::Greater => {
                    same_addresses = false;
                    n.advance();
                }
            }
        }
    }
}

/// The position of a server in a [`ServerMap`] (see [`ServerMap::slot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    chunk: usize,
    index: usize,
}

/// A position in a map: chunk and index within it.
struct Cursor<'a> {
    map: &'a ServerMap,
    chunk: usize,
    index: usize,
}

impl<'a> Cursor<'a> {
    fn new(map: &'a ServerMap) -> Self {
        Self { map, chunk: 0, index: 0 }
    }

    fn at_chunk_start(&self) -> bool {
        self.index == 0
    }

    fn chunk(&self) -> Option<&'a Arc<Chunk>> {
        self.map.chunks.get(self.chunk)
    }

    fn get(&self) -> Option<&'a Arc<ServerDescription>> {
        self.chunk()?.entries.get(self.index).map(|e| &e.sd)
    }

    fn skip_chunk(&mut self) {
        self.chunk += 1;
        self.index = 0;
    }

    fn advance(&mut self) {
        self.index += 1;
        if self.chunk().is_some_and(|c| self.index >= c.entries.len()) {
            self.skip_chunk();
        }
    }
}

impl PartialEq for ServerMap {
    /// Equal when both hold equal descriptions (the spec's Server Description Equality) for
    /// the same addresses. Shared chunks compare in one step.
    fn eq(&self, other: &Self) -> bool {
        if self.len != other.len {
            return false;
        }
        let mut p = Cursor::new(self);
        let mut n = Cursor::new(other);
        loop {
            if p.at_chunk_start() && n.at_chunk_start() {
                if let (Some(a), Some(b)) = (p.chunk(), n.chunk()) {
                    if Arc::ptr_eq(a, b) {
                        p.skip_chunk();
                        n.skip_chunk();
                        continue;
                    }
                }
            }
            match (p.get(), n.get()) {
                (Some(a), Some(b)) => {
                    if !(Arc::ptr_eq(a, b) || **a == **b) {
                        return false;
                    }
                    p.advance();
                    n.advance();
                }
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl Eq for ServerMap {}

impl fmt::Debug for ServerMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerMap").field("entries", &self.iter().collect::<Vec<_>>()).finish()
    }
}

impl<'a> IntoIterator for &'a ServerMap {
    type Item = &'a Arc<ServerDescription>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The servers of a [`ServerMap`] in address order (from [`ServerMap::iter`]).
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    chunks: std::slice::Iter<'a, Arc<Chunk>>,
    front: std::slice::Iter<'a, Entry>,
    back: std::slice::Iter<'a, Entry>,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Arc<ServerDescription>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.front.next() {
                self.remaining -= 1;
                return Some(&e.sd);
            }
            match self.chunks.next() {
                Some(chunk) => self.front = chunk.entries.iter(),
                None => {
                    let e = self.back.next()?;
                    self.remaining -= 1;
                    return Some(&e.sd);
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }

    fn fold<B, F>(self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        let mut acc = self.front.map(|e| &e.sd).fold(init, &mut f);
        for chunk in self.chunks {
            acc = chunk.entries.iter().map(|e| &e.sd).fold(acc, &mut f);
        }
        self.back.map(|e| &e.sd).fold(acc, f)
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.back.next_back() {
                self.remaining -= 1;
                return Some(&e.sd);
            }
            match self.chunks.next_back() {
                Some(chunk) => self.back = chunk.entries.iter(),
                None => {
                    let e = self.front.next_back()?;
                    self.remaining -= 1;
                    return Some(&e.sd);
                }
            }
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Chunks are copied on every update: an entry stays at 24 bytes.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_entry_takes_24_bytes() {
        assert_eq!(size_of::<Entry>(), 24);
    }

    /// A `logicalSessionTimeoutMinutes` of any size is counted exactly: in the entry when it
    /// fits 32 bits, from the description when it does not.
    #[test]
    fn session_timeouts_of_any_size_are_exact() {
        for minutes in
            [None, Some(30), Some(-1), Some(i64::from(i32::MAX) + 1), Some(i64::MIN), Some(i64::MAX)]
        {
            let mut sd = ServerDescription::unknown(ServerAddress::parse("a:1").unwrap());
            sd.logical_session_timeout_minutes = minutes;
            assert_eq!(Entry::new(Arc::new(sd)).session_timeout(), minutes);
        }
    }

    fn sd(i: u32) -> Arc<ServerDescription> {
        Arc::new(ServerDescription::unknown(ServerAddress::tcp(&format!("h{i:05}"), 27017).unwrap()))
    }

    fn check_invariants(map: &ServerMap) {
        assert_eq!(map.iter().count(), map.len());
        assert_eq!(map.iter().rev().count(), map.len());
        let addresses: Vec<_> = map.addresses().collect();
        assert!(addresses.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        for chunk in &map.chunks {
            assert!(!chunk.entries.is_empty());
            assert!(chunk.entries.iter().all(|e| e.server_type == e.sd.server_type
                && e.rtt_nanos == e.sd.round_trip_time.map_or(NO_RTT, |d| d.as_nanos() as u64)
                && e.session_timeout() == e.sd.logical_session_timeout_minutes
                && e.incompatible != compatibility::is_compatible(&e.sd)));
            assert_eq!(chunk.summary, Summary::of(&chunk.entries));
        }
    }

    #[test]
    fn an_update_shares_every_other_chunk() {
        let mut map = ServerMap::default();
        for i in 0..1000 {
            map.insert(sd(i * 7919 % 1000));
        }
        check_invariants(&map);
        assert!(map.chunks.len() <= 2 * (1000 / target_chunk(1000)) + 2, "{} chunks", map.chunks.len());
        let before = map.clone();
        let mut changed = ServerDescription::unknown(sd(500).address.clone());
        changed.error = Some("boom".into());
        map.insert(Arc::new(changed));
        let shared = map.chunks.iter().zip(&before.chunks).filter(|(a, b)| Arc::ptr_eq(a, b)).count();
        assert_eq!(shared, map.chunks.len() - 1, "only the updated server's chunk is copied");
        let mut replaced = Vec::new();
        ServerMap::for_each_replaced(&before, &map, |old, new| replaced.push((old.clone(), new.clone())));
        assert_eq!(replaced.len(), 1);
        assert_eq!(replaced[0].0.address, sd(500).address);
        assert_ne!(before, map);
    }

    /// A slot finds its server for reading and replacing; a replacement for another address
    /// (a slot misused) is inserted in order instead of breaking the map.
    #[test]
    fn slots_read_and_replace() {
        let mut map = ServerMap::default();
        for i in 0..40 {
            map.insert(sd(i));
        }
        let slot = map.slot(&sd(17).address).unwrap();
        assert_eq!(map.at(slot).unwrap().address, sd(17).address);
        let new = sd(17);
        let old = map.replace_at(slot, new.clone()).unwrap();
        assert_eq!(old.address, new.address);
        assert!(Arc::ptr_eq(map.get(&new.address).unwrap(), &new));
        assert!(map.replace_at(slot, sd(1000)).is_none());
        assert_eq!(map.len(), 41);
        check_invariants(&map);
        assert!(map.slot(&sd(2000).address).is_none());
    }

    proptest! {
        /// Against a sorted Vec: the same contents, order, lookups, diffs and equality.
        #[test]
        fn behaves_like_a_sorted_vec(ops in proptest::collection::vec((0u8..4, 0u32..300), 0..600)) {
            let mut map = ServerMap::default();
            let mut model: Vec<Arc<ServerDescription>> = Vec::new();
            for (op, key) in ops {
                let before = map.clone();
                let before_model = model.clone();
                match op {
                    0 | 1 => {
                        let new = sd(key);
                        let old = map.insert(new.clone());
                        match model.binary_search_by(|m| m.address.cmp(&new.address)) {
                            Ok(i) => { prop_assert!(old.is_some()); model[i] = new; }
                            Err(i) => { prop_assert!(old.is_none()); model.insert(i, new); }
                        }
                    }
                    2 => {
                        let a = sd(key).address.clone();
                        let got = map.remove(&a).map(|s| s.address.clone());
                        let want = model.binary_search_by(|m| m.address.cmp(&a)).ok().map(|i| model.remove(i).address.clone());
                        prop_assert_eq!(got, want);
                    }
                    _ => {
                        let mut gone = Vec::new();
                        map.retain(|s| s.address.host().len() % 3 != (key % 3) as usize || key % 5 == 0, |s| gone.push(s.address.clone()));
                        let mut want = Vec::new();
                        model.retain(|s| { let k = s.address.host().len() % 3 != (key % 3) as usize || key % 5 == 0; if !k { want.push(s.address.clone()); } k });
                        prop_assert_eq!(gone, want);
                    }
                }
                check_invariants(&map);
                prop_assert_eq!(map.len(), model.len());
                prop_assert!(map.iter().zip(&model).all(|(a, b)| Arc::ptr_eq(a, b)));
                prop_assert!(map.get(&sd(key).address).map(|s| s.address.clone()) == model.iter().find(|m| m.address == sd(key).address).map(|s| s.address.clone()));
                let mut replaced = Vec::new();
                let same = ServerMap::for_each_replaced(&before, &map, |old, new| replaced.push((old.address.clone(), Arc::as_ptr(new))));
                let addresses = |m: &[Arc<ServerDescription>]| m.iter().map(|s| s.address.clone()).collect::<Vec<_>>();
                prop_assert_eq!(same, addresses(&before_model) == addresses(&model));
                let mut want = Vec::new();
                for new in &model {
                    if let Some(old) = before_model.iter().find(|o| o.address == new.address) {
                        if !Arc::ptr_eq(old, new) { want.push((new.address.clone(), Arc::as_ptr(new))); }
                    }
                }
                prop_assert_eq!(replaced, want);
                // Equality depends on contents, not on how the chunks fell.
                let mut rebuilt = ServerMap::default();
                for s in model.iter().rev() { rebuilt.insert(s.clone()); }
                prop_assert!(rebuilt == map);
            }
        }
    }
}
