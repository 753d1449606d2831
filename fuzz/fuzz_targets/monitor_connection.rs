//! Arbitrary bytes, as a server's answer cut into arbitrary reads, through
//! `sdam_wire::MonitorConnection` (the state the adapters run their monitoring connections on).
//!
//! The first byte picks the request (bit 0: exhaustAllowed) and the size limit (bits 1-3);
//! each following byte is the length of the next read (1..=64), taken from the rest.
//!
//! Invariants checked:
//! - nothing panics;
//! - the receive buffer never holds more than the size limit plus one read;
//! - every reply returned answers the request or, in a stream, the reply before it, and only
//!   the last of a stream lacks moreToCome;
//! - an error is sticky: every later call returns the same one;
//! - once the final reply arrived, the next command gets the next request id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdam_wire::{MonitorConnection, OpMsg};

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let exhaust = control & 1 == 1;
    let limit = [26usize, 64, 256, 4096, 1 << 16, 48_000_000, 100, 30][usize::from((control >> 1) & 7)];
    let (cuts, stream) = rest.split_at(rest.len() / 4);
    let mut connection = MonitorConnection::new().with_max_message_size(limit);
    let hello = bson::rawdoc! { "hello": 1, "$db": "admin" };
    let request = connection.send(&hello, exhaust).expect("a small hello is always sent");
    let request_id = OpMsg::parse(&request).expect("the request parses").request_id;
    let mut expected = request_id;
    let mut finished = false;
    let mut stream = stream;
    let mut cuts = cuts.iter();
    while !stream.is_empty() {
        let n = usize::from(cuts.next().copied().unwrap_or(64) % 64 + 1).min(stream.len());
        let (chunk, tail) = stream.split_at(n);
        stream = tail;
        let mut next = connection.feed(chunk);
        loop {
            match next {
                Ok(Some(reply)) => {
                    assert!(!finished, "a reply after the final one");
                    assert_eq!(reply.response_to, expected);
                    assert!(exhaust || !reply.more_to_come);
                    expected = reply.request_id;
                    finished = !reply.more_to_come;
                    next = connection.poll_reply();
                }
                Ok(None) => break,
                Err(error) => {
                    let _ = error.to_string();
                    assert_eq!(connection.feed(b"x"), Err(error.clone()), "errors are sticky");
                    assert_eq!(connection.send(&hello, false), Err(error));
                    return;
                }
            }
        }
        assert!(connection.buffered() <= limit.saturating_add(64), "buffer beyond one message and one read");
    }
    if finished && connection.buffered() == 0 {
        let again = connection.send(&hello, false).expect("a new command after the final reply");
        assert_eq!(OpMsg::parse(&again).unwrap().request_id, request_id + 1);
    }
});
