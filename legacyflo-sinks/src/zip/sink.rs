//! [`ZipSink`]: the [`Sink`] implementation.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use legacyflo_core::fsutil::partial_path;
use legacyflo_core::{Flag, FolderPath, Message, Output, Result, Sink, SinkState, WriteOutcome};
use tracing::{debug, info, warn};

use super::BACKEND;
use super::archive::{Archive, STATE_VERSION, ZipState, finished_outputs};
use super::format::Entry;
use crate::error::{SinkError, SinkResult};
use crate::util::{blocking, message_key};
use legacyflo_core::codec::{EntryMeta, escape_segment};

/// Longest entry comment written (the format allows 65,535 bytes).
const MAX_COMMENT: usize = 60_000;
/// Digits of the per-folder ordinal in entry names (more when needed).
const ORDINAL_DIGITS: usize = 6;

/// Writes a ZIP of `.eml` files with a content list beside it.
///
/// See the [module documentation](super) for entry names, metadata, durability and resume.
#[derive(Debug)]
pub struct ZipSink {
    dest: PathBuf,
    archive: Option<Archive>,
    finished: Option<Vec<Output>>,
    /// Messages being compressed on the blocking pool, in write order.
    inflight: VecDeque<Pending>,
    /// Identities of the in-flight messages (for duplicate detection).
    inflight_keys: HashSet<u128>,
    /// Last ordinal handed out per folder while entries are in flight.
    next_ordinals: HashMap<FolderPath, u64>,
    /// Entries compressed at once.
    max_inflight: usize,
}

/// A message whose entry is being compressed.
#[derive(Debug)]
struct Pending {
    message: Message,
    key: u128,
    ordinal: u64,
    task: tokio::task::JoinHandle<std::io::Result<Entry>>,
}

/// What a write decided before compressing.
enum Prepared {
    Done(WriteOutcome),
    Go {
        name: String,
        comment: String,
        key: u128,
        ordinal: u64,
    },
}

impl ZipSink {
    /// A sink writing the archive `dest` (and `dest` with a `.csv` extension). Nothing is
    /// touched until [`Sink::open`].
    pub fn new(dest: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        ZipSink {
            dest: dest.into(),
            archive: None,
            finished: None,
            inflight: VecDeque::new(),
            inflight_keys: HashSet::new(),
            next_ordinals: HashMap::new(),
            max_inflight: (2 * cores).max(2),
        }
    }

    /// The final archive path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    fn open_resume(&mut self, state: ZipState) -> SinkResult<()> {
        if !partial_path(&self.dest).exists() && self.dest.exists() {
            info!(message = "the archive was already finished", dest = %self.dest.display());
            self.finished = Some(finished_outputs(&self.dest)?);
            return Ok(());
        }
        self.archive = Some(Archive::resume(&self.dest, state)?);
        Ok(())
    }

    fn archive(&mut self) -> SinkResult<&mut Archive> {
        self.archive
            .as_mut()
            .ok_or_else(|| SinkError::misuse(BACKEND, "the sink is not open (or already finished)"))
    }

    /// Decides what to do with `message`: duplicate, rejected, or its entry name and
    /// metadata. Entries are compressed in parallel on the blocking pool and appended in
    /// write order, so names and ordinals are fixed here.
    fn prepare(&mut self, message: &Message) -> SinkResult<Prepared> {
        let archive = self.archive()?;
        if archive.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        let key = message_key(message);
        let committed_ordinal = archive.ordinals.get(&message.folder).copied().unwrap_or(0);
        if archive.keys.contains(&key) || self.inflight_keys.contains(&key) {
            return Ok(Prepared::Done(WriteOutcome::Duplicate));
        }
        let ordinal = committed_ordinal.max(
            self.next_ordinals
                .get(&message.folder)
                .copied()
                .unwrap_or(0),
        ) + 1;
        let name = entry_name(&message.folder, ordinal);
        if name.len() > usize::from(u16::MAX) - 64 {
            return Ok(Prepared::Done(WriteOutcome::Rejected {
                reason: format!(
                    "the folder name is too long for a ZIP entry ({} bytes)",
                    name.len()
                ),
            }));
        }
        let mut meta = EntryMeta {
            date: message.internal_date,
            flags: message.flags.clone(),
            key: Some(format!("{key:032x}")),
        };
        let mut comment = meta.to_comment();
        if comment.len() > MAX_COMMENT {
            warn!(message = "too many keywords for the entry comment; keywords dropped", folder = %message.folder, source_id = %message.source_id);
            meta.flags.retain(|f| !matches!(f, Flag::Keyword(_)));
            comment = meta.to_comment();
        }
        Ok(Prepared::Go {
            name,
            comment,
            key,
            ordinal,
        })
    }

    /// Waits for the oldest in-flight entry and appends it to the archive.
    async fn drain_one(&mut self) -> SinkResult<bool> {
        let Some(p) = self.inflight.pop_front() else {
            return Ok(false);
        };
        self.inflight_keys.remove(&p.key);
        let entry = match p.task.await {
            Ok(Ok(entry)) => entry,
            Ok(Err(e)) => {
                self.mark_broken();
                return Err(SinkError::io(BACKEND, "compress", e));
            }
            Err(e) => {
                self.mark_broken();
                return Err(SinkError::misuse(
                    BACKEND,
                    format!("compression task failed: {e}"),
                ));
            }
        };
        let archive = self.archive()?;
        let result = blocking(|| archive.append_entry(&p.message, p.key, entry));
        if let Err(e) = result {
            archive.broken = true;
            return Err(e);
        }
        let current = archive
            .ordinals
            .get(&p.message.folder)
            .copied()
            .unwrap_or(0);
        archive
            .ordinals
            .insert(p.message.folder.clone(), current.max(p.ordinal));
        Ok(true)
    }

    /// Appends every in-flight entry.
    async fn drain_all(&mut self) -> SinkResult<()> {
        while self.drain_one().await? {}
        self.next_ordinals.clear();
        Ok(())
    }

    fn mark_broken(&mut self) {
        if let Some(a) = self.archive.as_mut() {
            a.broken = true;
        }
    }

    fn forget_inflight(&mut self) {
        for p in self.inflight.drain(..) {
            p.task.abort();
        }
        self.inflight_keys.clear();
        self.next_ordinals.clear();
    }

    fn commit_blocking(&mut self) -> SinkResult<SinkState> {
        let archive = self.archive()?;
        if archive.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        if archive.dirty() {
            if let Err(e) = archive.commit() {
                archive.broken = true;
                return Err(e);
            }
            debug!(
                message = "zip committed",
                entries = archive.committed().entries
            );
        }
        serde_json::to_value(archive.committed())
            .map_err(|e| SinkError::misuse(BACKEND, format!("state: {e}")))
    }

    fn finish_blocking(&mut self) -> SinkResult<Vec<Output>> {
        if let Some(outputs) = &self.finished {
            return Ok(outputs.clone());
        }
        if self.archive()?.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        let archive = self
            .archive
            .take()
            .ok_or_else(|| SinkError::misuse(BACKEND, "the sink is not open"))?;
        let outputs = archive.finish()?;
        self.finished = Some(outputs.clone());
        Ok(outputs)
    }
}

