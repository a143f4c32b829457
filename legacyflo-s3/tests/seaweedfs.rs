//! The S3 plumbing against the real S3 server of the tests, SeaweedFS
//! (`scripts/test-infra.sh up`); these tests fail when it is missing. SeaweedFS verifies
//! SigV4 signatures and the checksums sent with uploads, lists parts as S3 does and honours
//! conditional writes; what it cannot be made to do on demand (hold an object whose stored
//! checksum is wrong, refuse every part) is tested against the testkit's servers in
//! `refusals.rs`.
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
    // S3 keeps the composite of the part checksums, `<crc>-4`.
    let stored = head.checksum_crc32_c().expect("a stored CRC32C");
    assert_eq!(stored, want, "composite CRC32C");
    assert_eq!(done.checksum_crc32c.as_deref(), Some(stored));
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

/// A checksum that does not match the bytes is refused by the server (S3's `BadDigest`,
/// or `XAmzContentChecksumMismatch`), on PutObject and on UploadPart, and the product names
/// it as a checksum error; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_checksum_is_refused_by_the_server() {
    let (server, client) = setup("lf-badsum").await;
    let body = b"hello, checksum\n";
    let wrong = legacyflo_s3::crc32c_b64(b"something else");
    assert_ne!(legacyflo_s3::crc32c_b64(body), wrong);
    let err = client
        .put_object()
        .bucket("lf-badsum")
        .key("bad.txt")
        .checksum_crc32_c(wrong.as_str())
        .body(body.to_vec().into())
        .send()
        .await
        .expect_err("a wrong checksum must be refused");
    let err = S3Error::from_sdk(err, "PutObject", "lf-badsum", Some("bad.txt"));
    assert!(matches!(err, S3Error::Checksum { .. }), "{err:?}");
    // The same through plain signed HTTP, to see the status and code.
    let resp = server
        .http_with(
            "PUT",
            "/lf-badsum/bad2.txt",
            &[
                ("x-amz-sdk-checksum-algorithm", "CRC32C"),
                ("x-amz-checksum-crc32c", wrong.as_str()),
            ],
            body,
        )
        .expect("put");
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text().contains("BadDigest") || resp.text().contains("ChecksumMismatch"),
        "{}",
        resp.text()
    );
    for key in ["bad.txt", "bad2.txt"] {
        let got = get_bytes(&client, "lf-badsum", key).await.expect("get");
        assert!(got.is_none(), "{key} must not be stored");
    }
    // A part with a wrong checksum is refused too.
    let id = client
        .create_multipart_upload()
        .bucket("lf-badsum")
        .key("parts.bin")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32C)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let err = client
        .upload_part()
        .bucket("lf-badsum")
        .key("parts.bin")
        .upload_id(&id)
        .part_number(1)
        .checksum_crc32_c(wrong.as_str())
        .body(data(MIN_PART_SIZE, 9).into())
        .send()
        .await
        .expect_err("a part with a wrong checksum must be refused");
    let err = S3Error::from_sdk(err, "UploadPart", "lf-badsum", Some("parts.bin"));
    assert!(matches!(err, S3Error::Checksum { .. }), "{err:?}");
    let listed = legacyflo_s3::list_parts(&client, "lf-badsum", "parts.bin", &id)
        .await
        .expect("ListParts");
    assert!(
        listed.is_empty(),
        "the refused part is not stored: {listed:?}"
    );
    abort_stale(&client, "lf-badsum", "parts.bin")
        .await
        .unwrap();
    // The right checksum is accepted and read back.
    legacyflo_s3::put_bytes(
        &client,
        "lf-badsum",
        "good.txt",
        body.to_vec().into(),
        &UploadOptions::default(),
    )
    .await
    .expect("put");
    assert_eq!(download(&client, "lf-badsum", "good.txt").await, body);
}

/// The HTTP status and the S3 error code of a failed call.
fn status_and_code<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (Option<u16>, Option<String>) {
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    (
        e.raw_response().map(|r| r.status().as_u16()),
        e.code().map(str::to_string),
    )
}

