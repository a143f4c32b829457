//! The spool: an append-only file of length-prefixed message records that makes the PST
//! sink's commits durable before the PST itself can be written.
//!
//! File layout: [`MAGIC`], then records of
//! `u32 LE meta length | u64 LE raw length | meta (JSON of RecordMeta) | raw bytes`.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::BACKEND;
use crate::error::{SinkError, SinkResult};
use crate::util::{key_of, sync_dir};
use legacyflo_core::FolderPath;

/// The first bytes of a spool file.
pub(super) const MAGIC: &[u8; 8] = b"LFPSPL1\n";
/// Bytes buffered before they are written to the file.
const BUFFER: usize = 1 << 20;
/// Longest record metadata accepted when reading a spool back (a sanity bound).
const MAX_META: u32 = 16 << 20;

/// The metadata of one spooled message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct RecordMeta {
    /// Folder segments (never empty: the root folder is stored as `INBOX`).
    #[serde(rename = "f")]
    pub folder: Vec<String>,
    /// The source id.
    #[serde(rename = "s")]
    pub source_id: String,
    /// `\Seen`.
    #[serde(rename = "r")]
    pub read: bool,
    /// `\Flagged`.
    #[serde(rename = "g")]
    pub flagged: bool,
    /// Internal date, unix seconds.
    #[serde(rename = "d")]
    pub date: Option<i64>,
}

impl RecordMeta {
    /// The identity used for duplicate detection.
    pub(super) fn key(&self) -> u128 {
        key_of(
            &FolderPath::new(self.folder.iter().cloned()),
            &self.source_id,
        )
    }
}

/// What a commit made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SpoolState {
    /// Committed length of the spool file.
    pub len: u64,
    /// Records in those bytes.
    pub records: u64,
}

