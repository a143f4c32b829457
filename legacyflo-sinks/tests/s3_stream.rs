//! The ZIP streamed to S3 as a multipart upload while it is written: against the real
//! S3 server, SeaweedFS (`scripts/test-infra.sh up`; these tests fail when it is missing),
//! and the testkit's `MemS3` (injects failures, counts parts in flight).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::HashMap;
use std::io::Read;

use legacyflo_core::request::{FileFormat, S3Settings};
use legacyflo_core::{FolderPath, Message, Sink, SinkState, WriteOutcome};
use legacyflo_s3::{Client, UploadOptions};
use legacyflo_sinks::s3::S3Sink;
use legacyflo_testkit::s3mem::{MemS3, Mode};
use legacyflo_testkit::servers::{S3Server, s3_server};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

fn settings(server: &S3Server) -> S3Settings {
    S3Settings {
        endpoint: Some(server.endpoint.clone()),
        region: Some(server.region.clone()),
        path_style: true,
    }
}

fn mem_settings(server: &MemS3) -> S3Settings {
    S3Settings {
        endpoint: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        path_style: true,
    }
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}", nanos % 1_000_000_000_000)
}

async fn real_s3(bucket: &str) -> (S3Server, Client) {
    let server = s3_server();
    let client = legacyflo_s3::client(&settings(&server)).await;
    client.create_bucket().bucket(bucket).send().await.unwrap();
    (server, client)
}

/// Message `i`: about `size` bytes that deflate cannot shrink much (pseudo-random hex).
fn message(i: usize, size: usize) -> Message {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut body = String::with_capacity(size + 80);
    while body.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push_str(&format!("{x:016x}"));
        if body.len() % 78 == 64 {
            body.push_str("\r\n");
        }
    }
    let raw = format!(
        "Message-ID: <m{i}@stream.test>\r\nFrom: a@stream.test\r\nSubject: message {i}\r\n\r\n{body}\r\n"
    );
    let folder = ["INBOX", "Sent", "Archiv/2024"][i % 3];
    Message::new(
        raw.into_bytes(),
        FolderPath::parse(folder, '/'),
        format!("id{i}"),
    )
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn write_all(sink: &mut S3Sink, msgs: &[Message]) {
    for m in msgs {
        sink.begin_folder(&m.folder).await.unwrap();
        let out = sink.write(m).await.unwrap();
        assert!(matches!(out, WriteOutcome::Written { .. }), "{out:?}");
    }
}

async fn get(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    legacyflo_s3::get_bytes(client, bucket, key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("s3://{bucket}/{key} is missing"))
}

/// The `.eml` entries of a ZIP as SHA-256 → count, read with the zip crate.
fn zip_hashes(data: &[u8]) -> HashMap<String, usize> {
    let mut a = ::zip::ZipArchive::new(std::io::Cursor::new(data)).unwrap();
    let mut out = HashMap::new();
    for i in 0..a.len() {
        let mut f = a.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        *out.entry(sha(&b)).or_insert(0) += 1;
    }
    out
}

fn want(msgs: &[Message]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for m in msgs {
        *out.entry(sha(&m.raw)).or_insert(0) += 1;
    }
    out
}

async fn open_uploads(client: &Client, bucket: &str) -> usize {
    let out = client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    out.uploads().len()
}

/// The CRC32C S3 computes for an object sent in parts of `part` bytes: CRC32C of the
/// parts' CRC32Cs, `-N`.
fn composite(data: &[u8], part: usize) -> String {
    let crcs: Vec<u32> = data.chunks(part).map(crc32c::crc32c).collect();
    legacyflo_s3::composite_crc32c(&crcs)
}

