//! One run of the mbox sink: its open files, its journal, its commits and rollbacks.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use legacyflo_core::{FolderPath, Message};

use super::BACKEND;
use super::format::write_message;
use crate::error::{SinkError, SinkResult};
use crate::util::{remove_if_exists, sync_dir};

/// Write buffer per open mbox file.
const WRITE_BUFFER: usize = 128 * 1024;
/// Files kept open at once; others are flushed, synced and closed.
const MAX_OPEN: usize = 64;

/// What a run has written, committed and not.
#[derive(Debug)]
pub(super) struct Run {
    /// The run id (names the journal).
    pub id: String,
    /// `<root>/.legacyflo/mbox-<id>.journal`.
    pub journal_path: PathBuf,
    /// The journal, positioned at its end.
    pub journal: BufWriter<File>,
    /// Bytes written to the journal.
    pub journal_len: u64,
    /// Bytes of the journal made durable by the last commit.
    pub committed_journal_len: u64,
    /// The files of the folders this run wrote.
    pub files: HashMap<FolderPath, MboxFile>,
    /// Identities of the stored messages.
    pub keys: HashSet<u128>,
    /// Identities added since the last commit.
    pub pending_keys: Vec<u128>,
    /// Messages made durable by this run.
    pub messages: u64,
    /// Messages written since the last commit.
    pub pending_messages: u64,
    /// Directories to sync at the next commit.
    pub dirs_to_sync: HashSet<PathBuf>,
    /// Set by a failed write or commit: only `abort` may follow.
    pub broken: bool,
}

/// One folder's file.
#[derive(Debug)]
pub(super) struct MboxFile {
    /// Its path relative to the root.
    pub rel: PathBuf,
    /// Bytes written (committed or not).
    pub len: u64,
    /// Bytes made durable by the last commit; `None` when the file was created after it.
    pub committed: Option<u64>,
    pub writer: Option<BufWriter<File>>,
    /// Written since the last sync.
    pub dirty: bool,
}

impl Run {
    /// Appends `message` (identity `key`) to its folder's file and journals it.
    pub(super) fn append(
        &mut self,
        root: &Path,
        message: &Message,
        key: u128,
    ) -> SinkResult<PathBuf> {
        let open_count = self.files.values().filter(|f| f.writer.is_some()).count();
        let needs_open = self
            .files
            .get(&message.folder)
            .is_some_and(|f| f.writer.is_none());
        if needs_open && open_count >= MAX_OPEN {
            self.close_all(root)?;
        }
        let Some(file) = self.files.get_mut(&message.folder) else {
            return Err(SinkError::misuse(BACKEND, "folder not begun"));
        };
        let path = root.join(&file.rel);
        if file.writer.is_none() {
            let f = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| SinkError::io(BACKEND, format!("open {}", path.display()), e))?;
            file.writer = Some(BufWriter::with_capacity(WRITE_BUFFER, f));
        }
        let Some(w) = file.writer.as_mut() else {
            return Err(SinkError::misuse(BACKEND, "file not open"));
        };
        let n = write_message(w, message)
            .map_err(|e| SinkError::io(BACKEND, format!("write {}", path.display()), e))?;
        file.len += n;
        file.dirty = true;
        let rel = file.rel.clone();
        let line = format!("M {key:032x}\n");
        self.journal.write_all(line.as_bytes()).map_err(|e| {
            SinkError::io(BACKEND, format!("write {}", self.journal_path.display()), e)
        })?;
        self.journal_len += line.len() as u64;
        self.keys.insert(key);
        self.pending_keys.push(key);
        self.pending_messages += 1;
        Ok(rel)
    }

    /// Flushes, syncs and closes every open file.
    fn close_all(&mut self, root: &Path) -> SinkResult<()> {
        for f in self.files.values_mut() {
            if let Some(mut w) = f.writer.take() {
                let path = root.join(&f.rel);
                w.flush()
                    .and_then(|()| w.get_ref().sync_data())
                    .map_err(|e| SinkError::io(BACKEND, format!("sync {}", path.display()), e))?;
                f.dirty = false;
            }
        }
        Ok(())
    }

    /// Flushes and syncs what was written, then records it as committed.
    pub(super) fn commit(&mut self, root: &Path) -> SinkResult<()> {
        for f in self.files.values_mut() {
            let path = root.join(&f.rel);
            let ctx = |e| SinkError::io(BACKEND, format!("sync {}", path.display()), e);
            if let Some(w) = f.writer.as_mut() {
                w.flush().map_err(ctx)?;
                if f.dirty {
                    w.get_ref().sync_data().map_err(ctx)?;
                }
            } else if f.dirty {
                File::open(&path).and_then(|h| h.sync_data()).map_err(ctx)?;
            }
            f.dirty = false;
        }
        self.journal
            .flush()
            .and_then(|()| self.journal.get_ref().sync_data())
            .map_err(|e| {
                SinkError::io(BACKEND, format!("sync {}", self.journal_path.display()), e)
            })?;
        let mut dirs: Vec<PathBuf> = self.dirs_to_sync.drain().collect();
        dirs.sort();
        for d in dirs {
            sync_dir(&d).map_err(|e| SinkError::io(BACKEND, format!("sync {}", d.display()), e))?;
        }
        for f in self.files.values_mut() {
            f.committed = Some(f.len);
        }
        self.committed_journal_len = self.journal_len;
        self.messages += self.pending_messages;
        self.pending_messages = 0;
        self.pending_keys.clear();
        Ok(())
    }

    /// Cuts every file and the journal back to the last commit and deletes the files
    /// created since.
    pub(super) fn rollback(&mut self, root: &Path) -> SinkResult<()> {
        let mut gone = Vec::new();
        for (folder, f) in self.files.iter_mut() {
            let path = root.join(&f.rel);
            // Drop buffered bytes instead of writing them.
            drop(f.writer.take().map(BufWriter::into_parts));
            match f.committed {
                Some(len) => {
                    if f.len != len {
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .and_then(|h| h.set_len(len))
                            .map_err(|e| {
                                SinkError::io(BACKEND, format!("truncate {}", path.display()), e)
                            })?;
                        f.len = len;
                    }
                }
                None => {
                    remove_if_exists(&path).map_err(|e| {
                        SinkError::io(BACKEND, format!("remove {}", path.display()), e)
                    })?;
                    gone.push(folder.clone());
                }
            }
            f.dirty = false;
        }
        for folder in gone {
            self.files.remove(&folder);
        }
        let placeholder = BufWriter::new(self.journal.get_ref().try_clone().map_err(|e| {
            SinkError::io(
                BACKEND,
                format!("reopen {}", self.journal_path.display()),
                e,
            )
        })?);
        let (mut journal, _) = std::mem::replace(&mut self.journal, placeholder).into_parts();
        journal
            .set_len(self.committed_journal_len)
            .and_then(|()| std::io::Seek::seek(&mut journal, std::io::SeekFrom::End(0)).map(|_| ()))
            .map_err(|e| {
                SinkError::io(
                    BACKEND,
                    format!("truncate {}", self.journal_path.display()),
                    e,
                )
            })?;
        self.journal = BufWriter::new(journal);
        self.journal_len = self.committed_journal_len;
        for k in self.pending_keys.drain(..) {
            self.keys.remove(&k);
        }
        self.pending_messages = 0;
        self.broken = false;
        Ok(())
    }
}

/// A run id unique enough to keep two runs' journals apart.
pub(super) fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}
