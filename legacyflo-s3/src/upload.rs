//! Checksummed multipart uploads: streamed, several parts in flight, bounded memory,
//! completed only when every part is acknowledged, aborted on failure or drop.

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::error::{S3Error, S3Result};
use crate::parts::PartRecord;
use crate::pool::BufferPool;

/// Smallest part size used (S3 accepts 5 MiB; 8 MiB is the AWS CLI's default).
pub const MIN_PART_SIZE: usize = 8 * 1024 * 1024;
/// Largest part size used.
pub const MAX_PART_SIZE: usize = 64 * 1024 * 1024;
/// Most parts in one upload (S3's limit).
pub const MAX_PARTS: u64 = 10_000;

/// How an upload is cut and sent.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// Bytes per part, clamped to [`MIN_PART_SIZE`]..=[`MAX_PART_SIZE`].
    pub part_size: usize,
    /// Parts uploaded at once (at least 1). Memory held is about
    /// `(in_flight + 1) * part_size`: an upload allocates that many part buffers at most
    /// and reuses them for all its parts.
    pub in_flight: usize,
    /// `Content-Type` of the object.
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`) of the object.
    pub metadata: Vec<(String, String)>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            part_size: MIN_PART_SIZE,
            in_flight: 8,
            content_type: None,
            metadata: Vec::new(),
        }
    }
}

impl UploadOptions {
    /// These options with a part size large enough for an object of `size` bytes to fit
    /// in [`MAX_PARTS`] parts.
    pub fn for_size(mut self, size: u64) -> Self {
        let need = size.div_ceil(MAX_PARTS);
        let need = usize::try_from(need).unwrap_or(MAX_PART_SIZE);
        self.part_size = self.part_size.max(need);
        self
    }

    pub(crate) fn part_size(&self) -> usize {
        self.part_size.clamp(MIN_PART_SIZE, MAX_PART_SIZE)
    }
}

/// A completed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Its size in bytes.
    pub bytes: u64,
    /// Parts it was sent in (0 for a single `PutObject`).
    pub parts: usize,
    /// Its CRC32C checksum as S3 reports it (base64; `-N` suffix for a multipart object).
    pub checksum_crc32c: Option<String>,
}

/// The CRC32C of `data`, base64 of the big-endian value, as the `x-amz-checksum-crc32c`
/// header carries it.
pub fn crc32c_b64(data: &[u8]) -> String {
    B64.encode(crc32c::crc32c(data).to_be_bytes())
}

/// The composite checksum S3 computes for a multipart upload from its parts' CRC32C
/// values: CRC32C of the concatenated raw part checksums, then `-<parts>`.
pub fn composite_crc32c(part_crcs: &[u32]) -> String {
    let mut raw = Vec::with_capacity(part_crcs.len() * 4);
    for c in part_crcs {
        raw.extend_from_slice(&c.to_be_bytes());
    }
    format!("{}-{}", crc32c_b64(&raw), part_crcs.len())
}

/// A multipart upload being streamed.
///
/// Bytes given to [`write`](Self::write) are cut into parts; each full part is sent with
/// its CRC32C (`x-amz-checksum-crc32c`, which S3 verifies and rejects on mismatch) while
/// more data is buffered, at most `in_flight` parts at once. [`complete`](Self::complete)
/// sends the last part, waits for every part's acknowledgement, completes the upload and
/// checks the composite checksum S3 answers. On any error, and when the value is dropped
/// before `complete` (a cancelled task, a panic elsewhere), the upload is aborted so no
/// parts are left billed in the bucket, unless it was [`retain`](Self::retain)ed: a
/// retained upload is referenced by a checkpoint and kept for a resume
/// ([`resume`](Self::resume), [`rewind`](Self::rewind); see `parts.rs`).
#[derive(Debug)]
pub struct MultipartUpload {
    pub(crate) client: Client,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) upload_id: Option<String>,
    pub(crate) part_size: usize,
    pub(crate) in_flight: usize,
    /// The part being filled (a buffer of `pool`, or empty before the first write).
    pub(crate) buf: Vec<u8>,
    /// The part buffers, reused for every part.
    pub(crate) pool: BufferPool,
    pub(crate) next_part: i32,
    pub(crate) running: JoinSet<S3Result<PartRecord>>,
    pub(crate) done: Vec<PartRecord>,
    pub(crate) bytes: u64,
    /// Kept (not aborted) on errors and on drop: a checkpoint refers to it.
    pub(crate) retained: bool,
}

impl MultipartUpload {
    /// Starts an upload of `s3://bucket/key` (`CreateMultipartUpload` with CRC32C).
    pub async fn create(
        client: &Client,
        bucket: &str,
        key: &str,
        options: &UploadOptions,
    ) -> S3Result<MultipartUpload> {
        let mut req = client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C);
        if let Some(ct) = &options.content_type {
            req = req.content_type(ct);
        }
        for (k, v) in &options.metadata {
            req = req.metadata(k, v);
        }
        let out = req
            .send()
            .await
            .map_err(|e| S3Error::from_sdk(e, "CreateMultipartUpload", bucket, Some(key)))?;
        let upload_id = out
            .upload_id()
            .map(str::to_string)
            .ok_or_else(|| S3Error::Other {
                bucket: bucket.to_string(),
                action: "CreateMultipartUpload",
                detail: "the answer has no UploadId".to_string(),
            })?;
        debug!(message = "multipart upload started", bucket, key, upload_id = %upload_id);
        Ok(MultipartUpload::with_id(
            client, bucket, key, upload_id, options,
        ))
    }

    /// The value for the open upload `upload_id`, before any part.
    pub(crate) fn with_id(
        client: &Client,
        bucket: &str,
        key: &str,
        upload_id: String,
        options: &UploadOptions,
    ) -> MultipartUpload {
        let part_size = options.part_size();
        MultipartUpload {
            client: client.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: Some(upload_id),
            part_size,
            in_flight: options.in_flight.max(1),
            buf: Vec::new(),
            pool: BufferPool::new(part_size, options.in_flight.max(1) + 1),
            next_part: 1,
            running: JoinSet::new(),
            done: Vec::new(),
            bytes: 0,
            retained: false,
        }
    }

    /// The upload id (for logs and tests).
    pub fn upload_id(&self) -> Option<&str> {
        self.upload_id.as_deref()
    }

    /// Bytes accepted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends `data`, sending every part that fills up. Waits while `in_flight` parts are
    /// under way (back-pressure keeps memory bounded). After an error the upload is
    /// aborted (unless retained) and must not be used further (a retained one may be
    /// [`rewind`](Self::rewind)ed).
    pub async fn write(&mut self, mut data: &[u8]) -> S3Result<()> {
        while !data.is_empty() {
            if self.buf.capacity() < self.part_size {
                self.refill().await;
            }
            let room = self.part_size - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.bytes += n as u64;
            if self.buf.len() == self.part_size {
                let part = self.take_part();
                if let Err(e) = self.send_part(part).await {
                    if !self.retained {
                        self.abort_now().await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The filled bytes as a part, lent to the SDK from the pool; `buf` is left empty.
    fn take_part(&mut self) -> Bytes {
        self.pool.lend(std::mem::take(&mut self.buf))
    }

    /// Makes `buf` a whole part buffer of the pool, keeping its bytes: a free one, a new
    /// one while fewer than `in_flight + 1` exist, else the next one a finished part gives
    /// back (at most `in_flight` parts hold one, so one is free or on its way back).
    async fn refill(&mut self) {
        let next = match self.pool.try_get() {
            Some(b) => b,
            None => self.pool.wait().await,
        };
        let old = std::mem::replace(&mut self.buf, next);
        self.buf.extend_from_slice(&old);
    }

    pub(crate) async fn send_part(&mut self, part: Bytes) -> S3Result<()> {
        while self.running.len() >= self.in_flight {
            self.join_one().await?;
        }
        let number = self.next_part;
        if u64::try_from(number).unwrap_or(u64::MAX) > MAX_PARTS {
            return Err(S3Error::Other {
                bucket: self.bucket.clone(),
                action: "UploadPart",
                detail: format!("more than {MAX_PARTS} parts; use a larger part size"),
            });
        }
        self.next_part += 1;
        let client = self.client.clone();
        let bucket = self.bucket.clone();
        let key = self.key.clone();
        let upload_id = self.upload_id.clone().unwrap_or_default();
        self.running.spawn(async move {
            let crc = crc32c::crc32c(&part);
            let sum = B64.encode(crc.to_be_bytes());
            let size = part.len() as u64;
            let out = client
                .upload_part()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Crc32C)
                .checksum_crc32_c(&sum)
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|e| S3Error::from_sdk(e, "UploadPart", &bucket, Some(&key)))?;
            if let Some(answered) = out.checksum_crc32_c()
                && answered != sum
            {
                return Err(S3Error::Checksum {
                    bucket,
                    key,
                    action: "UploadPart",
                    detail: format!("part {number}: sent {sum}, S3 stored {answered}"),
                });
            }
            Ok(PartRecord {
                number,
                etag: out.e_tag().unwrap_or_default().to_string(),
                crc32c: crc,
                size,
            })
        });
        Ok(())
    }

    pub(crate) async fn join_one(&mut self) -> S3Result<()> {
        match self.running.join_next().await {
            None => Ok(()),
            Some(Ok(Ok(done))) => {
                self.done.push(done);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(S3Error::Other {
                bucket: self.bucket.clone(),
                action: "UploadPart",
                detail: format!("upload task failed: {e}"),
            }),
        }
    }

    /// Sends the rest, waits for every part and completes the upload. The object exists
    /// only after this returns `Ok`; on `Err` the upload has been aborted (a retained
    /// upload is kept for a resume).
    pub async fn complete(mut self) -> S3Result<Uploaded> {
        match self.complete_inner().await {
            Ok(u) => Ok(u),
            Err(e) => {
                if !self.retained {
                    self.abort_now().await;
                }
                Err(e)
            }
        }
    }

    async fn complete_inner(&mut self) -> S3Result<Uploaded> {
        if !self.buf.is_empty() || self.next_part == 1 {
            let part = self.take_part();
            self.send_part(part).await?;
        }
        while !self.running.is_empty() {
            self.join_one().await?;
        }
        self.done.sort_by_key(|p| p.number);
        let crcs: Vec<u32> = self.done.iter().map(|p| p.crc32c).collect();
        let parts: Vec<CompletedPart> = self
            .done
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number)
                    .e_tag(&p.etag)
                    .checksum_crc32_c(B64.encode(p.crc32c.to_be_bytes()))
                    .build()
            })
            .collect();
        let count = parts.len();
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                S3Error::from_sdk(e, "CompleteMultipartUpload", &self.bucket, Some(&self.key))
            })?;
        self.upload_id = None;
        let expected = composite_crc32c(&crcs);
        let answered = out.checksum_crc32_c().map(str::to_string);
        if let Some(a) = &answered
            && a.split('-').next() != expected.split('-').next()
        {
            return Err(S3Error::Checksum {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                action: "CompleteMultipartUpload",
                detail: format!("expected {expected}, S3 answered {a}"),
            });
        }
        info!(message = "object uploaded", bucket = %self.bucket, key = %self.key, bytes = self.bytes, parts = count);
        Ok(Uploaded {
            bytes: self.bytes,
            parts: count,
            checksum_crc32c: answered.or(Some(expected)),
        })
    }

    /// Aborts the upload: parts under way are cancelled and S3 drops the stored ones.
    pub async fn abort(mut self) -> S3Result<()> {
        self.running.abort_all();
        let Some(id) = self.upload_id.take() else {
            return Ok(());
        };
        abort_upload(&self.client, &self.bucket, &self.key, &id).await
    }

    pub(crate) async fn abort_now(&mut self) {
        self.running.abort_all();
        if let Some(id) = self.upload_id.take()
            && let Err(e) = abort_upload(&self.client, &self.bucket, &self.key, &id).await
        {
            warn!(message = "could not abort the multipart upload", bucket = %self.bucket, key = %self.key, error = %e);
        }
    }
}

