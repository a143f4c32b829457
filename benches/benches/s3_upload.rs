//! S3 upload throughput and memory (the SeaweedFS S3 server from `scripts/test-infra.sh up`;
//! `. $TEST_INFRA_DIR/env` first):
//!
//! 1. peak RSS of uploading a large spool file (`LEGACYFLO_BENCH_RSS_MB`, default 5120;
//!    a sparse file, as the uploader's memory does not depend on the bytes) with
//!    [`legacyflo_s3::upload_file`], the path a finished PST takes, to the testkit's
//!    [`MemS3`] in discard mode (it checks every part's CRC32C and drops the bytes, where
//!    the test server would store the whole object on disk);
//! 2. the same output of `LEGACYFLO_BENCH_MB` MiB (default 1024, pseudo-random bytes)
//!    uploaded to the test server by legacyflo and by `aws s3 cp` (Debian's `awscli`, required:
//!    `apt-get install awscli`), in the same run, with the ratio;
//! 3. the streamed ZIP sink ([`S3Sink`] with a ZIP destination: messages compressed and
//!    sent as parts while they are written, commits every 2,000 messages or 256 MiB as
//!    the engine does): `LEGACYFLO_BENCH_STREAM_MB` MiB of messages (default 1024) to
//!    the test server, and `LEGACYFLO_BENCH_RSS_MB` MiB (default 5120) to `MemS3` in discard mode.
//!    Each runs in a child process (this program again) so that its peak RSS (`VmHWM`) is
//!    the sink's alone, not the test server's or the generator's of case 2.
//!
//! Output: one line per case with MB/s (of message bytes, and of ZIP bytes for the
//! sink) and peak RSS, and the ratio legacyflo / aws.
//!
//! `LEGACYFLO_BENCH_ONLY=stream-rss` runs only the last case (the streamed ZIP to
//! `MemS3`), `LEGACYFLO_BENCH_RUNS` times (default 1), without the test server; `LEGACYFLO_BENCH_WRAP`
//! (a command and its arguments, split at spaces, e.g. `heaptrack -o /tmp/h`) runs the
//! child under it.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use legacyflo_core::request::{FileFormat, S3Settings};
use legacyflo_core::{FolderPath, Message, Sink};
use legacyflo_s3::UploadOptions;
use legacyflo_sinks::s3::S3Sink;
use legacyflo_testkit::s3mem::{MemS3, Mode};

const CHILD: &str = "LEGACYFLO_BENCH_CHILD";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().to_string())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn settings(endpoint: &str, region: &str) -> S3Settings {
    S3Settings {
        endpoint: Some(endpoint.to_string()),
        region: Some(region.to_string()),
        path_style: true,
    }
}

/// The bodies messages are made of: 61 different ones of about 100 KB, each a text part
/// and a base64 "attachment" of pseudo-random bytes (deflate keeps about three quarters,
/// as with real attachments). Each entry is compressed on its own, so repeating bodies
/// across messages does not help deflate.
fn bodies() -> Vec<Vec<u8>> {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..61u64)
        .map(|b| {
            let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n".to_vec();
            for l in 0..40 {
                raw.extend_from_slice(
                    format!("Line {l} of body {b}: the quick brown fox jumps over the lazy dog.\r\n")
                        .as_bytes(),
                );
            }
            raw.extend_from_slice(b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n");
            let mut x = (b + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for _ in 0..1250 {
                for _ in 0..8 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    for k in 0..10 {
                        raw.push(B64[((x >> (k * 6)) & 63) as usize]);
                    }
                }
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"--b--\r\n");
            raw
        })
        .collect()
}

