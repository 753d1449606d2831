//! Arbitrary bytes, as if read from a server, through the framer and the OP_MSG parser.
//!
//! Invariants checked:
//! - nothing panics;
//! - `Complete(n)` means `MIN_MESSAGE_LEN <= n <= input length`, and `Partial { needed }`
//!   asks for at least one byte, exactly the missing ones once the length prefix is there;
//! - a parsed message re-encodes to a message of the same length that parses back equal
//!   (same ids, flags, body and sequences).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdam_wire::{frame, Framing, OpMsg, DEFAULT_MAX_MESSAGE_SIZE, MIN_MESSAGE_LEN};

fuzz_target!(|data: &[u8]| {
    match frame(data, DEFAULT_MAX_MESSAGE_SIZE) {
        Ok(Framing::Complete(n)) => {
            assert!(n <= data.len(), "complete frame of {n} bytes from {} bytes", data.len());
            assert!(n >= MIN_MESSAGE_LEN, "complete frame of {n} bytes is below the minimum");
            check_message(&data[..n]);
        }
        Ok(Framing::Partial { needed }) => {
            assert!(needed > 0, "partial frame needing no bytes");
            if let Some(prefix) = data.get(..4) {
                let declared = i32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                assert_eq!(Ok(data.len() + needed), usize::try_from(declared));
            }
        }
        Err(error) => {
            // Errors must render without panicking.
            let _ = error.to_string();
        }
    }
    // The parser alone, on input that is usually not exactly one message.
    if let Err(error) = OpMsg::parse(data) {
        let _ = error.to_string();
    }
});

fn check_message(message: &[u8]) {
    let msg = match OpMsg::parse(message) {
        Ok(msg) => msg,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    // What a consumer does next: walk the body. Element errors are fine; panics are not.
    for element in msg.body {
        let _ = element;
    }
    let again = msg.to_vec().expect("a parsed message re-encodes");
    assert_eq!(again.len(), message.len(), "re-encoding changed the length");
    let reparsed = OpMsg::parse(&again).expect("a re-encoded message parses");
    assert_eq!(reparsed.body, msg.body);
    assert_eq!(reparsed, msg);
}
