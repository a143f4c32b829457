//! The S3 plumbing against the real moto server (`scripts/test-infra.sh up`); these tests
//! fail when it is missing. moto does not verify signatures nor the checksums sent with
//! uploads (see docs/test-infra): rejection of a bad part checksum is tested against the
//! documented error in `refusals.rs`; here the read side detects a stored wrong checksum.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::{Duration, Instant};

use legacyflo_core::StateStore;
use legacyflo_core::request::S3Settings;
use legacyflo_s3::{
    Access, Client, MIN_PART_SIZE, MultipartUpload, S3Error, S3StateStore, UploadOptions,
    abort_stale, check_bucket, composite_crc32c, download_to_file, get_bytes, upload_file,
};
use legacyflo_testkit::servers::{S3Server, s3_server};
use sha2::{Digest, Sha256};

fn settings(server: &S3Server) -> S3Settings {
    S3Settings {
        endpoint: Some(server.endpoint.clone()),
        region: Some(server.region.clone()),
        path_style: true,
    }
}

async fn setup(bucket: &str) -> (S3Server, Client) {
    let server = s3_server();
    let client = legacyflo_s3::client(&settings(&server)).await;
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) => {
            let text = format!("{e:?}");
            assert!(
                text.contains("BucketAlreadyOwnedByYou"),
                "create bucket: {text}"
            );
        }
    }
    (server, client)
}

/// Deterministic, incompressible-looking bytes.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn open_uploads(client: &Client, bucket: &str, prefix: &str) -> usize {
    let out = client
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("ListMultipartUploads");
    out.uploads().len()
}

