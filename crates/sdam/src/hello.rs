//! Parsing `hello` and legacy hello replies into server descriptions
//! (server-discovery-and-monitoring.md, "Parsing a hello or legacy hello response").
//!
//! Parsing reads the reply's bytes once, straight from the wire, and never panics: a field
//! of the wrong type is an error that names the field, and the topology turns that error
//! into an Unknown server description.

use std::fmt;
use std::time::Instant;

use bson::raw::{RawArray, RawBsonRef, RawDocument};

use crate::address::{AddressError, ServerAddress};
use crate::server_description::{OpTime, ServerDescription, ServerType, Tags, TopologyVersion};

/// The most members (hosts + passives + arbiters) a reply may list. A replica set has at
/// most 50 members; a reply listing more than this is hostile or corrupt and is rejected,
/// so no work per reply grows without bound.
pub const MAX_REPORTED_MEMBERS: usize = 1024;

/// The most tags a reply may carry.
pub const MAX_TAGS: usize = 256;

/// Why a hello reply could not be turned into a server description.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HelloError {
    /// The bytes are not a valid BSON document.
    InvalidBson(String),
    /// A field has the wrong BSON type.
    WrongType {
        /// The field's name (dotted for nested fields, e.g. `lastWrite.lastWriteDate`).
        field: &'static str,
        /// What was expected.
        expected: &'static str,
        /// The BSON type found.
        found: String,
    },
    /// A field holds an address that does not parse.
    BadAddress {
        /// The field's name.
        field: &'static str,
        /// The text found.
        value: String,
        /// Why it does not parse.
        error: AddressError,
    },
    /// A field holds a number out of the range it may take.
    OutOfRange {
        /// The field's name.
        field: &'static str,
        /// The value found.
        value: String,
    },
    /// The reply lists more members or tags than accepted.
    TooMany {
        /// The field's name.
        field: &'static str,
        /// How many it had (at least).
        count: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidBson(e) => write!(f, "malformed hello reply: invalid BSON: {e}"),
            Self::WrongType { field, expected, found } => {
                write!(f, "malformed hello reply: field {field:?} should be {expected}, found {found}")
            }
            Self::BadAddress { field, value, error } => {
                write!(
                    f,
                    "malformed hello reply: field {field:?} holds an invalid address {value:?}: {error}"
                )
            }
            Self::OutOfRange { field, value } => {
                write!(f, "malformed hello reply: field {field:?} is out of range: {value}")
            }
            Self::TooMany { field, count, limit } => {
                write!(f, "malformed hello reply: field {field:?} lists {count} entries, at most {limit} are accepted")
            }
        }
    }
}

impl std::error::Error for HelloError {}

fn wrong(field: &'static str, expected: &'static str, v: RawBsonRef<'_>) -> HelloError {
    HelloError::WrongType { field, expected, found: format!("{:?}", v.element_type()) }
}

fn bson_err(e: impl fmt::Display) -> HelloError {
    HelloError::InvalidBson(e.to_string())
}

/// A boolean field; numbers are accepted as truthy/falsy (`ok: 1`), as servers and the spec
/// tests send them.
fn as_bool(field: &'static str, v: RawBsonRef<'_>) -> Result<Option<bool>, HelloError> {
    Ok(Some(match v {
        RawBsonRef::Boolean(b) => b,
        RawBsonRef::Int32(i) => i != 0,
        RawBsonRef::Int64(i) => i != 0,
        RawBsonRef::Double(d) => d != 0.0,
        RawBsonRef::Null | RawBsonRef::Undefined => return Ok(None),
        other => return Err(wrong(field, "a boolean", other)),
    }))
}

/// An integer field; doubles with an integral value are accepted.
fn as_i64(field: &'static str, v: RawBsonRef<'_>) -> Result<Option<i64>, HelloError> {
    Ok(Some(match v {
        RawBsonRef::Int32(i) => i64::from(i),
        RawBsonRef::Int64(i) => i,
        RawBsonRef::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e18 => d as i64,
        RawBsonRef::Double(d) => return Err(HelloError::OutOfRange { field, value: d.to_string() }),
        RawBsonRef::Null | RawBsonRef::Undefined => return Ok(None),
        other => return Err(wrong(field, "an integer", other)),
    }))
}

