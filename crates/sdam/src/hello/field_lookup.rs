//! Performance machinery of the hello parser: finding a reply field's [`Field`] from its
//! name by a jump on the name's length and first and last bytes and one in-line word
//! comparison ([`eq_bytes`]).
//!
//! It must equal the general path: comparing the key with every field name in turn
//! (`Field::ALL.iter().find(|f| f.name().as_bytes() == key)`), with `eq_bytes` equal to slice
//! equality. The property tests `field_lookup_equals_comparing_every_name` and
//! `eq_bytes_equals_slice_equality` below check it on arbitrary keys, every field name and
//! its one-byte changes; `testing::proptests::hello_fields_of_any_type_parse_or_are_explained`
//! and the `hello_parse` fuzz target parse whole replies through it.

/// The hello fields the parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Ok,
    IsWritablePrimary,
    Ismaster,
    Secondary,
    ArbiterOnly,
    Hidden,
    Isreplicaset,
    Msg,
    Errmsg,
    HelloOk,
    Iscryptd,
    SetName,
    SetVersion,
    ElectionId,
    ServiceId,
    Primary,
    Me,
    Hosts,
    Passives,
    Arbiters,
    MinWireVersion,
    MaxWireVersion,
    LogicalSessionTimeoutMinutes,
    MaxBsonObjectSize,
    MaxMessageSizeBytes,
    MaxWriteBatchSize,
    ConnectionId,
    Tags,
    LastWrite,
    TopologyVersion,
    Compression,
}

impl Field {
    /// Every field, in declaration order: the general path's list.
    #[cfg(test)]
    const ALL: [Self; 31] = [
        Self::Ok,
        Self::IsWritablePrimary,
        Self::Ismaster,
        Self::Secondary,
        Self::ArbiterOnly,
        Self::Hidden,
        Self::Isreplicaset,
        Self::Msg,
        Self::Errmsg,
        Self::HelloOk,
        Self::Iscryptd,
        Self::SetName,
        Self::SetVersion,
        Self::ElectionId,
        Self::ServiceId,
        Self::Primary,
        Self::Me,
        Self::Hosts,
        Self::Passives,
        Self::Arbiters,
        Self::MinWireVersion,
        Self::MaxWireVersion,
        Self::LogicalSessionTimeoutMinutes,
        Self::MaxBsonObjectSize,
        Self::MaxMessageSizeBytes,
        Self::MaxWriteBatchSize,
        Self::ConnectionId,
        Self::Tags,
        Self::LastWrite,
        Self::TopologyVersion,
        Self::Compression,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::IsWritablePrimary => "isWritablePrimary",
            Self::Ismaster => "ismaster",
            Self::Secondary => "secondary",
            Self::ArbiterOnly => "arbiterOnly",
            Self::Hidden => "hidden",
            Self::Isreplicaset => "isreplicaset",
            Self::Msg => "msg",
            Self::Errmsg => "errmsg",
            Self::HelloOk => "helloOk",
            Self::Iscryptd => "iscryptd",
            Self::SetName => "setName",
            Self::SetVersion => "setVersion",
            Self::ElectionId => "electionId",
            Self::ServiceId => "serviceId",
            Self::Primary => "primary",
            Self::Me => "me",
            Self::Hosts => "hosts",
            Self::Passives => "passives",
            Self::Arbiters => "arbiters",
            Self::MinWireVersion => "minWireVersion",
            Self::MaxWireVersion => "maxWireVersion",
            Self::LogicalSessionTimeoutMinutes => "logicalSessionTimeoutMinutes",
            Self::MaxBsonObjectSize => "maxBsonObjectSize",
            Self::MaxMessageSizeBytes => "maxMessageSizeBytes",
            Self::MaxWriteBatchSize => "maxWriteBatchSize",
            Self::ConnectionId => "connectionId",
            Self::Tags => "tags",
            Self::LastWrite => "lastWrite",
            Self::TopologyVersion => "topologyVersion",
            Self::Compression => "compression",
        }
    }

    /// The field named `key`, found by a jump on its length and first and last bytes and one
    /// comparison (not a comparison with every name).
    pub(super) fn of(key: &[u8]) -> Option<Self> {
        let (&first, &last) = (key.first()?, key.last()?);
        let field = match (key.len(), first, last) {
            (2, b'o', b'k') => Self::Ok,
            (17, b'i', b'y') => Self::IsWritablePrimary,
            (8, b'i', b'r') => Self::Ismaster,
            (9, b's', b'y') => Self::Secondary,
            (11, b'a', b'y') => Self::ArbiterOnly,
            (6, b'h', b'n') => Self::Hidden,
            (12, b'i', b't') => Self::Isreplicaset,
            (3, b'm', b'g') => Self::Msg,
            (6, b'e', b'g') => Self::Errmsg,
            (7, b'h', b'k') => Self::HelloOk,
            (8, b'i', b'd') => Self::Iscryptd,
            (7, b's', b'e') => Self::SetName,
            (10, b's', b'n') => Self::SetVersion,
            (10, b'e', b'd') => Self::ElectionId,
            (9, b's', b'd') => Self::ServiceId,
            (7, b'p', b'y') => Self::Primary,
            (2, b'm', b'e') => Self::Me,
            (5, b'h', b's') => Self::Hosts,
            (8, b'p', b's') => Self::Passives,
            (8, b'a', b's') => Self::Arbiters,
            (14, b'm', b'n') if key.get(1) == Some(&b'i') => Self::MinWireVersion,
            (14, b'm', b'n') => Self::MaxWireVersion,
            (28, b'l', b's') => Self::LogicalSessionTimeoutMinutes,
            (17, b'm', b'e') if key.get(3) == Some(&b'B') => Self::MaxBsonObjectSize,
            (17, b'm', b'e') => Self::MaxWriteBatchSize,
            (19, b'm', b's') => Self::MaxMessageSizeBytes,
            (12, b'c', b'd') => Self::ConnectionId,
            (4, b't', b's') => Self::Tags,
            (9, b'l', b'e') => Self::LastWrite,
            (15, b't', b'n') => Self::TopologyVersion,
            (11, b'c', b'n') => Self::Compression,
            _ => return None,
        };
        eq_bytes(field.name().as_bytes(), key).then_some(field)
    }
}