async fn download(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    get_bytes(client, bucket, key)
        .await
        .expect("get")
        .expect("object exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_of_four_parts_with_checksums() {
    let (_s, client) = setup("lf-multipart").await;
    let body = data(3 * MIN_PART_SIZE + 12_345, 1);
    let opts = UploadOptions {
        in_flight: 3,
        ..UploadOptions::default()
    };
    let mut up = MultipartUpload::create(&client, "lf-multipart", "four.bin", &opts)
        .await
        .expect("create");
    // Odd-sized writes: parts are cut at the part size, not at write boundaries.
    for chunk in body.chunks(1_000_003) {
        up.write(chunk).await.expect("write");
    }
    let done = up.complete().await.expect("complete");
    assert_eq!(done.parts, 4);
    assert_eq!(done.bytes, body.len() as u64);
    let crcs: Vec<u32> = body.chunks(MIN_PART_SIZE).map(crc32c::crc32c).collect();
    let want = composite_crc32c(&crcs);
    let head = client
        .head_object()
        .bucket("lf-multipart")
        .key("four.bin")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .expect("head");
    // S3 keeps the composite of the part checksums (`<crc>-4`; moto leaves out the `-4`).
    let stored = head.checksum_crc32_c().expect("a stored CRC32C");
    assert_eq!(
        stored.split('-').next(),
        want.split('-').next(),
        "composite CRC32C"
    );
    assert_eq!(
        done.checksum_crc32c
            .as_deref()
            .and_then(|c| c.split('-').next()),
        stored.split('-').next()
    );
    assert_eq!(download(&client, "lf-multipart", "four.bin").await, body);
    assert_eq!(open_uploads(&client, "lf-multipart", "four.bin").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_over_100_mb_from_a_file() {
    let (_s, client) = setup("lf-big").await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let body = data(101 * 1024 * 1024 + 7, 2);
    let want = hex::encode(Sha256::digest(&body));
    std::fs::write(&src, &body).unwrap();
    drop(body);
    let done = upload_file(
        &client,
        "lf-big",
        "big/big.bin",
        &src,
        &UploadOptions::default(),
    )
    .await
    .expect("upload");
    assert!(done.parts >= 13, "{done:?}");
    assert_eq!(done.bytes, 101 * 1024 * 1024 + 7);
    let back = dir.path().join("back.bin");
    let n = download_to_file(&client, "lf-big", "big/big.bin", &back)
        .await
        .expect("download");
    assert_eq!(n, done.bytes);
    let got = hex::encode(Sha256::digest(std::fs::read(&back).unwrap()));
    assert_eq!(got, want);
    assert_eq!(open_uploads(&client, "lf-big", "big/").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_upload_is_aborted() {
    let (_s, client) = setup("lf-drop").await;
    let mut up = MultipartUpload::create(&client, "lf-drop", "cut.bin", &UploadOptions::default())
        .await
        .expect("create");
    up.write(&data(2 * MIN_PART_SIZE + 10, 3))
        .await
        .expect("write");
    assert_eq!(open_uploads(&client, "lf-drop", "cut.bin").await, 1);
    // An interrupted writer: the task holding the upload is cancelled.
    drop(up);
    let start = Instant::now();
    while open_uploads(&client, "lf-drop", "cut.bin").await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the dropped upload was not aborted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gone = client
        .head_object()
        .bucket("lf-drop")
        .key("cut.bin")
        .send()
        .await;
    assert!(gone.is_err(), "no object may appear from an aborted upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_uploads_of_a_killed_process_are_aborted() {
    let (_s, client) = setup("lf-stale").await;
    for _ in 0..2 {
        let id = client
            .create_multipart_upload()
            .bucket("lf-stale")
            .key("out/a.zip")
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_string();
        client
            .upload_part()
            .bucket("lf-stale")
            .key("out/a.zip")
            .upload_id(id)
            .part_number(1)
            .body(data(1000, 4).into())
            .send()
            .await
            .unwrap();
    }
    // Another output's upload with a longer key is left alone.
    client
        .create_multipart_upload()
        .bucket("lf-stale")
        .key("out/a.zip2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        abort_stale(&client, "lf-stale", "out/a.zip").await.unwrap(),
        2
    );
    assert_eq!(open_uploads(&client, "lf-stale", "out/a.zip").await, 1);
    assert_eq!(
        abort_stale(&client, "lf-stale", "out/a.zip2")
            .await
            .unwrap(),
        1
    );
    assert_eq!(open_uploads(&client, "lf-stale", "out/").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_stored_checksum_is_detected_on_read() {
    let (server, client) = setup("lf-badsum").await;
    // moto stores whatever checksum it is sent (it does not verify); plant a wrong one.
    let body = b"hello, checksum\n";
    let good = legacyflo_s3::crc32c_b64(body);
    let wrong = legacyflo_s3::crc32c_b64(b"something else");
    assert_ne!(good, wrong);
    let resp = server
        .http_with(
            "PUT",
            "/lf-badsum/bad.txt",
            &[
                ("x-amz-sdk-checksum-algorithm", "CRC32C"),
                ("x-amz-checksum-crc32c", wrong.as_str()),
            ],
            body,
        )
        .expect("put");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let err = get_bytes(&client, "lf-badsum", "bad.txt").await.err();
    assert!(
        matches!(err, Some(S3Error::Checksum { .. })),
        "a wrong checksum must be detected: {err:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bad.txt");
    let err = download_to_file(&client, "lf-badsum", "bad.txt", &dest)
        .await
        .err();
    assert!(matches!(err, Some(S3Error::Checksum { .. })), "{err:?}");
    assert!(!dest.exists(), "the partial download is removed");
    // The same object with the right checksum reads fine.
    let resp = server
        .http_with(
            "PUT",
            "/lf-badsum/good.txt",
            &[
                ("x-amz-sdk-checksum-algorithm", "CRC32C"),
                ("x-amz-checksum-crc32c", good.as_str()),
            ],
            body,
        )
        .expect("put");
    assert_eq!(resp.status, 200);
    assert_eq!(download(&client, "lf-badsum", "good.txt").await, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_named_with_the_action() {
    let (_s, client) = setup("lf-exists").await;
    let err = check_bucket(&client, "lf-no-such-bucket", "x.zip", Access::Write)
        .await
        .expect_err("must fail");
    let text = err.to_string();
    assert!(matches!(err, S3Error::NoSuchBucket { .. }), "{err:?}");
    assert!(
        text.contains("lf-no-such-bucket") && text.contains("HeadBucket"),
        "{text}"
    );
    check_bucket(&client, "lf-exists", "dir/x.zip", Access::Write)
        .await
        .expect("an existing bucket passes");
    let listed = client
        .list_objects_v2()
        .bucket("lf-exists")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0), "the probe object is deleted");
    let err = check_bucket(&client, "lf-exists", "missing.zip", Access::Read)
        .await
        .err();
    assert!(matches!(err, Some(S3Error::NoSuchKey { .. })), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_store_round_trip() {
    let (server, client) = setup("lf-state").await;
    let store = S3StateStore::new(settings(&server), "lf-state", "/runs/", "mbox-s3-zip-1234");
    assert_eq!(store.describe(), "s3://lf-state/runs/mbox-s3-zip-1234.json");
    let _ = client
        .delete_object()
        .bucket("lf-state")
        .key("runs/mbox-s3-zip-1234.json")
        .send()
        .await;
    assert_eq!(store.load().await.unwrap(), None);
    store.save(b"{\"a\":1}").await.unwrap();
    store.save(b"{\"a\":2}").await.unwrap();
    assert_eq!(
        store.load().await.unwrap().as_deref(),
        Some(&b"{\"a\":2}"[..])
    );
    assert_eq!(
        download(&client, "lf-state", "runs/mbox-s3-zip-1234.json").await,
        b"{\"a\":2}"
    );
    let missing = S3StateStore::new(settings(&server), "lf-no-state-bucket", "", "k");
    let err = missing.load().await.expect_err("missing bucket");
    assert!(err.to_string().contains("lf-no-state-bucket"), "{err}");
}