/// Conditional writes, as the S3 API reference documents for PutObject: `If-None-Match: *`
/// on an existing key and `If-Match` with another ETag answer 412 `PreconditionFailed`
/// and change nothing; `If-Match` with the current ETag replaces the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_puts_answer_412_precondition_failed() {
    let (server, client) = setup("lf-conditional").await;
    let _ = client
        .delete_object()
        .bucket("lf-conditional")
        .key("lease")
        .send()
        .await;
    let put = |body: &'static [u8]| {
        client
            .put_object()
            .bucket("lf-conditional")
            .key("lease")
            .body(body.to_vec().into())
    };
    let first = put(b"one")
        .if_none_match("*")
        .send()
        .await
        .expect("If-None-Match: * on a missing key creates it");
    let etag = first.e_tag().expect("an ETag").to_string();
    let refused = [
        put(b"two").if_none_match("*").send().await,
        put(b"three")
            .if_match("\"0123456789abcdef0123456789abcdef\"")
            .send()
            .await,
    ];
    for (why, r) in [
        "If-None-Match: * on an existing key",
        "If-Match with another ETag",
    ]
    .iter()
    .zip(refused)
    {
        let err = r.expect_err(why);
        assert_eq!(
            status_and_code(&err),
            (Some(412), Some("PreconditionFailed".to_string())),
            "{why}: {err:?}"
        );
    }
    assert_eq!(download(&client, "lf-conditional", "lease").await, b"one");
    let replaced = put(b"four")
        .if_match(etag.as_str())
        .send()
        .await
        .expect("If-Match with the current ETag replaces the object");
    assert_ne!(replaced.e_tag(), Some(etag.as_str()));
    assert_eq!(download(&client, "lf-conditional", "lease").await, b"four");
    // The stale ETag no longer matches.
    let err = put(b"five")
        .if_match(etag.as_str())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, Some(412), "{err:?}");
    // The same through plain signed HTTP.
    let r = server
        .http_with(
            "PUT",
            "/lf-conditional/lease",
            &[("If-None-Match", "*")],
            b"six",
        )
        .unwrap();
    assert_eq!(r.status, 412, "{}", r.text());
    assert!(r.text().contains("PreconditionFailed"), "{}", r.text());
    assert_eq!(download(&client, "lf-conditional", "lease").await, b"four");
}

/// A wrong secret is refused by the server's signature check and named as refused
/// credentials, with the bucket and the action, never the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_as_bad_credentials() {
    let (server, _client) = setup("lf-creds").await;
    let secret = "not-the-secret-of-the-test-server";
    let right = legacyflo_s3::client(&settings(&server)).await;
    let conf = right
        .config()
        .to_builder()
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            server.access_key.clone(),
            secret,
            None,
            None,
            "test",
        ))
        .build();
    let wrong = Client::from_conf(conf);
    // An answer with a body names the refusal: SignatureDoesNotMatch.
    let err = get_bytes(&wrong, "lf-creds", "x.zip")
        .await
        .expect_err("a wrong secret must be refused");
    assert!(matches!(err, S3Error::BadCredentials { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("lf-creds")
            && text.contains("GetObject")
            && text.contains("SignatureDoesNotMatch"),
        "{text}"
    );
    assert!(!text.contains(secret), "{text}");
    // The preflight's HeadBucket gets a bare 403 (HEAD answers have no body, as in AWS):
    // refused, with both causes named.
    let err = check_bucket(&wrong, "lf-creds", "x.zip", Access::Write)
        .await
        .expect_err("a wrong secret must be refused");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            S3Error::AccessDenied { .. } | S3Error::BadCredentials { .. }
        ),
        "{err:?}"
    );
    assert!(
        text.contains("lf-creds") && text.contains("HeadBucket") && text.contains("credentials"),
        "{text}"
    );
    assert!(!text.contains(secret), "{text}");
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

/// The error of a resume that must be refused (the upload's Debug is too long to show).
fn refused(r: Result<MultipartUpload, S3Error>, why: &str) -> S3Error {
    match r {
        Ok(_) => panic!("the resume must be refused: {why}"),
        Err(e) => e,
    }
}

