//! Read preferences: which kinds of server a read may go to (server-selection.md,
//! "Read preference").

use std::fmt;
use std::time::Duration;

/// The read preference mode (server-selection.md, "Components of a read preference").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReadPreferenceMode {
    /// Only the primary.
    #[default]
    Primary,
    /// The primary if there is one, else a secondary.
    PrimaryPreferred,
    /// Only secondaries.
    Secondary,
    /// A secondary if there is one, else the primary.
    SecondaryPreferred,
    /// Any data-bearing member within the latency window.
    Nearest,
}

impl ReadPreferenceMode {
    /// The name used in connection strings and `$readPreference` (camel case).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::PrimaryPreferred => "primaryPreferred",
            Self::Secondary => "secondary",
            Self::SecondaryPreferred => "secondaryPreferred",
            Self::Nearest => "nearest",
        }
    }

    /// Parses a mode name, ignoring ASCII case (uri-options.md: option values are
    /// case-sensitive except where stated; drivers accept the camel-case names).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Primary, Self::PrimaryPreferred, Self::Secondary, Self::SecondaryPreferred, Self::Nearest]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for ReadPreferenceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tag set: every pair must be among a server's tags for the set to match it.
/// The empty tag set `{}` matches every server (server-selection.md, "Tag sets").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TagSet(pub Vec<(String, String)>);

impl TagSet {
    /// Whether every tag of this set is present with the same value in `server_tags`.
    #[inline]
    pub fn matches(&self, server_tags: &crate::server_description::Tags) -> bool {
        self.0.iter().all(|(k, v)| server_tags.has(k, v))
    }

    /// Whether this is the empty tag set, which matches any server.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for TagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}:{v}")?;
        }
        f.write_str("}")
    }
}

/// server-selection.md, "smallestMaxStalenessSeconds": the smallest `maxStalenessSeconds` a
/// replica set accepts.
pub const SMALLEST_MAX_STALENESS: Duration = Duration::from_secs(90);

/// max-staleness.md, "idleWritePeriodMS": how often an idle primary writes a no-op.
pub const IDLE_WRITE_PERIOD: Duration = Duration::from_secs(10);

/// The message reported when a read preference carries the deprecated `hedge` option.
pub const HEDGE_DEPRECATION: &str =
    "hedged reads are deprecated in MongoDB Server 8.0 and will be removed in a future version; \
     the hedge option is passed through but never acted on";

/// Why a read preference is invalid: a caller mistake, reported as an `Err`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadPreferenceError {
    /// Mode `primary` with a non-empty tag set (server-selection.md, "tag_sets").
    PrimaryWithTags,
    /// Mode `primary` with a `maxStalenessSeconds` (server-selection.md, "maxStalenessSeconds").
    PrimaryWithMaxStaleness,
    /// Mode `primary` with the `hedge` option (server-selection.md, "Document structure").
    PrimaryWithHedge,
    /// A negative `maxStalenessSeconds` other than -1 ("no maximum").
    NegativeMaxStaleness(i64),
    /// `maxStalenessSeconds` below the replica set minimum: at least 90 seconds and at least
    /// heartbeatFrequencyMS + idleWritePeriodMS (server-selection.md, "maxStalenessSeconds").
    MaxStalenessTooSmall {
        /// The configured value, in seconds.
        max_staleness_seconds: u64,
        /// The smallest value this topology accepts, in seconds (rounded up).
        minimum_seconds: u64,
    },
}

impl fmt::Display for ReadPreferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PrimaryWithTags => {
                f.write_str("read preference mode primary cannot be combined with tag sets")
            }
            Self::PrimaryWithMaxStaleness => {
                f.write_str("read preference mode primary cannot be combined with maxStalenessSeconds")
            }
            Self::PrimaryWithHedge => {
                f.write_str("read preference mode primary cannot be combined with hedge")
            }
            Self::NegativeMaxStaleness(n) => {
                write!(f, "maxStalenessSeconds must be positive or -1 (no maximum), got {n}")
            }
            Self::MaxStalenessTooSmall { max_staleness_seconds, minimum_seconds } => write!(
                f,
                "maxStalenessSeconds {max_staleness_seconds} is too small: a replica set needs at least \
                 {minimum_seconds} (90 seconds and heartbeatFrequencyMS + idleWritePeriodMS)"
            ),
        }
    }
}

impl std::error::Error for ReadPreferenceError {}

/// A read preference: which servers a read may go to (server-selection.md, "Components of a
/// read preference").
///
/// Build one with [`ReadPreference::new`] (or [`ReadPreference::primary`]) and the `with_*`
/// methods, which reject the combinations the spec forbids. Whether `maxStalenessSeconds` is
/// large enough depends on the topology and is checked at selection time
/// ([`ReadPreference::validate_for`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ReadPreference {
    mode: ReadPreferenceMode,
    tag_sets: Vec<TagSet>,
    max_staleness: Option<Duration>,
    hedge: Option<bool>,
}

