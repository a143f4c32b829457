//! Throughput benchmarks of legacyflo. Run them with
//! `cargo bench -p legacyflo-benches --bench write_throughput`; they print MB/s and msg/s.
#![forbid(unsafe_code)]

/// Process CPU time (user + system) from /proc/self/stat, in clock ticks of 10 ms (zero
/// where /proc is missing).
pub fn cpu_time() -> std::time::Duration {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map(|r| r.1).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    std::time::Duration::from_millis(ticks * 10)
}