fn sink(s: S3Settings, bucket: &str, key: &str) -> S3Sink {
    S3Sink::new(s, bucket, key, FileFormat::EmlZip).with_upload_options(UploadOptions {
        in_flight: 4,
        ..UploadOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_zip_of_several_parts_checksums_every_part() {
    let bucket = unique("stream-parts");
    let (server, client) = real_s3(&bucket).await;
    let spool = tempfile::tempdir().unwrap();
    let msgs: Vec<Message> = (0..300).map(|i| message(i, 100_000)).collect();
    let mut s = sink(settings(&server), &bucket, "out/parts.zip").with_spool_dir(spool.path());
    s.open(None).await.unwrap();
    write_all(&mut s, &msgs[..150]).await;
    s.commit().await.unwrap();
    write_all(&mut s, &msgs[150..]).await;
    s.commit().await.unwrap();
    let outputs = s.finish().await.unwrap();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert_eq!(outputs[0].location, format!("s3://{bucket}/out/parts.zip"));
    assert_eq!(outputs[0].messages, 300);
    // Nothing of the archive touched the local disk.
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);

    let data = get(&client, &bucket, "out/parts.zip").await;
    assert_eq!(zip_hashes(&data), want(&msgs), "every message exactly once");
    let head = client
        .head_object()
        .bucket(&bucket)
        .key("out/parts.zip")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let stored = head
        .checksum_crc32_c()
        .expect("a CRC32C checksum")
        .to_string();
    let parts = data.len().div_ceil(8 * MIB);
    assert!(parts >= 3, "{parts} parts ({} bytes)", data.len());
    assert_eq!(
        stored,
        composite(&data, 8 * MIB),
        "S3's composite of the parts' CRC32Cs is ours"
    );
    let csv = String::from_utf8(get(&client, &bucket, "out/parts.csv").await).unwrap();
    assert_eq!(csv.lines().count(), 301);
    assert_eq!(open_uploads(&client, &bucket).await, 0);
    let left = legacyflo_s3::list_keys(&client, &bucket, "out/parts.zip.partial/")
        .await
        .unwrap();
    assert!(left.is_empty(), "state objects left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_part_carries_a_crc32c_the_server_verifies() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    let client = legacyflo_s3::client(&mem_settings(&server)).await;
    let msgs: Vec<Message> = (0..300).map(|i| message(i, 100_000)).collect();
    server.set_part_delay_ms(400);
    let mut s = sink(mem_settings(&server), "mem", "a/b.zip");
    s.open(None).await.unwrap();
    // A temporary failure of one part is retried (by the SDK) and changes nothing.
    server.fail("UploadPart", 3, 500, "InternalError");
    write_all(&mut s, &msgs).await;
    s.commit().await.unwrap();
    s.finish().await.unwrap();
    let stats = server.stats();
    assert!(stats.parts >= 4, "{stats:?}");
    assert_eq!(stats.parts_without_crc32c, 0, "{stats:?}");
    assert_eq!(stats.bad_digests, 0, "{stats:?}");
    assert!(
        stats.max_parts_in_flight > 1,
        "several parts in flight: {stats:?}"
    );
    let data = server.object("mem", "a/b.zip").unwrap();
    assert_eq!(zip_hashes(&data), want(&msgs));
    let (_, crc) = server.object_info("mem", "a/b.zip").unwrap();
    assert_eq!(crc.unwrap(), composite(&data, 8 * MIB));
    assert!(server.open_uploads().is_empty());
    assert_eq!(
        server.keys("mem"),
        vec!["a/b.csv".to_string(), "a/b.zip".to_string()]
    );
    drop(client);
}

/// A crash after a commit, and a resume from the checkpoint alone on a machine with an
/// empty disk: the output is exactly the committed messages plus the re-delivered rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_on_another_machine_restores_exactly_the_commit() {
    let bucket = unique("stream-resume");
    let (server, client) = real_s3(&bucket).await;
    let msgs: Vec<Message> = (0..240).map(|i| message(i, 90_000)).collect();
    let state: SinkState;
    {
        let spool = tempfile::tempdir().unwrap();
        let mut a = sink(settings(&server), &bucket, "r/x.zip").with_spool_dir(spool.path());
        a.open(None).await.unwrap();
        write_all(&mut a, &msgs[..100]).await;
        state = a.commit().await.unwrap();
        // Written after the commit, partly uploaded as parts, then the process dies.
        write_all(&mut a, &msgs[100..200]).await;
        drop(a);
    }
    let spool = tempfile::tempdir().unwrap();
    let mut b = sink(settings(&server), &bucket, "r/x.zip").with_spool_dir(spool.path());
    b.open(Some(state.clone())).await.unwrap();
    // A re-delivered committed message is a duplicate.
    assert_eq!(b.write(&msgs[5]).await.unwrap(), WriteOutcome::Duplicate);
    write_all(&mut b, &msgs[100..]).await;
    b.commit().await.unwrap();
    let outputs = b.finish().await.unwrap();
    assert_eq!(outputs[0].messages, 240);
    let data = get(&client, &bucket, "r/x.zip").await;
    assert_eq!(zip_hashes(&data), want(&msgs), "every message exactly once");
    let csv = String::from_utf8(get(&client, &bucket, "r/x.csv").await).unwrap();
    assert_eq!(csv.lines().count(), 241);
    assert_eq!(open_uploads(&client, &bucket).await, 0);
    assert!(
        legacyflo_s3::list_keys(&client, &bucket, "r/x.zip.partial/")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_of_a_completed_output_gives_its_outputs() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    let msgs: Vec<Message> = (0..50).map(|i| message(i, 2_000)).collect();
    let mut a = sink(mem_settings(&server), "mem", "f.zip");
    a.open(None).await.unwrap();
    write_all(&mut a, &msgs).await;
    let state = a.commit().await.unwrap();
    let outputs = a.finish().await.unwrap();
    // Killed before the engine saved the finished state: the resume finds the objects.
    let mut b = sink(mem_settings(&server), "mem", "f.zip");
    b.open(Some(state)).await.unwrap();
    assert_eq!(b.finish().await.unwrap(), outputs);
    assert_eq!(
        zip_hashes(&server.object("mem", "f.zip").unwrap()),
        want(&msgs)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_discards_what_was_written_since_the_commit() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    let msgs: Vec<Message> = (0..260).map(|i| message(i, 100_000)).collect();
    let mut s = sink(mem_settings(&server), "mem", "ab.zip");
    s.open(None).await.unwrap();
    write_all(&mut s, &msgs[..100]).await;
    s.commit().await.unwrap();
    // 10 MB after the commit: parts are sent, then discarded.
    write_all(&mut s, &msgs[100..200]).await;
    s.abort().await.unwrap();
    write_all(&mut s, &msgs[200..]).await;
    s.finish().await.unwrap();
    let mut expect = msgs[..100].to_vec();
    expect.extend_from_slice(&msgs[200..]);
    let data = server.object("mem", "ab.zip").unwrap();
    assert_eq!(zip_hashes(&data), want(&expect));
    assert!(server.open_uploads().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_before_any_commit_aborts_and_leaves_nothing() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    server.fail("UploadPart", 2, 403, "AccessDenied");
    let msgs: Vec<Message> = (0..200).map(|i| message(i, 100_000)).collect();
    let mut s = sink(mem_settings(&server), "mem", "e.zip");
    s.open(None).await.unwrap();
    let mut err = None;
    for m in &msgs {
        if let Err(e) = s.write(m).await {
            err = Some(e);
            break;
        }
    }
    // The refused part is noticed by a later write or by the commit.
    let err = match err {
        Some(e) => e,
        None => s
            .commit()
            .await
            .expect_err("the refused part fails the commit"),
    }
    .to_string();
    assert!(err.contains("UploadPart") && err.contains("mem"), "{err}");
    drop(s);
    assert!(
        server.open_uploads().is_empty(),
        "{:?}",
        server.open_uploads()
    );
    assert!(server.keys("mem").is_empty(), "{:?}", server.keys("mem"));
}

/// A refused part after a commit: the uploads the checkpoint refers to stay, and a
/// resume from that checkpoint completes the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_after_a_commit_keeps_the_upload_for_the_resume() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    let msgs: Vec<Message> = (0..200).map(|i| message(i, 100_000)).collect();
    let mut a = sink(mem_settings(&server), "mem", "k.zip");
    a.open(None).await.unwrap();
    write_all(&mut a, &msgs[..100]).await;
    let state = a.commit().await.unwrap();
    server.fail("UploadPart", 1, 403, "AccessDenied");
    let mut failed = false;
    for m in &msgs[100..] {
        if a.write(m).await.is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        failed = a.commit().await.is_err();
    }
    assert!(failed, "the refused part fails the run");
    drop(a);
    assert_eq!(server.open_uploads().len(), 2, "ZIP and content list kept");
    let mut b = sink(mem_settings(&server), "mem", "k.zip");
    b.open(Some(state)).await.unwrap();
    write_all(&mut b, &msgs[100..]).await;
    b.finish().await.unwrap();
    assert_eq!(
        zip_hashes(&server.object("mem", "k.zip").unwrap()),
        want(&msgs)
    );
    assert!(server.open_uploads().is_empty());
    assert_eq!(
        server.keys("mem"),
        vec!["k.csv".to_string(), "k.zip".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_upload_fails_the_resume_clearly() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    let client = legacyflo_s3::client(&mem_settings(&server)).await;
    let msgs: Vec<Message> = (0..20).map(|i| message(i, 1_000)).collect();
    let mut a = sink(mem_settings(&server), "mem", "g.zip");
    a.open(None).await.unwrap();
    write_all(&mut a, &msgs).await;
    let state = a.commit().await.unwrap();
    drop(a);
    legacyflo_s3::abort_stale(&client, "mem", "g.zip")
        .await
        .unwrap();
    let mut b = sink(mem_settings(&server), "mem", "g.zip");
    let err = b.open(Some(state)).await.unwrap_err().to_string();
    assert!(
        err.contains("s3://mem/g.zip") && err.contains("gone"),
        "{err}"
    );
    assert!(
        err.contains("20 messages") && err.contains("checkpoint"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_cut_at_the_cap() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    let msgs: Vec<Message> = (0..90).map(|i| message(i, 20_000)).collect();
    let mut s = sink(mem_settings(&server), "mem", "v/box.zip").with_volume_cap(600_000);
    s.open(None).await.unwrap();
    let mut state = None;
    for chunk in msgs.chunks(30) {
        write_all(&mut s, chunk).await;
        state = Some(s.commit().await.unwrap());
    }
    // Resume from the last checkpoint on a fresh sink: the sealed volume is completed.
    drop(s);
    let mut s = sink(mem_settings(&server), "mem", "v/box.zip").with_volume_cap(600_000);
    s.open(state).await.unwrap();
    let outputs = s.finish().await.unwrap();
    let names: Vec<&str> = outputs.iter().map(|o| o.location.as_str()).collect();
    assert_eq!(
        names,
        [
            "s3://mem/v/box.zip",
            "s3://mem/v/box.csv",
            "s3://mem/v/box-002.zip",
            "s3://mem/v/box-002.csv",
            "s3://mem/v/box-003.zip",
            "s3://mem/v/box-003.csv",
        ]
    );
    let mut got: HashMap<String, usize> = HashMap::new();
    for v in ["v/box.zip", "v/box-002.zip", "v/box-003.zip"] {
        for (h, n) in zip_hashes(&server.object("mem", v).unwrap()) {
            *got.entry(h).or_insert(0) += n;
        }
    }
    assert_eq!(got, want(&msgs), "every message once across the volumes");
    assert!(server.open_uploads().is_empty());
    assert_eq!(server.keys("mem").len(), 6, "{:?}", server.keys("mem"));
}
