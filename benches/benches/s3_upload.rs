//! S3 upload throughput against the test S3 server (moto from `scripts/test-infra.sh up`;
//! `. $TEST_INFRA_DIR/env` first):
//!
//! 1. peak RSS of uploading a large spool file (`LEGACYFLO_BENCH_RSS_MB`, default 5120;
//!    a sparse file, as the uploader's memory does not depend on the bytes) with
//!    [`legacyflo_s3::upload_file`], the path a finished ZIP or PST takes, read from
//!    `VmHWM` of this process;
//! 2. the same output of `LEGACYFLO_BENCH_MB` MiB (default 1024, pseudo-random bytes)
//!    uploaded by legacyflo and by `aws s3 cp` (Debian's `awscli`, required: `apt-get
//!    install awscli`), in the same run, with the ratio.
//!
//! Output: one line per case with MB/s, and the ratio legacyflo / aws.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use legacyflo_core::request::S3Settings;
use legacyflo_s3::UploadOptions;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = legacyflo_testkit::servers::s3_server();
    let settings = S3Settings {
        endpoint: Some(server.endpoint.clone()),
        region: Some(server.region.clone()),
        path_style: true,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = rt.block_on(legacyflo_s3::client(&settings));
    let bucket = "lf-bench";
    rt.block_on(async {
        let _ = client.create_bucket().bucket(bucket).send().await;
    });
    let dir = tempfile::tempdir()?;
    let opts = UploadOptions::default();

    // 1. Peak RSS.
    let rss_mb = env_u64("LEGACYFLO_BENCH_RSS_MB", 5120);
    let sparse = dir.path().join("sparse.zip");
    std::fs::File::create(&sparse)?.set_len(rss_mb << 20)?;
    let before = vm_hwm_kib();
    let t = Instant::now();
    let done = rt.block_on(legacyflo_s3::upload_file(
        &client, bucket, "rss.zip", &sparse, &opts,
    ))?;
    let secs = t.elapsed().as_secs_f64();
    let peak = vm_hwm_kib();
    println!(
        "legacyflo upload {rss_mb:>6} MiB  {:>8.1} MB/s  {} parts  peak RSS {:.0} MB (before {:.0} MB)",
        done.bytes as f64 / 1e6 / secs,
        done.parts,
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    std::fs::remove_file(&sparse)?;
    rt.block_on(async {
        let _ = client
            .delete_object()
            .bucket(bucket)
            .key("rss.zip")
            .send()
            .await;
    });

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
    rt.block_on(async {
        for k in ["ours.zip", "aws.zip"] {
            let _ = client.delete_object().bucket(bucket).key(k).send().await;
        }
    });
    Ok(())
}
