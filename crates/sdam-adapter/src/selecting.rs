//! Selecting without the driver's lock: the published [`SelectionSnapshot`], cached per
//! thread, and a per-thread random generator seeded from the operating system.
//!
//! The driver publishes a new snapshot after every change of the description
//! ([`PublishedSnapshot::publish`]); a selecting thread compares one atomic version with the
//! snapshot it cached and runs the core's [`SelectionSnapshot::select_now`] on it. Only a
//! selection that cannot succeed at once goes to the driver's topology (which waits). The
//! selection rules, and the operation counts, stay the core's.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sdam::rng::Rng;
use sdam::selection::SelectionSnapshot;

/// Snapshots cached per thread (one per client the thread selected from recently).
const CACHED_CLIENTS: usize = 4;

/// Gives every [`PublishedSnapshot`] its own key in the per-thread caches.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static CACHE: RefCell<Vec<(u64, u64, Arc<SelectionSnapshot>)>> = const { RefCell::new(Vec::new()) };
    static RNG: RefCell<Rng> = RefCell::new(Rng::new(crate::random_seed()));
}

/// The snapshot a client's driver published last, with its version.
#[derive(Debug)]
pub struct PublishedSnapshot {
    key: u64,
    version: AtomicU64,
    current: Mutex<(u64, Arc<SelectionSnapshot>)>,
}

impl PublishedSnapshot {
    /// Publishes `first`.
    pub fn new(first: Arc<SelectionSnapshot>) -> Self {
        Self {
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            version: AtomicU64::new(0),
            current: Mutex::new((0, first)),
        }
    }

    /// Replaces the snapshot (the driver, after the description changed).
    pub fn publish(&self, snapshot: Arc<SelectionSnapshot>) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let version = current.0.wrapping_add(1);
        *current = (version, snapshot);
        self.version.store(version, Ordering::Release);
    }

    /// Publishes `topology`'s snapshot if its description (or closed state) changed since the
    /// last one. Call it under the topology's lock after every call that may change it, so
    /// the published snapshot is never older than what `Topology::description` returns.
    pub fn refresh(&self, topology: &sdam::Topology) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let same = Arc::ptr_eq(current.1.description(), &topology.description())
            && current.1.is_closed() == topology.is_closed();
        if !same {
            let version = current.0.wrapping_add(1);
            *current = (version, topology.selection_snapshot());
            self.version.store(version, Ordering::Release);
        }
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<SelectionSnapshot> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner).1)
    }

    /// Runs `f` on the current snapshot and this thread's random generator. Takes no lock
    /// and touches no shared reference count unless a new snapshot was published since this
    /// thread last looked. `f` must not call `with` itself.
    pub fn with<R>(&self, f: impl FnOnce(&SelectionSnapshot, &mut Rng) -> R) -> R {
        let version = self.version.load(Ordering::Acquire);
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let slot = match cache.iter().position(|(key, _, _)| *key == self.key) {
                Some(i) if cache[i].1 == version => i,
                found => {
                    let (version, snapshot) = {
                        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
                        (current.0, Arc::clone(&current.1))
                    };
                    match found {
                        Some(i) => {
                            cache[i] = (self.key, version, snapshot);
                            i
                        }
                        None => {
                            if cache.len() == CACHED_CLIENTS {
                                cache.remove(0);
                            }
                            cache.push((self.key, version, snapshot));
                            cache.len() - 1
                        }
                    }
                }
            };
            // `f` must not select again on this thread (the cache stays borrowed meanwhile).
            RNG.with(|rng| f(&cache[slot].2, &mut rng.borrow_mut()))
        })
    }

    /// Drops this thread's cached copy (a closed client's snapshot is not kept alive).
    pub fn forget_on_this_thread(&self) {
        CACHE.with(|cache| cache.borrow_mut().retain(|(key, _, _)| *key != self.key));
    }
}