fn as_i32(field: &'static str, v: RawBsonRef<'_>) -> Result<Option<i32>, HelloError> {
    match as_i64(field, v)? {
        Some(n) => {
            i32::try_from(n).map(Some).map_err(|_| HelloError::OutOfRange { field, value: n.to_string() })
        }
        None => Ok(None),
    }
}

fn as_str<'a>(field: &'static str, v: RawBsonRef<'a>) -> Result<Option<&'a str>, HelloError> {
    match v {
        RawBsonRef::String(s) => Ok(Some(s)),
        RawBsonRef::Null | RawBsonRef::Undefined => Ok(None),
        other => Err(wrong(field, "a string", other)),
    }
}

fn as_oid(field: &'static str, v: RawBsonRef<'_>) -> Result<Option<bson::oid::ObjectId>, HelloError> {
    match v {
        RawBsonRef::ObjectId(o) => Ok(Some(o)),
        RawBsonRef::Null | RawBsonRef::Undefined => Ok(None),
        other => Err(wrong(field, "an ObjectId", other)),
    }
}

fn as_doc<'a>(field: &'static str, v: RawBsonRef<'a>) -> Result<Option<&'a RawDocument>, HelloError> {
    match v {
        RawBsonRef::Document(d) => Ok(Some(d)),
        RawBsonRef::Null | RawBsonRef::Undefined => Ok(None),
        other => Err(wrong(field, "a document", other)),
    }
}

