//! The spec-test runner (work in progress).
fn main() {}
