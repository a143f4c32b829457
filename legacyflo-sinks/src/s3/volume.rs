//! [`Volume`]: one ZIP volume streamed to S3 while it is written, with its content list.
//!
//! The ZIP bytes (local headers and entry data) go into one multipart upload and the
//! content-list rows into another; both are cut into parts as they grow. The central
//! directory is kept in memory. A commit waits until every part sent is acknowledged and
//! then stores what is not in a part yet: the tails of both streams in one object
//! (`tail-<seq>`) and the central-directory records added since the last commit in another
//! (`cd-<offset>`), both under the output's state prefix. See the module documentation of
//! [`crate::s3`].

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use bytes::Bytes;
use legacyflo_core::codec::EntryMeta;
use legacyflo_core::contentlist::{header_bytes, row_bytes};
use legacyflo_core::{FolderPath, Message, Output, OutputKind};
use legacyflo_s3::{BufferPool, MAX_PART_SIZE, MIN_PART_SIZE, MultipartUpload, S3Error};
use tracing::{debug, info, warn};

use super::BACKEND;
use super::state::{FolderCount, Target, UploadState, VolumeState};
use crate::error::{SinkError, SinkResult};
use crate::zip::format::{Entry, central_comments, end_records};
use crate::zip::pipeline::EntryArchive;

/// An S3 error as this crate's error.
pub(super) fn s3err(e: S3Error) -> SinkError {
    SinkError::S3(e)
}

/// One volume being written.
#[derive(Debug)]
pub(super) struct Volume {
    target: Target,
    number: u32,
    zip: Option<MultipartUpload>,
    csv: Option<MultipartUpload>,
    cd: Vec<u8>,
    zip_bytes: u64,
    raw_bytes: u64,
    csv_bytes: u64,
    entries: u64,
    ordinals: HashMap<FolderPath, u64>,
    /// Identities of the messages stored in this run's volumes.
    keys: HashSet<u128>,
    pending_keys: Vec<u128>,
    committed: VolumeState,
    committed_ordinals: HashMap<FolderPath, u64>,
    committed_zip_tail: Bytes,
    committed_csv_tail: Bytes,
    dirty: bool,
    broken: bool,
    /// The buffers of the state objects a commit writes (see [`scratch`]).
    scratch: BufferPool,
}

/// The buffers of a volume's commits, which hold the tails and the new central-directory
/// records: two (the committed tails are kept, as slices, until the next commit), each
/// sized for two whole part buffers (the most the tails can hold) and a megabyte of
/// records, reused so that commits allocate nothing large.
fn scratch(target: &Target) -> BufferPool {
    let part = target.upload.part_size.clamp(MIN_PART_SIZE, MAX_PART_SIZE);
    BufferPool::new(2 * part + (1 << 20), 2)
}

impl Volume {
    /// A new, empty volume `number`; its uploads are created on first need.
    pub(super) fn create(target: Target, number: u32, keys: HashSet<u128>) -> Volume {
        let header = header_bytes();
        Volume {
            number,
            zip: None,
            csv: None,
            cd: Vec::new(),
            zip_bytes: 0,
            raw_bytes: 0,
            csv_bytes: header.len() as u64,
            entries: 0,
            ordinals: HashMap::new(),
            keys,
            pending_keys: Vec::new(),
            committed: VolumeState {
                number,
                zip: None,
                csv: None,
                zip_bytes: 0,
                raw_bytes: 0,
                csv_bytes: header.len() as u64,
                entries: 0,
                tail_seq: 0,
                tail_zip: 0,
                tail_csv: header.len() as u64,
                tail_crc: 0,
                cd_len: 0,
                cd_crc: 0,
                folders: Vec::new(),
                sealed: false,
            },
            committed_ordinals: HashMap::new(),
            committed_zip_tail: Bytes::new(),
            committed_csv_tail: Bytes::from(header),
            dirty: true,
            broken: false,
            scratch: scratch(&target),
            target,
        }
    }

