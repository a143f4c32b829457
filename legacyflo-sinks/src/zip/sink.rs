//! [`ZipSink`]: the [`Sink`] implementation.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use legacyflo_core::fsutil::partial_path;
use legacyflo_core::{FolderPath, Message, Output, Result, Sink, SinkState, WriteOutcome};
use tracing::{debug, info, warn};

use super::BACKEND;
use super::archive::{Archive, STATE_VERSION, ZipState, complete_finish, finished_outputs};
use super::format::Entry;
use super::pipeline::{EntryArchive, Pipeline};
use crate::error::{SinkError, SinkResult};
use crate::util::blocking;
use legacyflo_core::codec::escape_segment;

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
    /// The state this sink was restored from when it belonged to a finished run: what
    /// `commit` returns then (nothing is written any more).
    finished_state: Option<ZipState>,
    /// Entries being compressed, appended in write order.
    pipeline: Pipeline,
}

impl ZipSink {
    /// A sink writing the archive `dest` (and `dest` with a `.csv` extension). Nothing is
    /// touched until [`Sink::open`].
    pub fn new(dest: impl Into<PathBuf>) -> Self {
        ZipSink {
            dest: dest.into(),
            archive: None,
            finished: None,
            finished_state: None,
            pipeline: Pipeline::default(),
        }
    }

    /// The final archive path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    fn open_resume(&mut self, state: ZipState) -> SinkResult<()> {
        if !partial_path(&self.dest).exists() && self.dest.exists() {
            info!(message = "the archive was already finished", dest = %self.dest.display());
            // A crash inside `finish` may have come between the archive's rename and the
            // content list's.
            complete_finish(&self.dest, &state)?;
            self.finished = Some(finished_outputs(&self.dest)?);
            self.finished_state = Some(state);
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

    /// Appends every in-flight entry.
    async fn drain_all(&mut self) -> SinkResult<()> {
        let archive = self.archive.as_mut().ok_or_else(|| {
            SinkError::misuse(BACKEND, "the sink is not open (or already finished)")
        })?;
        self.pipeline.drain_all(archive).await
    }

    fn commit_blocking(&mut self) -> SinkResult<SinkState> {
        if let Some(state) = &self.finished_state {
            // Restored from a finished run: the engine's commit before `finish` changes
            // nothing.
            return serde_json::to_value(state)
                .map_err(|e| SinkError::misuse(BACKEND, format!("state: {e}")));
        }
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
        self.finished_state = None;
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
        let archive = self.archive.as_mut().ok_or_else(|| {
            SinkError::misuse(BACKEND, "the sink is not open (or already finished)")
        })?;
        Ok(self.pipeline.write(archive, message).await?)
    }

    async fn commit(&mut self) -> Result<SinkState> {
        if self.finished_state.is_none() {
            self.drain_all().await?;
        }
        Ok(blocking(|| self.commit_blocking())?)
    }

    async fn abort(&mut self) -> Result<()> {
        if self.finished.is_some() {
            return Ok(());
        }
        // Entries still compressing belong to the discarded writes: drop them.
        self.pipeline.forget();
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

#[async_trait]
impl EntryArchive for Archive {
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
        blocking(|| self.append_entry(message, key, entry))
    }
}
