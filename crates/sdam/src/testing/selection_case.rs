//! A topology snapshot and a selection, built from bytes: for the selection fuzz target and
//! property tests, and for seeds made from the server selection spec tests.

use std::time::{Duration, Instant};

use super::bytes::{decode_list, encode_list, Codec, Reader};
use super::invariants::{self, Violation};
use super::plan::{host, tags_of, SelectPlan};
use crate::address::ServerAddress;
use crate::rng::Rng;
use crate::selection::{
    explain, in_latency_window, Selection, SelectionCriteria, SelectionOptions, SelectionPoll,
};
use crate::server_description::{ServerDescription, ServerType, Tags};
use crate::topology_description::{TopologyDescription, TopologyType};

/// Server types, by index.
pub const SERVER_TYPES: [ServerType; 9] = [
    ServerType::Unknown,
    ServerType::Standalone,
    ServerType::Mongos,
    ServerType::RSPrimary,
    ServerType::RSSecondary,
    ServerType::RSArbiter,
    ServerType::RSOther,
    ServerType::RSGhost,
    ServerType::LoadBalancer,
];

/// Topology types, by index.
pub const TOPOLOGY_TYPES: [TopologyType; 6] = [
    TopologyType::Unknown,
    TopologyType::Single,
    TopologyType::ReplicaSetNoPrimary,
    TopologyType::ReplicaSetWithPrimary,
    TopologyType::Sharded,
    TopologyType::LoadBalanced,
];

/// The base of generated `lastWriteDate`s (milliseconds since the epoch).
const WRITE_EPOCH_MS: i64 = 1_700_000_000_000;

/// One server of the snapshot (the `i`th has address `HOSTS[i]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCase {
    /// Index into [`SERVER_TYPES`].
    pub server_type: u8,
    /// Average round-trip time in milliseconds.
    pub rtt_ms: Option<u16>,
    /// Tags: a mask over [`TAGS`](super::plan::TAGS).
    pub tags: u8,
    /// `lastWriteDate`, seconds after a fixed epoch.
    pub last_write_s: Option<u16>,
    /// `lastUpdateTime`, seconds after the case's base instant.
    pub last_update_s: Option<u16>,
}

impl Codec for ServerCase {
    fn decode(r: &mut Reader<'_>) -> Self {
        Self {
            server_type: r.u8() % SERVER_TYPES.len() as u8,
            rtt_ms: Codec::decode(r),
            tags: r.u8(),
            last_write_s: Codec::decode(r),
            last_update_s: Codec::decode(r),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.server_type);
        self.rtt_ms.encode(out);
        out.push(self.tags);
        self.last_write_s.encode(out);
        self.last_update_s.encode(out);
    }
}

/// A topology snapshot and one selection on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionCase {
    /// Index into [`TOPOLOGY_TYPES`].
    pub topology_type: u8,
    /// The servers (at most eight).
    pub servers: Vec<ServerCase>,
    /// heartbeatFrequencyMS: 500 plus twice this.
    pub heartbeat: u16,
    /// localThresholdMS.
    pub threshold_ms: u8,
    /// Whether the topology is incompatible with this client.
    pub incompatible: bool,
    /// The selection.
    pub select: SelectPlan,
    /// Operations in flight: one byte per server.
    pub counts: u64,
    /// The in-window choice's random seed.
    pub seed: u64,
}

impl Codec for SelectionCase {
    fn decode(r: &mut Reader<'_>) -> Self {
        Self {
            topology_type: r.u8() % TOPOLOGY_TYPES.len() as u8,
            servers: decode_list(r, 8),
            heartbeat: u16::decode(r),
            threshold_ms: r.u8(),
            incompatible: r.u8() == 0xff,
            select: SelectPlan::decode(r),
            counts: u64::decode(r),
            seed: u64::decode(r),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.topology_type);
        encode_list(&self.servers, out);
        self.heartbeat.encode(out);
        out.push(self.threshold_ms);
        out.push(if self.incompatible { 0xff } else { 0 });
        self.select.encode(out);
        self.counts.encode(out);
        self.seed.encode(out);
    }
}

impl SelectionCase {
    /// The snapshot, its servers' update times counted from `t0`.
    pub fn topology(&self, t0: Instant) -> TopologyDescription {
        let mut td =
            TopologyDescription::new(TOPOLOGY_TYPES[usize::from(self.topology_type) % TOPOLOGY_TYPES.len()]);
        td.heartbeat_frequency = Duration::from_millis(500 + 2 * u64::from(self.heartbeat));
        td.local_threshold = Duration::from_millis(u64::from(self.threshold_ms));
        for (i, s) in self.servers.iter().enumerate().take(8) {
            let mut sd = ServerDescription::unknown(host(i as u8));
            sd.server_type = SERVER_TYPES[usize::from(s.server_type) % SERVER_TYPES.len()];
            sd.max_wire_version = crate::compatibility::MAX_WIRE_VERSION;
            sd.round_trip_time = s.rtt_ms.map(|ms| Duration::from_millis(u64::from(ms)));
            sd.tags = Tags::new(tags_of(s.tags));
            sd.last_write_date =
                s.last_write_s.map(|w| bson::DateTime::from_millis(WRITE_EPOCH_MS + 1000 * i64::from(w)));
            sd.last_update_time = s.last_update_s.map(|u| t0 + Duration::from_secs(u64::from(u)));
            td.insert_server(sd);
        }
        if self.incompatible {
            td.compatibility_error = Some("generated incompatibility".into());
        }
        td
    }

    /// The selection criteria.
    pub fn criteria(&self) -> SelectionCriteria {
        self.select.to_criteria()
    }

    /// Operations in flight on `address`.
    pub fn count(&self, address: &ServerAddress) -> u32 {
        (0..8u8)
            .find(|&i| host(i) == *address)
            .map_or(0, |i| u32::from(self.counts.to_le_bytes()[usize::from(i)] % 16))
    }

    /// Checks the selection invariants on this case: the pure selection functions, the
    /// waiting loop's first poll against them, and an explanation for every server.
    pub fn check(&self, t0: Instant) -> Result<(), Violation> {
        let td = self.topology(t0);
        let criteria = self.criteria();
        let counts = |a: &ServerAddress| self.count(a);
        let mut rng = Rng::new(self.seed);
        invariants::check_selection(&td, &criteria, &counts, &mut rng)?;
        let window = in_latency_window(&td, &criteria)
            .map(|w| w.iter().map(|sd| sd.address.clone()).collect::<Vec<_>>());
        let explanation = explain(&td, &criteria, None);
        if explanation.servers.len() != td.servers.len() {
            return Err(format!(
                "{} servers explained out of {}",
                explanation.servers.len(),
                td.servers.len()
            ));
        }
        let mut selection = Selection::new(criteria, SelectionOptions::default(), t0);
        match (selection.poll(&td, &counts, &mut rng, t0), window) {
            (SelectionPoll::Selected(s), Ok(w)) if w.contains(s.address()) => {}
            (SelectionPoll::Wait { .. }, Ok(w)) if w.is_empty() => {}
            (SelectionPoll::Failed(_), Err(_)) => {}
            (poll, w) => return Err(format!("Selection::poll gave {poll:?} for window {w:?}")),
        }
        while selection.poll_event().is_some() {}
        Ok(())
    }
}