impl Drop for MultipartUpload {
    fn drop(&mut self) {
        self.running.abort_all();
        if self.retained {
            return;
        }
        let Some(id) = self.upload_id.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            warn!(message = "multipart upload dropped outside a runtime; left for abort_stale", bucket = %self.bucket, key = %self.key);
            return;
        };
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        handle.spawn(async move {
            if let Err(e) = abort_upload(&client, &bucket, &key, &id).await {
                warn!(message = "could not abort a dropped multipart upload", bucket = %bucket, key = %key, error = %e);
            }
        });
    }
}

pub(crate) async fn abort_upload(
    client: &Client,
    bucket: &str,
    key: &str,
    id: &str,
) -> S3Result<()> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .send()
        .await
        .map_err(|e| S3Error::from_sdk(e, "AbortMultipartUpload", bucket, Some(key)))?;
    debug!(
        message = "multipart upload aborted",
        bucket,
        key,
        upload_id = id
    );
    Ok(())
}

/// Aborts every unfinished multipart upload of exactly `key` (left by a process that was
/// killed before it could abort) and returns how many there were.
pub async fn abort_stale(client: &Client, bucket: &str, key: &str) -> S3Result<usize> {
    abort_stale_except(client, bucket, key, &[]).await
}

/// Like [`abort_stale`], but leaves the uploads whose ids are in `keep` (those a
/// checkpoint still refers to).
pub async fn abort_stale_except(
    client: &Client,
    bucket: &str,
    key: &str,
    keep: &[&str],
) -> S3Result<usize> {
    let mut aborted = 0;
    for id in crate::parts::upload_ids(client, bucket, key).await? {
        if !keep.contains(&id.as_str()) {
            abort_upload(client, bucket, key, &id).await?;
            aborted += 1;
        }
    }
    if aborted > 0 {
        info!(
            message = "aborted unfinished multipart uploads",
            bucket,
            key,
            count = aborted
        );
    }
    Ok(aborted)
}