fn as_address(field: &'static str, s: &str) -> Result<ServerAddress, HelloError> {
    ServerAddress::parse(s).map_err(|error| HelloError::BadAddress { field, value: truncate(s), error })
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Parses an array of address strings into `out` (then sorted and deduplicated), counting
/// against `budget` so a hostile reply cannot make the work unbounded.
fn address_list(
    field: &'static str,
    v: RawBsonRef<'_>,
    out: &mut Vec<ServerAddress>,
    budget: &mut usize,
) -> Result<(), HelloError> {
    let arr: &RawArray = match v {
        RawBsonRef::Array(a) => a,
        RawBsonRef::Null | RawBsonRef::Undefined => return Ok(()),
        other => return Err(wrong(field, "an array of strings", other)),
    };
    out.clear();
    for item in arr {
        let item = item.map_err(bson_err)?;
        if *budget == 0 {
            return Err(HelloError::TooMany { field, count: out.len() + 1, limit: MAX_REPORTED_MEMBERS });
        }
        *budget -= 1;
        let s = as_str(field, item)?.ok_or_else(|| wrong(field, "an array of strings", item))?;
        out.push(as_address(field, s)?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(())
}

/// The raw flags of a reply that decide its server type.
#[derive(Default)]
struct TypeFlags<'a> {
    ok: bool,
    writable_primary: Option<bool>,
    legacy_primary: Option<bool>,
    secondary: bool,
    arbiter_only: bool,
    hidden: bool,
    is_replica_set: bool,
    msg: Option<&'a str>,
    errmsg: Option<&'a str>,
}

impl TypeFlags<'_> {
    /// The server type table (server-discovery-and-monitoring.md, "type").
    fn server_type(&self, set_name: Option<&str>) -> ServerType {
        if !self.ok {
            return ServerType::Unknown;
        }
        // "isWritablePrimary" first, falling back to legacy "ismaster" ("Parsing a hello ...").
        let primary = self.writable_primary.or(self.legacy_primary).unwrap_or(false);
        if self.is_replica_set {
            ServerType::RSGhost
        } else if self.msg == Some("isdbgrid") {
            ServerType::Mongos
        } else if set_name.is_some() {
            if self.hidden {
                ServerType::RSOther
            } else if primary {
                ServerType::RSPrimary
            } else if self.secondary {
                ServerType::RSSecondary
            } else if self.arbiter_only {
                ServerType::RSArbiter
            } else {
                ServerType::RSOther
            }
        } else {
            ServerType::Standalone
        }
    }
}

impl ServerDescription {
    /// Builds the description of the server at `address` from its hello (or legacy hello)
    /// reply, received at `now`.
    ///
    /// A reply with `ok: 0` yields an Unknown description carrying the server's `errmsg`. The
    /// round-trip time is left unset: the topology fills it from its RTT statistics.
    pub fn from_hello(address: ServerAddress, reply: &RawDocument, now: Instant) -> Result<Self, HelloError> {
        let mut sd = Self::unknown(address);
        sd.last_update_time = Some(now);
        let mut flags = TypeFlags::default();
        let mut budget = MAX_REPORTED_MEMBERS;
        let mut set_name = None;
        let mut tags = Vec::new();

        for element in reply {
            let (key, value) = element.map_err(bson_err)?;
            match key.as_str() {
                "ok" => flags.ok = as_bool("ok", value)?.unwrap_or(false),
                "isWritablePrimary" => flags.writable_primary = as_bool("isWritablePrimary", value)?,
                "ismaster" => flags.legacy_primary = as_bool("ismaster", value)?,
                "secondary" => flags.secondary = as_bool("secondary", value)?.unwrap_or(false),
                "arbiterOnly" => flags.arbiter_only = as_bool("arbiterOnly", value)?.unwrap_or(false),
                "hidden" => flags.hidden = as_bool("hidden", value)?.unwrap_or(false),
                "isreplicaset" => flags.is_replica_set = as_bool("isreplicaset", value)?.unwrap_or(false),
                "msg" => flags.msg = as_str("msg", value)?,
                "errmsg" => flags.errmsg = as_str("errmsg", value)?,
                "helloOk" => sd.hello_ok = as_bool("helloOk", value)?.unwrap_or(false),
                "iscryptd" => sd.iscryptd = as_bool("iscryptd", value)?.unwrap_or(false),
                "setName" => set_name = as_str("setName", value)?,
                "setVersion" => sd.set_version = as_i64("setVersion", value)?,
                "electionId" => sd.election_id = as_oid("electionId", value)?,
                "serviceId" => sd.service_id = as_oid("serviceId", value)?,
                "primary" => {
                    sd.primary = as_str("primary", value)?.map(|s| as_address("primary", s)).transpose()?;
                }
                "me" => sd.me = as_str("me", value)?.map(|s| as_address("me", s)).transpose()?,
                "hosts" => address_list("hosts", value, &mut sd.hosts, &mut budget)?,
                "passives" => address_list("passives", value, &mut sd.passives, &mut budget)?,
                "arbiters" => address_list("arbiters", value, &mut sd.arbiters, &mut budget)?,
                "minWireVersion" => sd.min_wire_version = as_i32("minWireVersion", value)?.unwrap_or(0),
                "maxWireVersion" => sd.max_wire_version = as_i32("maxWireVersion", value)?.unwrap_or(0),
                "logicalSessionTimeoutMinutes" => {
                    sd.logical_session_timeout_minutes = as_i64("logicalSessionTimeoutMinutes", value)?;
                }
                "maxBsonObjectSize" => sd.max_bson_object_size = as_i64("maxBsonObjectSize", value)?,
                "maxMessageSizeBytes" => sd.max_message_size_bytes = as_i64("maxMessageSizeBytes", value)?,
                "maxWriteBatchSize" => sd.max_write_batch_size = as_i64("maxWriteBatchSize", value)?,
                "connectionId" => sd.connection_id = as_i64("connectionId", value)?,
                "tags" => {
                    if let Some(doc) = as_doc("tags", value)? {
                        parse_tags(doc, &mut tags)?;
                    }
                }
                "lastWrite" => {
                    if let Some(doc) = as_doc("lastWrite", value)? {
                        parse_last_write(doc, &mut sd)?;
                    }
                }
                "topologyVersion" => {
                    sd.topology_version =
                        as_doc("topologyVersion", value)?.map(parse_topology_version).transpose()?;
                }
                "compression" => sd.compression = parse_compression(value)?,
                _ => {}
            }
        }

        sd.server_type = flags.server_type(set_name);
        sd.set_name = set_name.map(str::to_owned);
        sd.tags = Tags::new(tags);
        if !flags.ok {
            // "ok: 1" not in the reply: the server is Unknown ("type" table), exactly as
            // after a failed check, with the server's errmsg as the reason.
            let msg = flags.errmsg.unwrap_or("hello command failed (ok: 0)");
            let mut unknown =
                Self::unknown_with_error(sd.address, format!("hello failed: {}", truncate(msg)));
            unknown.last_update_time = Some(now);
            return Ok(unknown);
        }
        Ok(sd)
    }
}

fn parse_tags(doc: &RawDocument, out: &mut Vec<(String, String)>) -> Result<(), HelloError> {
    for element in doc {
        let (key, value) = element.map_err(bson_err)?;
        if out.len() >= MAX_TAGS {
            return Err(HelloError::TooMany { field: "tags", count: out.len() + 1, limit: MAX_TAGS });
        }
        let v = as_str("tags", value)?.ok_or_else(|| wrong("tags", "a document of strings", value))?;
        out.push((key.as_str().to_owned(), v.to_owned()));
    }
    Ok(())
}

fn parse_last_write(doc: &RawDocument, sd: &mut ServerDescription) -> Result<(), HelloError> {
    for element in doc {
        let (key, value) = element.map_err(bson_err)?;
        match key.as_str() {
            "lastWriteDate" => {
                sd.last_write_date = match value {
                    RawBsonRef::DateTime(d) => Some(d),
                    // The spec tests write dates as plain numbers of milliseconds.
                    RawBsonRef::Int64(ms) => Some(bson::DateTime::from_millis(ms)),
                    RawBsonRef::Int32(ms) => Some(bson::DateTime::from_millis(i64::from(ms))),
                    RawBsonRef::Null | RawBsonRef::Undefined => None,
                    other => return Err(wrong("lastWrite.lastWriteDate", "a date", other)),
                };
            }
            "opTime" => {
                // The opTime is opaque to SDAM: kept when it has the usual shape.
                if let RawBsonRef::Document(op) = value {
                    let ts = op.get("ts").map_err(bson_err)?.and_then(RawBsonRef::as_timestamp);
                    let t =
                        op.get("t").map_err(bson_err)?.and_then(|t| t.as_i64().or(t.as_i32().map(i64::from)));
                    sd.op_time = ts.map(|ts| OpTime { ts, t: t.unwrap_or(-1) });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parses a `topologyVersion` document (`{processId: ObjectId, counter: int64}`).
pub fn parse_topology_version(doc: &RawDocument) -> Result<TopologyVersion, HelloError> {
    let mut process_id = None;
    let mut counter = None;
    for element in doc {
        let (key, value) = element.map_err(bson_err)?;
        match key.as_str() {
            "processId" => process_id = as_oid("topologyVersion.processId", value)?,
            "counter" => counter = as_i64("topologyVersion.counter", value)?,
            _ => {}
        }
    }
    match (process_id, counter) {
        (Some(process_id), Some(counter)) => Ok(TopologyVersion { process_id, counter }),
        _ => Err(HelloError::WrongType {
            field: "topologyVersion",
            expected: "a document with processId and counter",
            found: "an incomplete document".into(),
        }),
    }
}

fn parse_compression(value: RawBsonRef<'_>) -> Result<Vec<String>, HelloError> {
    let arr = match value {
        RawBsonRef::Array(a) => a,
        RawBsonRef::Null | RawBsonRef::Undefined => return Ok(Vec::new()),
        other => return Err(wrong("compression", "an array of strings", other)),
    };
    let mut out = Vec::new();
    for item in arr {
        let item = item.map_err(bson_err)?;
        if out.len() >= 16 {
            return Err(HelloError::TooMany { field: "compression", count: out.len() + 1, limit: 16 });
        }
        let s =
            as_str("compression", item)?.ok_or_else(|| wrong("compression", "an array of strings", item))?;
        out.push(s.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, rawdoc};

    fn parse(reply: &bson::RawDocumentBuf) -> Result<ServerDescription, HelloError> {
        ServerDescription::from_hello(ServerAddress::parse("a").unwrap(), reply, crate::test_instant())
    }

    #[test]
    fn server_types() {
        let cases = [
            (rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs"}, ServerType::RSPrimary),
            (rawdoc! {"ok": 1, "ismaster": true, "setName": "rs"}, ServerType::RSPrimary),
            (rawdoc! {"ok": 1, "secondary": true, "setName": "rs"}, ServerType::RSSecondary),
            (rawdoc! {"ok": 1, "arbiterOnly": true, "setName": "rs"}, ServerType::RSArbiter),
            (rawdoc! {"ok": 1, "hidden": true, "secondary": true, "setName": "rs"}, ServerType::RSOther),
            (rawdoc! {"ok": 1, "setName": "rs"}, ServerType::RSOther),
            (rawdoc! {"ok": 1, "isreplicaset": true}, ServerType::RSGhost),
            (rawdoc! {"ok": 1, "msg": "isdbgrid"}, ServerType::Mongos),
            (rawdoc! {"ok": 1, "isWritablePrimary": true}, ServerType::Standalone),
            (rawdoc! {"ok": 0, "isWritablePrimary": true, "setName": "rs"}, ServerType::Unknown),
            (rawdoc! {"isWritablePrimary": true}, ServerType::Unknown),
        ];
        for (reply, expected) in cases {
            assert_eq!(parse(&reply).unwrap().server_type, expected, "{reply:?}");
        }
    }

    #[test]
    fn fields_are_normalized() {
        let sd = parse(&rawdoc! {
            "ok": 1.0, "isWritablePrimary": true, "setName": "rs", "setVersion": 3_i64,
            "hosts": ["B:27017", "a", "a:27017"], "me": "A:27017", "primary": "a",
            "tags": {"dc": "ny"}, "logicalSessionTimeoutMinutes": 30,
            "lastWrite": {"lastWriteDate": bson::DateTime::from_millis(5)},
            "topologyVersion": {"processId": bson::oid::ObjectId::from_bytes([1; 12]), "counter": 2_i64},
        })
        .unwrap();
        assert_eq!(sd.hosts.iter().map(ToString::to_string).collect::<Vec<_>>(), ["a:27017", "b:27017"]);
        assert_eq!(sd.me.unwrap().to_string(), "a:27017");
        assert_eq!(sd.set_version, Some(3));
        assert_eq!(sd.tags.get("dc"), Some("ny"));
        assert_eq!(sd.logical_session_timeout_minutes, Some(30));
        assert_eq!(sd.last_write_date, Some(bson::DateTime::from_millis(5)));
        assert_eq!(sd.topology_version.unwrap().counter, 2);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let cases = [
            (rawdoc! {"ok": 1, "hosts": "a:27017"}, "hosts"),
            (rawdoc! {"ok": 1, "hosts": [1]}, "hosts"),
            (rawdoc! {"ok": 1, "setName": 5}, "setName"),
            (rawdoc! {"ok": 1, "maxWireVersion": "x"}, "maxWireVersion"),
            (rawdoc! {"ok": 1, "maxWireVersion": 1.5}, "maxWireVersion"),
            (rawdoc! {"ok": 1, "maxWireVersion": 5_000_000_000_i64}, "maxWireVersion"),
            (rawdoc! {"ok": 1, "electionId": "abc"}, "electionId"),
            (rawdoc! {"ok": 1, "tags": {"dc": 1}}, "tags"),
            (rawdoc! {"ok": 1, "me": "a:0"}, "me"),
            (rawdoc! {"ok": 1, "topologyVersion": {"counter": 1}}, "topologyVersion"),
            (rawdoc! {"ok": "yes"}, "ok"),
        ];
        for (reply, field) in cases {
            let err = parse(&reply).unwrap_err();
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn hostile_hosts_list_is_bounded() {
        let hosts: Vec<String> = (0..10_000).map(|i| format!("h{i}:27017")).collect();
        let reply = bson::RawDocumentBuf::try_from(&doc! {"ok": 1, "setName": "rs", "hosts": hosts}).unwrap();
        let err = parse(&reply).unwrap_err();
        assert!(matches!(err, HelloError::TooMany { field: "hosts", .. }), "{err}");
    }

    #[test]
    fn huge_numbers_do_not_panic() {
        let sd =
            parse(&rawdoc! {"ok": 1, "setName": "rs", "setVersion": i64::MAX, "secondary": true}).unwrap();
        assert_eq!(sd.set_version, Some(i64::MAX));
    }

    #[test]
    fn ok_zero_is_unknown_with_errmsg() {
        let sd = parse(&rawdoc! {
            "ok": 0, "errmsg": "node is recovering",
            "topologyVersion": {"processId": bson::oid::ObjectId::from_bytes([1; 12]), "counter": 2_i64},
        })
        .unwrap();
        assert_eq!(sd.server_type, ServerType::Unknown);
        assert!(sd.error.as_deref().unwrap().contains("node is recovering"));
        assert!(sd.topology_version.is_none());
    }
}