/// `<escaped folder segments joined by '/'>/<ordinal, 6+ digits>.eml`.
pub(crate) fn entry_name(folder: &FolderPath, ordinal: u64) -> String {
    let dir: Vec<String> = folder
        .segments()
        .iter()
        .map(|s| escape_segment(s))
        .collect();
    let file = format!("{ordinal:0ORDINAL_DIGITS$}.eml");
    if dir.is_empty() {
        file
    } else {
        format!("{}/{file}", dir.join("/"))
    }
}

#[async_trait]
impl Sink for ZipSink {
    fn kind(&self) -> &str {
        BACKEND
    }

    async fn open(&mut self, resume: Option<SinkState>) -> Result<()> {
        self.archive = None;
        self.finished = None;
        let result = match resume {
            None => blocking(|| Archive::create(&self.dest)).map(|a| {
                self.archive = Some(a);
            }),
            Some(v) => {
                let state: ZipState = serde_json::from_value(v)
                    .map_err(|e| SinkError::state(BACKEND, format!("not a zip sink state: {e}")))?;
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

    async fn begin_folder(&mut self, _folder: &FolderPath) -> Result<()> {
        // Directories are implied by entry names.
        Ok(())
    }

    async fn write(&mut self, message: &Message) -> Result<WriteOutcome> {
        let (name, comment, key, ordinal) = match self.prepare(message)? {
            Prepared::Done(outcome) => return Ok(outcome),
            Prepared::Go {
                name,
                comment,
                key,
                ordinal,
            } => (name, comment, key, ordinal),
        };
        let raw = message.raw.clone();
        let date = message.internal_date;
        let entry_name = name.clone();
        let task = tokio::task::spawn_blocking(move || Entry::new(entry_name, comment, &raw, date));
        self.inflight.push_back(Pending {
            message: message.clone(),
            key,
            ordinal,
            task,
        });
        self.inflight_keys.insert(key);
        self.next_ordinals.insert(message.folder.clone(), ordinal);
        while self.inflight.len() > self.max_inflight {
            self.drain_one().await?;
        }
        Ok(WriteOutcome::Written { id: Some(name) })
    }

    async fn commit(&mut self) -> Result<SinkState> {
        self.drain_all().await?;
        Ok(blocking(|| self.commit_blocking())?)
    }

    async fn abort(&mut self) -> Result<()> {
        if self.finished.is_some() {
            return Ok(());
        }
        // Entries still compressing belong to the discarded writes: drop them.
        self.forget_inflight();
        let result = blocking(|| self.archive().and_then(Archive::rollback));
        if let Err(e) = &result {
            warn!(message = "zip rollback failed", error = %e);
        }
        Ok(result?)
    }

    async fn finish(&mut self) -> Result<Vec<Output>> {
        if self.finished.is_none() {
            self.drain_all().await?;
        }
        Ok(blocking(|| self.finish_blocking())?)
    }
}
