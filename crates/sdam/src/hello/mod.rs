//! Parsing `hello` and legacy hello replies into server descriptions
//! (server-discovery-and-monitoring.md, "Parsing a hello or legacy hello response").
//!
//! Parsing reads the reply's bytes once, straight from the wire, and never panics: a field
//! of the wrong type is an error that names the field, and the topology turns that error
//! into an Unknown server description.
//!
//! Two pieces of performance machinery live in their own modules, each stating the general
//! path it must equal and the property test that checks it: the field lookup
//! (`field_lookup`) and the per-server reply cache (`reply_cache`).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bson::raw::RawDocument;
use smallvec::SmallVec;

use crate::bson_scan::{Doc, Value};

use crate::address::{AddressError, ServerAddress};
use crate::server_description::{AddressList, OpTime, ServerDescription, ServerType, Tags, TopologyVersion};

mod field_lookup;
mod reply_cache;

use field_lookup::Field;
use reply_cache::Memo;
pub(crate) use reply_cache::ReplyCache;

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
        /// How many entries the field lists in the reply (all of them, not where parsing
        /// stopped). For `hosts`, `passives` and `arbiters`, whose entries count together
        /// against [`MAX_REPORTED_MEMBERS`], the entries of the fields before it count too.
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
            Self::TooMany { field: field @ ("hosts" | "passives" | "arbiters"), count, limit } => {
                write!(
                    f,
                    "malformed hello reply: {count} members listed up to and including field {field:?}; \
                     hosts, passives and arbiters may list at most {limit} together"
                )
            }
            Self::TooMany { field, count, limit } => {
                write!(f, "malformed hello reply: field {field:?} lists {count} entries, at most {limit} are accepted")
            }
        }
    }
}

impl std::error::Error for HelloError {}

#[cold]
#[inline(never)]
fn wrong(field: &'static str, expected: &'static str, v: Value<'_>) -> HelloError {
    HelloError::WrongType { field, expected, found: format!("{:?}", v.element_type()) }
}

#[cold]
#[inline(never)]
fn bson_err(e: impl fmt::Display) -> HelloError {
    HelloError::InvalidBson(e.to_string())
}

/// A boolean field; numbers are accepted as truthy/falsy (`ok: 1`), as servers and the spec
/// tests send them.
fn as_bool(field: &'static str, v: Value<'_>) -> Result<Option<bool>, HelloError> {
    Ok(Some(match v {
        Value::Boolean(b) => b,
        Value::Int32(i) => i != 0,
        Value::Int64(i) => i != 0,
        Value::Double(d) => d != 0.0,
        Value::Null | Value::Undefined => return Ok(None),
        other => return Err(wrong(field, "a boolean", other)),
    }))
}

/// An integer field; doubles with an integral value are accepted.
fn as_i64(field: &'static str, v: Value<'_>) -> Result<Option<i64>, HelloError> {
    Ok(Some(match v {
        Value::Int32(i) => i64::from(i),
        Value::Int64(i) => i,
        Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e18 => d as i64,
        Value::Double(d) => return Err(HelloError::OutOfRange { field, value: d.to_string() }),
        Value::Null | Value::Undefined => return Ok(None),
        other => return Err(wrong(field, "an integer", other)),
    }))
}

fn as_i32(field: &'static str, v: Value<'_>) -> Result<Option<i32>, HelloError> {
    match as_i64(field, v)? {
        Some(n) => {
            i32::try_from(n).map(Some).map_err(|_| HelloError::OutOfRange { field, value: n.to_string() })
        }
        None => Ok(None),
    }
}

/// A string field as text (checked to be UTF-8).
fn as_str<'a>(field: &'static str, v: Value<'a>) -> Result<Option<&'a str>, HelloError> {
    as_string_bytes(field, v)?.map(|b| utf8(field, b)).transpose()
}

