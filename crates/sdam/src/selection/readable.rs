//! What a driver asks of a topology besides a server: whether it has a readable or writable
//! server (server-discovery-and-monitoring-logging-and-monitoring.md, "Determining If A
//! Topology Has Readable/Writable Servers"), and how a read's read preference goes on the wire
//! to the server it selected (server-selection.md, "Passing read preference to mongos and
//! load balancers", "Topology type: Single" and "Topology types: ReplicaSetWithPrimary or
//! ReplicaSetNoPrimary").

use bson::{doc, Bson, Document};

use crate::read_preference::{ReadPreference, ReadPreferenceMode};
use crate::server_description::ServerType;
use crate::topology_description::{TopologyDescription, TopologyType};

use super::criteria::SelectionCriteria;
use super::pipeline::suitable_servers;

impl TopologyDescription {
    /// `hasReadableServer`: whether a read with `read_preference` has a server to go to now.
    /// `None` is the call without a read preference.
    ///
    /// The spec's table ("Determining If A Topology Has Readable/Writable Servers"):
    /// Unknown: `false`; Single: the server is available; ReplicaSetNoPrimary: `false` for
    /// `None` and mode primary, else whether any server is suitable for the read preference
    /// (mode, `maxStalenessSeconds`, tag sets); ReplicaSetWithPrimary: `true` for `None`,
    /// else whether any server is suitable; Sharded: a mongos is available; LoadBalanced:
    /// `true`. A read preference that selection rejects at once (a `maxStalenessSeconds` too
    /// small for the replica set) or an incompatible replica set has no suitable server.
    pub fn has_readable_server(&self, read_preference: Option<&ReadPreference>) -> bool {
        match self.topology_type {
            TopologyType::Unknown => false,
            TopologyType::Single => self.servers.iter().any(|sd| sd.is_available()),
            TopologyType::Sharded => self.servers.iter().any(|sd| sd.server_type == ServerType::Mongos),
            TopologyType::LoadBalanced => true,
            TopologyType::ReplicaSetNoPrimary => match read_preference {
                None => false,
                Some(rp) if rp.mode() == ReadPreferenceMode::Primary => false,
                Some(rp) => self.has_suitable_reader(rp),
            },
            TopologyType::ReplicaSetWithPrimary => match read_preference {
                None => true,
                Some(rp) => self.has_suitable_reader(rp),
            },
        }
    }

    /// `hasWritableServer`: whether a write has a server to go to now. The spec's table:
    /// Unknown and ReplicaSetNoPrimary: `false`; Single: the server is available;
    /// ReplicaSetWithPrimary and LoadBalanced: `true`; Sharded: a mongos is available.
    pub fn has_writable_server(&self) -> bool {
        match self.topology_type {
            TopologyType::Unknown | TopologyType::ReplicaSetNoPrimary => false,
            TopologyType::Single => self.servers.iter().any(|sd| sd.is_available()),
            TopologyType::Sharded => self.servers.iter().any(|sd| sd.server_type == ServerType::Mongos),
            TopologyType::ReplicaSetWithPrimary | TopologyType::LoadBalanced => true,
        }
    }

    /// "uses the read preference to determine if any server in the cluster is suitable for
    /// reading": the selection rules before the latency window (which never empties a list).
    fn has_suitable_reader(&self, read_preference: &ReadPreference) -> bool {
        let criteria = SelectionCriteria::read(read_preference.clone());
        suitable_servers(self, &criteria).is_ok_and(|servers| !servers.is_empty())
    }
}

/// The wire protocol a read is sent with: it decides between the `SecondaryOk` flag and the
/// `$readPreference` argument (server-selection.md, "For OP_MSG" and "For OP_QUERY").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireProtocol {
    /// OP_MSG: `$readPreference` is a global command argument; there is no `SecondaryOk` flag.
    OpMsg,
    /// OP_QUERY (legacy servers): the `SecondaryOk` flag, and `$readPreference` as a query
    /// modifier (the query then goes in `$query`).
    OpQuery,
}

/// How a read's read preference is sent to the server selected for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPreferenceArgument {
    /// The `$readPreference` document to add to the command, or `None` to send none.
    pub read_preference: Option<Document>,
    /// Whether to set the OP_QUERY `SecondaryOk` wire protocol flag (always `false` for
    /// OP_MSG, which has no such flag).
    pub secondary_ok: bool,
}

impl ReadPreferenceArgument {
    const NONE: Self = Self { read_preference: None, secondary_ok: false };
}

