//! The archive being written: entries, central directory, commits and rollbacks.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use legacyflo_core::contentlist::{ContentList, ContentListState, content_list_path};
use legacyflo_core::fsutil::{partial_path, rename_durable};
use legacyflo_core::{FolderPath, Message, Output, OutputKind};
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use super::BACKEND;
use super::format::{Entry, central_comments, end_records, entry_count};
use crate::error::{SinkError, SinkResult};
use crate::util::{remove_if_exists, sync_dir};
use legacyflo_core::codec::EntryMeta;

/// Write buffer of the archive.
const WRITE_BUFFER: usize = 1 << 20;

/// What a commit made durable; serialized as the sink's state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct ZipState {
    /// Format version of this state.
    pub version: u32,
    /// Offset of the central directory (= end of the entry data).
    pub cd_offset: u64,
    /// Bytes of central-directory records (also the committed length of the saved copy
    /// `<dest>.partial.cd`).
    pub cd_len: u64,
    /// Length of the committed archive.
    pub committed_len: u64,
    /// Entries in it.
    pub entries: u64,
    /// Messages per folder (the last ordinal used).
    pub folders: Vec<FolderCount>,
    /// The content list's committed state.
    pub content_list: ContentListState,
}

/// The last ordinal used in a folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct FolderCount {
    pub folder: FolderPath,
    pub count: u64,
}

/// The version of [`ZipState`] this build writes and reads.
pub(super) const STATE_VERSION: u32 = 1;

/// An open `<dest>.partial` archive and its content list.
#[derive(Debug)]
pub(super) struct Archive {
    dest: PathBuf,
    partial: PathBuf,
    out: BufWriter<File>,
    /// End of the entry data: where the next entry (or the central directory) goes.
    data_end: u64,
    cd: Vec<u8>,
    /// `<dest>.partial.cd`: an append-only copy of the central-directory records.
    cd_log: File,
    cd_log_path: PathBuf,
    entries: u64,
    /// The last ordinal used per folder.
    pub ordinals: HashMap<FolderPath, u64>,
    /// Identities of the stored messages.
    pub keys: HashSet<u128>,
    /// Keys added since the last commit.
    pending_keys: Vec<u128>,
    list: Option<ContentList>,
    committed: ZipState,
    committed_ordinals: HashMap<FolderPath, u64>,
    dirty: bool,
    /// Set by a failed write or commit: only a rollback may follow.
    pub broken: bool,
}

/// `<dest>.partial.cd`.
fn cd_log_path(dest: &Path) -> PathBuf {
    let mut s = partial_path(dest).into_os_string();
    s.push(".cd");
    PathBuf::from(s)
}

/// Completes a [`finish`](Archive::finish) that was interrupted after the archive's rename
/// (`dest` exists, `<dest>.partial` does not): renames the content list from its partial
/// file (cut back to `state`'s committed length) when that step had not happened, and
/// removes the central-directory copy. Nothing to do when the finish had completed.
pub(super) fn complete_finish(dest: &Path, state: &ZipState) -> SinkResult<()> {
    let csv = content_list_path(dest);
    if !csv.exists() && partial_path(&csv).exists() {
        info!(message = "completing an interrupted finish: the content list", csv = %csv.display());
        ContentList::resume(&csv, state.content_list)
            .and_then(ContentList::finish)
            .map_err(core_io)?;
    }
    let log = cd_log_path(dest);
    remove_if_exists(&log)
        .map_err(|e| SinkError::io(BACKEND, format!("remove {}", log.display()), e))
}

/// The outputs of a finished archive `dest`, read from the files.
pub(super) fn finished_outputs(dest: &Path) -> SinkResult<Vec<Output>> {
    let mut f = File::open(dest)
        .map_err(|e| SinkError::io(BACKEND, format!("open {}", dest.display()), e))?;
    let messages = entry_count(&mut f)
        .map_err(|e| SinkError::io(BACKEND, format!("read {}", dest.display()), e))?;
    let bytes = f
        .metadata()
        .map_err(|e| SinkError::io(BACKEND, format!("stat {}", dest.display()), e))?
        .len();
    let csv = content_list_path(dest);
    let csv_bytes = fs::metadata(&csv)
        .map_err(|e| SinkError::io(BACKEND, format!("stat {}", csv.display()), e))?
        .len();
    Ok(vec![
        Output {
            location: dest.display().to_string(),
            kind: OutputKind::Archive,
            bytes: Some(bytes),
            messages,
        },
        Output {
            location: csv.display().to_string(),
            kind: OutputKind::ContentList,
            bytes: Some(csv_bytes),
            messages,
        },
    ])
}

