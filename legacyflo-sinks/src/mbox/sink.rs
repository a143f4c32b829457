//! [`MboxSink`]: the [`Sink`] implementation.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use legacyflo_core::{
    FolderPath, Message, Output, OutputKind, Result, Sink, SinkState, WriteOutcome,
};
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use super::BACKEND;
use super::format::{fits, relative_path};
use super::run::{MboxFile, Run, run_id};
use crate::error::{SinkError, SinkResult};
use crate::util::{blocking, message_key, remove_if_exists};

/// The directory of the sink's bookkeeping inside the tree (hidden, so sources skip it).
const META_DIR: &str = ".legacyflo";

/// Writes a tree of mboxrd files, one per folder.
///
/// See the [module documentation](super) for file names, the `From ` line, durability and
/// duplicates.
#[derive(Debug)]
pub struct MboxSink {
    root: PathBuf,
    run: Option<Run>,
    finished: Option<Vec<Output>>,
    /// The state this sink was restored from when it belonged to a finished run: what
    /// `commit` returns then (nothing is written any more).
    finished_state: Option<MboxState>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct MboxState {
    version: u32,
    run: String,
    journal_len: u64,
    messages: u64,
    files: Vec<FileState>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct FileState {
    folder: FolderPath,
    path: String,
    len: u64,
}

const STATE_VERSION: u32 = 1;

impl MboxSink {
    /// A sink writing an mbox tree under `root`. Nothing is touched until [`Sink::open`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MboxSink {
            root: root.into(),
            run: None,
            finished: None,
            finished_state: None,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn journal_path(&self, id: &str) -> PathBuf {
        self.root.join(META_DIR).join(format!("mbox-{id}.journal"))
    }

    fn open_fresh(&mut self) -> SinkResult<()> {
        let id = run_id();
        let journal_path = self.journal_path(&id);
        let meta = self.root.join(META_DIR);
        fs::create_dir_all(&meta)
            .map_err(|e| SinkError::io(BACKEND, format!("create {}", meta.display()), e))?;
        let journal = File::create(&journal_path)
            .map_err(|e| SinkError::io(BACKEND, format!("create {}", journal_path.display()), e))?;
        let mut dirs = HashSet::new();
        dirs.insert(meta);
        dirs.insert(self.root.clone());
        self.run = Some(Run {
            id,
            journal_path,
            journal: BufWriter::new(journal),
            journal_len: 0,
            committed_journal_len: 0,
            files: HashMap::new(),
            keys: HashSet::new(),
            pending_keys: Vec::new(),
            messages: 0,
            pending_messages: 0,
            dirs_to_sync: dirs,
            broken: false,
        });
        info!(message = "mbox sink opened", root = %self.root.display());
        Ok(())
    }

    fn open_resume(&mut self, state: MboxState) -> SinkResult<()> {
        let journal_path = self.journal_path(&state.run);
        let text = match fs::read(&journal_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                info!(message = "the mbox tree was already finished", root = %self.root.display());
                self.finished =
                    Some(vec![self.output(
                        state.files.iter().map(|f| f.len).sum(),
                        state.messages,
                    )]);
                self.finished_state = Some(state);
                return Ok(());
            }
            Err(e) => {
                return Err(SinkError::io(
                    BACKEND,
                    format!("read {}", journal_path.display()),
                    e,
                ));
            }
        };
        let cut = usize::try_from(state.journal_len).unwrap_or(usize::MAX);
        if text.len() < cut {
            return Err(SinkError::state(
                BACKEND,
                format!("{} is shorter than its checkpoint", journal_path.display()),
            ));
        }
        let (done, after) = text.split_at(cut);
        let mut files = HashMap::new();
        for f in &state.files {
            let path = self.root.join(&f.path);
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| SinkError::io(BACKEND, format!("open {}", path.display()), e))?;
            let len = file
                .metadata()
                .map_err(|e| SinkError::io(BACKEND, format!("stat {}", path.display()), e))?
                .len();
            if len < f.len {
                return Err(SinkError::state(
                    BACKEND,
                    format!(
                        "{} is shorter ({len} bytes) than its checkpoint ({} bytes)",
                        path.display(),
                        f.len
                    ),
                ));
            }
            file.set_len(f.len)
                .and_then(|()| file.sync_data())
                .map_err(|e| SinkError::io(BACKEND, format!("truncate {}", path.display()), e))?;
            files.insert(
                f.folder.clone(),
                MboxFile {
                    rel: PathBuf::from(&f.path),
                    len: f.len,
                    committed: Some(f.len),
                    writer: None,
                    dirty: false,
                },
            );
        }
        // Files the interrupted run created after its last commit.
        let known: HashSet<&str> = state.files.iter().map(|f| f.path.as_str()).collect();
        for line in after.split(|b| *b == b'\n') {
            if let Some(rel) = line
                .strip_prefix(b"F ")
                .and_then(|r| std::str::from_utf8(r).ok())
                && !known.contains(rel)
            {
                let path = self.root.join(rel);
                debug!(message = "removing a file created after the checkpoint", path = %path.display());
                remove_if_exists(&path)
                    .map_err(|e| SinkError::io(BACKEND, format!("remove {}", path.display()), e))?;
            }
        }
        let keys: HashSet<u128> = done
            .split(|b| *b == b'\n')
            .filter_map(|l| l.strip_prefix(b"M "))
            .filter_map(|k| std::str::from_utf8(k).ok())
            .filter_map(|k| u128::from_str_radix(k, 16).ok())
            .collect();
        let journal = OpenOptions::new()
            .write(true)
            .open(&journal_path)
            .map_err(|e| SinkError::io(BACKEND, format!("open {}", journal_path.display()), e))?;
        journal
            .set_len(state.journal_len)
            .and_then(|()| journal.sync_data())
            .map_err(|e| {
                SinkError::io(BACKEND, format!("truncate {}", journal_path.display()), e)
            })?;
        let mut journal = BufWriter::new(journal);
        std::io::Seek::seek(&mut journal, std::io::SeekFrom::End(0))
            .map_err(|e| SinkError::io(BACKEND, format!("seek {}", journal_path.display()), e))?;
        info!(message = "mbox sink resumed", root = %self.root.display(), messages = state.messages);
        self.run = Some(Run {
            id: state.run,
            journal_path,
            journal,
            journal_len: state.journal_len,
            committed_journal_len: state.journal_len,
            files,
            keys,
            pending_keys: Vec::new(),
            messages: state.messages,
            pending_messages: 0,
            dirs_to_sync: HashSet::new(),
            broken: false,
        });
        Ok(())
    }

