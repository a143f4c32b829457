//! Listing and deleting objects: the small state objects a streamed output keeps beside
//! it while it is unfinished.

use aws_sdk_s3::Client;
use tracing::debug;

use crate::error::{S3Error, S3Result};

/// Every key under `prefix` (`ListObjectsV2`, all pages), in key order.
pub async fn list_keys(client: &Client, bucket: &str, prefix: &str) -> S3Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(e, "ListObjectsV2", bucket, None))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if page.is_truncated() != Some(true) || token.is_none() {
            break;
        }
    }
    keys.sort();
    Ok(keys)
}

/// Deletes `s3://bucket/key` (a missing object is fine, as S3 answers).
pub async fn delete_object(client: &Client, bucket: &str, key: &str) -> S3Result<()> {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| S3Error::from_sdk(e, "DeleteObject", bucket, Some(key)))?;
    debug!(message = "object deleted", bucket, key);
    Ok(())
}

/// Deletes every object under `prefix` (which must not be empty) and returns how many.
pub async fn delete_prefix(client: &Client, bucket: &str, prefix: &str) -> S3Result<usize> {
    if prefix.is_empty() {
        return Err(S3Error::Other {
            bucket: bucket.to_string(),
            action: "DeleteObject",
            detail: "refusing to delete a whole bucket (empty prefix)".to_string(),
        });
    }
    let keys = list_keys(client, bucket, prefix).await?;
    for k in &keys {
        delete_object(client, bucket, k).await?;
    }
    Ok(keys.len())
}
