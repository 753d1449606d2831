//! Sequences of hello replies that repeat, change and duplicate the values the parser's
//! reply cache remembers (member lists, tags, `me`, `primary`), and the check that parsing
//! them with the cache gives exactly what parsing each one alone gives.

use std::time::Instant;

use bson::raw::{cstr, CStr, RawArrayBuf, RawDocument, RawDocumentBuf};

use super::bytes::Reader;
use crate::hello::ReplyCache;
use crate::{ServerAddress, ServerDescription};

/// Address strings: normalized, to be normalized, equal after normalization, invalid.
const ADDRESSES: [&str; 7] = ["a:27017", "b:27017", "A:27017", "a", "c:1", "[::1]:27017", "x:0"];

/// The keys the cache is about, and a few others.
const KEYS: [&CStr; 10] = [
    cstr!("hosts"),
    cstr!("passives"),
    cstr!("arbiters"),
    cstr!("tags"),
    cstr!("me"),
    cstr!("primary"),
    cstr!("setName"),
    cstr!("ok"),
    cstr!("secondary"),
    cstr!("isWritablePrimary"),
];

/// Up to 6 replies of up to 12 fields each, keys possibly repeated within a reply.
pub fn replies(r: &mut Reader<'_>) -> Vec<RawDocumentBuf> {
    let count = 1 + usize::from(r.u8() % 6);
    let mut out: Vec<RawDocumentBuf> = Vec::with_capacity(count);
    for _ in 0..count {
        // Often a copy of the reply before, with a field or two appended.
        let mut doc = match out.last() {
            Some(last) if r.u8().is_multiple_of(2) => last.clone(),
            _ => RawDocumentBuf::new(),
        };
        if doc.as_bytes().len() <= 5 {
            doc.append(cstr!("ok"), 1_i32);
        }
        for _ in 0..r.u8() % 13 {
            let key = KEYS[usize::from(r.u8()) % KEYS.len()];
            append(&mut doc, key, r);
        }
        out.push(doc);
    }
    out
}

fn address(r: &mut Reader<'_>) -> &'static str {
    ADDRESSES[usize::from(r.u8()) % ADDRESSES.len()]
}

fn append(doc: &mut RawDocumentBuf, key: &CStr, r: &mut Reader<'_>) {
    let choice = r.u8() % 8;
    match (key.as_str(), choice) {
        (_, 0) => doc.append(key, bson::RawBson::Null),
        (_, 1) => doc.append(key, 5_i32),
        ("hosts" | "passives" | "arbiters", _) => {
            let mut list = RawArrayBuf::new();
            for _ in 0..r.u8() % 6 {
                if r.u8().is_multiple_of(16) {
                    list.push(7_i32);
                } else {
                    list.push(address(r));
                }
            }
            doc.append(key, list);
        }
        ("tags", _) => {
            let mut tags = RawDocumentBuf::new();
            for _ in 0..r.u8() % 4 {
                let k = if r.u8().is_multiple_of(2) { cstr!("dc") } else { cstr!("rack") };
                match r.u8() % 5 {
                    0 => tags.append(k, 1_i32),
                    1 | 2 => tags.append(k, "ny"),
                    _ => tags.append(k, "sf"),
                }
            }
            doc.append(key, tags);
        }
        ("me" | "primary", _) => doc.append(key, address(r)),
        ("setName", _) => doc.append(key, if choice.is_multiple_of(2) { "rs" } else { "rs2" }),
        _ => doc.append(key, choice.is_multiple_of(2)),
    }
}

/// Parses `replies` in order as a monitor's replies are (the description before and the
/// reply cache carried from one to the next, all received at `now`) and checks each outcome against a parse of the
/// reply alone: the same description, or the same error.
pub fn check_cached_parse(replies: &[RawDocumentBuf], now: Instant) -> Result<(), String> {
    check_cached_docs(replies.iter().map(|d| &**d), now)
}

/// [`check_cached_parse`] for borrowed documents.
pub fn check_cached_docs<'a>(
    replies: impl IntoIterator<Item = &'a RawDocument>,
    now: Instant,
) -> Result<(), String> {
    let address = ServerAddress::parse("a:27017").map_err(|e| e.to_string())?;
    let mut cache = ReplyCache::default();
    let mut previous: Option<ServerDescription> = None;
    for (i, reply) in replies.into_iter().enumerate() {
        let cached = ServerDescription::from_hello_after(
            address.clone(),
            reply,
            now,
            previous.as_ref(),
            Some(&mut cache),
        );
        let alone = ServerDescription::from_hello(address.clone(), reply, now);
        // Debug shows every field, also those the spec's equality leaves out.
        if cached != alone || format!("{cached:?}") != format!("{alone:?}") {
            return Err(format!("reply {i} {reply:?}: with the cache {cached:?}, alone {alone:?}"));
        }
        if let Ok(sd) = cached {
            previous = Some(sd);
        }
    }
    Ok(())
}