    fn output(&self, bytes: u64, messages: u64) -> Output {
        Output {
            location: self.root.display().to_string(),
            kind: OutputKind::Mailbox,
            bytes: Some(bytes),
            messages,
        }
    }

    fn run(&mut self) -> SinkResult<&mut Run> {
        self.run
            .as_mut()
            .ok_or_else(|| SinkError::misuse(BACKEND, "the sink is not open (or already finished)"))
    }

    fn begin_blocking(&mut self, folder: &FolderPath) -> SinkResult<()> {
        let root = self.root.clone();
        let run = self.run()?;
        if run.files.contains_key(folder) {
            return Ok(());
        }
        let rel = relative_path(folder);
        if !fits(&rel) {
            // Rejected at write.
            return Ok(());
        }
        let path = root.join(&rel);
        // Journal the file before creating it, so a resume can remove it.
        let line = format!("F {}\n", rel.display());
        run.journal
            .write_all(line.as_bytes())
            .and_then(|()| run.journal.flush())
            .and_then(|()| run.journal.get_ref().sync_data())
            .map_err(|e| {
                SinkError::io(BACKEND, format!("write {}", run.journal_path.display()), e)
            })?;
        run.journal_len += line.len() as u64;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| SinkError::io(BACKEND, format!("create {}", dir.display()), e))?;
            // The new file's directory and every directory created up to the root.
            let mut d = dir.to_path_buf();
            loop {
                run.dirs_to_sync.insert(d.clone());
                if d == root || !d.pop() || !d.starts_with(&root) {
                    break;
                }
            }
        }
        File::create(&path)
            .map_err(|e| SinkError::io(BACKEND, format!("create {}", path.display()), e))?;
        run.files.insert(
            folder.clone(),
            MboxFile {
                rel,
                len: 0,
                committed: None,
                writer: None,
                dirty: false,
            },
        );
        Ok(())
    }

    fn write_blocking(&mut self, message: &Message) -> SinkResult<WriteOutcome> {
        if self.run()?.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        self.begin_blocking(&message.folder)?;
        let root = self.root.clone();
        let run = self.run()?;
        if !run.files.contains_key(&message.folder) {
            return Ok(WriteOutcome::Rejected {
                reason: format!(
                    "folder {} needs a file name longer than 255 bytes",
                    message.folder
                ),
            });
        }
        let key = message_key(message);
        if run.keys.contains(&key) {
            return Ok(WriteOutcome::Duplicate);
        }
        let result = run.append(&root, message, key);
        if result.is_err() {
            run.broken = true;
        }
        let rel = result?;
        Ok(WriteOutcome::Written {
            id: Some(rel.display().to_string()),
        })
    }

    fn commit_blocking(&mut self) -> SinkResult<SinkState> {
        if let Some(state) = &self.finished_state {
            // Restored from a finished run: the engine's commit before `finish` changes
            // nothing.
            return serde_json::to_value(state)
                .map_err(|e| SinkError::misuse(BACKEND, format!("state: {e}")));
        }
        let root = self.root.clone();
        let run = self.run()?;
        if run.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        let result = run.commit(&root);
        if result.is_err() {
            run.broken = true;
        }
        result?;
        let mut files: Vec<FileState> = run
            .files
            .iter()
            .map(|(folder, f)| FileState {
                folder: folder.clone(),
                path: f.rel.to_string_lossy().into_owned(),
                len: f.len,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        serde_json::to_value(MboxState {
            version: STATE_VERSION,
            run: run.id.clone(),
            journal_len: run.journal_len,
            messages: run.messages,
            files,
        })
        .map_err(|e| SinkError::misuse(BACKEND, format!("state: {e}")))
    }

    fn abort_blocking(&mut self) -> SinkResult<()> {
        if self.finished.is_some() {
            return Ok(());
        }
        let root = self.root.clone();
        self.run()?.rollback(&root)
    }

    fn finish_blocking(&mut self) -> SinkResult<Vec<Output>> {
        if let Some(out) = &self.finished {
            return Ok(out.clone());
        }
        self.commit_blocking()?;
        let run = self
            .run
            .take()
            .ok_or_else(|| SinkError::misuse(BACKEND, "the sink is not open"))?;
        let bytes = run.files.values().map(|f| f.len).sum();
        let messages = run.messages;
        let journal_path = run.journal_path.clone();
        drop(run);
        remove_if_exists(&journal_path)
            .map_err(|e| SinkError::io(BACKEND, format!("remove {}", journal_path.display()), e))?;
        let meta = self.root.join(META_DIR);
        if fs::read_dir(&meta)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false)
        {
            let _ = fs::remove_dir(&meta);
        }
        info!(message = "mbox tree finished", root = %self.root.display(), messages);
        let outputs = vec![self.output(bytes, messages)];
        self.finished = Some(outputs.clone());
        Ok(outputs)
    }
}

