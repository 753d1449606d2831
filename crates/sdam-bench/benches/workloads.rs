//! Criterion benches of the W1–W4 workloads (`../shared/bench/WORKLOADS.md`); the setup is
//! shared with the `sdam-bench` binary (this crate's library).
//!
//! `cargo bench -p sdam-bench` (fixtures from `$SDAM_BENCH_DIR` or `shared/bench` beside the
//! workspace). W1 and W4 start every operation from a fork of the same base topology, made
//! outside the timed region; W2 and W3 time selection on the current snapshot.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use sdam_bench::{ApplyHello, Fixtures, SelectInWindow, WorkloadError, SIZES};

fn fixtures() -> Fixtures {
    match Fixtures::load_default() {
        Ok(f) => f,
        Err(e) => fail(e),
    }
}

fn fail(e: WorkloadError) -> ! {
    // A bench cannot return an error to criterion; stop with the reason.
    panic!("benchmark setup failed: {e}")
}

fn apply_bench(c: &mut Criterion, group: &str, id: Option<usize>, w: &ApplyHello) {
    let mut g = c.benchmark_group(group);
    let routine = |b: &mut criterion::Bencher<'_>| {
        b.iter_batched_ref(|| w.fresh(), |t| black_box(w.run(t).map(|a| a.outputs)), BatchSize::SmallInput);
    };
    match id {
        Some(n) => g.bench_function(BenchmarkId::from_parameter(n), routine),
        None => g.bench_function("apply", routine),
    };
    g.finish();
}

fn select_bench(c: &mut Criterion, group: &str, id: Option<usize>, w: &SelectInWindow) {
    let mut g = c.benchmark_group(group);
    let routine = |b: &mut criterion::Bencher<'_>| b.iter(|| black_box(w.run()));
    match id {
        Some(n) => g.bench_function(BenchmarkId::from_parameter(n), routine),
        None => g.bench_function("in_window", routine),
    };
    g.finish();
}

fn workloads(c: &mut Criterion) {
    let f = fixtures();
    apply_bench(c, "W1_hello_apply_rs7", None, &ApplyHello::w1(&f).unwrap_or_else(|e| fail(e)));
    select_bench(c, "W2_select_rs7", None, &SelectInWindow::w2(&f).unwrap_or_else(|e| fail(e)));
    for n in SIZES {
        let w = SelectInWindow::w3(&f, n).unwrap_or_else(|e| fail(e));
        select_bench(c, "W3_select_mongos", Some(n), &w);
    }
    for n in SIZES {
        let w = ApplyHello::w4(&f, n).unwrap_or_else(|e| fail(e));
        apply_bench(c, "W4_hello_apply_mongos", Some(n), &w);
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
