//! Resumable multipart uploads: the acknowledged parts as a checkpoint records them, and
//! the [`MultipartUpload`] methods that keep an upload open across commits, rewind it to a
//! checkpoint and take it up again after a crash, possibly on another machine.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use crate::error::{S3Error, S3Result};
use crate::upload::{MultipartUpload, UploadOptions};

/// One part S3 has acknowledged: what a checkpoint stores to verify and complete the
/// upload later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// The part number (1-based).
    #[serde(rename = "n")]
    pub number: i32,
    /// The `ETag` S3 answered (with its quotes, as sent back at completion).
    #[serde(rename = "e")]
    pub etag: String,
    /// The part's CRC32C, which S3 verified when it stored the part.
    #[serde(rename = "c")]
    pub crc32c: u32,
    /// Its size in bytes.
    #[serde(rename = "s")]
    pub size: u64,
}

impl PartRecord {
    /// The CRC32C as base64 of the big-endian value (`x-amz-checksum-crc32c`).
    pub fn crc32c_b64(&self) -> String {
        B64.encode(self.crc32c.to_be_bytes())
    }
}

/// A part as `ListParts` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedPart {
    /// The part number.
    pub number: i32,
    /// Its `ETag`.
    pub etag: String,
    /// Its size.
    pub size: u64,
    /// Its CRC32C (base64), when the store reports it (S3 does for an upload created with
    /// the CRC32C algorithm).
    pub crc32c: Option<String>,
}

fn unquote(s: &str) -> &str {
    s.trim_matches('"')
}

/// The ids of the unfinished multipart uploads of exactly `key`
/// (`ListMultipartUploads` with the key as prefix, all pages).
pub(crate) async fn upload_ids(client: &Client, bucket: &str, key: &str) -> S3Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut id_marker: Option<String> = None;
    loop {
        let out = client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(key)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(e, "ListMultipartUploads", bucket, Some(key)))?;
        ids.extend(
            out.uploads()
                .iter()
                .filter(|u| u.key() == Some(key))
                .filter_map(|u| u.upload_id().map(str::to_string)),
        );
        if out.is_truncated() != Some(true) {
            break;
        }
        key_marker = out.next_key_marker().map(str::to_string);
        id_marker = out.next_upload_id_marker().map(str::to_string);
        if key_marker.is_none() && id_marker.is_none() {
            break;
        }
    }
    Ok(ids)
}

/// Whether the multipart upload `upload_id` of `s3://bucket/key` is still open
/// (`ListMultipartUploads` for the key).
pub async fn upload_exists(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result<bool> {
    Ok(upload_ids(client, bucket, key)
        .await?
        .iter()
        .any(|id| id == upload_id))
}

/// Every part of the unfinished upload `upload_id` (`ListParts`, all pages), in part
/// order. A gone upload (aborted, completed, expired) is [`S3Error::NoSuchUpload`]; an
/// answer that is not the `ListPartsResult` the S3 API reference documents is an error
/// (the parts could not be checked).
pub async fn list_parts(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> S3Result<Vec<ListedPart>> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let result = client
            .list_parts()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker.clone())
            .send()
            .await;
        let page = match result {
            Ok(p) => p,
            Err(e) if e.code() == Some("NoSuchUpload") => {
                return Err(S3Error::NoSuchUpload {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    upload_id: upload_id.to_string(),
                });
            }
            Err(e) => return Err(S3Error::from_sdk(e, "ListParts", bucket, Some(key))),
        };
        for p in page.parts() {
            out.push(ListedPart {
                number: p.part_number().unwrap_or_default(),
                etag: p.e_tag().unwrap_or_default().to_string(),
                size: p
                    .size()
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or_default(),
                crc32c: p.checksum_crc32_c().map(str::to_string),
            });
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        let next = page.next_part_number_marker().map(str::to_string);
        if next.is_none() || next == marker {
            break;
        }
        marker = next;
    }
    out.sort_by_key(|p| p.number);
    Ok(out)
}

/// Checks that `listed` holds every part of `parts` unchanged (same ETag and size, and
/// the same CRC32C where the store reports one); `Err(description)` names the first
/// difference. Parts listed beyond the recorded ones (sent after the checkpoint) are
/// ignored: they are overwritten or left out of the completion.
pub fn verify_parts(parts: &[PartRecord], listed: &[ListedPart]) -> Result<(), String> {
    for p in parts {
        let Some(l) = listed.iter().find(|l| l.number == p.number) else {
            return Err(format!("part {} is missing", p.number));
        };
        if unquote(&l.etag) != unquote(&p.etag) || l.size != p.size {
            return Err(format!(
                "part {} differs: ETag {} / {} bytes stored, {} / {} bytes recorded",
                p.number, l.etag, l.size, p.etag, p.size
            ));
        }
        if let Some(c) = &l.crc32c
            && *c != p.crc32c_b64()
        {
            return Err(format!(
                "part {}: CRC32C {c} stored, {} recorded",
                p.number,
                p.crc32c_b64()
            ));
        }
    }
    Ok(())
}

