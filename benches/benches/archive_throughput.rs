//! Archive throughput: the same generated corpus written, in one run, as (a) raw bytes to
//! one file (the disk's limit), (b) a ZIP of `.eml` through the project's ZIP sink, and
//! (c) a PST through the PST writer; prints MB/s, msg/s, the ratio to raw and the peak RSS
//! of the PST phase.
//!
//! `cargo bench -p legacyflo-benches --bench archive_throughput`. Environment:
//! - `ARCHIVE_BENCH_GB` corpus size in GB (default 0.25; use 1 or more for the figures, 5
//!   for the RSS check);
//! - `ARCHIVE_BENCH_DIR` where the files go (default the temp dir);
//! - `ARCHIVE_BENCH_ENCODING=none` writes the PST without permute encoding;
//! - `ARCHIVE_BENCH_CORPUS` a corpus file to reuse: generated there when missing, read
//!   back when present (so a profiler can be attached to the writing phases only);
//! - `ARCHIVE_BENCH_CASES` which cases run, comma-separated (default `raw,rawd,zip,pst`:
//!   `rawd` is the same raw bytes written the way the PST writer writes its file, by
//!   `legacyflo_pst::ndb::out::RangeOut` with direct I/O, the fairer floor for PST); for
//!   the peak-RSS figure run `pst` alone, so that nothing the other cases allocated counts;
//! - `ARCHIVE_BENCH_ROUNDS` (default 1): after the first round, run raw and PST again
//!   alternately this many rounds in all and print the median PST/raw ratio and MB/s (on a
//!   machine whose speed drifts, the median of paired rounds is the figure to quote).
//!
//! The corpus is `legacyflo-corpus`'s bench mix (70% 1–8 KB, 27% 8–100 KB, 3% 0.1–1 MB,
//! plus one 10 MB attachment per 250 MB, at least two). It is generated once into a framed
//! file, untimed, and every case reads it back the same way. Each case prints wall time
//! and the process CPU time (user + system): on a loaded machine the CPU time is the
//! stable figure.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::time::{Duration, Instant};

use legacyflo_core::{Flag, FolderPath, Message, Sink};
use legacyflo_pst::{Encoding, MessageMeta, PstWriter, WriterOptions};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}