    /// The volume number.
    pub(super) fn number(&self) -> u32 {
        self.number
    }

    /// Bytes of messages stored in it (uncompressed).
    pub(super) fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    /// The identities of the messages stored (handed to the next volume).
    pub(super) fn take_keys(&mut self) -> HashSet<u128> {
        std::mem::take(&mut self.keys)
    }

    /// The state of the last commit, `sealed` when the volume is to be completed before
    /// the next write.
    pub(super) fn committed_state(&self, sealed: bool) -> VolumeState {
        let mut s = self.committed.clone();
        s.sealed = sealed;
        s
    }

    /// Whether any commit refers to the uploads (then they are kept on errors).
    fn retained(&self) -> bool {
        self.committed.zip.is_some()
    }

    async fn ensure_uploads(&mut self) -> SinkResult<()> {
        if self.zip.is_none() {
            let key = self.target.volume_key(self.number, "zip");
            let o = self.target.options(self.number, "application/zip");
            let mut up =
                MultipartUpload::create(&self.target.client, &self.target.bucket, &key, &o)
                    .await
                    .map_err(s3err)?;
            up.rewind(Vec::new(), &self.committed_zip_tail).await;
            self.zip = Some(up);
        }
        if self.csv.is_none() {
            let key = self.target.volume_key(self.number, "csv");
            let o = self.target.options(self.number, "text/csv");
            let mut up =
                MultipartUpload::create(&self.target.client, &self.target.bucket, &key, &o)
                    .await
                    .map_err(s3err)?;
            up.rewind(Vec::new(), &self.committed_csv_tail).await;
            self.csv = Some(up);
        }
        Ok(())
    }

    /// After an error: uploads no commit refers to are aborted (nothing is left behind);
    /// referenced ones stay for the resume.
    pub(super) async fn clean_up_after_error(&mut self) {
        if self.retained() {
            warn!(message = "the multipart uploads stay open for the resume (re-run the request to complete them)", bucket = %self.target.bucket, key = %self.target.volume_key(self.number, "zip"));
            return;
        }
        for up in [self.zip.take(), self.csv.take()].into_iter().flatten() {
            if let Err(e) = up.abort().await {
                warn!(message = "could not abort a multipart upload", bucket = %self.target.bucket, error = %e);
            }
        }
    }

