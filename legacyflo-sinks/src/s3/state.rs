//! The streamed ZIP's checkpoint ([`StreamState`]) and the names of its objects.

use legacyflo_core::{FolderPath, Output};
use legacyflo_s3::{Client, PartRecord, UploadOptions};
use serde::{Deserialize, Serialize};

/// Version of [`StreamState`] (version 1 is the spooled sink's state).
pub(super) const STREAM_VERSION: u32 = 2;

/// What a commit of the streamed ZIP made durable; the sink's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StreamState {
    /// [`STREAM_VERSION`].
    pub version: u32,
    /// Always `"stream"`.
    pub mode: String,
    /// This run's id (object metadata `legacyflo-run`).
    pub run: String,
    /// Commits made so far (names the tail objects).
    pub seq: u64,
    /// Volumes completed (archive and content list of each).
    pub done: Vec<Output>,
    /// The volume being written, if any.
    pub current: Option<VolumeState>,
}

/// A multipart upload as far as a commit acknowledged it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct UploadState {
    /// Its `UploadId`.
    pub upload_id: String,
    /// The parts S3 acknowledged, in order.
    pub parts: Vec<PartRecord>,
}

/// The last ordinal used in a folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FolderCount {
    pub folder: FolderPath,
    pub count: u64,
}

/// One volume (`name.zip`, `name-002.zip`, …) at a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct VolumeState {
    /// 1-based volume number.
    pub number: u32,
    /// The ZIP's upload (`None` before the first commit created one).
    pub zip: Option<UploadState>,
    /// The content list's upload.
    pub csv: Option<UploadState>,
    /// Bytes of entry data (local headers and data) = offset of the central directory.
    pub zip_bytes: u64,
    /// Bytes of the messages stored (uncompressed), for the volume cap.
    pub raw_bytes: u64,
    /// Bytes of the content list.
    pub csv_bytes: u64,
    /// Entries (= content-list rows).
    pub entries: u64,
    /// The commit whose tail object holds the bytes after the acknowledged parts.
    pub tail_seq: u64,
    /// Bytes of the ZIP tail in that object (the content list's tail follows).
    pub tail_zip: u64,
    /// Bytes of the content list's tail.
    pub tail_csv: u64,
    /// CRC32C of the tail object.
    pub tail_crc: u32,
    /// Bytes of central-directory records (kept in the `cd-` objects).
    pub cd_len: u64,
    /// CRC32C of those bytes.
    pub cd_crc: u32,
    /// Last ordinal per folder.
    pub folders: Vec<FolderCount>,
    /// Set when the volume reached the cap: it is completed before the next write.
    pub sealed: bool,
}

/// The bucket, the names and the upload settings of one streamed output.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub client: Client,
    pub bucket: String,
    /// The first volume's key (`dir/name.zip`).
    pub key: String,
    pub upload: UploadOptions,
    pub run: String,
}

impl Target {
    /// `dir/` (or empty) and the file stem of the output.
    fn split(&self) -> (&str, &str) {
        let (dir, file) = match self.key.rfind('/') {
            Some(i) => (&self.key[..=i], &self.key[i + 1..]),
            None => ("", self.key.as_str()),
        };
        let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
        (dir, stem)
    }

    /// Key of volume `n` with extension `ext`: `dir/name.ext`, `dir/name-002.ext`, …
    pub fn volume_key(&self, n: u32, ext: &str) -> String {
        let (dir, stem) = self.split();
        if n <= 1 {
            format!("{dir}{stem}.{ext}")
        } else {
            format!("{dir}{stem}-{n:03}.{ext}")
        }
    }

    /// Prefix of the state objects: `dir/name.zip.partial/`.
    pub fn state_prefix(&self) -> String {
        format!("{}.partial/", self.key)
    }

    /// Prefix of volume `n`'s state objects.
    pub fn volume_prefix(&self, n: u32) -> String {
        format!("{}v{n:03}-", self.state_prefix())
    }

    /// The tail object of volume `n` written by commit `seq`.
    pub fn tail_key(&self, n: u32, seq: u64) -> String {
        format!("{}tail-{seq:08}", self.volume_prefix(n))
    }

    /// The central-directory object of volume `n` starting at byte `offset`.
    pub fn cd_key(&self, n: u32, offset: u64) -> String {
        format!("{}cd-{offset:016x}", self.volume_prefix(n))
    }

    /// Upload options of an object of volume `n` with content type `ctype`.
    pub fn options(&self, n: u32, ctype: &str) -> UploadOptions {
        let mut o = self.upload.clone();
        o.content_type = Some(ctype.to_string());
        o.metadata = vec![
            ("legacyflo-run".to_string(), self.run.clone()),
            ("legacyflo-volume".to_string(), n.to_string()),
        ];
        o
    }

    /// `s3://bucket/key`.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}