impl Archive {
    /// Starts a new, empty (and committed) archive, replacing any old partial file.
    pub(super) fn create(dest: &Path) -> SinkResult<Archive> {
        let partial = partial_path(dest);
        if let Some(dir) = partial.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| SinkError::io(BACKEND, format!("create {}", dir.display()), e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&partial)
            .map_err(|e| SinkError::io(BACKEND, format!("create {}", partial.display()), e))?;
        let cd_log_path = cd_log_path(dest);
        let cd_log = File::create(&cd_log_path)
            .map_err(|e| SinkError::io(BACKEND, format!("create {}", cd_log_path.display()), e))?;
        let list = ContentList::create(&content_list_path(dest)).map_err(core_io)?;
        let committed = ZipState {
            version: STATE_VERSION,
            cd_offset: 0,
            cd_len: 0,
            committed_len: 0,
            entries: 0,
            folders: Vec::new(),
            content_list: ContentListState::default(),
        };
        let mut archive = Archive {
            dest: dest.to_path_buf(),
            partial,
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            data_end: 0,
            cd: Vec::new(),
            cd_log,
            cd_log_path,
            entries: 0,
            ordinals: HashMap::new(),
            keys: HashSet::new(),
            pending_keys: Vec::new(),
            list: Some(list),
            committed,
            committed_ordinals: HashMap::new(),
            dirty: true,
            broken: false,
        };
        archive.commit()?;
        if let Some(dir) = archive
            .partial
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            sync_dir(dir)
                .map_err(|e| SinkError::io(BACKEND, format!("sync {}", dir.display()), e))?;
        }
        info!(message = "zip archive created", dest = %dest.display());
        Ok(archive)
    }

    /// Reopens the partial archive of an interrupted run, cut back to `state`.
    pub(super) fn resume(dest: &Path, state: ZipState) -> SinkResult<Archive> {
        let partial = partial_path(dest);
        let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
        let cd_log_path = cd_log_path(dest);
        let mut cd_log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&cd_log_path)
            .map_err(|e| SinkError::io(BACKEND, ctx("open", &cd_log_path), e))?;
        let mut cd = Vec::new();
        (&mut cd_log)
            .take(state.cd_len)
            .read_to_end(&mut cd)
            .map_err(|e| SinkError::io(BACKEND, ctx("read", &cd_log_path), e))?;
        let end = end_records(state.entries, state.cd_offset, state.cd_len);
        if cd.len() as u64 != state.cd_len
            || state.cd_offset + state.cd_len + end.len() as u64 != state.committed_len
        {
            return Err(SinkError::state(
                BACKEND,
                format!("{} does not match the checkpoint", cd_log_path.display()),
            ));
        }
        cd_log
            .set_len(state.cd_len)
            .and_then(|()| cd_log.seek(SeekFrom::End(0)).map(|_| ()))
            .map_err(|e| SinkError::io(BACKEND, ctx("truncate", &cd_log_path), e))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&partial)
            .map_err(|e| SinkError::io(BACKEND, ctx("open", &partial), e))?;
        let len = file
            .metadata()
            .map_err(|e| SinkError::io(BACKEND, ctx("stat", &partial), e))?
            .len();
        if len < state.cd_offset {
            return Err(SinkError::state(
                BACKEND,
                format!(
                    "{} is shorter ({len} bytes) than its checkpoint ({} bytes)",
                    partial.display(),
                    state.cd_offset
                ),
            ));
        }
        file.set_len(state.cd_offset)
            .and_then(|()| file.seek(SeekFrom::Start(state.cd_offset)).map(|_| ()))
            .and_then(|()| file.write_all(&cd))
            .and_then(|()| file.write_all(&end))
            .and_then(|()| file.sync_data())
            .and_then(|()| file.seek(SeekFrom::Start(state.cd_offset)).map(|_| ()))
            .map_err(|e| SinkError::io(BACKEND, ctx("restore", &partial), e))?;
        let comments = central_comments(&cd).map_err(|m| SinkError::state(BACKEND, m))?;
        if comments.len() as u64 != state.entries {
            return Err(SinkError::state(
                BACKEND,
                "entry count does not match the checkpoint",
            ));
        }
        let keys: HashSet<u128> = comments
            .iter()
            .filter_map(|c| std::str::from_utf8(c).ok())
            .filter_map(EntryMeta::from_comment)
            .filter_map(|m| m.key)
            .filter_map(|k| u128::from_str_radix(&k, 16).ok())
            .collect();
        let list =
            ContentList::resume(&content_list_path(dest), state.content_list).map_err(core_io)?;
        let ordinals: HashMap<FolderPath, u64> = state
            .folders
            .iter()
            .map(|f| (f.folder.clone(), f.count))
            .collect();
        info!(message = "zip archive resumed", dest = %dest.display(), entries = state.entries);
        Ok(Archive {
            dest: dest.to_path_buf(),
            partial,
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            data_end: state.cd_offset,
            cd,
            cd_log,
            cd_log_path,
            entries: state.entries,
            committed_ordinals: ordinals.clone(),
            ordinals,
            keys,
            pending_keys: Vec::new(),
            list: Some(list),
            committed: state,
            dirty: false,
            broken: false,
        })
    }

    /// The state of the last commit.
    pub(super) fn committed(&self) -> &ZipState {
        &self.committed
    }

    /// Whether anything was written since the last commit.
    pub(super) fn dirty(&self) -> bool {
        self.dirty
    }

    /// Appends one entry, already compressed (see [`Entry::new`]), and its content-list row
    /// for `message` with identity `key`.
    pub(super) fn append_entry(
        &mut self,
        message: &Message,
        key: u128,
        entry: Entry,
    ) -> SinkResult<()> {
        let header = entry.local_header();
        let ctx = || format!("write {}", self.partial.display());
        self.out
            .write_all(&header)
            .and_then(|()| self.out.write_all(&entry.data))
            .map_err(|e| SinkError::io(BACKEND, ctx(), e))?;
        let record = entry.central_record(self.data_end);
        if let Some(list) = self.list.as_mut() {
            let entry_name = String::from_utf8_lossy(&entry.name).into_owned();
            list.append(message, &entry_name).map_err(core_io)?;
        }
        self.data_end += header.len() as u64 + entry.data.len() as u64;
        self.cd.extend_from_slice(&record);
        self.entries += 1;
        self.keys.insert(key);
        self.pending_keys.push(key);
        self.dirty = true;
        Ok(())
    }

    /// Writes the central directory and end records after the entries and syncs, appends
    /// the new central-directory records to the saved copy and syncs it, commits the content
    /// list, and records the new committed state.
    pub(super) fn commit(&mut self) -> SinkResult<()> {
        let ctx = |what: &str| format!("{what} {}", self.partial.display());
        let cd_len = self.cd.len() as u64;
        let end = end_records(self.entries, self.data_end, cd_len);
        let total = self.data_end + cd_len + end.len() as u64;
        self.out
            .write_all(&self.cd)
            .and_then(|()| self.out.write_all(&end))
            .and_then(|()| self.out.flush())
            .map_err(|e| SinkError::io(BACKEND, ctx("write"), e))?;
        let file = self.out.get_ref();
        file.set_len(total)
            .map_err(|e| SinkError::io(BACKEND, ctx("truncate"), e))?;
        file.sync_data()
            .map_err(|e| SinkError::io(BACKEND, ctx("sync"), e))?;
        self.out
            .seek(SeekFrom::Start(self.data_end))
            .map_err(|e| SinkError::io(BACKEND, ctx("seek"), e))?;
        let new_records = self
            .cd
            .get(usize::try_from(self.committed.cd_len).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        self.cd_log
            .write_all(new_records)
            .and_then(|()| self.cd_log.sync_data())
            .map_err(|e| {
                SinkError::io(BACKEND, format!("write {}", self.cd_log_path.display()), e)
            })?;
        let content_list = match self.list.as_mut() {
            Some(l) => l.commit().map_err(core_io)?,
            None => ContentListState::default(),
        };
        let mut folders: Vec<FolderCount> = self
            .ordinals
            .iter()
            .map(|(folder, count)| FolderCount {
                folder: folder.clone(),
                count: *count,
            })
            .collect();
        folders.sort_by(|a, b| a.folder.cmp(&b.folder));
        self.committed = ZipState {
            version: STATE_VERSION,
            cd_offset: self.data_end,
            cd_len,
            committed_len: total,
            entries: self.entries,
            folders,
            content_list,
        };
        self.committed_ordinals = self.ordinals.clone();
        self.pending_keys.clear();
        self.dirty = false;
        Ok(())
    }

    /// Restores the archive, the content list and the counters to the last commit.
    pub(super) fn rollback(&mut self) -> SinkResult<()> {
        if !self.dirty && !self.broken {
            return Ok(());
        }
        let ctx = |what: &str| format!("{what} {}", self.partial.display());
        // Drop buffered bytes instead of writing them.
        let placeholder = BufWriter::new(
            self.out
                .get_ref()
                .try_clone()
                .map_err(|e| SinkError::io(BACKEND, ctx("reopen"), e))?,
        );
        let (mut file, _unwritten) = std::mem::replace(&mut self.out, placeholder).into_parts();
        let c = self.committed.clone();
        self.cd_log
            .set_len(c.cd_len)
            .and_then(|()| self.cd_log.seek(SeekFrom::End(0)).map(|_| ()))
            .map_err(|e| {
                SinkError::io(
                    BACKEND,
                    format!("truncate {}", self.cd_log_path.display()),
                    e,
                )
            })?;
        let cd_len = usize::try_from(c.cd_len)
            .unwrap_or(usize::MAX)
            .min(self.cd.len());
        self.cd.truncate(cd_len);
        let end = end_records(c.entries, c.cd_offset, c.cd_len);
        file.set_len(c.cd_offset)
            .map_err(|e| SinkError::io(BACKEND, ctx("truncate"), e))?;
        file.seek(SeekFrom::Start(c.cd_offset))
            .and_then(|_| file.write_all(&self.cd))
            .and_then(|()| file.write_all(&end))
            .and_then(|()| file.seek(SeekFrom::Start(c.cd_offset)).map(|_| ()))
            .map_err(|e| SinkError::io(BACKEND, ctx("restore"), e))?;
        self.out = BufWriter::with_capacity(WRITE_BUFFER, file);
        self.data_end = c.cd_offset;
        self.entries = c.entries;
        self.ordinals = self.committed_ordinals.clone();
        for k in self.pending_keys.drain(..) {
            self.keys.remove(&k);
        }
        if let Some(list) = self.list.as_mut() {
            list.rollback().map_err(core_io)?;
        }
        self.dirty = false;
        self.broken = false;
        debug!(message = "zip rolled back", entries = c.entries);
        Ok(())
    }

    /// Commits, renames the archive and the content list to their final names and lists
    /// them.
    pub(super) fn finish(mut self) -> SinkResult<Vec<Output>> {
        if self.dirty {
            self.commit()?;
        }
        self.out
            .flush()
            .map_err(|e| SinkError::io(BACKEND, format!("write {}", self.partial.display()), e))?;
        let Archive {
            dest,
            out,
            partial,
            list,
            committed,
            cd_log,
            cd_log_path,
            ..
        } = self;
        drop(out);
        drop(cd_log);
        rename_durable(&partial, &dest).map_err(core_io)?;
        let csv = match list {
            Some(l) => l.finish().map_err(core_io)?,
            None => return Err(SinkError::misuse(BACKEND, "content list missing")),
        };
        remove_if_exists(&cd_log_path)
            .map_err(|e| SinkError::io(BACKEND, format!("remove {}", cd_log_path.display()), e))?;
        info!(message = "zip archive finished", dest = %dest.display(), entries = committed.entries, bytes = committed.committed_len);
        Ok(vec![
            Output {
                location: dest.display().to_string(),
                kind: OutputKind::Archive,
                bytes: Some(committed.committed_len),
                messages: committed.entries,
            },
            csv,
        ])
    }
}

/// An I/O error of `legacyflo_core`'s helpers as this crate's error.
fn core_io(e: legacyflo_core::Error) -> SinkError {
    match e {
        legacyflo_core::Error::Io { context, source } => SinkError::io(BACKEND, context, source),
        other => SinkError::state(BACKEND, other.to_string()),
    }
}