/// Uploads the local file `path` to `s3://bucket/key`: one `PutObject` with CRC32C when
/// it fits in one part, else a [`MultipartUpload`] (part size grown for huge files so it
/// fits in 10,000 parts). Memory stays at about `(in_flight + 1) * part_size`.
pub async fn upload_file(
    client: &Client,
    bucket: &str,
    key: &str,
    path: &Path,
    options: &UploadOptions,
) -> S3Result<Uploaded> {
    let ctx = || format!("read {}", path.display());
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| S3Error::io(ctx(), e))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| S3Error::io(ctx(), e))?
        .len();
    let options = options.clone().for_size(size);
    let part_size = options.part_size();
    if size < part_size as u64 {
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.read_to_end(&mut data)
            .await
            .map_err(|e| S3Error::io(ctx(), e))?;
        return put_bytes(client, bucket, key, Bytes::from(data), &options).await;
    }
    let mut upload = MultipartUpload::create(client, bucket, key, &options).await?;
    let mut chunk = vec![0u8; part_size];
    loop {
        let n = read_full(&mut file, &mut chunk)
            .await
            .map_err(|e| S3Error::io(ctx(), e))?;
        if n == 0 {
            break;
        }
        upload.write(&chunk[..n]).await?;
    }
    if upload.bytes() != size {
        let got = upload.bytes();
        upload.abort().await?;
        return Err(S3Error::io(
            ctx(),
            std::io::Error::other(format!(
                "the file changed while uploading ({got} of {size} bytes)"
            )),
        ));
    }
    upload.complete().await
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let r = file.read(&mut buf[n..]).await?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(n)
}

