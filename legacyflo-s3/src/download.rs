//! Downloading objects: to a local spool file (sources that need seeking), or to memory
//! for small objects (state).

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::ChecksumMode;
use tokio::io::AsyncWriteExt;
use tracing::info;

use crate::error::{S3Error, S3Result};

/// Downloads `s3://bucket/key` into the file `dest` (created or truncated, synced) and
/// returns its size. The SDK validates the stored full-object checksum when there is one
/// (`ChecksumMode::Enabled`); the byte count is checked against `Content-Length`. On
/// error the partial file is removed.
pub async fn download_to_file(
    client: &Client,
    bucket: &str,
    key: &str,
    dest: &Path,
) -> S3Result<u64> {
    let result = download_inner(client, bucket, key, dest).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}

async fn download_inner(client: &Client, bucket: &str, key: &str, dest: &Path) -> S3Result<u64> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|e| S3Error::from_sdk(e, "GetObject", bucket, Some(key)))?;
    let expected = out.content_length().and_then(|l| u64::try_from(l).ok());
    let ctx = || format!("write {}", dest.display());
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| S3Error::io(ctx(), e))?;
    let mut body = out.body;
    let mut n: u64 = 0;
    loop {
        let chunk = body
            .try_next()
            .await
            .map_err(|e| body_error(&e, bucket, key))?;
        let Some(chunk) = chunk else { break };
        n += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| S3Error::io(ctx(), e))?;
    }
    file.sync_all().await.map_err(|e| S3Error::io(ctx(), e))?;
    if let Some(len) = expected
        && len != n
    {
        return Err(S3Error::Temporary {
            bucket: bucket.to_string(),
            action: "GetObject",
            detail: format!("s3://{bucket}/{key}: got {n} of {len} bytes"),
        });
    }
    info!(message = "object downloaded", bucket, key, bytes = n, dest = %dest.display());
    Ok(n)
}

/// The whole object as bytes, or `None` when it does not exist. For small objects only.
pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> S3Result<Option<Vec<u8>>> {
    let out = match client
        .get_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => {
            return match S3Error::from_sdk(e, "GetObject", bucket, Some(key)) {
                S3Error::NoSuchKey { .. } => Ok(None),
                other => Err(other),
            };
        }
    };
    let data = out
        .body
        .collect()
        .await
        .map_err(|e| body_error(&e, bucket, key))?;
    Ok(Some(data.into_bytes().to_vec()))
}

/// Size and user metadata of an object, or `None` when it does not exist.
pub async fn head(
    client: &Client,
    bucket: &str,
    key: &str,
) -> S3Result<Option<(u64, std::collections::HashMap<String, String>)>> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(o) => Ok(Some((
            o.content_length()
                .and_then(|l| u64::try_from(l).ok())
                .unwrap_or(0),
            o.metadata().cloned().unwrap_or_default(),
        ))),
        Err(e) => match S3Error::from_sdk(e, "HeadObject", bucket, Some(key)) {
            S3Error::NoSuchKey { .. } => Ok(None),
            other => Err(other),
        },
    }
}

/// An error while reading a response body: a checksum mismatch (the SDK validates the
/// stored checksum as the body streams) or a broken connection.
fn body_error(e: &(dyn std::error::Error + 'static), bucket: &str, key: &str) -> S3Error {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cur = c.source();
    }
    if text.to_ascii_lowercase().contains("checksum") {
        S3Error::Checksum {
            bucket: bucket.to_string(),
            key: key.to_string(),
            action: "GetObject",
            detail: text,
        }
    } else {
        S3Error::Temporary {
            bucket: bucket.to_string(),
            action: "GetObject",
            detail: format!("reading s3://{bucket}/{key}: {text}"),
        }
    }
}