    /// Makes everything written so far durable and returns the volume's state; `seq` is
    /// this commit's number (names the tail object).
    pub(super) async fn commit(&mut self, seq: u64) -> SinkResult<VolumeState> {
        if self.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        if !self.dirty {
            return Ok(self.committed.clone());
        }
        match self.commit_inner(seq).await {
            Ok(s) => Ok(s),
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    async fn commit_inner(&mut self, seq: u64) -> SinkResult<VolumeState> {
        self.ensure_uploads().await?;
        let (Some(zip), Some(csv)) = (self.zip.as_mut(), self.csv.as_mut()) else {
            return Err(SinkError::misuse(BACKEND, "uploads missing"));
        };
        zip.settle().await.map_err(s3err)?;
        csv.settle().await.map_err(s3err)?;
        // One copy of both tails and of the new central-directory records, in a reused
        // buffer: the tails are sent as the tail object and kept (as slices) for a
        // rollback, the records as their object.
        let start = usize::try_from(self.committed.cd_len)
            .unwrap_or(usize::MAX)
            .min(self.cd.len());
        let delta = &self.cd[start..];
        let split = zip.pending().len();
        let end = split + csv.pending().len();
        let mut buf = self.scratch.get();
        buf.reserve(end + delta.len());
        buf.extend_from_slice(zip.pending());
        buf.extend_from_slice(csv.pending());
        buf.extend_from_slice(delta);
        let buf = self.scratch.lend(buf);
        let tail = buf.slice(..end);
        let (zip_tail, csv_tail) = (buf.slice(..split), buf.slice(split..end));
        let tail_crc = crc32c::crc32c(&tail);
        let t = &self.target;
        let o = t.options(self.number, "application/octet-stream");
        legacyflo_s3::put_bytes(
            &t.client,
            &t.bucket,
            &t.tail_key(self.number, seq),
            tail,
            &o,
        )
        .await
        .map_err(s3err)?;
        if !delta.is_empty() {
            let key = t.cd_key(self.number, self.committed.cd_len);
            legacyflo_s3::put_bytes(&t.client, &t.bucket, &key, buf.slice(end..), &o)
                .await
                .map_err(s3err)?;
        }
        let cd_crc = crc32c::crc32c_append(self.committed.cd_crc, delta);
        let mut folders: Vec<FolderCount> = self
            .ordinals
            .iter()
            .map(|(f, c)| FolderCount {
                folder: f.clone(),
                count: *c,
            })
            .collect();
        folders.sort_by_key(|a| a.folder.to_string());
        let upload = |u: &mut MultipartUpload| UploadState {
            upload_id: u.upload_id().unwrap_or_default().to_string(),
            parts: u.acknowledged().to_vec(),
        };
        let state = VolumeState {
            number: self.number,
            zip: Some(upload(zip)),
            csv: Some(upload(csv)),
            zip_bytes: self.zip_bytes,
            raw_bytes: self.raw_bytes,
            csv_bytes: self.csv_bytes,
            entries: self.entries,
            tail_seq: seq,
            tail_zip: zip_tail.len() as u64,
            tail_csv: csv_tail.len() as u64,
            tail_crc,
            cd_len: self.cd.len() as u64,
            cd_crc,
            folders,
            sealed: false,
        };
        zip.retain();
        csv.retain();
        // A resume needs the tail of the state the engine saved last; keep a few.
        if let Some(old) = self.committed.tail_seq.checked_sub(2).filter(|s| *s > 0) {
            let key = t.tail_key(self.number, old);
            if let Err(e) = legacyflo_s3::delete_object(&t.client, &t.bucket, &key).await {
                warn!(message = "cannot delete an old tail object", key = %key, error = %e);
            }
        }
        self.committed = state.clone();
        self.committed_ordinals = self.ordinals.clone();
        self.committed_zip_tail = zip_tail;
        self.committed_csv_tail = csv_tail;
        self.pending_keys.clear();
        self.dirty = false;
        debug!(
            message = "s3 zip committed",
            volume = self.number,
            entries = self.entries,
            parts = state.zip.as_ref().map_or(0, |z| z.parts.len())
        );
        Ok(state)
    }

    /// Goes back to the last commit: the uploads are rewound (parts sent since are
    /// overwritten later or left out of the completion), the counters restored.
    pub(super) async fn rollback(&mut self) {
        let c = self.committed.clone();
        if let Some(z) = self.zip.as_mut() {
            if z.upload_id().is_some() {
                let parts = c.zip.as_ref().map(|u| u.parts.clone()).unwrap_or_default();
                z.rewind(parts, &self.committed_zip_tail).await;
            } else {
                self.zip = None;
            }
        }
        if let Some(z) = self.csv.as_mut() {
            if z.upload_id().is_some() {
                let parts = c.csv.as_ref().map(|u| u.parts.clone()).unwrap_or_default();
                z.rewind(parts, &self.committed_csv_tail).await;
            } else {
                self.csv = None;
            }
        }
        self.cd
            .truncate(usize::try_from(c.cd_len).unwrap_or(usize::MAX));
        self.zip_bytes = c.zip_bytes;
        self.raw_bytes = c.raw_bytes;
        self.csv_bytes = c.csv_bytes;
        self.entries = c.entries;
        self.ordinals = self.committed_ordinals.clone();
        for k in self.pending_keys.drain(..) {
            self.keys.remove(&k);
        }
        self.dirty = false;
        self.broken = false;
        debug!(
            message = "s3 zip rolled back",
            volume = self.number,
            entries = c.entries
        );
    }

    /// Completes the volume: the tail, the central directory and the end records go in
    /// as the last part(s), the ZIP upload is completed (its composite checksum checked),
    /// then the content list's; the volume's state objects are deleted. Call after a
    /// commit (nothing uncommitted may be in it).
    pub(super) async fn complete(mut self) -> SinkResult<Vec<Output>> {
        if self.dirty || self.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "complete of an uncommitted volume",
            ));
        }
        self.ensure_uploads().await?;
        let (Some(mut zip), Some(csv)) = (self.zip.take(), self.csv.take()) else {
            return Err(SinkError::misuse(BACKEND, "uploads missing"));
        };
        let end = end_records(self.entries, self.zip_bytes, self.cd.len() as u64);
        zip.write(&self.cd).await.map_err(s3err)?;
        zip.write(&end).await.map_err(s3err)?;
        let z = zip.complete().await.map_err(s3err)?;
        let c = csv.complete().await.map_err(s3err)?;
        let t = &self.target;
        let prefix = t.volume_prefix(self.number);
        if let Err(e) = legacyflo_s3::delete_prefix(&t.client, &t.bucket, &prefix).await {
            warn!(message = "cannot delete the state objects", prefix = %prefix, error = %e);
        }
        info!(message = "zip volume completed", bucket = %t.bucket, key = %t.volume_key(self.number, "zip"), entries = self.entries, bytes = z.bytes, parts = z.parts);
        Ok(self.outputs(z.bytes, c.bytes))
    }

    /// The outputs of this volume once complete.
    pub(super) fn outputs(&self, zip_bytes: u64, csv_bytes: u64) -> Vec<Output> {
        let t = &self.target;
        vec![
            Output {
                location: t.url(&t.volume_key(self.number, "zip")),
                kind: OutputKind::Archive,
                bytes: Some(zip_bytes),
                messages: self.entries,
            },
            Output {
                location: t.url(&t.volume_key(self.number, "csv")),
                kind: OutputKind::ContentList,
                bytes: Some(csv_bytes),
                messages: self.entries,
            },
        ]
    }

    /// The size the completed ZIP of the committed state has.
    pub(super) fn final_size(state: &VolumeState) -> u64 {
        state.zip_bytes
            + state.cd_len
            + end_records(state.entries, state.zip_bytes, state.cd_len).len() as u64
    }

    /// Rebuilds a volume from its committed `state` whose uploads are still open.
    pub(super) async fn resume(
        target: Target,
        state: VolumeState,
        mut keys: HashSet<u128>,
        zip_up: UploadState,
        csv_up: UploadState,
    ) -> SinkResult<Volume> {
        let t = &target;
        let n = state.number;
        let bad = |what: String| {
            SinkError::state(
                BACKEND,
                format!("cannot resume {}: {what}", t.url(&t.volume_key(n, "zip"))),
            )
        };
        let tail_key = t.tail_key(n, state.tail_seq);
        let tail = legacyflo_s3::get_bytes(&t.client, &t.bucket, &tail_key)
            .await
            .map_err(s3err)?
            .ok_or_else(|| bad(format!("its state object {} is missing", t.url(&tail_key))))?;
        if tail.len() as u64 != state.tail_zip + state.tail_csv
            || crc32c::crc32c(&tail) != state.tail_crc
        {
            return Err(bad(format!(
                "{} does not match the checkpoint",
                t.url(&tail_key)
            )));
        }
        let split = usize::try_from(state.tail_zip)
            .unwrap_or(usize::MAX)
            .min(tail.len());
        let (zip_tail, csv_tail) = tail.split_at(split);
        let mut cd = Vec::with_capacity(usize::try_from(state.cd_len).unwrap_or(0));
        while (cd.len() as u64) < state.cd_len {
            let key = t.cd_key(n, cd.len() as u64);
            let seg = legacyflo_s3::get_bytes(&t.client, &t.bucket, &key)
                .await
                .map_err(s3err)?
                .ok_or_else(|| bad(format!("its state object {} is missing", t.url(&key))))?;
            if seg.is_empty() {
                return Err(bad(format!("{} is empty", t.url(&key))));
            }
            cd.extend_from_slice(&seg);
        }
        cd.truncate(usize::try_from(state.cd_len).unwrap_or(usize::MAX));
        if crc32c::crc32c(&cd) != state.cd_crc {
            return Err(bad(
                "its central directory does not match the checkpoint".to_string()
            ));
        }
        let comments = central_comments(&cd).map_err(&bad)?;
        if comments.len() as u64 != state.entries {
            return Err(bad(
                "the entry count does not match the checkpoint".to_string()
            ));
        }
        keys.extend(
            comments
                .iter()
                .filter_map(|c| std::str::from_utf8(c).ok())
                .filter_map(EntryMeta::from_comment)
                .filter_map(|m| m.key)
                .filter_map(|k| u128::from_str_radix(&k, 16).ok()),
        );
        let zkey = t.volume_key(n, "zip");
        let ckey = t.volume_key(n, "csv");
        let zip = MultipartUpload::resume(
            &t.client,
            &t.bucket,
            &zkey,
            &zip_up.upload_id,
            zip_up.parts,
            zip_tail,
            &t.upload,
        )
        .await
        .map_err(s3err)?;
        let csv = MultipartUpload::resume(
            &t.client,
            &t.bucket,
            &ckey,
            &csv_up.upload_id,
            csv_up.parts,
            csv_tail,
            &t.upload,
        )
        .await
        .map_err(s3err)?;
        let ordinals: HashMap<FolderPath, u64> = state
            .folders
            .iter()
            .map(|f| (f.folder.clone(), f.count))
            .collect();
        info!(message = "s3 zip volume resumed", bucket = %t.bucket, key = %zkey, entries = state.entries);
        Ok(Volume {
            number: n,
            zip: Some(zip),
            csv: Some(csv),
            cd,
            zip_bytes: state.zip_bytes,
            raw_bytes: state.raw_bytes,
            csv_bytes: state.csv_bytes,
            entries: state.entries,
            committed_ordinals: ordinals.clone(),
            ordinals,
            keys,
            pending_keys: Vec::new(),
            committed_zip_tail: Bytes::copy_from_slice(zip_tail),
            committed_csv_tail: Bytes::copy_from_slice(csv_tail),
            committed: state,
            dirty: false,
            broken: false,
            scratch: scratch(&target),
            target,
        })
    }
}