/// Byte equality for short slices, in line: two possibly overlapping words (8 or 4 bytes)
/// cover any length from 4 to 16, instead of a call to `memcmp`.
#[inline]
fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    let word8 =
        |s: &[u8], at: usize| s.get(at..at + 8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
    let word4 =
        |s: &[u8], at: usize| s.get(at..at + 4).map(|w| u32::from_le_bytes(w.try_into().unwrap_or([0; 4])));
    match n {
        0..=3 => a == b,
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The general path the lookup must equal.
    fn by_comparing_every_name(key: &[u8]) -> Option<Field> {
        Field::ALL.iter().copied().find(|f| f.name().as_bytes() == key)
    }

    #[test]
    fn eq_bytes_is_slice_equality_on_every_field_name() {
        for n in 0..32usize {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(eq_bytes(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x20;
                assert!(!eq_bytes(&a, &b), "len {n}, differs at {i}");
            }
            assert!(!eq_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
        // Every field name is found by itself and not by a one-byte change.
        for name in [
            "ok",
            "me",
            "msg",
            "tags",
            "hosts",
            "primary",
            "setName",
            "maxWireVersion",
            "minWireVersion",
            "logicalSessionTimeoutMinutes",
            "maxBsonObjectSize",
            "maxWriteBatchSize",
        ] {
            let field = Field::of(name.as_bytes()).unwrap();
            assert_eq!(field.name(), name);
            let mut changed = name.as_bytes().to_vec();
            changed[1] ^= 1;
            assert!(Field::of(&changed).is_none(), "{name}");
        }
    }

    /// Keys near the field names: each name, each name with one byte changed, cut or
    /// extended, and arbitrary bytes.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        let names: Vec<Vec<u8>> = Field::ALL.iter().map(|f| f.name().as_bytes().to_vec()).collect();
        prop_oneof![
            proptest::sample::select(names.clone()),
            (proptest::sample::select(names.clone()), any::<prop::sample::Index>(), any::<u8>()).prop_map(
                |(mut name, at, byte)| {
                    let i = at.index(name.len());
                    name[i] = byte;
                    name
                }
            ),
            (proptest::sample::select(names), any::<prop::sample::Index>(), any::<bool>()).prop_map(
                |(mut name, at, cut)| {
                    if cut {
                        name.truncate(at.index(name.len()));
                    } else {
                        name.push(b'x');
                    }
                    name
                }
            ),
            proptest::collection::vec(any::<u8>(), 0..32),
        ]
    }

    proptest! {
        #[test]
        fn field_lookup_equals_comparing_every_name(key in key()) {
            prop_assert_eq!(Field::of(&key), by_comparing_every_name(&key));
        }

        #[test]
        fn eq_bytes_equals_slice_equality(a in proptest::collection::vec(0u8..4, 0..24), b in proptest::collection::vec(0u8..4, 0..24)) {
            prop_assert_eq!(eq_bytes(&a, &b), a == b);
            prop_assert!(eq_bytes(&a, &a.clone()));
        }
    }
}
