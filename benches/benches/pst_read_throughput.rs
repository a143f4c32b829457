//! PST reading throughput, with and without CRC verification: the cost of checking every
//! page and block the reader reads ([`legacyflo_pst::ReadOptions::verify_crc`]; the
//! trailer size, id and signature checks run either way).
//!
//! `cargo bench -p legacyflo-benches --bench pst_read_throughput`. Environment:
//! - `PST_READ_BENCH_GB` corpus size in GB (default 0.25; 1 for the figures);
//! - `PST_READ_BENCH_FILE` the PST to read: written there from `legacyflo-corpus`'s bench
//!   mix when missing (untimed), kept for later runs; default a temp file;
//! - `PST_READ_BENCH_ROUNDS` (default 3): checked and unchecked reads alternate this many
//!   rounds; the median of each is printed.
//!
//! A read opens the file, lists every folder and rebuilds every message (as the PST
//! source does), from the page cache (a first untimed read warms it). MB/s are file bytes
//! per second of wall time; CPU time is the process's user + system time. The CRC of the
//! whole file in 8 KiB pieces is timed too, as the floor of what verification costs.

use std::path::Path;
use std::time::{Duration, Instant};

use legacyflo_pst::{MessageMeta, PstReader, PstWriter, ReadOptions, WriterOptions};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}

/// One read of the whole file: (messages, rebuilt bytes, wall, CPU).
fn read_once(path: &Path, verify_crc: bool) -> (u64, u64, Duration, Duration) {
    let (t, c) = (Instant::now(), legacyflo_benches::cpu_time());
    let r =
        PstReader::open_with(path, ReadOptions { verify_crc }).unwrap_or_else(|e| fail("open", e));
    let (mut n, mut bytes) = (0u64, 0u64);
    for f in r.all_folders().unwrap_or_else(|e| fail("folders", e)) {
        for nid in r.message_ids(&f).unwrap_or_else(|e| fail("contents", e)) {
            let m = r.message(nid).unwrap_or_else(|e| fail("message", e));
            n += 1;
            bytes += m.raw.len() as u64;
        }
    }
    (
        n,
        bytes,
        t.elapsed(),
        legacyflo_benches::cpu_time().saturating_sub(c),
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn write_pst(path: &Path, gb: f64) {
    let spec = legacyflo_corpus::CorpusSpec {
        seed: 7,
        messages: 0,
        total_bytes: Some((gb * 1e9) as u64),
        big_attachments: ((gb * 4.0).round() as usize).max(2),
        folders: 12,
    };
    let t = Instant::now();
    let mut w =
        PstWriter::create(path, WriterOptions::default()).unwrap_or_else(|e| fail("create PST", e));
    let (mut n, mut bytes) = (0u64, 0u64);
    for m in legacyflo_corpus::bench_corpus(&spec) {
        let segs: Vec<&str> = m.folder.iter().map(String::as_str).collect();
        let f = w.folder(&segs).unwrap_or_else(|e| fail("folder", e));
        let meta = MessageMeta {
            read: m.flags.iter().any(|f| f == "\\Seen"),
            flagged: false,
            internal_date: Some(m.internal_date),
        };
        w.add_message(f, &m.raw, &meta)
            .unwrap_or_else(|e| fail("add", e));
        n += 1;
        bytes += m.raw.len() as u64;
    }
    w.finish().unwrap_or_else(|e| fail("finish", e));
    println!(
        "wrote {}: {n} messages, {:.1} MB of mail, in {:.1?}",
        path.display(),
        bytes as f64 / 1e6,
        t.elapsed()
    );
}

fn main() {
    let gb: f64 = std::env::var("PST_READ_BENCH_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.25);
    let rounds: usize = std::env::var("PST_READ_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail("temp dir", e));
    let path = std::env::var_os("PST_READ_BENCH_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("read.pst"));
    if !path.exists() {
        write_pst(&path, gb);
    }
    let size = std::fs::metadata(&path)
        .unwrap_or_else(|e| fail("stat", e))
        .len();
    let data_mb = size as f64 / 1e6;

    // Warm the page cache, untimed.
    let (n, rebuilt, _, _) = read_once(&path, false);
    println!(
        "{}: {data_mb:.1} MB, {n} messages, {:.1} MB rebuilt",
        path.display(),
        rebuilt as f64 / 1e6
    );

    // The CRC alone over the whole file, 8 KiB at a time (the largest block).
    let file = std::fs::read(&path).unwrap_or_else(|e| fail("read", e));
    let (t, c) = (Instant::now(), legacyflo_benches::cpu_time());
    let mut x = 0u32;
    for chunk in file.chunks(8192) {
        x ^= legacyflo_pst::ndb::crc::crc(chunk);
    }
    let (wall, cpu) = (t.elapsed(), legacyflo_benches::cpu_time().saturating_sub(c));
    drop(file);
    println!(
        "crc alone:   {:7.0} MB/s wall, {:7.0} MB/s CPU (x{x:08x})",
        data_mb / wall.as_secs_f64(),
        data_mb / cpu.as_secs_f64().max(1e-3)
    );

    let (mut on, mut off) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for round in 0..rounds {
        for verify in [true, false] {
            let (_, _, wall, cpu) = read_once(&path, verify);
            let (w, c) = if verify { &mut on } else { &mut off };
            w.push(wall);
            c.push(cpu);
            println!(
                "round {round} {:9}: {:7.1} MB/s wall ({:.0} msg/s), {:7.1} MB/s CPU",
                if verify { "checked" } else { "unchecked" },
                data_mb / wall.as_secs_f64(),
                n as f64 / wall.as_secs_f64(),
                data_mb / cpu.as_secs_f64().max(1e-3)
            );
        }
    }
    let (on_w, on_c, off_w, off_c) = (median(on.0), median(on.1), median(off.0), median(off.1));
    println!(
        "median of {rounds}: checked {:.1} MB/s wall, {:.1} MB/s CPU; unchecked {:.1} MB/s wall, \
         {:.1} MB/s CPU; checking costs {:+.1}% wall, {:+.1}% CPU",
        data_mb / on_w.as_secs_f64(),
        data_mb / on_c.as_secs_f64().max(1e-3),
        data_mb / off_w.as_secs_f64(),
        data_mb / off_c.as_secs_f64().max(1e-3),
        100.0 * (on_w.as_secs_f64() / off_w.as_secs_f64() - 1.0),
        100.0 * (on_c.as_secs_f64() / off_c.as_secs_f64().max(1e-3) - 1.0),
    );
}