/// Process CPU time (user + system) from /proc/self/stat, in clock ticks of 10 ms.
fn cpu_time() -> Duration {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map(|r| r.1).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

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

struct Frame {
    folder: String,
    read: bool,
}

struct Frames {
    r: BufReader<File>,
    buf: Vec<u8>,
}

impl Frames {
    fn open(path: &std::path::Path) -> Frames {
        let f = File::open(path).unwrap_or_else(|e| fail("open corpus", e));
        Frames {
            r: BufReader::with_capacity(1 << 20, f),
            buf: Vec::new(),
        }
    }

    /// The next message: its folder and read flag, its bytes in `self.buf`.
    fn next(&mut self) -> Option<Frame> {
        let mut h = [0u8; 9];
        self.r.read_exact(&mut h).ok()?;
        let flen = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut f = vec![0u8; flen];
        self.r.read_exact(&mut f).ok()?;
        // Into the buffer's spare capacity, without zero-filling it first (`resize` would
        // write every byte once more before the read overwrites it).
        self.buf.clear();
        self.buf.reserve_exact(len);
        let got = self
            .r
            .by_ref()
            .take(len as u64)
            .read_to_end(&mut self.buf)
            .ok()?;
        if got != len {
            return None;
        }
        Some(Frame {
            folder: String::from_utf8_lossy(&f).into_owned(),
            read: h[8] == 1,
        })
    }
}

struct Case {
    wall: Duration,
    cpu: Duration,
}

fn line(name: &str, c: &Case, n: u64, bytes: u64, raw: Option<&Case>) {
    let mb = bytes as f64 / 1e6;
    let ratio = raw
        .map(|r| {
            format!(
                "  time/raw {:.2}x (cpu {:.2}x)",
                c.wall.as_secs_f64() / r.wall.as_secs_f64(),
                c.cpu.as_secs_f64() / r.cpu.as_secs_f64().max(0.01)
            )
        })
        .unwrap_or_default();
    println!(
        "{name:<5} wall {:>7.2}s {:>7.1} MB/s {:>7.0} msg/s | cpu {:>7.2}s {:>7.1} MB/s{ratio}",
        c.wall.as_secs_f64(),
        mb / c.wall.as_secs_f64(),
        n as f64 / c.wall.as_secs_f64(),
        c.cpu.as_secs_f64(),
        mb / c.cpu.as_secs_f64().max(0.01),
    );
}

fn timed(f: impl FnOnce()) -> Case {
    let (t, c) = (Instant::now(), cpu_time());
    f();
    Case {
        wall: t.elapsed(),
        cpu: cpu_time().saturating_sub(c),
    }
}

/// (a) The corpus's raw bytes to one file through a 1 MiB buffer, then `fsync`.
fn raw_case(corpus: &std::path::Path, raw_path: &std::path::Path) -> Case {
    let c = timed(|| {
        let mut fr = Frames::open(corpus);
        let f = File::create(raw_path).unwrap_or_else(|e| fail("create raw", e));
        let mut w = BufWriter::with_capacity(1 << 20, f);
        while fr.next().is_some() {
            if let Err(e) = w.write_all(&fr.buf) {
                fail("write raw", e);
            }
        }
        match w.into_inner() {
            Ok(f) => {
                if let Err(e) = f.sync_all() {
                    fail("sync raw", e);
                }
            }
            Err(e) => fail("flush raw", e),
        }
    });
    let _ = std::fs::remove_file(raw_path);
    c
}

/// (c) The corpus through the PST writer, one folder per corpus folder.
fn pst_case(
    corpus: &std::path::Path,
    pst_path: &std::path::Path,
    encoding: Encoding,
) -> (Case, Vec<legacyflo_pst::VolumeSummary>) {
    let mut volumes = Vec::new();
    let c = timed(|| {
        let options = WriterOptions {
            encoding,
            ..Default::default()
        };
        let mut w = PstWriter::create(pst_path, options).unwrap_or_else(|e| fail("pst", e));
        let mut ids = std::collections::HashMap::new();
        let mut fr = Frames::open(corpus);
        while let Some(f) = fr.next() {
            let id = match ids.get(&f.folder) {
                Some(id) => *id,
                None => {
                    let segs: Vec<&str> = f.folder.split('/').collect();
                    let id = w.folder(&segs).unwrap_or_else(|e| fail("pst folder", e));
                    ids.insert(f.folder.clone(), id);
                    id
                }
            };
            let meta = MessageMeta {
                read: f.read,
                ..Default::default()
            };
            w.add_message(id, &fr.buf, &meta)
                .unwrap_or_else(|e| fail("pst add", e));
        }
        volumes = w.finish().unwrap_or_else(|e| fail("pst finish", e));
    });
    // Removed outside the timing, so that the next round does not pay for truncating it.
    for v in &volumes {
        let _ = std::fs::remove_file(&v.path);
    }
    (c, volumes)
}

fn main() {
    let gb: f64 = std::env::var("ARCHIVE_BENCH_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.25);
    let encoding = match std::env::var("ARCHIVE_BENCH_ENCODING").as_deref() {
        Ok("none") => Encoding::None,
        _ => Encoding::Permute,
    };
    let cases = std::env::var("ARCHIVE_BENCH_CASES").unwrap_or_else(|_| "raw,rawd,zip,pst".into());
    let run = |c: &str| cases.split(',').any(|x| x.trim() == c);
    let base = std::env::var("ARCHIVE_BENCH_DIR")
        .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let dir = tempfile::tempdir_in(base).unwrap_or_else(|e| fail("temp dir", e));
    let spec = legacyflo_corpus::CorpusSpec {
        seed: 7,
        messages: 0,
        total_bytes: Some((gb * 1e9) as u64),
        big_attachments: ((gb * 4.0).round() as usize).max(2),
        folders: 12,
    };

    let corpus = std::env::var_os("ARCHIVE_BENCH_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("corpus.bin"));
    let t = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    if corpus.exists() {
        let mut fr = Frames::open(&corpus);
        while fr.next().is_some() {
            n += 1;
            bytes += fr.buf.len() as u64;
        }
    } else {
        let f = File::create(&corpus).unwrap_or_else(|e| fail("create corpus", e));
        let mut w = BufWriter::with_capacity(1 << 20, f);
        for m in legacyflo_corpus::bench_corpus(&spec) {
            let folder = m.folder_name('/');
            let read = m.flags.iter().any(|f| f == "\\Seen");
            let r = w
                .write_all(&(folder.len() as u32).to_le_bytes())
                .and_then(|_| w.write_all(&(m.raw.len() as u32).to_le_bytes()))
                .and_then(|_| w.write_all(&[u8::from(read)]))
                .and_then(|_| w.write_all(folder.as_bytes()))
                .and_then(|_| w.write_all(&m.raw));
            if let Err(e) = r {
                fail("write corpus", e);
            }
            n += 1;
            bytes += m.raw.len() as u64;
        }
        if let Err(e) = w.flush() {
            fail("write corpus", e);
        }
    }
    println!(
        "corpus: {n} messages, {:.1} MB, {} x 10 MB attachments (generated in {:.1?}); PST encoding {encoding:?}",
        bytes as f64 / 1e6,
        spec.big_attachments,
        t.elapsed()
    );

    // (a) raw bytes to one file (always: it is the reference).
    let raw_path = dir.path().join("raw.out");
    let raw = raw_case(&corpus, &raw_path);
    let _ = std::fs::remove_file(&raw_path);
    line("raw", &raw, n, bytes, None);

    // (a') the same bytes through the PST writer's file writer (direct I/O, writer thread).
    let rawd = run("rawd").then(|| {
        let c = timed(|| {
            let mut fr = Frames::open(&corpus);
            let f = File::create(&raw_path).unwrap_or_else(|e| fail("create raw", e));
            let mut out = legacyflo_pst::ndb::out::RangeOut::new(f, &raw_path, true)
                .unwrap_or_else(|e| fail("raw writer", e));
            const CHUNK: usize = 253_952;
            let (mut chunk, mut used) =
                (legacyflo_pst::ndb::out::PageBuf::zeroed(CHUNK, 0), 0usize);
            while fr.next().is_some() {
                let mut rest = fr.buf.as_slice();
                while !rest.is_empty() {
                    let k = rest.len().min(CHUNK - used);
                    chunk[used..used + k].copy_from_slice(&rest[..k]);
                    (used, rest) = (used + k, &rest[k..]);
                    if used == CHUNK {
                        chunk = out
                            .put(chunk, Vec::new())
                            .unwrap_or_else(|e| fail("write raw", e))
                            .0;
                        used = 0;
                    }
                }
            }
            chunk.truncate(used);
            out.put(chunk, Vec::new())
                .unwrap_or_else(|e| fail("write raw", e));
            out.finish(&[]).unwrap_or_else(|e| fail("sync raw", e));
        });
        let _ = std::fs::remove_file(&raw_path);
        line("rawd", &c, n, bytes, None);
        c
    });

    // (b) ZIP of .eml through the ZIP sink (the production writer), one commit per 1000
    // messages as the engine does by default.
    let zip_path = dir.path().join("bench.zip");
    if run("zip") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| fail("runtime", e));
        let zip = timed(|| {
            rt.block_on(async {
                let mut sink = legacyflo_sinks::zip::ZipSink::new(zip_path.clone());
                sink.open(None)
                    .await
                    .unwrap_or_else(|e| fail("zip open", e));
                let mut fr = Frames::open(&corpus);
                let mut current = String::new();
                let mut i = 0u64;
                while let Some(f) = fr.next() {
                    let folder = FolderPath::new(f.folder.split('/'));
                    if f.folder != current {
                        sink.begin_folder(&folder)
                            .await
                            .unwrap_or_else(|e| fail("zip folder", e));
                        current = f.folder.clone();
                    }
                    let mut m = Message::new(std::mem::take(&mut fr.buf), folder, format!("{i}"));
                    if f.read {
                        m.flags.push(Flag::Seen);
                    }
                    sink.write(&m)
                        .await
                        .unwrap_or_else(|e| fail("zip write", e));
                    i += 1;
                    if i.is_multiple_of(1000) {
                        sink.commit()
                            .await
                            .unwrap_or_else(|e| fail("zip commit", e));
                    }
                }
                sink.finish()
                    .await
                    .unwrap_or_else(|e| fail("zip finish", e));
            })
        });
        let _ = std::fs::remove_file(&zip_path);
        line("zip", &zip, n, bytes, Some(&raw));
    }
    if !run("pst") {
        return;
    }

    // (c) PST through the writer.
    reset_hwm();
    let hwm_before = vm_hwm_kb();
    let pst_path = dir.path().join("bench.pst");
    let (pst, volumes) = pst_case(&corpus, &pst_path, encoding);
    let hwm = vm_hwm_kb();
    let pst_bytes: u64 = volumes.iter().map(|v| v.bytes).sum();
    line("pst", &pst, n, bytes, Some(&raw));
    if let Some(rd) = &rawd {
        println!(
            "pst   time/rawd {:.2}x (cpu {:.2}x)",
            pst.wall.as_secs_f64() / rd.wall.as_secs_f64(),
            pst.cpu.as_secs_f64() / rd.cpu.as_secs_f64().max(0.01)
        );
    }
    println!(
        "pst: {} volume(s), {:.1} MB file; peak RSS (VmHWM) while writing: {:.1} MB (before: {:.1} MB)",
        volumes.len(),
        pst_bytes as f64 / 1e6,
        hwm as f64 / 1024.0,
        hwm_before as f64 / 1024.0
    );

    // More rounds of raw and PST, alternately, so that both see the same host noise; the
    // median ratio is the figure to quote on a machine whose speed drifts.
    let rounds: usize = std::env::var("ARCHIVE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if rounds > 1 {
        let mut ratios = vec![pst.wall.as_secs_f64() / raw.wall.as_secs_f64()];
        let mut speeds = vec![bytes as f64 / 1e6 / pst.wall.as_secs_f64()];
        for _ in 1..rounds {
            let r = raw_case(&corpus, &raw_path);
            line("raw", &r, n, bytes, None);
            let (p, _) = pst_case(&corpus, &pst_path, encoding);
            line("pst", &p, n, bytes, Some(&r));
            ratios.push(p.wall.as_secs_f64() / r.wall.as_secs_f64());
            speeds.push(bytes as f64 / 1e6 / p.wall.as_secs_f64());
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[0], v[v.len() - 1])
        };
        let (rm, rlo, rhi) = median(&mut ratios);
        let (sm, slo, shi) = median(&mut speeds);
        println!(
            "pst over {rounds} rounds: time/raw median {rm:.2}x (min {rlo:.2}x, max {rhi:.2}x); \
             wall {sm:.1} MB/s median (min {slo:.1}, max {shi:.1})"
        );
    }
}
