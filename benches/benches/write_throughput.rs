//! Write throughput: the same generated corpus written as (a) raw bytes to one file — the
//! disk's limit — and (b) a ZIP of .eml through the engine and the ZIP sink; then (c) the
//! whole `MBOX-S3-ZIP` path, reading an mbox tree from disk.
//!
//! `LEGACYFLO_BENCH_MB` sets the corpus size in MiB (default 1024). Output: MB/s, msg/s and
//! the ratio to raw, one line per case.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use legacyflo_core::{Engine, Field, Message, Params, Request};
use legacyflo_testkit::memory::MemorySource;

fn corpus(bytes: u64) -> Vec<Message> {
    let spec = legacyflo_corpus::CorpusSpec {
        seed: 42,
        messages: usize::MAX,
        total_bytes: Some(bytes),
        big_attachments: 3,
        folders: 12,
    };
    legacyflo_corpus::bench_corpus(&spec)
        .enumerate()
        .map(|(i, g)| legacyflo_testkit::corpus::from_generated(g, format!("b{i}")))
        .collect()
}

fn line(case: &str, msgs: usize, bytes: u64, secs: f64, raw_secs: Option<f64>) {
    let mb = bytes as f64 / 1e6;
    let ratio = raw_secs
        .map(|r| format!("  time/raw {:.2}x", secs / r))
        .unwrap_or_default();
    println!(
        "{case:<28} {msgs:>8} msgs {mb:>9.1} MB {secs:>7.2} s {:>8.1} MB/s {:>9.0} msg/s{ratio}",
        mb / secs,
        msgs as f64 / secs
    );
}

fn zip_request(source: &std::path::Path, dest: &std::path::Path) -> Request {
    let params = Params::new()
        .with(Field::Type, "MBOX-S3-ZIP")
        .with(Field::SourceUrl, source.display().to_string())
        .with(Field::DestUrl, dest.display().to_string());
    match Request::from_params(&params) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bad bench request: {e}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let mb: u64 = std::env::var("LEGACYFLO_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let Ok(dir) = tempfile::tempdir_in(
        std::env::var("LEGACYFLO_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    ) else {
        eprintln!("cannot create a temporary directory");
        std::process::exit(1);
    };
    eprintln!("generating {mb} MiB corpus…");
    let msgs = corpus(mb << 20);
    let total: u64 = msgs.iter().map(Message::size).sum();
    let n = msgs.len();
    println!(
        "corpus: {n} messages, {:.1} MB, {} folders",
        total as f64 / 1e6,
        12
    );

    // (a) raw bytes: the physical limit.
    let raw_path = dir.path().join("raw.bin");
    let t = Instant::now();
    let raw_ok = (|| -> std::io::Result<()> {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&raw_path)?);
        for m in &msgs {
            f.write_all(&m.raw)?;
        }
        f.flush()?;
        f.get_ref().sync_all()
    })();
    if let Err(e) = raw_ok {
        eprintln!("raw write failed: {e}");
        std::process::exit(1);
    }
    let raw_secs = t.elapsed().as_secs_f64();
    line("raw file", n, total, raw_secs, None);
    let _ = std::fs::remove_file(&raw_path);

    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("no runtime");
        std::process::exit(1);
    };

    // (b) ZIP of .eml through the engine.
    let zip_path = dir.path().join("bench.zip");
    let req = zip_request(dir.path(), &zip_path);
    let t = Instant::now();
    let res = rt.block_on(async {
        let sink = legacyflo_sinks::open_sink(&req)?;
        let source = Arc::new(MemorySource::new(msgs.clone()));
        Ok::<_, legacyflo_core::Error>(Engine::new("MBOX-S3-ZIP", source, sink).run().await)
    });
    match res {
        Ok(r) if r.error.is_none() => line(
            "zip (engine + zip sink)",
            n,
            total,
            t.elapsed().as_secs_f64(),
            Some(raw_secs),
        ),
        Ok(r) => eprintln!("zip run failed: {:?}", r.error),
        Err(e) => eprintln!("zip sink: {e}"),
    }
    let _ = std::fs::remove_file(&zip_path);

    // (c) mbox tree on disk -> ZIP: the quickstart path.
    let mbox_dir = dir.path().join("mbox");
    let spec = legacyflo_corpus::CorpusSpec {
        seed: 42,
        messages: usize::MAX,
        total_bytes: Some(mb << 20),
        big_attachments: 3,
        folders: 12,
    };
    drop(msgs);
    if let Err(e) =
        legacyflo_corpus::write_mbox_tree(&mbox_dir, legacyflo_corpus::bench_corpus(&spec))
    {
        eprintln!("cannot write mbox corpus: {e}");
        std::process::exit(1);
    }
    let req = zip_request(&mbox_dir, &zip_path);
    let t = Instant::now();
    let res = rt.block_on(async {
        let source = legacyflo_sources::open_source(&req)?;
        let sink = legacyflo_sinks::open_sink(&req)?;
        Ok::<_, legacyflo_core::Error>(Engine::new("MBOX-S3-ZIP", source, sink).run().await)
    });
    match res {
        Ok(r) if r.error.is_none() => {
            let t2 = r.report.totals();
            line(
                "mbox tree -> zip (end to end)",
                t2.messages as usize,
                t2.bytes,
                t.elapsed().as_secs_f64(),
                Some(raw_secs),
            );
        }
        Ok(r) => eprintln!("mbox->zip run failed: {:?}", r.error),
        Err(e) => eprintln!("mbox->zip: {e}"),
    }
}
