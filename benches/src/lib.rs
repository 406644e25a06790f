//! Fixtures shared by the criterion benchmarks.
