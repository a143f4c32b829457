//! Throughput benchmarks of legacyflo. Run them with
//! `cargo bench -p legacyflo-benches --bench write_throughput`; they print MB/s and msg/s.
#![forbid(unsafe_code)]