/// The resume of a retained upload after a crash checks the checkpoint's parts against
/// what the server lists (`ListParts`: number, ETag and size): a checkpoint that
/// does not match is refused naming the part, a matching one continues and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_checks_the_checkpoint_against_list_parts() {
    let (_s, client) = setup("lf-resume").await;
    let opts = UploadOptions::default();
    let body = data(2 * MIN_PART_SIZE + 4_321, 11);
    // Left by an earlier run of this test against the same server.
    abort_stale(&client, "lf-resume", "r.bin").await.unwrap();
    let mut up = MultipartUpload::create(&client, "lf-resume", "r.bin", &opts)
        .await
        .expect("create");
    up.retain();
    up.write(&body).await.expect("write");
    up.settle().await.expect("settle");
    let id = up.upload_id().unwrap().to_string();
    let parts = up.acknowledged().to_vec();
    let tail = up.pending().to_vec();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(tail.len(), 4_321);
    // The process dies: the retained upload stays open.
    drop(up);
    let listed = legacyflo_s3::list_parts(&client, "lf-resume", "r.bin", &id)
        .await
        .expect("ListParts");
    assert_eq!(listed.len(), 2, "{listed:?}");
    for (l, p) in listed.iter().zip(&parts) {
        assert_eq!((l.number, l.size), (p.number, p.size));
        // The ETag (here the part's MD5) covers the content. The part's CRC32C is optional
        // in the documented answer (SeaweedFS 4.48 leaves it out; AWS lists it for uploads
        // created with CRC32C): compared when present (unit test of `verify_parts`).
        if let Some(c) = &l.crc32c {
            assert_eq!(*c, p.crc32c_b64(), "{l:?}");
        }
    }
    let resume = |parts: Vec<legacyflo_s3::PartRecord>| {
        MultipartUpload::resume(&client, "lf-resume", "r.bin", &id, parts, &tail, &opts)
    };
    let mut bad_etag = parts.clone();
    bad_etag[1].etag = "\"0123456789abcdef0123456789abcdef\"".into();
    let err = refused(resume(bad_etag).await, "a wrong ETag");
    assert!(
        err.to_string().contains("does not match the checkpoint")
            && err.to_string().contains("part 2"),
        "{err}"
    );
    let mut bad_size = parts.clone();
    bad_size[0].size += 1;
    refused(resume(bad_size).await, "a wrong size");
    let mut missing = parts.clone();
    missing.push(legacyflo_s3::PartRecord {
        number: 3,
        ..parts[0].clone()
    });
    let err = refused(resume(missing).await, "a part the server does not have");
    assert!(err.to_string().contains("part 3 is missing"), "{err}");
    // The matching checkpoint resumes; more bytes follow and the object is complete.
    let mut up = resume(parts.clone()).await.expect("resume");
    let more = data(MIN_PART_SIZE / 2, 12);
    up.write(&more).await.expect("write");
    let done = up.complete().await.expect("complete");
    assert_eq!(done.parts, 3);
    let mut want = body.clone();
    want.extend_from_slice(&more);
    assert_eq!(download(&client, "lf-resume", "r.bin").await, want);
    assert_eq!(open_uploads(&client, "lf-resume", "r.bin").await, 0);
    // A gone upload is named as such.
    let err = refused(
        MultipartUpload::resume(&client, "lf-resume", "r.bin", &id, parts, &tail, &opts).await,
        "a completed upload",
    );
    assert!(matches!(err, S3Error::NoSuchUpload { .. }), "{err:?}");
}

/// A process killed between the preflight's probe PutObject and its DeleteObject (found by
/// the kill campaign, `scripts/chaos.sh`) leaves the probe; the next check of the same
/// output (the resume) replaces and deletes it, so no probe stays in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_left_by_a_killed_check_is_removed_by_the_next() {
    let (_s, client) = setup("lf-probe").await;
    // What the killed check left beside its output.
    legacyflo_s3::put_bytes(
        &client,
        "lf-probe",
        "out/.legacyflo-probe-box.zip",
        b"legacyflo write probe\n".to_vec().into(),
        &UploadOptions::default(),
    )
    .await
    .unwrap();
    check_bucket(&client, "lf-probe", "out/box.zip", Access::Write)
        .await
        .expect("writable");
    let left = legacyflo_s3::list_keys(&client, "lf-probe", "out/")
        .await
        .unwrap();
    assert!(left.is_empty(), "probes left: {left:?}");
}
