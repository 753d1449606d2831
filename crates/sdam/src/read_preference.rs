//! Read preferences: which kinds of server a read may go to (server-selection.md,
//! "Read preference").

use std::fmt;

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
    pub fn matches(&self, server_tags: &crate::server_description::Tags) -> bool {
        self.0.iter().all(|(k, v)| server_tags.get(k) == Some(v.as_str()))
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