impl ReadPreference {
    /// Mode `primary`, the default.
    pub fn primary() -> Self {
        Self::default()
    }

    /// A read preference with `mode`, the default tag set list (`[{}]`, matching any server),
    /// no maximum staleness and no hedge.
    pub fn new(mode: ReadPreferenceMode) -> Self {
        Self { mode, tag_sets: Vec::new(), max_staleness: None, hedge: None }
    }

    /// Sets the ordered tag set list. A list of only empty tag sets is allowed with any mode;
    /// a non-empty tag set with mode `primary` is an error.
    pub fn with_tag_sets(mut self, tag_sets: Vec<TagSet>) -> Result<Self, ReadPreferenceError> {
        // server-selection.md, "tag_sets": a non-empty tag set with mode primary is an error.
        if self.mode == ReadPreferenceMode::Primary && tag_sets.iter().any(|t| !t.is_empty()) {
            return Err(ReadPreferenceError::PrimaryWithTags);
        }
        self.tag_sets = tag_sets;
        Ok(self)
    }

    /// Sets `maxStalenessSeconds` as the spec spells it: `-1` or `None` mean no maximum, other
    /// negative values are errors, and any value with mode `primary` is an error.
    ///
    /// Small values are accepted here: the 90-second floor applies only to replica sets and
    /// is checked at selection time.
    pub fn with_max_staleness_seconds(mut self, seconds: Option<i64>) -> Result<Self, ReadPreferenceError> {
        // server-selection.md, "maxStalenessSeconds": -1 means "no maximum".
        let max = match seconds {
            None | Some(-1) => None,
            Some(n) if n < 0 => return Err(ReadPreferenceError::NegativeMaxStaleness(n)),
            Some(n) => Some(Duration::from_secs(n.unsigned_abs())),
        };
        // server-selection.md, "maxStalenessSeconds": an error with mode primary.
        if max.is_some() && self.mode == ReadPreferenceMode::Primary {
            return Err(ReadPreferenceError::PrimaryWithMaxStaleness);
        }
        self.max_staleness = max;
        Ok(self)
    }

    /// Sets the deprecated `hedge` option (`{enabled: <enabled>}`). It is kept so it can be
    /// passed to mongos and shown, but selection never acts on it; see
    /// [`ReadPreference::deprecation_warning`].
    #[deprecated(note = "hedged reads are deprecated in MongoDB Server 8.0")]
    pub fn with_hedge(mut self, enabled: bool) -> Result<Self, ReadPreferenceError> {
        // server-selection.md, "Document structure": no hedge with mode primary.
        if self.mode == ReadPreferenceMode::Primary {
            return Err(ReadPreferenceError::PrimaryWithHedge);
        }
        self.hedge = Some(enabled);
        Ok(self)
    }

    /// The mode.
    pub fn mode(&self) -> ReadPreferenceMode {
        self.mode
    }

    /// The ordered tag set list; empty means the default `[{}]`.
    pub fn tag_sets(&self) -> &[TagSet] {
        &self.tag_sets
    }

    /// The maximum staleness, or `None` for no maximum.
    pub fn max_staleness(&self) -> Option<Duration> {
        self.max_staleness
    }

    /// The deprecated hedge option's `enabled` value, if hedge was given.
    pub fn hedge(&self) -> Option<bool> {
        self.hedge
    }

    /// The deprecation warning to show when the read preference uses `hedge`.
    pub fn deprecation_warning(&self) -> Option<&'static str> {
        self.hedge.map(|_| HEDGE_DEPRECATION)
    }

    /// Checks `maxStalenessSeconds` against a topology (server-selection.md,
    /// "maxStalenessSeconds"): in a replica set it must be at least 90 seconds and at least
    /// heartbeatFrequencyMS + idleWritePeriodMS. Other topology types ignore it.
    pub fn validate_for(
        &self,
        topology_type: crate::TopologyType,
        heartbeat_frequency: Duration,
    ) -> Result<(), ReadPreferenceError> {
        let Some(max) = self.max_staleness else { return Ok(()) };
        if !topology_type.is_replica_set() {
            return Ok(());
        }
        let minimum = SMALLEST_MAX_STALENESS.max(heartbeat_frequency.saturating_add(IDLE_WRITE_PERIOD));
        if max < minimum {
            let rounded_up = minimum.as_secs() + u64::from(minimum.subsec_nanos() > 0);
            return Err(ReadPreferenceError::MaxStalenessTooSmall {
                max_staleness_seconds: max.as_secs(),
                minimum_seconds: rounded_up,
            });
        }
        Ok(())
    }
}

