//! The S3 sink's spool check (PST only: a ZIP is streamed) against the real S3 server,
//! SeaweedFS (`scripts/test-infra.sh up`); these tests fail when it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use legacyflo_core::request::{FileFormat, S3Settings};
use legacyflo_core::{Location, Sink};
use legacyflo_s3::Client;
use legacyflo_sinks::s3::S3Sink;
use legacyflo_testkit::servers::{S3Server, s3_server};

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
    if let Err(e) = client.create_bucket().bucket(bucket).send().await {
        let text = format!("{e:?}");
        assert!(
            text.contains("BucketAlreadyOwnedByYou"),
            "create bucket: {text}"
        );
    }
    (server, client)
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

/// A source far larger than any test disk (a sparse file) makes a fresh start fail before
/// anything is written, naming the spool, the free space and the need.
#[tokio::test]
async fn a_source_larger_than_the_spool_disk_is_refused_before_starting() {
    let bucket = "spool-check";
    let (server, client) = setup(bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("huge.mbox");
    let f = std::fs::File::create(&source).unwrap();
    f.set_len(8 << 40).unwrap(); // 8 TiB, sparse
    drop(f);
    // A ZIP is streamed to S3 and needs no spool: it starts.
    let mut zip = S3Sink::new(
        settings(&server),
        bucket,
        "out/huge.zip",
        FileFormat::EmlZip,
    )
    .with_spool_dir(dir.path().join("spool-zip"))
    .with_source(Location::Local(source.clone()));
    zip.open(None).await.expect("a streamed ZIP needs no spool");
    zip.abort().await.unwrap();
    drop(zip);
    for format in [FileFormat::Pst] {
        let spool = dir.path().join(format!("spool-{format:?}"));
        let mut sink = S3Sink::new(settings(&server), bucket, "out/huge.zip", format)
            .with_spool_dir(&spool)
            .with_source(Location::Local(source.clone()));
        let err = sink.open(None).await.expect_err("must refuse").to_string();
        assert!(err.contains("MiB needed to start"), "{err}");
        assert!(err.contains("8388608 MiB"), "names the source size: {err}");
        assert!(err.contains(&spool.display().to_string()), "{err}");
        assert!(err.contains("17616076 MiB needed"), "{err}");
    }
    assert_eq!(open_uploads(&client, bucket).await, 0);
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(
        listed
            .contents()
            .iter()
            .all(|o| !o.key().unwrap_or_default().starts_with("out/huge")),
        "nothing uploaded"
    );
}

/// A source that fits, given as an S3 object (its size read with HeadObject), starts.
#[tokio::test]
async fn a_source_that_fits_starts() {
    let bucket = "spool-fits";
    let (server, client) = setup(bucket).await;
    client
        .put_object()
        .bucket(bucket)
        .key("in/small.mbox")
        .body(vec![b'x'; 4096].into())
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sink = S3Sink::new(
        settings(&server),
        bucket,
        "out/small.zip",
        FileFormat::EmlZip,
    )
    .with_spool_dir(dir.path().join("spool"))
    .with_source(Location::S3 {
        bucket: bucket.to_string(),
        key: "in/small.mbox".to_string(),
    });
    sink.open(None).await.unwrap();
    sink.abort().await.unwrap();
    assert_eq!(open_uploads(&client, bucket).await, 0);
}
