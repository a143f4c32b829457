//! Throughput of the PST writer against the physical limit (raw bytes to a file).
//!
//! `cargo bench -p legacyflo-pst` writes a generated corpus (legacyflo-corpus
//! `bench_corpus`: 70% 1–8 KB, 27% 8–100 KB, 3% 0.1–1 MB, plus 10 MB attachments) of
//! `PST_BENCH_GB` GB (default 1) as (a) raw bytes and (b) a PST, and prints MB/s, msg/s,
//! the PST/raw time ratio and the peak RSS of the PST phase (VmHWM, reset before it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::time::{Duration, Instant};

use legacyflo_corpus::{CorpusSpec, bench_corpus};
use legacyflo_pst::{Encoding, MessageMeta, PstWriter, WriterOptions};

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Frames<R: Read> {
    r: R,
    buf: Vec<u8>,
}

impl<R: Read> Frames<R> {
    /// Next frame: (folder, flags byte, raw) in `self.buf`.
    fn next(&mut self) -> Option<(String, bool)> {
        let mut h = [0u8; 8];
        self.r.read_exact(&mut h).ok()?;
        let flen = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut f = vec![0u8; flen];
        self.r.read_exact(&mut f).ok()?;
        let mut read = [0u8; 1];
        self.r.read_exact(&mut read).ok()?;
        self.buf.resize(len, 0);
        self.r.read_exact(&mut self.buf).ok()?;
        Some((String::from_utf8_lossy(&f).into_owned(), read[0] == 1))
    }
}

fn main() {
    let gb: f64 = std::env::var("PST_BENCH_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let encoding = match std::env::var("PST_BENCH_ENCODING").as_deref() {
        Ok("none") => Encoding::None,
        _ => Encoding::Permute,
    };
    let dir = tempfile::tempdir_in(
        std::env::var("PST_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().to_string_lossy().into_owned()),
    )
    .unwrap();
    let total = (gb * 1e9) as u64;
    let spec = CorpusSpec {
        seed: 7,
        messages: 0,
        total_bytes: Some(total),
        big_attachments: ((gb * 4.0).round() as usize).max(2),
        folders: 12,
    };

    // Generate once into a framed file (untimed), so both runs read the same input.
    let t = Instant::now();
    let corpus = dir.path().join("corpus.bin");
    let (mut n, mut bytes) = (0u64, 0u64);
    {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&corpus).unwrap());
        for m in bench_corpus(&spec) {
            let folder = m.folder_name('/');
            w.write_all(&(folder.len() as u32).to_le_bytes()).unwrap();
            w.write_all(&(m.raw.len() as u32).to_le_bytes()).unwrap();
            w.write_all(folder.as_bytes()).unwrap();
            w.write_all(&[u8::from(m.flags.iter().any(|f| f == "\\Seen"))])
                .unwrap();
            w.write_all(&m.raw).unwrap();
            n += 1;
            bytes += m.raw.len() as u64;
        }
        w.flush().unwrap();
    }
    println!(
        "corpus: {n} messages, {:.1} MB (generated in {:.1?})",
        bytes as f64 / 1e6,
        t.elapsed()
    );
    let open = || Frames {
        r: BufReader::with_capacity(1 << 20, File::open(&corpus).unwrap()),
        buf: Vec::new(),
    };

    // (a) raw bytes to a file: the physical limit.
    let raw_path = dir.path().join("raw.out");
    let t = Instant::now();
    {
        let mut fr = open();
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&raw_path).unwrap());
        while fr.next().is_some() {
            w.write_all(&fr.buf).unwrap();
        }
        w.into_inner().unwrap().sync_all().unwrap();
    }
    let raw_time = t.elapsed();
    let _ = std::fs::remove_file(&raw_path);

    // (c) mail-parser alone (the MIME parse + transfer decoding every conversion needs).
    let t = Instant::now();
    {
        let mut fr = open();
        let parser = mail_parser::MessageParser::default();
        let mut parts = 0usize;
        while fr.next().is_some() {
            parts += parser.parse(&fr.buf).map(|m| m.parts.len()).unwrap_or(0);
        }
        std::hint::black_box(parts);
    }
    let parse_time = t.elapsed();

    // (b) PST.
    reset_hwm();
    let hwm_before = vm_hwm_kb();
    let pst_path = dir.path().join("bench.pst");
    let t = Instant::now();
    let mut busy = Duration::ZERO;
    let summaries = {
        let mut fr = open();
        let mut w = PstWriter::create(
            &pst_path,
            WriterOptions {
                encoding,
                ..Default::default()
            },
        )
        .unwrap();
        let mut ids = std::collections::HashMap::new();
        while let Some((folder, read)) = fr.next() {
            let s = Instant::now();
            let id = match ids.get(&folder) {
                Some(id) => *id,
                None => {
                    let segs: Vec<&str> = folder.split('/').collect();
                    let id = w.folder(&segs).unwrap();
                    ids.insert(folder.clone(), id);
                    id
                }
            };
            w.add_message(
                id,
                &fr.buf,
                &MessageMeta {
                    read,
                    ..Default::default()
                },
            )
            .unwrap();
            busy += s.elapsed();
        }
        let s = Instant::now();
        let v = w.finish().unwrap();
        busy += s.elapsed();
        v
    };
    let pst_time = t.elapsed();
    let hwm = vm_hwm_kb();
    let pst_bytes: u64 = summaries.iter().map(|s| s.bytes).sum();

    let mbs = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "raw : {:>8.2?}  {:>7.1} MB/s  {:>8.0} msg/s",
        raw_time,
        mbs(raw_time),
        n as f64 / raw_time.as_secs_f64()
    );
    println!(
        "pst : {:>8.2?}  {:>7.1} MB/s  {:>8.0} msg/s  ({:?}, {} volume(s), {:.1} MB file)",
        pst_time,
        mbs(pst_time),
        n as f64 / pst_time.as_secs_f64(),
        encoding,
        summaries.len(),
        pst_bytes as f64 / 1e6
    );
    println!(
        "pst writer calls only (excl. reading input): {:.2?} = {:.1} MB/s",
        busy,
        mbs(busy)
    );
    println!(
        "mail-parser parse only: {:.2?} = {:.1} MB/s (floor of any MIME->PST path)",
        parse_time,
        mbs(parse_time)
    );
    println!(
        "ratio PST/raw time: {:.2}",
        pst_time.as_secs_f64() / raw_time.as_secs_f64()
    );
    println!(
        "peak RSS (VmHWM) during PST phase: {:.1} MB (before: {:.1} MB)",
        hwm as f64 / 1024.0,
        hwm_before as f64 / 1024.0
    );
}