impl MultipartUpload {
    /// Takes up the unfinished upload `upload_id` of `s3://bucket/key` after a crash:
    /// it must be open (`ListMultipartUploads`) and `ListParts` must show every part of
    /// `parts` unchanged (see [`verify_parts`]; S3 checks them again at completion), then
    /// the upload continues after them with `tail` (the bytes accepted after the last
    /// part) buffered. The result is [`retain`](Self::retain)ed. A gone upload is
    /// [`S3Error::NoSuchUpload`]; one that does not match is [`S3Error::Other`] naming the
    /// difference.
    pub async fn resume(
        client: &Client,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<PartRecord>,
        tail: &[u8],
        options: &UploadOptions,
    ) -> S3Result<MultipartUpload> {
        if !upload_exists(client, bucket, key, upload_id).await? {
            return Err(S3Error::NoSuchUpload {
                bucket: bucket.to_string(),
                key: key.to_string(),
                upload_id: upload_id.to_string(),
            });
        }
        let listed = list_parts(client, bucket, key, upload_id).await?;
        verify_parts(&parts, &listed).map_err(|detail| S3Error::Other {
            bucket: bucket.to_string(),
            action: "ListParts",
            detail: format!(
                "upload {upload_id} of s3://{bucket}/{key} does not match the checkpoint: {detail}"
            ),
        })?;
        let mut upload =
            MultipartUpload::with_id(client, bucket, key, upload_id.to_string(), options);
        upload.retained = true;
        upload.set_position(parts, tail);
        info!(
            message = "multipart upload resumed",
            bucket,
            key,
            upload_id,
            parts = upload.done.len(),
            bytes = upload.bytes
        );
        Ok(upload)
    }

    /// Marks the upload as referenced by a checkpoint: from now on errors and drops leave
    /// it in place (for [`resume`](Self::resume)) instead of aborting it. Only
    /// [`abort`](Self::abort) or completion ends it.
    pub fn retain(&mut self) {
        self.retained = true;
    }

    /// Whether the upload is [`retain`](Self::retain)ed.
    pub fn is_retained(&self) -> bool {
        self.retained
    }

    /// Waits until every part sent so far is acknowledged (or one failed).
    pub async fn settle(&mut self) -> S3Result<()> {
        while !self.running.is_empty() {
            self.join_one().await?;
        }
        Ok(())
    }

    /// The acknowledged parts, in part order. Complete only after [`settle`](Self::settle).
    pub fn acknowledged(&mut self) -> &[PartRecord] {
        self.done.sort_by_key(|p| p.number);
        &self.done
    }

    /// The bytes accepted but not yet sent as a part (less than one part).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// The part size.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Goes back to a checkpoint: waits for the parts under way to end (their results are
    /// dropped, so no late answer can overwrite a part sent again later), then makes
    /// `parts` the acknowledged parts and `tail` the buffered bytes. Parts stored after
    /// the checkpoint are overwritten by the next parts or left out of the completion.
    pub async fn rewind(&mut self, parts: Vec<PartRecord>, tail: &[u8]) {
        while self.running.join_next().await.is_some() {}
        self.set_position(parts, tail);
        debug!(message = "multipart upload rewound", bucket = %self.bucket, key = %self.key, parts = self.done.len(), bytes = self.bytes);
    }

    fn set_position(&mut self, mut parts: Vec<PartRecord>, tail: &[u8]) {
        parts.sort_by_key(|p| p.number);
        self.next_part = parts.last().map_or(1, |p| p.number.saturating_add(1));
        self.bytes = parts.iter().map(|p| p.size).sum::<u64>() + tail.len() as u64;
        self.done = parts;
        self.buf.clear();
        self.buf.extend_from_slice(tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: i32, etag: &str) -> PartRecord {
        PartRecord {
            number: n,
            etag: etag.to_string(),
            crc32c: 7,
            size: 8,
        }
    }

    fn listed(n: i32, etag: &str, crc: Option<String>) -> ListedPart {
        ListedPart {
            number: n,
            etag: etag.to_string(),
            size: 8,
            crc32c: crc,
        }
    }

    #[test]
    fn verify_parts_accepts_extra_parts_and_names_differences() {
        let parts = vec![rec(1, "\"a\""), rec(2, "\"b\"")];
        let ok = vec![
            listed(1, "a", None),
            listed(2, "\"b\"", Some(rec(2, "").crc32c_b64())),
            listed(3, "c", None),
        ];
        assert!(verify_parts(&parts, &ok).is_ok());
        let missing = vec![listed(1, "a", None)];
        assert!(
            verify_parts(&parts, &missing)
                .unwrap_err()
                .contains("part 2 is missing")
        );
        let changed = vec![listed(1, "a", None), listed(2, "x", None)];
        assert!(
            verify_parts(&parts, &changed)
                .unwrap_err()
                .contains("part 2 differs")
        );
        let crc = vec![
            listed(1, "a", Some("AAAAAA==".into())),
            listed(2, "b", None),
        ];
        assert!(verify_parts(&parts, &crc).unwrap_err().contains("CRC32C"));
    }
}