/// The spool being written.
#[derive(Debug)]
pub(super) struct Spool {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    end: u64,
    records: u64,
    committed: SpoolState,
    keys: HashSet<u128>,
    pending: Vec<u128>,
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> SinkError {
    let context = format!("{what} {}", path.display());
    move |e| SinkError::io(BACKEND, context, e)
}

impl Spool {
    /// Starts a new, empty (and committed) spool at `path`, replacing an old one.
    pub(super) fn create(path: &Path) -> SinkResult<Spool> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(io_err("create", path))?;
        file.write_all(MAGIC).map_err(io_err("write", path))?;
        file.sync_all().map_err(io_err("sync", path))?;
        drop(file);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            sync_dir(dir).map_err(io_err("sync", dir))?;
        }
        let file = open_append(path)?;
        let committed = SpoolState {
            len: MAGIC.len() as u64,
            records: 0,
        };
        Ok(Spool {
            path: path.to_path_buf(),
            file,
            buf: Vec::new(),
            end: committed.len,
            records: 0,
            committed,
            keys: HashSet::new(),
            pending: Vec::new(),
        })
    }

    /// Reopens the spool of an interrupted run, cut back to `state`, and rebuilds the set
    /// of identities from its records.
    pub(super) fn resume(path: &Path, state: SpoolState) -> SinkResult<Spool> {
        let file = open_append(path)?;
        let len = file.metadata().map_err(io_err("stat", path))?.len();
        if len < state.len || state.len < MAGIC.len() as u64 {
            return Err(SinkError::state(
                BACKEND,
                format!(
                    "{} is shorter ({len} bytes) than its checkpoint ({} bytes)",
                    path.display(),
                    state.len
                ),
            ));
        }
        file.set_len(state.len).map_err(io_err("truncate", path))?;
        file.sync_all().map_err(io_err("sync", path))?;
        let mut keys = HashSet::new();
        let mut reader = SpoolReader::open(path, state.len)?;
        let mut records = 0u64;
        while let Some((meta, raw_len)) = reader.next_meta()? {
            reader.skip(raw_len)?;
            keys.insert(meta.key());
            records += 1;
        }
        if records != state.records {
            return Err(SinkError::state(
                BACKEND,
                format!(
                    "{} holds {records} committed messages, its checkpoint says {}",
                    path.display(),
                    state.records
                ),
            ));
        }
        Ok(Spool {
            path: path.to_path_buf(),
            file,
            buf: Vec::new(),
            end: state.len,
            records,
            committed: state,
            keys,
            pending: Vec::new(),
        })
    }

    /// The spool's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `key` was written (committed or not).
    pub(super) fn contains(&self, key: u128) -> bool {
        self.keys.contains(&key)
    }

    /// Whether there are writes since the last commit.
    pub(super) fn dirty(&self) -> bool {
        self.end != self.committed.len
    }

    /// Appends one record.
    pub(super) fn append(&mut self, meta: &RecordMeta, raw: &[u8]) -> SinkResult<()> {
        let m = serde_json::to_vec(meta)
            .map_err(|e| SinkError::misuse(BACKEND, format!("spool record: {e}")))?;
        let meta_len = u32::try_from(m.len())
            .map_err(|_| SinkError::misuse(BACKEND, "spool record metadata too long"))?;
        self.buf.extend_from_slice(&meta_len.to_le_bytes());
        self.buf
            .extend_from_slice(&(raw.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(&m);
        self.end += 12 + m.len() as u64 + raw.len() as u64;
        if self.buf.len() + raw.len() > BUFFER {
            self.flush()?;
            self.file
                .write_all(raw)
                .map_err(io_err("write", &self.path))?;
        } else {
            self.buf.extend_from_slice(raw);
        }
        let key = meta.key();
        self.keys.insert(key);
        self.pending.push(key);
        self.records += 1;
        Ok(())
    }

    fn flush(&mut self) -> SinkResult<()> {
        if !self.buf.is_empty() {
            self.file
                .write_all(&self.buf)
                .map_err(io_err("write", &self.path))?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes and syncs everything appended; returns the state to resume from.
    pub(super) fn commit(&mut self) -> SinkResult<SpoolState> {
        self.flush()?;
        self.file.sync_data().map_err(io_err("sync", &self.path))?;
        self.committed = SpoolState {
            len: self.end,
            records: self.records,
        };
        self.pending.clear();
        Ok(self.committed)
    }

    /// The last committed state.
    pub(super) fn committed(&self) -> SpoolState {
        self.committed
    }

    /// Cuts the spool back to its last commit and forgets the identities written since.
    pub(super) fn rollback(&mut self) -> SinkResult<()> {
        self.buf.clear();
        self.file
            .set_len(self.committed.len)
            .map_err(io_err("truncate", &self.path))?;
        for k in self.pending.drain(..) {
            self.keys.remove(&k);
        }
        self.end = self.committed.len;
        self.records = self.committed.records;
        Ok(())
    }
}

fn open_append(path: &Path) -> SinkResult<File> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_err("open", path))
}

/// Reads the records of a spool up to a committed length.
pub(super) struct SpoolReader {
    path: PathBuf,
    input: BufReader<File>,
    pos: u64,
    end: u64,
}

impl SpoolReader {
    /// Opens `path`, checks its header and reads records up to `end`.
    pub(super) fn open(path: &Path, end: u64) -> SinkResult<SpoolReader> {
        let file = File::open(path).map_err(io_err("open", path))?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic).map_err(io_err("read", path))?;
        if &magic != MAGIC {
            return Err(SinkError::state(
                BACKEND,
                format!("{} is not a PST sink spool", path.display()),
            ));
        }
        Ok(SpoolReader {
            path: path.to_path_buf(),
            input,
            pos: MAGIC.len() as u64,
            end,
        })
    }

    fn corrupt(&self, what: &str) -> SinkError {
        SinkError::state(
            BACKEND,
            format!("{} at byte {}: {what}", self.path.display(), self.pos),
        )
    }

    /// The next record's metadata and raw length, or `None` at the committed end.
    pub(super) fn next_meta(&mut self) -> SinkResult<Option<(RecordMeta, u64)>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        if self.pos + 12 > self.end {
            return Err(self.corrupt("truncated record header"));
        }
        let mut head = [0u8; 12];
        self.input
            .read_exact(&mut head)
            .map_err(io_err("read", &self.path))?;
        let [a, b, c, d, rest @ ..] = head;
        let meta_len = u32::from_le_bytes([a, b, c, d]);
        let raw_len = u64::from_le_bytes(rest);
        if meta_len > MAX_META || self.pos + 12 + u64::from(meta_len) + raw_len > self.end {
            return Err(self.corrupt("record runs past the committed end"));
        }
        let mut m = vec![0u8; meta_len as usize];
        self.input
            .read_exact(&mut m)
            .map_err(io_err("read", &self.path))?;
        let meta: RecordMeta = serde_json::from_slice(&m)
            .map_err(|e| self.corrupt(&format!("bad record metadata: {e}")))?;
        self.pos += 12 + u64::from(meta_len);
        Ok(Some((meta, raw_len)))
    }

    /// Skips the raw bytes of the current record.
    pub(super) fn skip(&mut self, raw_len: u64) -> SinkResult<()> {
        let delta = i64::try_from(raw_len).map_err(|_| self.corrupt("record too long"))?;
        self.input
            .seek_relative(delta)
            .map_err(io_err("seek", &self.path))?;
        self.pos += raw_len;
        Ok(())
    }

    /// Reads the raw bytes of the current record.
    pub(super) fn read_raw(&mut self, raw_len: u64) -> SinkResult<Vec<u8>> {
        let n = usize::try_from(raw_len).map_err(|_| self.corrupt("record too long"))?;
        let mut raw = vec![0u8; n];
        self.input
            .read_exact(&mut raw)
            .map_err(io_err("read", &self.path))?;
        self.pos += raw_len;
        Ok(raw)
    }
}