/// How a **read** whose read preference is `read_preference` (`None`: none configured, i.e.
/// primary) is sent to a server of `server_type` selected in a topology of `topology_type`
/// (a write carries no read preference). The rules of server-selection.md:
///
/// - A **mongos or load balancer** ("Passing read preference to mongos and load balancers"),
///   in any topology type: with OP_MSG, mode primary sends no `$readPreference` and every
///   other mode sends it. With OP_QUERY, primary sets neither the flag nor the document;
///   secondary, primaryPreferred and nearest set both; secondaryPreferred sets the flag, and
///   the document only if it has tag sets, a positive `maxStalenessSeconds` or `hedge`.
/// - **Single**, to a server that is not a mongos ("Topology type: Single"): a standalone
///   gets no read preference at all. Any other type: with OP_QUERY the `SecondaryOk` flag
///   always; with OP_MSG `{mode: "primaryPreferred"}` when no read preference is configured
///   or it is primary (so any member can answer), else the read preference's document.
/// - A **replica set member** in a replica set topology ("Read operations"): every mode but
///   primary sets the flag (OP_QUERY) or the `$readPreference` argument (OP_MSG); primary
///   sets neither.
/// - A **standalone** never gets a read preference (any other pairing of types, which
///   selection never produces, gets none either).
pub fn read_preference_argument(
    topology_type: TopologyType,
    server_type: ServerType,
    read_preference: Option<&ReadPreference>,
    protocol: WireProtocol,
) -> ReadPreferenceArgument {
    let mode = read_preference.map_or(ReadPreferenceMode::Primary, ReadPreference::mode);
    let document = || read_preference.map(ReadPreference::to_document);
    match (server_type, topology_type) {
        (ServerType::Mongos | ServerType::LoadBalancer, _) => to_mongos(read_preference, protocol),
        // "Type Standalone: clients MUST NOT send the read preference to the server".
        (ServerType::Standalone, _) => ReadPreferenceArgument::NONE,
        (_, TopologyType::Single) => match protocol {
            // "For all other types, using OP_QUERY: clients MUST always set the SecondaryOk
            // wire protocol flag on reads".
            WireProtocol::OpQuery => ReadPreferenceArgument { read_preference: None, secondary_ok: true },
            // "If no read preference is configured by the application, or if the application
            // read preference is Primary, then $readPreference MUST be set to { "mode":
            // "primaryPreferred" }".
            WireProtocol::OpMsg if mode == ReadPreferenceMode::Primary => ReadPreferenceArgument {
                read_preference: Some(doc! {"mode": ReadPreferenceMode::PrimaryPreferred.as_str()}),
                secondary_ok: false,
            },
            WireProtocol::OpMsg => {
                ReadPreferenceArgument { read_preference: document(), secondary_ok: false }
            }
        },
        (_, TopologyType::ReplicaSetWithPrimary | TopologyType::ReplicaSetNoPrimary) => {
            // "For all read preferences modes except 'primary', clients MUST set the
            // SecondaryOk wire protocol flag (OP_QUERY) or $readPreference global command
            // argument (OP_MSG)"; for primary, neither.
            if mode == ReadPreferenceMode::Primary {
                return ReadPreferenceArgument::NONE;
            }
            match protocol {
                WireProtocol::OpQuery => ReadPreferenceArgument { read_preference: None, secondary_ok: true },
                WireProtocol::OpMsg => {
                    ReadPreferenceArgument { read_preference: document(), secondary_ok: false }
                }
            }
        }
        (_, TopologyType::Unknown | TopologyType::Sharded | TopologyType::LoadBalanced) => {
            ReadPreferenceArgument::NONE
        }
    }
}

/// "Passing read preference to mongos and load balancers".
fn to_mongos(read_preference: Option<&ReadPreference>, protocol: WireProtocol) -> ReadPreferenceArgument {
    let Some(rp) = read_preference.filter(|rp| rp.mode() != ReadPreferenceMode::Primary) else {
        // "For mode 'primary', drivers MUST NOT set $readPreference" (nor SecondaryOk).
        return ReadPreferenceArgument::NONE;
    };
    match protocol {
        // "For all other read preference modes ..., drivers MUST set $readPreference".
        WireProtocol::OpMsg => {
            ReadPreferenceArgument { read_preference: Some(rp.to_document()), secondary_ok: false }
        }
        WireProtocol::OpQuery => {
            // "secondaryPreferred ... If the read preference contains a non-empty tag_sets
            // parameter, maxStalenessSeconds is a positive integer, or the deprecated hedge
            // parameter is non-empty, drivers MUST use $readPreference; otherwise, drivers
            // MUST NOT use $readPreference". The other modes always use it.
            let only_mode = rp.tag_sets().is_empty()
                && rp.max_staleness().is_none_or(|m| m.as_secs() == 0)
                && rp.hedge().is_none();
            let send = !(rp.mode() == ReadPreferenceMode::SecondaryPreferred && only_mode);
            ReadPreferenceArgument { read_preference: send.then(|| rp.to_document()), secondary_ok: true }
        }
    }
}

