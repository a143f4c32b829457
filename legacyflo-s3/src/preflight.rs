//! Bucket checks before any work: fail fast, naming the bucket and the refused action.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use tracing::{debug, warn};

use crate::error::{S3Error, S3Result};

/// What a run will do with a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read objects (sources): `HeadBucket`, then `HeadObject` of the input.
    Read,
    /// Write objects (sinks, state): `HeadBucket`, then a real `PutObject` and
    /// `DeleteObject` of a small probe object beside the output.
    Write,
}

/// Checks that `bucket` exists and allows `access`, using the key `near` (the output or
/// input key) to place the probe object. Errors name the bucket and the S3 action refused:
/// [`S3Error::NoSuchBucket`], [`S3Error::AccessDenied`], [`S3Error::BadCredentials`].
///
/// For [`Access::Write`] the probe `<dir of near>/.legacyflo-probe-<file name of near>` is
/// written and deleted again; a refused delete is only logged (the output is still
/// writable), since many backup policies allow writes but not deletes. The name depends on
/// the output only, so a probe left by a process killed between the two calls is replaced
/// and deleted by the next check of the same output (the resume) instead of staying in the
/// bucket.
pub async fn check_bucket(
    client: &Client,
    bucket: &str,
    near: &str,
    access: Access,
) -> S3Result<()> {
    client
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| S3Error::from_sdk(e, "HeadBucket", bucket, None))?;
    match access {
        Access::Read => {
            if !near.is_empty() && !near.ends_with('/') {
                client
                    .head_object()
                    .bucket(bucket)
                    .key(near)
                    .send()
                    .await
                    .map_err(|e| S3Error::from_sdk(e, "HeadObject", bucket, Some(near)))?;
            }
        }
        Access::Write => {
            let probe = probe_key(near);
            client
                .put_object()
                .bucket(bucket)
                .key(&probe)
                .body(ByteStream::from_static(b"legacyflo write probe\n"))
                .send()
                .await
                .map_err(|e| S3Error::from_sdk(e, "PutObject", bucket, Some(&probe)))?;
            if let Err(e) = client
                .delete_object()
                .bucket(bucket)
                .key(&probe)
                .send()
                .await
            {
                let e = S3Error::from_sdk(e, "DeleteObject", bucket, Some(&probe));
                warn!(message = "could not delete the write probe", bucket, key = %probe, error = %e);
            }
        }
    }
    debug!(message = "bucket checked", bucket, ?access);
    Ok(())
}

/// The key of the write probe for output `near`: `<dir>/.legacyflo-probe-<file name>`
/// (`.legacyflo-probe-` alone for an empty or directory-like `near`).
fn probe_key(near: &str) -> String {
    let (dir, file) = near.rsplit_once('/').unwrap_or(("", near));
    let name = format!(".legacyflo-probe-{file}");
    if dir.is_empty() {
        name
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::probe_key;

    #[test]
    fn the_probe_sits_beside_the_output_and_is_named_after_it() {
        assert_eq!(probe_key("out/box.zip"), "out/.legacyflo-probe-box.zip");
        assert_eq!(probe_key("a/b/c.pst"), "a/b/.legacyflo-probe-c.pst");
        assert_eq!(probe_key("x.zip"), ".legacyflo-probe-x.zip");
        assert_eq!(probe_key("dir/"), "dir/.legacyflo-probe-");
        assert_eq!(probe_key(""), ".legacyflo-probe-");
    }
}
