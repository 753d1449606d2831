//! `FromStr` for the types named by a word (server and topology types, read preference and
//! monitoring modes, compressors, authentication mechanisms): `"secondary".parse()` works
//! wherever `ReadPreferenceMode::parse("secondary")` does, with an error that says what was
//! expected.

use std::fmt;
use std::str::FromStr;

use crate::connection_string::{AuthMechanism, Compressor};
use crate::monitor::ServerMonitoringMode;
use crate::read_preference::ReadPreferenceMode;
use crate::server_description::ServerType;
use crate::topology_description::TopologyType;

/// A name that is not one of the values of its type, from a `FromStr` implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being parsed, e.g. "read preference mode".
    pub kind: &'static str,
    /// The text given.
    pub value: String,
    /// The accepted names, comma-separated.
    pub expected: &'static str,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?} (expected {})", self.kind, self.value, self.expected)
    }
}

impl std::error::Error for UnknownName {}

macro_rules! from_str_by_parse {
    ($ty:ty, $kind:literal, $expected:literal) => {
        impl FromStr for $ty {
            type Err = UnknownName;
            /// The type's `parse`, with an error naming the accepted values.
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                Self::parse(s).ok_or_else(|| UnknownName {
                    kind: $kind,
                    value: s.to_owned(),
                    expected: $expected,
                })
            }
        }
    };
}

from_str_by_parse!(
    ServerType,
    "server type",
    "Unknown, Standalone, Mongos, RSPrimary, RSSecondary, RSArbiter, RSOther, RSGhost, LoadBalancer or PossiblePrimary"
);
from_str_by_parse!(
    TopologyType,
    "topology type",
    "Unknown, Single, ReplicaSetNoPrimary, ReplicaSetWithPrimary, Sharded or LoadBalanced"
);
from_str_by_parse!(
    ReadPreferenceMode,
    "read preference mode",
    "primary, primaryPreferred, secondary, secondaryPreferred or nearest"
);
from_str_by_parse!(ServerMonitoringMode, "server monitoring mode", "auto, stream or poll");
from_str_by_parse!(Compressor, "compressor", "snappy, zlib or zstd");
from_str_by_parse!(
    AuthMechanism,
    "authentication mechanism",
    "SCRAM-SHA-1, SCRAM-SHA-256, MONGODB-X509, GSSAPI, PLAIN, MONGODB-AWS or MONGODB-OIDC"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectionString, ServerAddress};

    #[test]
    fn every_name_parses_through_from_str_and_back_through_display() {
        for mode in [
            ReadPreferenceMode::Primary,
            ReadPreferenceMode::PrimaryPreferred,
            ReadPreferenceMode::Secondary,
            ReadPreferenceMode::SecondaryPreferred,
            ReadPreferenceMode::Nearest,
        ] {
            assert_eq!(mode.to_string().parse::<ReadPreferenceMode>(), Ok(mode));
        }
        assert_eq!("SECONDARY".parse(), Ok(ReadPreferenceMode::Secondary));
        for mode in [ServerMonitoringMode::Auto, ServerMonitoringMode::Stream, ServerMonitoringMode::Poll] {
            assert_eq!(mode.to_string().parse::<ServerMonitoringMode>(), Ok(mode));
        }
        for t in [ServerType::Unknown, ServerType::RSPrimary, ServerType::LoadBalancer, ServerType::RSGhost] {
            assert_eq!(t.to_string().parse::<ServerType>(), Ok(t));
        }
        assert_eq!("PossiblePrimary".parse(), Ok(ServerType::Unknown));
        for t in [TopologyType::Single, TopologyType::ReplicaSetWithPrimary, TopologyType::LoadBalanced] {
            assert_eq!(t.to_string().parse::<TopologyType>(), Ok(t));
        }
        assert_eq!("zstd".parse(), Ok(Compressor::Zstd));
        assert_eq!("scram-sha-256".parse(), Ok(AuthMechanism::ScramSha256));
        let address: ServerAddress = "DB1.example.com".parse().unwrap();
        assert_eq!(address.to_string(), "db1.example.com:27017");
        let cs: ConnectionString = "mongodb://a,b/?replicaSet=rs0".parse().unwrap();
        assert_eq!(cs.hosts().len(), 2);
    }

    #[test]
    fn unknown_names_say_what_was_expected() {
        let e = "fastest".parse::<ReadPreferenceMode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown read preference mode \"fastest\" (expected primary, primaryPreferred, secondary, \
             secondaryPreferred or nearest)"
        );
        assert_eq!(e.value, "fastest");
        assert!("often"
            .parse::<ServerMonitoringMode>()
            .unwrap_err()
            .to_string()
            .contains("auto, stream or poll"));
        assert!("Primary".parse::<ServerType>().unwrap_err().to_string().contains("RSPrimary"));
        assert!("rs".parse::<TopologyType>().is_err());
        assert!("lz4".parse::<Compressor>().is_err());
        assert!("NTLM".parse::<AuthMechanism>().is_err());
    }
}