/// Message `i`: its own headers and one of the `bodies`.
fn message(i: u64, bodies: &[Vec<u8>]) -> Message {
    let body = &bodies[(i as usize) % bodies.len()];
    let mut raw = format!(
        "Message-ID: <bench{i}@s3.bench>\r\nFrom: Bench <bench@s3.bench>\r\nTo: you@s3.bench\r\n\
         Subject: bench message {i}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let folder = ["INBOX", "Sent", "Archive/2023"][(i % 3) as usize];
    Message::new(raw, FolderPath::parse(folder, '/'), format!("b{i}"))
}

/// The child: streams `mb` MiB of messages through the S3 ZIP sink and prints
/// `RESULT <message bytes> <zip bytes> <seconds> <VmHWM KiB>`.
fn child() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("LEGACYFLO_BENCH_ENDPOINT")?;
    let bucket = std::env::var("LEGACYFLO_BENCH_BUCKET")?;
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let mb = env_u64("LEGACYFLO_BENCH_SIZE_MB", 1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let bodies = bodies();
        let mut sink = S3Sink::new(
            settings(&endpoint, &region),
            &bucket,
            "bench/stream.zip",
            FileFormat::EmlZip,
        );
        let t = Instant::now();
        sink.open(None).await?;
        let (mut bytes, mut pending, mut since) = (0u64, 0u64, 0u64);
        let mut i = 0u64;
        while bytes < mb << 20 {
            let m = message(i, &bodies);
            i += 1;
            bytes += m.raw.len() as u64;
            pending += m.raw.len() as u64;
            since += 1;
            sink.write(&m).await?;
            if since >= 2_000 || pending >= 256 << 20 {
                sink.commit().await?;
                (pending, since) = (0, 0);
            }
        }
        sink.commit().await?;
        let outputs = sink.finish().await?;
        let secs = t.elapsed().as_secs_f64();
        let zip = outputs.first().and_then(|o| o.bytes).unwrap_or(0);
        println!("RESULT {bytes} {zip} {secs} {}", vm_hwm_kib());
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

/// Runs the child against `endpoint` and prints its line.
fn stream_case(
    label: &str,
    endpoint: &str,
    bucket: &str,
    mb: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let wrap = std::env::var("LEGACYFLO_BENCH_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut cmd = match wrap.next() {
        Some(tool) => {
            let mut c = Command::new(tool);
            c.args(wrap).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = cmd
        .env(CHILD, "stream")
        .env("LEGACYFLO_BENCH_ENDPOINT", endpoint)
        .env("LEGACYFLO_BENCH_BUCKET", bucket)
        .env("LEGACYFLO_BENCH_SIZE_MB", mb.to_string())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
        return Err(format!(
            "the streamed ZIP case ({label}) failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    };
    let v: Vec<f64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
    let [bytes, zip, secs, hwm] = v[..] else {
        return Err(format!("bad child output: {line}").into());
    };
    println!(
        "streamed ZIP sink {label:<18} {:>6.0} MiB msgs  {:>8.1} MB/s msgs  {:>8.1} MB/s zip  peak RSS {:.0} MB",
        bytes / 1048576.0,
        bytes / 1e6 / secs,
        zip / 1e6 / secs,
        hwm / 1024.0
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var(CHILD).is_ok() {
        return child();
    }
    let rss_mb = env_u64("LEGACYFLO_BENCH_RSS_MB", 5120);
    if std::env::var("LEGACYFLO_BENCH_ONLY").is_ok_and(|v| v == "stream-rss") {
        let discard = MemS3::start(Mode::Discard, &["lf-bench"])?;
        for _ in 0..env_u64("LEGACYFLO_BENCH_RUNS", 1) {
            stream_case("to MemS3 (discard)", &discard.endpoint, "lf-bench", rss_mb)?;
        }
        let stats = discard.stats();
        println!(
            "  MemS3: {} parts, {} without CRC32C, {} bad digests, up to {} in flight",
            stats.parts, stats.parts_without_crc32c, stats.bad_digests, stats.max_parts_in_flight
        );
        return Ok(());
    }
    let server = legacyflo_testkit::servers::s3_server();
    let real = settings(&server.endpoint, &server.region);
    let discard = MemS3::start(Mode::Discard, &["lf-bench"])?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = rt.block_on(legacyflo_s3::client(&real));
    let dclient = rt.block_on(legacyflo_s3::client(&settings(
        &discard.endpoint,
        "us-east-1",
    )));
    let bucket = "lf-bench";
    rt.block_on(async {
        let _ = client.create_bucket().bucket(bucket).send().await;
    });
    let dir = tempfile::tempdir()?;
    let opts = UploadOptions::default();

    // 1. Peak RSS of a spool-file upload (the PST path), to the discarding server.
    let sparse = dir.path().join("sparse.zip");
    std::fs::File::create(&sparse)?.set_len(rss_mb << 20)?;
    let before = vm_hwm_kib();
    let t = Instant::now();
    let done = rt.block_on(legacyflo_s3::upload_file(
        &dclient, bucket, "rss.zip", &sparse, &opts,
    ))?;
    let secs = t.elapsed().as_secs_f64();
    let peak = vm_hwm_kib();
    println!(
        "legacyflo upload {rss_mb:>6} MiB  {:>8.1} MB/s  {} parts  peak RSS {:.0} MB (before {:.0} MB; discarding server in-process)",
        done.bytes as f64 / 1e6 / secs,
        done.parts,
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    std::fs::remove_file(&sparse)?;

    // 2. Throughput versus aws s3 cp.
    let mb = env_u64("LEGACYFLO_BENCH_MB", 1024);
    let file = dir.path().join("out.zip");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..mb {
            for b in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
            }
            f.write_all(&buf)?;
        }
        f.flush()?;
    }
    let bytes = mb << 20;
    let t = Instant::now();
    rt.block_on(legacyflo_s3::upload_file(
        &client, bucket, "ours.zip", &file, &opts,
    ))?;
    let ours = t.elapsed().as_secs_f64();
    println!(
        "legacyflo upload {mb:>6} MiB  {:>8.1} MB/s  {ours:.2} s",
        bytes as f64 / 1e6 / ours
    );
    let t = Instant::now();
    let status = Command::new("aws")
        .args([
            "s3",
            "cp",
            "--only-show-errors",
            "--endpoint-url",
            &server.endpoint,
        ])
        .arg(&file)
        .arg(format!("s3://{bucket}/aws.zip"))
        .env("AWS_DEFAULT_REGION", &server.region)
        .status()
        .map_err(|e| format!("`aws` (Debian package awscli) is needed for the comparison: {e}"))?;
    let aws = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("aws s3 cp failed: {status}").into());
    }
    println!(
        "aws s3 cp        {mb:>6} MiB  {:>8.1} MB/s  {aws:.2} s",
        bytes as f64 / 1e6 / aws
    );
    println!("legacyflo / aws throughput: {:.2}x", aws / ours);
    std::fs::remove_file(&file)?;
    rt.block_on(async {
        for k in ["ours.zip", "aws.zip"] {
            let _ = client.delete_object().bucket(bucket).key(k).send().await;
        }
    });

    // 3. The streamed ZIP sink: to SeaweedFS at a size its disk holds easily, and 5 GiB to the discarding
    //    server.
    let stream_mb = env_u64("LEGACYFLO_BENCH_STREAM_MB", 1024);
    stream_case("to SeaweedFS", &server.endpoint, bucket, stream_mb)?;
    rt.block_on(async {
        for k in ["bench/stream.zip", "bench/stream.csv"] {
            let _ = client.delete_object().bucket(bucket).key(k).send().await;
        }
    });
    stream_case("to MemS3 (discard)", &discard.endpoint, bucket, rss_mb)?;
    let stats = discard.stats();
    println!(
        "  MemS3: {} parts, {} without CRC32C, {} bad digests, up to {} in flight",
        stats.parts, stats.parts_without_crc32c, stats.bad_digests, stats.max_parts_in_flight
    );
    Ok(())
}