/// A string field's bytes, not yet checked to be UTF-8: for a value first compared with
/// text already checked (the server's previous `setName`, a remembered `me`), which needs
/// no check when it is equal. Whatever is kept as text goes through [`utf8`].
fn as_string_bytes<'a>(field: &'static str, v: Value<'a>) -> Result<Option<&'a [u8]>, HelloError> {
    match v {
        Value::String(s) => Ok(Some(s)),
        Value::Null | Value::Undefined => Ok(None),
        other => Err(wrong(field, "a string", other)),
    }
}

/// The bytes of string field `field` as text.
#[inline]
fn utf8<'a>(field: &'static str, bytes: &'a [u8]) -> Result<&'a str, HelloError> {
    std::str::from_utf8(bytes).map_err(|_| not_utf8(field))
}

#[cold]
#[inline(never)]
fn not_utf8(field: &'static str) -> HelloError {
    HelloError::InvalidBson(format!("the string of field {field:?} is not valid UTF-8"))
}

fn as_oid(field: &'static str, v: Value<'_>) -> Result<Option<bson::oid::ObjectId>, HelloError> {
    match v {
        Value::ObjectId(o) => Ok(Some(o)),
        Value::Null | Value::Undefined => Ok(None),
        other => Err(wrong(field, "an ObjectId", other)),
    }
}

