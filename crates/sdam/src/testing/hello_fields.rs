//! Valid BSON documents made of hello field names with values of any type, from bytes: the
//! fuzzer gets past BSON validation straight into the hello parser's type checks.

use bson::oid::ObjectId;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, RawDocumentBuf, Timestamp};

use super::bytes::{Codec, Reader};

/// The field names a hello reply may carry (and one it ignores).
pub const HELLO_FIELDS: [&str; 32] = [
    "ok",
    "isWritablePrimary",
    "ismaster",
    "secondary",
    "arbiterOnly",
    "hidden",
    "isreplicaset",
    "msg",
    "errmsg",
    "helloOk",
    "iscryptd",
    "setName",
    "setVersion",
    "electionId",
    "serviceId",
    "primary",
    "me",
    "hosts",
    "passives",
    "arbiters",
    "minWireVersion",
    "maxWireVersion",
    "logicalSessionTimeoutMinutes",
    "maxBsonObjectSize",
    "maxMessageSizeBytes",
    "maxWriteBatchSize",
    "connectionId",
    "tags",
    "lastWrite",
    "topologyVersion",
    "compression",
    "unknownField",
];

/// Field names of the documents nested in a hello reply.
pub const NESTED_FIELDS: [&str; 8] =
    ["processId", "counter", "lastWriteDate", "opTime", "ts", "t", "dc", "rack"];

/// Strings that mean something to the parser.
const STRINGS: [&str; 10] =
    ["a:27017", "b", "[::1]:27017", "/tmp/mongodb-27017.sock", "isdbgrid", "rs", "", "a:99999", "zlib", "h:"];

/// A document of up to 24 fields named from [`HELLO_FIELDS`] with values of any BSON type.
pub fn hello_fields(r: &mut Reader<'_>) -> RawDocumentBuf {
    let mut d = Document::new();
    for _ in 0..r.u8() % 25 {
        let key = HELLO_FIELDS[usize::from(r.u8()) % HELLO_FIELDS.len()];
        d.insert(key, value(r, 2));
    }
    RawDocumentBuf::try_from(&d).unwrap_or_else(|_| RawDocumentBuf::new())
}

fn value(r: &mut Reader<'_>, depth: u8) -> Bson {
    match r.u8() % 15 {
        0 => Bson::Double(f64::from_bits(u64::decode(r))),
        1 => Bson::Double(f64::from(r.u8()) - 1.0),
        2 => Bson::String(STRINGS[usize::from(r.u8()) % STRINGS.len()].to_owned()),
        3 => {
            let len = usize::from(r.u8() % 32);
            Bson::String(String::from_utf8_lossy(r.bytes(len)).into_owned())
        }
        4 if depth > 0 => {
            let mut d = Document::new();
            for _ in 0..r.u8() % 5 {
                let key = NESTED_FIELDS[usize::from(r.u8()) % NESTED_FIELDS.len()];
                d.insert(key, value(r, depth - 1));
            }
            Bson::Document(d)
        }
        5 if depth > 0 => Bson::Array((0..r.u8() % 6).map(|_| value(r, depth - 1)).collect()),
        6 => Bson::Boolean(bool::decode(r)),
        7 => Bson::Null,
        8 => Bson::Int32(i32::from_le_bytes([r.u8(), r.u8(), r.u8(), r.u8()])),
        9 => Bson::Int64(u64::decode(r) as i64),
        10 => {
            let mut b = [0u8; 12];
            b.iter_mut().for_each(|x| *x = r.u8());
            Bson::ObjectId(ObjectId::from_bytes(b))
        }
        11 => Bson::DateTime(bson::DateTime::from_millis(u64::decode(r) as i64)),
        12 => Bson::Timestamp(Timestamp { time: u32::from(u16::decode(r)), increment: u32::from(r.u8()) }),
        13 => {
            let len = usize::from(r.u8() % 16);
            Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: r.bytes(len).to_vec() })
        }
        _ => Bson::Int32(i32::from(r.u8()) - 1),
    }
}
