//! Refusals S3 documents and moto does not produce (bad part checksum, denied PutObject,
//! unknown bucket), from the testkit's [`RefusingS3`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use legacyflo_core::request::S3Settings;
use legacyflo_s3::{Access, MIN_PART_SIZE, MultipartUpload, S3Error, UploadOptions, check_bucket};
use legacyflo_testkit::s3refuse::RefusingS3;

async fn client(server: &RefusingS3) -> legacyflo_s3::Client {
    // Credentials from the environment (the test-infra env file); any key passes here.
    legacyflo_s3::client(&S3Settings {
        endpoint: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        path_style: true,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_with_a_wrong_checksum_fails_and_the_upload_is_aborted() {
    let server = RefusingS3::start().unwrap();
    let client = client(&server).await;
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
    let client = client(&server).await;
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
