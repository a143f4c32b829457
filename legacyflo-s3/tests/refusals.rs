//! Faults S3 documents that the real test server (SeaweedFS) cannot be made to produce on
//! demand: every part refused as `BadDigest`, a denied PutObject (from the testkit's
//! [`RefusingS3`]), and an object whose stored checksum does not match its bytes (planted
//! in the testkit's `MemS3`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use legacyflo_core::request::S3Settings;
use legacyflo_s3::{
    Access, MIN_PART_SIZE, MultipartUpload, S3Error, UploadOptions, check_bucket, download_to_file,
    get_bytes,
};
use legacyflo_testkit::s3mem::{MemS3, Mode};
use legacyflo_testkit::s3refuse::RefusingS3;

async fn client(endpoint: &str) -> legacyflo_s3::Client {
    // Credentials from the environment (the test-infra env file); any key passes here.
    legacyflo_s3::client(&S3Settings {
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
        path_style: true,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_with_a_wrong_checksum_fails_and_the_upload_is_aborted() {
    let server = RefusingS3::start().unwrap();
    let client = client(&server.endpoint).await;
    let mut up = MultipartUpload::create(&client, "b", "x.zip", &UploadOptions::default())
        .await
        .expect("create");
    let first = up.write(&vec![7u8; MIN_PART_SIZE]).await;
    let err = match first {
        Err(e) => e,
        Ok(()) => up
            .complete()
            .await
            .expect_err("BadDigest must fail the upload"),
    };
    assert!(matches!(err, S3Error::Checksum { .. }), "{err:?}");
    assert!(err.to_string().contains("UploadPart"), "{err}");
    assert_eq!(server.aborts(), 1, "the upload is aborted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_put_and_missing_bucket_name_bucket_and_action() {
    let server = RefusingS3::start().unwrap();
    let client = client(&server.endpoint).await;
    let err = check_bucket(
        &client,
        RefusingS3::DENY_PUT_BUCKET,
        "a/x.zip",
        Access::Write,
    )
    .await
    .expect_err("denied");
    assert!(matches!(err, S3Error::AccessDenied { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("PutObject") && text.contains(RefusingS3::DENY_PUT_BUCKET),
        "{text}"
    );
    let err = check_bucket(&client, RefusingS3::MISSING_BUCKET, "x.zip", Access::Read)
        .await
        .expect_err("missing");
    assert!(matches!(err, S3Error::NoSuchBucket { .. }), "{err:?}");
    check_bucket(&client, "fine", "x.zip", Access::Write)
        .await
        .expect("allowed");
}

/// An object whose stored checksum does not match its bytes (corrupted at rest or in
/// transit) is detected on read, and a partial download is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_stored_checksum_is_detected_on_read() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    let client = client(&server.endpoint).await;
    let body = b"hello, checksum\n";
    let good = legacyflo_s3::crc32c_b64(body);
    let wrong = legacyflo_s3::crc32c_b64(b"something else");
    assert_ne!(good, wrong);
    server.plant("mem", "bad.txt", body, &wrong);
    let err = get_bytes(&client, "mem", "bad.txt").await.err();
    assert!(
        matches!(err, Some(S3Error::Checksum { .. })),
        "a wrong checksum must be detected: {err:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bad.txt");
    let err = download_to_file(&client, "mem", "bad.txt", &dest)
        .await
        .err();
    assert!(matches!(err, Some(S3Error::Checksum { .. })), "{err:?}");
    assert!(!dest.exists(), "the partial download is removed");
    // The same object with the right checksum reads fine.
    server.plant("mem", "good.txt", body, &good);
    assert_eq!(
        get_bytes(&client, "mem", "good.txt")
            .await
            .unwrap()
            .unwrap(),
        body
    );
}

/// A `ListParts` answer that is not the documented `ListPartsResult` (here HTTP 200 with
/// another document) fails the resume: the checkpoint's parts could not be checked, so the
/// upload is not taken up blindly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_list_parts_answer_fails_the_resume() {
    let server = MemS3::start(Mode::Keep, &["mem"]).unwrap();
    let client = client(&server.endpoint).await;
    let opts = UploadOptions::default();
    let mut up = MultipartUpload::create(&client, "mem", "r.bin", &opts)
        .await
        .unwrap();
    up.retain();
    up.write(&vec![5u8; MIN_PART_SIZE + 10]).await.unwrap();
    up.settle().await.unwrap();
    let id = up.upload_id().unwrap().to_string();
    let parts = up.acknowledged().to_vec();
    let tail = up.pending().to_vec();
    drop(up);
    server.fail("ListParts", 1, 200, "NotAListPartsResult");
    let Err(err) =
        MultipartUpload::resume(&client, "mem", "r.bin", &id, parts.clone(), &tail, &opts).await
    else {
        panic!("the parts could not be checked, yet the upload was resumed");
    };
    assert!(err.to_string().contains("ListParts"), "{err}");
    // Readable again: the resume goes ahead.
    MultipartUpload::resume(&client, "mem", "r.bin", &id, parts, &tail, &opts)
        .await
        .expect("resume")
        .complete()
        .await
        .expect("complete");
}