#[async_trait]
impl EntryArchive for Volume {
    fn backend(&self) -> &'static str {
        BACKEND
    }
    fn keys(&self) -> &HashSet<u128> {
        &self.keys
    }
    fn ordinals(&mut self) -> &mut HashMap<FolderPath, u64> {
        &mut self.ordinals
    }
    fn is_broken(&self) -> bool {
        self.broken
    }
    fn set_broken(&mut self) {
        self.broken = true;
    }
    async fn append(&mut self, message: &Message, key: u128, entry: Entry) -> SinkResult<()> {
        self.ensure_uploads().await?;
        let (Some(zip), Some(csv)) = (self.zip.as_mut(), self.csv.as_mut()) else {
            return Err(SinkError::misuse(BACKEND, "uploads missing"));
        };
        let header = entry.local_header();
        zip.write(&header).await.map_err(s3err)?;
        zip.write(&entry.data).await.map_err(s3err)?;
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        let row = row_bytes(message, &name);
        csv.write(&row).await.map_err(s3err)?;
        self.cd
            .extend_from_slice(&entry.central_record(self.zip_bytes));
        self.zip_bytes += (header.len() + entry.data.len()) as u64;
        self.raw_bytes += entry.size;
        self.csv_bytes += row.len() as u64;
        self.entries += 1;
        self.keys.insert(key);
        self.pending_keys.push(key);
        self.dirty = true;
        Ok(())
    }
}
