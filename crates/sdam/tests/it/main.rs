//! The core's integration tests, in one binary.
//!
//! The binary installs the counting global allocator of `sdam-bench`, so tests can prove that
//! code paths do not allocate: [`allocations_during`] reports how many allocations the current
//! thread made while running a closure (other test threads do not disturb the count).

use sdam_bench::alloc_count::CountingAllocator;

mod selection_alloc;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

pub(crate) use sdam_bench::alloc_count::allocations_during;
