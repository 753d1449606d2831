//! Performance machinery of the hello parser: the [`ReplyCache`], what the slow-changing
//! values of one server's earlier replies parsed to, keyed by their raw bytes.
//!
//! It must equal the general path: parsing every reply in full, without a cache
//! (`ServerDescription::from_hello_after(.., None)`, i.e. [`ServerDescription::from_hello`]
//! after the same previous description). Checked by the property test
//! `testing::proptests::the_reply_cache_changes_no_outcome` (generated replies of a few
//! servers, through `testing::reply_cache::check_cached_parse`), by the same check on every
//! server's replies in every SDAM file of the spec corpus (`spec-tests/tests/spec/reply_cache.rs`),
//! by `cached_lists_count_against_the_budget` in the parser's tests, and by the `hello_parse`
//! fuzz target.

use crate::address::ServerAddress;
#[cfg(doc)]
use crate::server_description::ServerDescription;
use crate::server_description::{AddressList, Tags};

/// The longest value a [`ReplyCache`] keeps the bytes of; a longer one is parsed every time.
const MAX_CACHED_VALUE: usize = 64 * 1024;

/// One remembered value: the raw bytes it was parsed from and what they parsed to.
#[derive(Debug, Clone)]
pub(super) struct Memo<T> {
    raw: Vec<u8>,
    /// The parsed value and how many entries it counted against the reply's budget.
    value: Option<(T, usize)>,
}

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self { raw: Vec::new(), value: None }
    }
}

impl<T: Clone> Memo<T> {
    /// The value `raw` parses to, if these are the bytes remembered.
    #[inline]
    pub(super) fn get(&self, raw: &[u8]) -> Option<&(T, usize)> {
        self.value.as_ref().filter(|_| self.raw.as_slice() == raw)
    }

    /// Remembers that `raw` parsed to `value` (reusing the buffer of the bytes before).
    pub(super) fn put(&mut self, raw: &[u8], value: &T, count: usize) {
        if raw.len() > MAX_CACHED_VALUE {
            self.value = None;
            return;
        }
        self.raw.clear();
        self.raw.extend_from_slice(raw);
        self.value = Some((value.clone(), count));
    }
}

/// What the slow-changing values of one server's earlier replies parsed to, keyed by their
/// raw bytes: the member lists, the tags, `me` and `primary`.
///
/// A monitored server repeats those values in every reply until a reconfiguration or an
/// election. When a value's bytes are the ones remembered, the parser reuses the value
/// instead of reading it again. The same bytes always parse to the same value, so the
/// description is exactly the one a full parse builds (the tests check this on every reply
/// of the spec corpus and on generated ones).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplyCache {
    pub(super) lists: [Memo<AddressList>; 3],
    pub(super) tags: Memo<Tags>,
    pub(super) me: Memo<ServerAddress>,
    pub(super) primary: Memo<ServerAddress>,
}