impl fmt::Display for ReadPreference {
    /// `secondaryPreferred tags=[{dc:ny},{dc:sf}] maxStalenessSeconds=120`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mode.as_str())?;
        if !self.tag_sets.is_empty() {
            f.write_str(" tags=[")?;
            for (i, t) in self.tag_sets.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{t}")?;
            }
            f.write_str("]")?;
        }
        if let Some(max) = self.max_staleness {
            write!(f, " maxStalenessSeconds={}", max.as_secs())?;
        }
        if let Some(enabled) = self.hedge {
            write!(f, " hedge={{enabled:{enabled}}} (deprecated)")?;
        }
        Ok(())
    }
}

impl From<ReadPreferenceMode> for ReadPreference {
    fn from(mode: ReadPreferenceMode) -> Self {
        Self::new(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TopologyType;

    fn tags(pairs: &[(&str, &str)]) -> TagSet {
        TagSet(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn display_lists_every_component() {
        let rp = ReadPreference::new(ReadPreferenceMode::SecondaryPreferred)
            .with_tag_sets(vec![tags(&[("dc", "ny")]), tags(&[("dc", "sf")])])
            .and_then(|rp| rp.with_max_staleness_seconds(Some(120)))
            .unwrap();
        assert_eq!(rp.to_string(), "secondaryPreferred tags=[{dc:ny},{dc:sf}] maxStalenessSeconds=120");
        assert_eq!(ReadPreference::primary().to_string(), "primary");
        #[allow(deprecated)]
        let hedged = ReadPreference::new(ReadPreferenceMode::Nearest).with_hedge(true).unwrap();
        assert_eq!(hedged.to_string(), "nearest hedge={enabled:true} (deprecated)");
        assert_eq!(hedged.deprecation_warning(), Some(HEDGE_DEPRECATION));
        assert_eq!(ReadPreference::primary().deprecation_warning(), None);
    }

    #[test]
    fn primary_rejects_tags_staleness_and_hedge() {
        let p = ReadPreference::primary();
        assert_eq!(
            p.clone().with_tag_sets(vec![tags(&[("dc", "ny")])]),
            Err(ReadPreferenceError::PrimaryWithTags)
        );
        assert!(p.clone().with_tag_sets(vec![TagSet::default()]).is_ok());
        assert_eq!(
            p.clone().with_max_staleness_seconds(Some(120)),
            Err(ReadPreferenceError::PrimaryWithMaxStaleness)
        );
        assert_eq!(
            p.clone().with_max_staleness_seconds(Some(0)),
            Err(ReadPreferenceError::PrimaryWithMaxStaleness)
        );
        assert!(p.clone().with_max_staleness_seconds(Some(-1)).is_ok());
        assert!(p.clone().with_max_staleness_seconds(None).is_ok());
        #[allow(deprecated)]
        let hedged = p.with_hedge(true);
        assert_eq!(hedged, Err(ReadPreferenceError::PrimaryWithHedge));
    }

    #[test]
    fn negative_staleness_other_than_minus_one_is_rejected() {
        let s = ReadPreference::new(ReadPreferenceMode::Secondary);
        assert_eq!(
            s.clone().with_max_staleness_seconds(Some(-2)),
            Err(ReadPreferenceError::NegativeMaxStaleness(-2))
        );
        assert_eq!(s.with_max_staleness_seconds(Some(-1)).unwrap().max_staleness(), None);
    }

    #[test]
    fn replica_set_floor() {
        let rp =
            |s| ReadPreference::new(ReadPreferenceMode::Nearest).with_max_staleness_seconds(Some(s)).unwrap();
        let hb = Duration::from_secs(10);
        let rs = TopologyType::ReplicaSetWithPrimary;
        assert!(rp(90).validate_for(rs, hb).is_ok());
        assert_eq!(
            rp(89).validate_for(rs, hb),
            Err(ReadPreferenceError::MaxStalenessTooSmall { max_staleness_seconds: 89, minimum_seconds: 90 })
        );
        assert!(rp(0).validate_for(TopologyType::ReplicaSetNoPrimary, hb).is_err());
        // heartbeatFrequencyMS + idleWritePeriodMS = 130 s.
        assert!(rp(129).validate_for(rs, Duration::from_secs(120)).is_err());
        assert!(rp(130).validate_for(rs, Duration::from_secs(120)).is_ok());
        // Other topologies ignore it.
        assert!(rp(1).validate_for(TopologyType::Sharded, hb).is_ok());
        assert!(rp(1).validate_for(TopologyType::Single, hb).is_ok());
        assert!(rp(1).validate_for(TopologyType::Unknown, hb).is_ok());
    }
}