#[async_trait]
impl Sink for MboxSink {
    fn kind(&self) -> &str {
        BACKEND
    }

    async fn open(&mut self, resume: Option<SinkState>) -> Result<()> {
        self.run = None;
        self.finished = None;
        self.finished_state = None;
        let result = match resume {
            None => blocking(|| self.open_fresh()),
            Some(v) => {
                let state: MboxState = serde_json::from_value(v).map_err(|e| {
                    SinkError::state(BACKEND, format!("not an mbox sink state: {e}"))
                })?;
                if state.version != STATE_VERSION {
                    return Err(SinkError::state(
                        BACKEND,
                        format!("state version {} is not {STATE_VERSION}", state.version),
                    )
                    .into());
                }
                blocking(|| self.open_resume(state))
            }
        };
        Ok(result?)
    }

    async fn begin_folder(&mut self, folder: &FolderPath) -> Result<()> {
        Ok(blocking(|| self.begin_blocking(folder))?)
    }

    async fn write(&mut self, message: &Message) -> Result<WriteOutcome> {
        Ok(blocking(|| self.write_blocking(message))?)
    }

    async fn commit(&mut self) -> Result<SinkState> {
        Ok(blocking(|| self.commit_blocking())?)
    }

    async fn abort(&mut self) -> Result<()> {
        Ok(blocking(|| self.abort_blocking())?)
    }

    async fn finish(&mut self) -> Result<Vec<Output>> {
        Ok(blocking(|| self.finish_blocking())?)
    }
}