impl ReadPreference {
    /// The `$readPreference` document (server-selection.md, "Document structure"): `mode` in
    /// camel case; for other modes than primary, `tags` (the tag sets, when any were given),
    /// `maxStalenessSeconds` (when set) and the deprecated `hedge` (when given).
    pub fn to_document(&self) -> Document {
        let mut d = doc! {"mode": self.mode().as_str()};
        if self.mode() == ReadPreferenceMode::Primary {
            // "If the mode field is "primary", the tags, maxStalenessSeconds, and hedge
            // fields MUST be absent."
            return d;
        }
        if !self.tag_sets().is_empty() {
            let tags: Vec<Bson> = self
                .tag_sets()
                .iter()
                .map(|set| {
                    Bson::Document(set.0.iter().map(|(k, v)| (k.clone(), Bson::from(v.as_str()))).collect())
                })
                .collect();
            d.insert("tags", tags);
        }
        if let Some(max) = self.max_staleness() {
            d.insert("maxStalenessSeconds", i64::try_from(max.as_secs()).unwrap_or(i64::MAX));
        }
        if let Some(enabled) = self.hedge() {
            d.insert("hedge", doc! {"enabled": enabled});
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_preference::TagSet;
    use crate::selection::tests::server;
    use crate::server_description::ServerDescription;

    fn topology(topology_type: TopologyType, servers: Vec<ServerDescription>) -> TopologyDescription {
        let mut td = TopologyDescription::new(topology_type);
        for sd in servers {
            td.insert_server(sd);
        }
        td
    }

    fn rp(mode: ReadPreferenceMode) -> ReadPreference {
        ReadPreference::new(mode)
    }

    fn ny() -> Vec<TagSet> {
        vec![TagSet(vec![("dc".into(), "ny".into())])]
    }

    const MODES: [ReadPreferenceMode; 5] = [
        ReadPreferenceMode::Primary,
        ReadPreferenceMode::PrimaryPreferred,
        ReadPreferenceMode::Secondary,
        ReadPreferenceMode::SecondaryPreferred,
        ReadPreferenceMode::Nearest,
    ];

    /// Each row of "Determining If A Topology Has Readable/Writable Servers".
    #[test]
    fn readable_and_writable_follow_the_table() {
        let unknown = topology(TopologyType::Unknown, vec![server("a", ServerType::Unknown, 0)]);
        assert!(!unknown.has_readable_server(None) && !unknown.has_writable_server());
        for mode in MODES {
            assert!(!unknown.has_readable_server(Some(&rp(mode))));
        }

        let single_up = topology(TopologyType::Single, vec![server("a", ServerType::RSSecondary, 1)]);
        let single_down = topology(TopologyType::Single, vec![server("a", ServerType::Unknown, 0)]);
        assert!(single_up.has_readable_server(None) && single_up.has_writable_server());
        // The read preference is ignored in Single.
        assert!(single_up.has_readable_server(Some(&rp(ReadPreferenceMode::Primary))));
        assert!(!single_down.has_readable_server(None) && !single_down.has_writable_server());

        let no_primary = topology(
            TopologyType::ReplicaSetNoPrimary,
            vec![server("s", ServerType::RSSecondary, 1), server("u", ServerType::Unknown, 0)],
        );
        assert!(!no_primary.has_readable_server(None), "called with no option: false");
        assert!(!no_primary.has_readable_server(Some(&rp(ReadPreferenceMode::Primary))));
        for mode in &MODES[1..] {
            assert!(no_primary.has_readable_server(Some(&rp(*mode))), "{mode:?}");
        }
        // The read preference decides: no secondary is tagged dc:ny.
        let tagged = rp(ReadPreferenceMode::Secondary).with_tag_sets(ny()).unwrap();
        assert!(!no_primary.has_readable_server(Some(&tagged)));
        assert!(!no_primary.has_writable_server());

        let arbiter_only =
            topology(TopologyType::ReplicaSetNoPrimary, vec![server("arb", ServerType::RSArbiter, 1)]);
        assert!(!arbiter_only.has_readable_server(Some(&rp(ReadPreferenceMode::Nearest))));

        let with_primary = topology(
            TopologyType::ReplicaSetWithPrimary,
            vec![server("p", ServerType::RSPrimary, 1), server("u", ServerType::Unknown, 0)],
        );
        assert!(with_primary.has_readable_server(None), "called with no option: true");
        assert!(with_primary.has_readable_server(Some(&rp(ReadPreferenceMode::Primary))));
        assert!(!with_primary.has_readable_server(Some(&rp(ReadPreferenceMode::Secondary))));
        assert!(with_primary.has_readable_server(Some(&rp(ReadPreferenceMode::SecondaryPreferred))));
        assert!(with_primary.has_writable_server());
        // A maxStalenessSeconds the replica set rejects: no suitable server.
        let too_small = rp(ReadPreferenceMode::Nearest).with_max_staleness_seconds(Some(10)).unwrap();
        assert!(!with_primary.has_readable_server(Some(&too_small)));

        let sharded = topology(
            TopologyType::Sharded,
            vec![server("m1", ServerType::Mongos, 1), server("m2", ServerType::Unknown, 0)],
        );
        let sharded_down = topology(TopologyType::Sharded, vec![server("m1", ServerType::Unknown, 0)]);
        assert!(sharded.has_readable_server(None) && sharded.has_writable_server());
        assert!(sharded.has_readable_server(Some(&rp(ReadPreferenceMode::Secondary))));
        assert!(!sharded_down.has_readable_server(None) && !sharded_down.has_writable_server());

        let lb = topology(TopologyType::LoadBalanced, vec![server("lb", ServerType::LoadBalancer, 0)]);
        assert!(lb.has_readable_server(None) && lb.has_writable_server());
        assert!(lb.has_readable_server(Some(&rp(ReadPreferenceMode::Nearest))));
    }

    fn arg(
        topology_type: TopologyType,
        server_type: ServerType,
        read_preference: Option<&ReadPreference>,
        protocol: WireProtocol,
    ) -> (Option<Document>, bool) {
        let a = read_preference_argument(topology_type, server_type, read_preference, protocol);
        (a.read_preference, a.secondary_ok)
    }

    /// "For OP_MSG": mode primary sends no $readPreference to a mongos or load balancer, every
    /// other mode sends it; in Sharded, LoadBalanced and Single (a mongos) alike.
    #[test]
    fn mongos_and_load_balancers_with_op_msg() {
        for (topology_type, server_type) in [
            (TopologyType::Sharded, ServerType::Mongos),
            (TopologyType::LoadBalanced, ServerType::LoadBalancer),
            (TopologyType::Single, ServerType::Mongos),
        ] {
            assert_eq!(arg(topology_type, server_type, None, WireProtocol::OpMsg), (None, false));
            let primary = rp(ReadPreferenceMode::Primary);
            assert_eq!(arg(topology_type, server_type, Some(&primary), WireProtocol::OpMsg), (None, false));
            for mode in &MODES[1..] {
                let r = rp(*mode);
                let expected = (Some(doc! {"mode": mode.as_str()}), false);
                assert_eq!(arg(topology_type, server_type, Some(&r), WireProtocol::OpMsg), expected);
            }
        }
    }

    /// "For OP_QUERY": the SecondaryOk flag for every mode but primary; $readPreference for
    /// secondary, primaryPreferred and nearest, and for secondaryPreferred only with tag sets,
    /// a positive maxStalenessSeconds or hedge. This is also the scenario list of
    /// server-selection-tests.md, "Passing ReadPreference to Mongos".
    #[test]
    fn mongos_with_op_query() {
        let m = |r: &ReadPreference| {
            arg(TopologyType::Sharded, ServerType::Mongos, Some(r), WireProtocol::OpQuery)
        };
        assert_eq!(m(&rp(ReadPreferenceMode::Primary)), (None, false));
        for mode in
            [ReadPreferenceMode::Secondary, ReadPreferenceMode::PrimaryPreferred, ReadPreferenceMode::Nearest]
        {
            assert_eq!(m(&rp(mode)), (Some(doc! {"mode": mode.as_str()}), true), "{mode:?}");
        }
        let sp = rp(ReadPreferenceMode::SecondaryPreferred);
        assert_eq!(m(&sp), (None, true), "only a mode: the flag alone");
        let with_tags = sp.clone().with_tag_sets(ny()).unwrap();
        assert_eq!(m(&with_tags), (Some(doc! {"mode": "secondaryPreferred", "tags": [{"dc": "ny"}]}), true));
        let stale = sp.clone().with_max_staleness_seconds(Some(120)).unwrap();
        assert_eq!(
            m(&stale),
            (Some(doc! {"mode": "secondaryPreferred", "maxStalenessSeconds": 120_i64}), true)
        );
        let zero = sp.clone().with_max_staleness_seconds(Some(0)).unwrap();
        assert_eq!(m(&zero).0, None, "maxStalenessSeconds 0 is not positive");
        #[allow(deprecated)]
        let hedged = sp.with_hedge(true).unwrap();
        assert_eq!(m(&hedged), (Some(doc! {"mode": "secondaryPreferred", "hedge": {"enabled": true}}), true));
    }

    /// "Topology type: Single": a standalone never gets a read preference; any other server
    /// type gets SecondaryOk with OP_QUERY and, with OP_MSG, primaryPreferred for no read
    /// preference or primary, else the read preference's document.
    #[test]
    fn direct_connections() {
        for protocol in [WireProtocol::OpMsg, WireProtocol::OpQuery] {
            for r in [None, Some(rp(ReadPreferenceMode::Secondary))] {
                let a = arg(TopologyType::Single, ServerType::Standalone, r.as_ref(), protocol);
                assert_eq!(a, (None, false), "standalone, {protocol:?} {r:?}");
            }
        }
        let primary_preferred = Some(doc! {"mode": "primaryPreferred"});
        for server_type in
            [ServerType::RSSecondary, ServerType::RSPrimary, ServerType::RSArbiter, ServerType::RSGhost]
        {
            let single = |r: Option<&ReadPreference>, p| arg(TopologyType::Single, server_type, r, p);
            assert_eq!(single(None, WireProtocol::OpMsg), (primary_preferred.clone(), false));
            let primary = rp(ReadPreferenceMode::Primary);
            assert_eq!(single(Some(&primary), WireProtocol::OpMsg), (primary_preferred.clone(), false));
            let nearest = rp(ReadPreferenceMode::Nearest).with_tag_sets(ny()).unwrap();
            assert_eq!(
                single(Some(&nearest), WireProtocol::OpMsg),
                (Some(doc! {"mode": "nearest", "tags": [{"dc": "ny"}]}), false)
            );
            for r in [None, Some(&primary), Some(&nearest)] {
                assert_eq!(single(r, WireProtocol::OpQuery), (None, true), "{server_type:?} {r:?}");
            }
        }
    }

    /// "Topology types: ReplicaSetWithPrimary or ReplicaSetNoPrimary": every mode but primary
    /// sets SecondaryOk (OP_QUERY) or $readPreference (OP_MSG); primary neither.
    #[test]
    fn replica_set_members() {
        for topology_type in [TopologyType::ReplicaSetWithPrimary, TopologyType::ReplicaSetNoPrimary] {
            for server_type in [ServerType::RSPrimary, ServerType::RSSecondary] {
                let a = |r: Option<&ReadPreference>, p| arg(topology_type, server_type, r, p);
                for p in [WireProtocol::OpMsg, WireProtocol::OpQuery] {
                    assert_eq!(a(None, p), (None, false));
                    assert_eq!(a(Some(&rp(ReadPreferenceMode::Primary)), p), (None, false));
                }
                for mode in &MODES[1..] {
                    let r = rp(*mode).with_max_staleness_seconds(Some(90)).unwrap();
                    let doc = doc! {"mode": mode.as_str(), "maxStalenessSeconds": 90_i64};
                    assert_eq!(a(Some(&r), WireProtocol::OpMsg), (Some(doc), false));
                    assert_eq!(a(Some(&r), WireProtocol::OpQuery), (None, true));
                }
            }
        }
    }

    /// "Document structure": mode in camel case; tags (as `tags`), maxStalenessSeconds and
    /// hedge only for other modes than primary.
    #[test]
    fn document_structure() {
        assert_eq!(ReadPreference::primary().to_document(), doc! {"mode": "primary"});
        let two =
            vec![TagSet(vec![("dc".into(), "ny".into()), ("rack".into(), "1".into())]), TagSet::default()];
        let r = rp(ReadPreferenceMode::Nearest)
            .with_tag_sets(two)
            .unwrap()
            .with_max_staleness_seconds(Some(100))
            .unwrap();
        assert_eq!(
            r.to_document(),
            doc! {"mode": "nearest", "tags": [{"dc": "ny", "rack": "1"}, {}], "maxStalenessSeconds": 100_i64}
        );
    }
}
