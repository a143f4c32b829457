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
//! - `ARCHIVE_BENCH_DIRECT=0` writes the PST through the page cache (`direct_io` off);
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
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use legacyflo_core::{Flag, FolderPath, Message, Sink};
use legacyflo_pst::{Encoding, MessageMeta, PstWriter, WriterOptions};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
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

/// One framed message of the corpus file, borrowed from the reader's buffer.
struct Frame<'a> {
    folder: &'a str,
    read: bool,
    raw: &'a [u8],
}

/// Reads the framed corpus file through a memory map of a 4 MiB window (grown to hold a
/// bigger message) moved along the file: the messages are slices of the page cache, so
/// the harness costs the cases it times no copy (reading with `read` cost as much CPU as
/// a tenth of the PST writer's), and only the window counts in the peak RSS. The window
/// is left to fault in (the kernel maps 16 pages a fault): populating it up front walks
/// it page by page and cost more.
struct Frames {
    f: File,
    len: u64,
    pos: u64,
    map: Option<(u64, memmap2::Mmap)>,
}

impl Frames {
    const WINDOW: u64 = 4 << 20;

    fn open(path: &std::path::Path) -> Frames {
        let f = File::open(path).unwrap_or_else(|e| fail("open corpus", e));
        let len = f
            .metadata()
            .unwrap_or_else(|e| fail("stat corpus", e))
            .len();
        Frames {
            f,
            len,
            pos: 0,
            map: None,
        }
    }

    /// Maps, when the current window does not hold them, the `need` bytes at `pos`; false
    /// when the file ends before them.
    fn window(&mut self, need: u64) -> bool {
        if self.pos + need > self.len {
            return false;
        }
        if let Some((at, m)) = &self.map
            && *at <= self.pos
            && self.pos + need <= *at + m.len() as u64
        {
            return true;
        }
        self.map = None;
        let at = self.pos & !4095;
        let len = (self.pos - at + need).max(Self::WINDOW).min(self.len - at);
        // SAFETY: the corpus file is the bench's own, written before this run and not
        // changed while it is mapped (the one rule `Mmap::map` leaves to its caller).
        #[allow(unsafe_code)]
        let m = unsafe {
            memmap2::MmapOptions::new()
                .offset(at)
                .len(len as usize)
                .map(&self.f)
        }
        .unwrap_or_else(|e| fail("map corpus", e));
        self.map = Some((at, m));
        true
    }

    /// The next message: its folder, read flag and bytes.
    fn next(&mut self) -> Option<Frame<'_>> {
        if !self.window(9) {
            return None;
        }
        let (at, m) = self.map.as_ref()?;
        let s = (self.pos - at) as usize;
        let h = m.get(s..s + 9)?;
        let flen = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as u64;
        let read = h[8] == 1;
        if !self.window(9 + flen + len) {
            return None;
        }
        let (at, m) = self.map.as_ref()?;
        let s = (self.pos - at) as usize + 9;
        self.pos += 9 + flen + len;
        let (flen, len) = (flen as usize, len as usize);
        let folder = std::str::from_utf8(m.get(s..s + flen)?)
            .unwrap_or_else(|e| fail("corpus folder name", e));
        Some(Frame {
            folder,
            read,
            raw: m.get(s + flen..s + flen + len)?,
        })
    }
}

struct Case {
    wall: Duration,
    cpu: Duration,
    /// Seconds the CPUs this process may run on spent idle or waiting for I/O, stolen by
    /// the hypervisor, and in interrupts, while the case ran: where wall time that is not
    /// CPU time went.
    off: [f64; 3],
}

/// The CPUs this process may run on (`Cpus_allowed_list`), as `cpuN` names of /proc/stat.
fn allowed_cpus() -> Vec<String> {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = s
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
            out.extend((a..=b).map(|c| format!("cpu{c}")));
        }
    }
    out
}

/// Idle + iowait, steal, and irq + softirq time of the allowed CPUs, in seconds
/// (/proc/stat counts in USER_HZ, 100 per second here).
fn off_cpu() -> [f64; 3] {
    let cpus = allowed_cpus();
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut t = [0f64; 3];
    for l in stat.lines() {
        let mut f = l.split_whitespace();
        let Some(name) = f.next() else { continue };
        if !cpus.iter().any(|c| c == name) {
            continue;
        }
        let v: Vec<f64> = f.map(|x| x.parse().unwrap_or(0.0) / 100.0).collect();
        let g = |i: usize| v.get(i).copied().unwrap_or(0.0);
        t[0] += g(3) + g(4);
        t[1] += g(7);
        t[2] += g(5) + g(6);
    }
    t
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
    println!(
        "      off-cpu: idle/iowait {:.2}s, steal {:.2}s, irq {:.2}s",
        c.off[0], c.off[1], c.off[2]
    );
}

fn timed(f: impl FnOnce()) -> Case {
    let (t, c, o) = (Instant::now(), legacyflo_benches::cpu_time(), off_cpu());
    f();
    let o2 = off_cpu();
    Case {
        wall: t.elapsed(),
        cpu: legacyflo_benches::cpu_time().saturating_sub(c),
        off: [o2[0] - o[0], o2[1] - o[1], o2[2] - o[2]],
    }
}

/// (a) The corpus's raw bytes to one file through a 1 MiB buffer, then `fsync`.
fn raw_case(corpus: &std::path::Path, raw_path: &std::path::Path) -> Case {
    let c = timed(|| {
        let mut fr = Frames::open(corpus);
        let f = File::create(raw_path).unwrap_or_else(|e| fail("create raw", e));
        let mut w = BufWriter::with_capacity(1 << 20, f);
        while let Some(f) = fr.next() {
            if let Err(e) = w.write_all(f.raw) {
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
            direct_io: std::env::var("ARCHIVE_BENCH_DIRECT").as_deref() != Ok("0"),
            ..Default::default()
        };
        let mut w = PstWriter::create(pst_path, options).unwrap_or_else(|e| fail("pst", e));
        let mut ids = std::collections::HashMap::new();
        let mut fr = Frames::open(corpus);
        while let Some(f) = fr.next() {
            let id = match ids.get(f.folder) {
                Some(id) => *id,
                None => {
                    let segs: Vec<&str> = f.folder.split('/').collect();
                    let id = w.folder(&segs).unwrap_or_else(|e| fail("pst folder", e));
                    ids.insert(f.folder.to_string(), id);
                    id
                }
            };
            let meta = MessageMeta {
                read: f.read,
                ..Default::default()
            };
            w.add_message(id, f.raw, &meta)
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
        while let Some(f) = fr.next() {
            n += 1;
            bytes += f.raw.len() as u64;
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
            while let Some(f) = fr.next() {
                let mut rest = f.raw;
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
                        current = f.folder.to_string();
                    }
                    let mut m = Message::new(f.raw.to_vec(), folder, format!("{i}"));
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