fn as_doc<'a>(field: &'static str, v: Value<'a>) -> Result<Option<Doc<'a>>, HelloError> {
    match v {
        Value::Document(d) => Ok(Some(d)),
        Value::Null | Value::Undefined => Ok(None),
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

/// Addresses the server reported last time: a reply that names them again reuses them
/// instead of allocating new ones (addresses share their host text).
struct Known<'p> {
    lists: [&'p [ServerAddress]; 3],
    shared: [Option<&'p AddressList>; 3],
    singles: [Option<&'p ServerAddress>; 3],
}

impl<'p> Known<'p> {
    fn new(address: &'p ServerAddress, previous: Option<&'p ServerDescription>) -> Self {
        match previous {
            Some(p) => Self {
                lists: [&p.hosts, &p.passives, &p.arbiters],
                shared: [Some(&p.hosts), Some(&p.passives), Some(&p.arbiters)],
                singles: [Some(address), p.me.as_ref(), p.primary.as_ref()],
            },
            None => Self {
                lists: [&[], &[], &[]],
                shared: [None, None, None],
                singles: [Some(address), None, None],
            },
        }
    }

    /// The address `s` names if it is the `index`th of known list `list` (the common case: a
    /// member list repeated in the same order).
    fn at(&self, list: usize, index: usize, parts: Option<(&str, u16)>) -> Option<&'p ServerAddress> {
        let (host, port) = parts?;
        self.lists.get(list)?.get(index).filter(|a| a.is_parts(host, port))
    }

    /// The address `s` names (`field` is for errors; `parts` is `normalized_parts(s)`).
    fn address_of(
        &self,
        field: &'static str,
        s: &str,
        parts: Option<(&str, u16)>,
    ) -> Result<ServerAddress, HelloError> {
        // The server itself and its previous `me` and `primary` first: `me` and `primary`
        // usually repeat one of those.
        let known =
            parts.and_then(|(host, port)| {
                self.singles.iter().flatten().find(|a| a.is_parts(host, port)).copied().or_else(|| {
                    self.lists.iter().find_map(|list| ServerAddress::find_parts(host, port, list))
                })
            });
        match known {
            Some(a) => Ok(a.clone()),
            None => as_address(field, s),
        }
    }

    /// The address `s` names (`field` is for errors).
    fn address(&self, field: &'static str, s: &str) -> Result<ServerAddress, HelloError> {
        self.address_of(field, s, ServerAddress::normalized_parts(s))
    }
}

/// Parses an array of address strings into `out` (sorted and deduplicated), counting
/// against `budget` so a hostile reply cannot make the work unbounded. A list that repeats the
/// server's previous one item for item shares it.
fn address_list(
    field: &'static str,
    list_index: usize,
    v: Value<'_>,
    out: &mut AddressList,
    budget: &mut usize,
    known: &Known<'_>,
    memo: Option<&mut Memo<AddressList>>,
) -> Result<(), HelloError> {
    let arr = match v {
        Value::Array(a) => a,
        Value::Null | Value::Undefined => {
            *out = AddressList::default();
            return Ok(());
        }
        other => return Err(wrong(field, "an array of strings", other)),
    };
    let raw = arr.element_bytes();
    if let Some(&(ref list, count)) = memo.as_deref().and_then(|m| m.get(raw)) {
        // Within the budget, the same bytes parse to the same list; past it, the full
        // parse below reports the error.
        if count <= *budget {
            *budget -= count;
            out.clone_from(list);
            return Ok(());
        }
    }
    let before = *budget;
    let previous = known.lists.get(list_index).copied().unwrap_or(&[]);
    let mut list: SmallVec<[ServerAddress; 8]> = SmallVec::new();
    // While every item is the same-position item of the previous list (which is sorted and
    // free of duplicates), nothing is copied: `same` counts them.
    let mut same = 0;
    let mut as_known = true;
    for item in arr.iter() {
        let (_, item) = item.map_err(bson_err)?;
        if *budget == 0 {
            // Report how many the reply lists (the members before this field, and all of
            // this field's entries), not where the parser stopped.
            let count = MAX_REPORTED_MEMBERS - before + entries(arr);
            return Err(HelloError::TooMany { field, count, limit: MAX_REPORTED_MEMBERS });
        }
        *budget -= 1;
        let s = as_str(field, item)?.ok_or_else(|| wrong(field, "an array of strings", item))?;
        let parts = ServerAddress::normalized_parts(s);
        if as_known && known.at(list_index, same, parts).is_some() {
            same += 1;
            continue;
        }
        if as_known {
            as_known = false;
            list.extend(previous.iter().take(same).cloned());
        }
        list.push(known.address_of(field, s, parts)?);
    }
    let shared = if as_known && same == previous.len() {
        known.shared.get(list_index).copied().flatten()
    } else {
        None
    };
    match shared {
        Some(shared) => out.clone_from(shared),
        None => {
            if as_known {
                list.extend(previous.iter().take(same).cloned());
            } else {
                list.sort_unstable();
                list.dedup();
            }
            *out = AddressList::from_sorted(list.into_vec());
        }
    }
    if let Some(memo) = memo {
        memo.put(raw, out, before - *budget);
    }
    Ok(())
}

/// The address a `me` or `primary` string names, remembered in `memo`.
fn single_address(
    field: &'static str,
    v: Value<'_>,
    known: &Known<'_>,
    memo: Option<&mut Memo<ServerAddress>>,
) -> Result<Option<ServerAddress>, HelloError> {
    let Some(bytes) = as_string_bytes(field, v)? else { return Ok(None) };
    // The memo's keys are bytes that were valid text when they were put.
    if let Some((a, _)) = memo.as_deref().and_then(|m| m.get(bytes)) {
        return Ok(Some(a.clone()));
    }
    let a = known.address(field, utf8(field, bytes)?)?;
    if let Some(memo) = memo {
        memo.put(bytes, &a, 0);
    }
    Ok(Some(a))
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
    /// Compared with `isdbgrid` by its bytes.
    msg: Option<&'a [u8]>,
    /// Checked to be UTF-8 when it is used (a reply with `ok: 0`).
    errmsg: Option<&'a [u8]>,
}

impl TypeFlags<'_> {
    /// The server type table (server-discovery-and-monitoring.md, "type").
    fn server_type(&self, set_name: Option<&[u8]>) -> ServerType {
        if !self.ok {
            return ServerType::Unknown;
        }
        // "isWritablePrimary" first, falling back to legacy "ismaster" ("Parsing a hello ...").
        let primary = self.writable_primary.or(self.legacy_primary).unwrap_or(false);
        if self.is_replica_set {
            ServerType::RSGhost
        } else if self.msg == Some(b"isdbgrid") {
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
        Self::from_hello_after(address, reply, now, None, None)
    }

    /// [`from_hello`](Self::from_hello), reusing what `previous` (the server's current
    /// description) already holds when the reply repeats it (member addresses, tags), and the
    /// values `cache` remembers from the server's earlier replies (then updating it).
    pub(crate) fn from_hello_after(
        address: ServerAddress,
        reply: &RawDocument,
        now: Instant,
        previous: Option<&Self>,
        mut cache: Option<&mut ReplyCache>,
    ) -> Result<Self, HelloError> {
        let doc = Doc::new(reply.as_bytes()).map_err(bson_err)?;
        // The previous description's address (the same value): its host text is then shared,
        // and comparisons with the topology's copies are pointer checks.
        let address = match previous {
            Some(p) if p.address == address => p.address.clone(),
            _ => address,
        };
        let mut sd = Self::unknown(address.clone());
        sd.last_update_time = Some(now);
        let known = Known::new(&address, previous);
        let mut flags = TypeFlags::default();
        let mut budget = MAX_REPORTED_MEMBERS;
        let mut set_name = None;
        let mut tags: SmallVec<[(&str, &str); 8]> = SmallVec::new();
        // The last `tags` document: its value if the cache knew its bytes, else its bytes.
        let mut cached_tags: Option<Tags> = None;
        let mut tags_raw: Option<&[u8]> = None;
        let mut hosts = AddressList::default();
        let mut passives = AddressList::default();
        let mut arbiters = AddressList::default();
        let mut me = None;
        let mut primary = None;

        for element in doc.iter() {
            let (key, value) = element.map_err(bson_err)?;
            match Field::of(key) {
                Some(Field::Ok) => flags.ok = as_bool("ok", value)?.unwrap_or(false),
                Some(Field::IsWritablePrimary) => {
                    flags.writable_primary = as_bool("isWritablePrimary", value)?;
                }
                Some(Field::Ismaster) => flags.legacy_primary = as_bool("ismaster", value)?,
                Some(Field::Secondary) => flags.secondary = as_bool("secondary", value)?.unwrap_or(false),
                Some(Field::ArbiterOnly) => {
                    flags.arbiter_only = as_bool("arbiterOnly", value)?.unwrap_or(false);
                }
                Some(Field::Hidden) => flags.hidden = as_bool("hidden", value)?.unwrap_or(false),
                Some(Field::Isreplicaset) => {
                    flags.is_replica_set = as_bool("isreplicaset", value)?.unwrap_or(false);
                }
                Some(Field::Msg) => flags.msg = as_string_bytes("msg", value)?,
                Some(Field::Errmsg) => flags.errmsg = as_string_bytes("errmsg", value)?,
                Some(Field::HelloOk) => sd.hello_ok = as_bool("helloOk", value)?.unwrap_or(false),
                Some(Field::Iscryptd) => sd.iscryptd = as_bool("iscryptd", value)?.unwrap_or(false),
                Some(Field::SetName) => set_name = as_string_bytes("setName", value)?,
                Some(Field::SetVersion) => sd.set_version = as_i64("setVersion", value)?,
                Some(Field::ElectionId) => sd.election_id = as_oid("electionId", value)?,
                Some(Field::ServiceId) => sd.service_id = as_oid("serviceId", value)?,
                Some(Field::Primary) => {
                    let memo = cache.as_deref_mut().map(|c| &mut c.primary);
                    primary = single_address("primary", value, &known, memo)?;
                }
                Some(Field::Me) => {
                    me = single_address("me", value, &known, cache.as_deref_mut().map(|c| &mut c.me))?;
                }
                Some(field @ (Field::Hosts | Field::Passives | Field::Arbiters)) => {
                    let (index, out) = match field {
                        Field::Hosts => (0, &mut hosts),
                        Field::Passives => (1, &mut passives),
                        _ => (2, &mut arbiters),
                    };
                    let memo = cache.as_deref_mut().and_then(|c| c.lists.get_mut(index));
                    address_list(field.name(), index, value, out, &mut budget, &known, memo)?;
                }
                Some(Field::MinWireVersion) => {
                    sd.min_wire_version = as_i32("minWireVersion", value)?.unwrap_or(0);
                }
                Some(Field::MaxWireVersion) => {
                    sd.max_wire_version = as_i32("maxWireVersion", value)?.unwrap_or(0);
                }
                Some(Field::LogicalSessionTimeoutMinutes) => {
                    sd.logical_session_timeout_minutes = as_i64("logicalSessionTimeoutMinutes", value)?;
                }
                Some(Field::MaxBsonObjectSize) => {
                    sd.max_bson_object_size = as_i64("maxBsonObjectSize", value)?;
                }
                Some(Field::MaxMessageSizeBytes) => {
                    sd.max_message_size_bytes = as_i64("maxMessageSizeBytes", value)?;
                }
                Some(Field::MaxWriteBatchSize) => {
                    sd.max_write_batch_size = as_i64("maxWriteBatchSize", value)?;
                }
                Some(Field::ConnectionId) => sd.connection_id = as_i64("connectionId", value)?,
                Some(Field::Tags) => {
                    // A repeated `tags` field replaces the one before, as other fields do.
                    tags.clear();
                    (cached_tags, tags_raw) = (None, None);
                    if let Some(doc) = as_doc("tags", value)? {
                        let raw = doc.element_bytes();
                        match cache.as_deref().and_then(|c| c.tags.get(raw)) {
                            Some((t, _)) => cached_tags = Some(t.clone()),
                            None => {
                                parse_tags(doc, &mut tags)?;
                                tags_raw = Some(raw);
                            }
                        }
                    }
                }
                Some(Field::LastWrite) => {
                    if let Some(doc) = as_doc("lastWrite", value)? {
                        parse_last_write(doc, &mut sd)?;
                    }
                }
                Some(Field::TopologyVersion) => {
                    sd.topology_version =
                        as_doc("topologyVersion", value)?.map(topology_version).transpose()?;
                }
                Some(Field::Compression) => sd.compression = parse_compression(value)?,
                None => {}
            }
        }
        sd.hosts = hosts;
        sd.passives = passives;
        sd.arbiters = arbiters;
        sd.me = me;
        sd.primary = primary;

        sd.server_type = flags.server_type(set_name);
        sd.set_name = match (previous, set_name) {
            // The previous set name is text already: an equal one needs no UTF-8 check.
            (Some(p), Some(name)) if p.set_name.as_deref().map(str::as_bytes) == Some(name) => {
                p.set_name.clone()
            }
            (_, Some(name)) => Some(Arc::from(utf8("setName", name)?)),
            (_, None) => None,
        };
        sd.tags = match cached_tags {
            Some(t) => t,
            None => {
                let t = match previous {
                    Some(p) if Tags::same_as(&p.tags, &tags) => p.tags.clone(),
                    _ => Tags::from_pairs(&tags),
                };
                if let (Some(raw), Some(c)) = (tags_raw, cache) {
                    c.tags.put(raw, &t, 0);
                }
                t
            }
        };
        if !flags.ok {
            // "ok: 1" not in the reply: the server is Unknown ("type" table), exactly as
            // after a failed check, with the server's errmsg as the reason.
            let msg = flags.errmsg.map(|m| utf8("errmsg", m)).transpose()?;
            let msg = msg.unwrap_or("hello command failed (ok: 0)");
            let mut unknown =
                Self::unknown_with_error(sd.address, format!("hello failed: {}", truncate(msg)));
            unknown.last_update_time = Some(now);
            return Ok(unknown);
        }
        Ok(sd)
    }
}

/// How many well-formed entries a document or array holds (for limit errors: how many the
/// reply listed). Bounded by the reply's size, which the wire layer bounds.
#[cold]
#[inline(never)]
fn entries(doc: Doc<'_>) -> usize {
    doc.iter().take_while(Result::is_ok).count()
}

fn parse_tags<'a>(doc: Doc<'a>, out: &mut SmallVec<[(&'a str, &'a str); 8]>) -> Result<(), HelloError> {
    for element in doc.iter() {
        let (key, value) = element.map_err(bson_err)?;
        if out.len() >= MAX_TAGS {
            return Err(HelloError::TooMany { field: "tags", count: entries(doc), limit: MAX_TAGS });
        }
        let key = std::str::from_utf8(key).map_err(|_| bson_err("a tag name is not valid UTF-8"))?;
        let v = as_str("tags", value)?.ok_or_else(|| wrong("tags", "a document of strings", value))?;
        out.push((key, v));
    }
    Ok(())
}

fn parse_last_write(doc: Doc<'_>, sd: &mut ServerDescription) -> Result<(), HelloError> {
    for element in doc.iter() {
        let (key, value) = element.map_err(bson_err)?;
        match key {
            b"lastWriteDate" => {
                sd.last_write_date = match value {
                    Value::DateTime(ms) => Some(bson::DateTime::from_millis(ms)),
                    // The spec tests write dates as plain numbers of milliseconds.
                    Value::Int64(ms) => Some(bson::DateTime::from_millis(ms)),
                    Value::Int32(ms) => Some(bson::DateTime::from_millis(i64::from(ms))),
                    Value::Null | Value::Undefined => None,
                    other => return Err(wrong("lastWrite.lastWriteDate", "a date", other)),
                };
            }
            b"opTime" => {
                // The opTime is opaque to SDAM: kept when it has the usual shape.
                if let Value::Document(op) = value {
                    let (mut ts, mut t) = (None, None);
                    for element in op.iter() {
                        match element.map_err(bson_err)? {
                            (b"ts", Value::Timestamp { time, increment }) => {
                                ts = Some(bson::Timestamp { time, increment });
                            }
                            (b"t", Value::Int64(v)) => t = Some(v),
                            (b"t", Value::Int32(v)) => t = Some(i64::from(v)),
                            _ => {}
                        }
                    }
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
    topology_version(Doc::new(doc.as_bytes()).map_err(bson_err)?)
}

fn topology_version(doc: Doc<'_>) -> Result<TopologyVersion, HelloError> {
    let mut process_id = None;
    let mut counter = None;
    for element in doc.iter() {
        let (key, value) = element.map_err(bson_err)?;
        match key {
            b"processId" => process_id = as_oid("topologyVersion.processId", value)?,
            b"counter" => counter = as_i64("topologyVersion.counter", value)?,
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

fn parse_compression(value: Value<'_>) -> Result<Vec<String>, HelloError> {
    let arr = match value {
        Value::Array(a) => a,
        Value::Null | Value::Undefined => return Ok(Vec::new()),
        other => return Err(wrong("compression", "an array of strings", other)),
    };
    let mut out = Vec::new();
    for item in arr.iter() {
        let (_, item) = item.map_err(bson_err)?;
        if out.len() >= 16 {
            return Err(HelloError::TooMany { field: "compression", count: entries(arr), limit: 16 });
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

    /// A reply after a previous description: a repeated member list and setName are shared,
    /// a changed one (shorter, longer, reordered, different) is built anew and normalized as
    /// without a previous description.
    #[test]
    fn repeated_lists_are_shared_and_changed_ones_normalized() {
        let address = ServerAddress::parse("a:27017").unwrap();
        let now = crate::test_instant();
        let first = rawdoc! {"ok": 1, "secondary": true, "setName": "rs", "hosts": ["a:27017", "b:27017", "c:27017"], "arbiters": ["z:1"]};
        let previous = ServerDescription::from_hello(address.clone(), &first, now).unwrap();
        let again =
            ServerDescription::from_hello_after(address.clone(), &first, now, Some(&previous), None).unwrap();
        assert!(again.hosts.shares(&previous.hosts));
        assert!(again.arbiters.shares(&previous.arbiters));
        assert!(again.passives.is_empty());
        assert!(Arc::ptr_eq(again.set_name.as_ref().unwrap(), previous.set_name.as_ref().unwrap()));
        let names = |sd: &ServerDescription| sd.hosts.iter().map(ToString::to_string).collect::<Vec<_>>();
        for hosts in [
            vec!["a:27017", "b:27017"],
            vec!["a:27017", "b:27017", "c:27017", "d:27017"],
            vec!["c:27017", "A:27017", "b:27017", "a"],
            vec!["a:27017", "x:27017", "b:27017"],
            vec![],
        ] {
            let reply = bson::RawDocumentBuf::try_from(
                &doc! {"ok": 1, "secondary": true, "setName": "rs2", "hosts": hosts.clone()},
            )
            .unwrap();
            let after =
                ServerDescription::from_hello_after(address.clone(), &reply, now, Some(&previous), None)
                    .unwrap();
            let alone = ServerDescription::from_hello(address.clone(), &reply, now).unwrap();
            assert_eq!(names(&after), names(&alone), "{hosts:?}");
            assert_eq!(after, alone, "{hosts:?}");
            assert!(!after.hosts.shares(&previous.hosts) || hosts.is_empty(), "{hosts:?}");
            assert_eq!(after.set_name.as_deref(), Some("rs2"));
        }
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

    /// A string the parser takes as text must be UTF-8, on every path (first parse, cached
    /// parse, a `setName` or `me` that differs from the remembered one); a string in a field
    /// SDAM does not read is not checked, as with `bson`'s raw documents.
    #[test]
    fn strings_taken_as_text_must_be_utf8() {
        // `\u{e9}` is two bytes in UTF-8: patched to 0xFF 0xFE, they are not UTF-8.
        fn invalid(doc: &bson::RawDocumentBuf) -> bson::RawDocumentBuf {
            let mut bytes = doc.as_bytes().to_vec();
            let at = bytes.windows(2).position(|w| w == "\u{e9}".as_bytes()).unwrap();
            bytes[at..at + 2].copy_from_slice(&[0xFF, 0xFE]);
            bson::RawDocumentBuf::from_bytes(bytes).unwrap()
        }
        let address = ServerAddress::parse("a:27017").unwrap();
        let now = crate::test_instant();
        let good =
            rawdoc! {"ok": 1, "secondary": true, "setName": "rs", "me": "a:27017", "hosts": ["a:27017"]};
        let previous = ServerDescription::from_hello(address.clone(), &good, now).unwrap();
        let mut cache = ReplyCache::default();
        ServerDescription::from_hello_after(address.clone(), &good, now, Some(&previous), Some(&mut cache))
            .unwrap();
        for (field, reply) in [
            ("setName", rawdoc! {"ok": 1, "secondary": true, "setName": "r\u{e9}", "me": "a:27017"}),
            ("me", rawdoc! {"ok": 1, "secondary": true, "setName": "rs", "me": "\u{e9}:27017"}),
            ("primary", rawdoc! {"ok": 1, "secondary": true, "setName": "rs", "primary": "\u{e9}:1"}),
            ("hosts", rawdoc! {"ok": 1, "secondary": true, "setName": "rs", "hosts": ["\u{e9}:1"]}),
            ("tags", rawdoc! {"ok": 1, "secondary": true, "setName": "rs", "tags": {"dc": "\u{e9}"}}),
            ("errmsg", rawdoc! {"ok": 0, "errmsg": "\u{e9}"}),
        ] {
            let reply = invalid(&reply);
            for cached in [false, true] {
                let (p, c) = if cached { (Some(&previous), Some(&mut cache)) } else { (None, None) };
                let e = ServerDescription::from_hello_after(address.clone(), &reply, now, p, c).unwrap_err();
                assert!(matches!(&e, HelloError::InvalidBson(m) if m.contains(field)), "{field}: {e}");
            }
        }
        // Not read as text (`x` is not a hello field, `msg` is compared by its bytes): not
        // checked.
        let ignored =
            invalid(&rawdoc! {"ok": 1, "secondary": true, "setName": "rs", "x": "\u{e9}", "msg": "\u{e9}"});
        assert_eq!(parse(&ignored).unwrap().server_type, ServerType::RSSecondary);
    }

    #[test]
    fn hostile_hosts_list_is_bounded() {
        let hosts: Vec<String> = (0..10_000).map(|i| format!("h{i}:27017")).collect();
        let reply = bson::RawDocumentBuf::try_from(&doc! {"ok": 1, "setName": "rs", "hosts": hosts}).unwrap();
        let err = parse(&reply).unwrap_err();
        assert!(matches!(err, HelloError::TooMany { field: "hosts", .. }), "{err}");
    }

    /// The limit error says how many entries the reply listed, not where the parser stopped
    /// (it used to say 1,025 for a reply of 10,000 hosts).
    #[test]
    fn limit_errors_report_how_many_the_reply_listed() {
        let names = |n: usize, p: &str| (0..n).map(|i| format!("{p}{i}:27017")).collect::<Vec<_>>();
        let reply = |d: bson::Document| bson::RawDocumentBuf::try_from(&d).unwrap();
        let err = parse(&reply(doc! {"ok": 1, "setName": "rs", "hosts": names(10_000, "h")})).unwrap_err();
        assert_eq!(err, HelloError::TooMany { field: "hosts", count: 10_000, limit: MAX_REPORTED_MEMBERS });
        assert!(err.to_string().contains("10000 members"), "{err}");
        // Members of the fields before count too: 600 passives + 500 hosts.
        let err = parse(&reply(
            doc! {"ok": 1, "setName": "rs", "passives": names(600, "p"), "hosts": names(500, "h")},
        ))
        .unwrap_err();
        assert_eq!(err, HelloError::TooMany { field: "hosts", count: 1_100, limit: MAX_REPORTED_MEMBERS });
        let mut tags = doc! {};
        for i in 0..300 {
            tags.insert(format!("t{i}"), "v");
        }
        let err =
            parse(&reply(doc! {"ok": 1, "setName": "rs", "secondary": true, "tags": tags})).unwrap_err();
        assert_eq!(err, HelloError::TooMany { field: "tags", count: 300, limit: MAX_TAGS });
        let err = parse(&reply(doc! {"ok": 1, "compression": names(20, "c")})).unwrap_err();
        assert_eq!(err, HelloError::TooMany { field: "compression", count: 20, limit: 16 });
    }

    /// A cached member list still counts against the reply's budget: past it, the reply is
    /// rejected exactly as without the cache.
    #[test]
    fn cached_lists_count_against_the_budget() {
        let names = |n: usize, p: &str| (0..n).map(|i| format!("{p}{i}:27017")).collect::<Vec<_>>();
        let first =
            bson::RawDocumentBuf::try_from(&doc! {"ok": 1, "setName": "rs", "hosts": names(600, "h")})
                .unwrap();
        let second = bson::RawDocumentBuf::try_from(
            &doc! {"ok": 1, "setName": "rs", "passives": names(500, "p"), "hosts": names(600, "h")},
        )
        .unwrap();
        let address = ServerAddress::parse("a").unwrap();
        let now = crate::test_instant();
        let mut cache = ReplyCache::default();
        let sd = ServerDescription::from_hello_after(address.clone(), &first, now, None, Some(&mut cache))
            .unwrap();
        assert_eq!(sd.hosts.len(), 600);
        let cached =
            ServerDescription::from_hello_after(address.clone(), &second, now, Some(&sd), Some(&mut cache));
        let alone = parse(&second);
        assert!(matches!(alone, Err(HelloError::TooMany { field: "hosts", .. })), "{alone:?}");
        assert_eq!(cached, alone);
        // The first reply again: the cached list, shared.
        let again =
            ServerDescription::from_hello_after(address, &first, now, Some(&sd), Some(&mut cache)).unwrap();
        assert!(again.hosts.shares(&sd.hosts));
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