/// Puts `data` as one object with its CRC32C (which S3 verifies).
pub async fn put_bytes(
    client: &Client,
    bucket: &str,
    key: &str,
    data: Bytes,
    options: &UploadOptions,
) -> S3Result<Uploaded> {
    let sum = crc32c_b64(&data);
    let len = data.len() as u64;
    let mut req = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .checksum_crc32_c(&sum)
        .body(ByteStream::from(data));
    if let Some(ct) = &options.content_type {
        req = req.content_type(ct);
    }
    for (k, v) in &options.metadata {
        req = req.metadata(k, v);
    }
    let out = req
        .send()
        .await
        .map_err(|e| S3Error::from_sdk(e, "PutObject", bucket, Some(key)))?;
    if let Some(a) = out.checksum_crc32_c()
        && a != sum
    {
        return Err(S3Error::Checksum {
            bucket: bucket.to_string(),
            key: key.to_string(),
            action: "PutObject",
            detail: format!("sent {sum}, S3 stored {a}"),
        });
    }
    Ok(Uploaded {
        bytes: len,
        parts: 0,
        checksum_crc32c: Some(sum),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // CRC-32C("123456789") = 0xE3069283.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(
            crc32c_b64(b"123456789"),
            B64.encode(0xE306_9283u32.to_be_bytes())
        );
    }

    #[test]
    fn part_size_grows_for_huge_objects() {
        let o = UploadOptions::default();
        assert_eq!(o.clone().for_size(1 << 30).part_size(), MIN_PART_SIZE);
        let big = o.for_size(200 * (1 << 30)).part_size();
        assert!(big as u64 * MAX_PARTS >= 200 * (1 << 30));
        assert!(big <= MAX_PART_SIZE);
    }

    #[test]
    fn composite_checksum_names_the_part_count() {
        assert!(composite_crc32c(&[1, 2, 3]).ends_with("-3"));
    }
}
