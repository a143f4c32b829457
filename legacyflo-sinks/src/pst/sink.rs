//! [`PstSink`]: the [`Sink`] implementation.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use legacyflo_core::contentlist::content_list_path;
use legacyflo_core::fsutil::{partial_path, sync_parent};
use legacyflo_core::{
    Flag, FolderPath, Message, Output, OutputKind, Result, Settled, Sink, SinkState, WriteOutcome,
};
use legacyflo_pst::{PstReader, WriterOptions};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::BACKEND;
use super::build::{Builder, core_io, pst_err, volume_path};
use super::live::Live;
use super::spool::{RecordMeta, Spool, SpoolState};
use crate::error::{SinkError, SinkResult};
use crate::util::{blocking, key_of, remove_if_exists};

/// Version of the state this sink returns from [`Sink::commit`].
const STATE_VERSION: u32 = 1;
/// Messages of this size or larger are rejected at write time.
const MAX_MESSAGE: u64 = 2 << 30;
/// Room the writer keeps in a volume for the indexes written at finish (1 MiB plus one
/// AMap range), plus a margin.
const VOLUME_RESERVE: u64 = 2 << 20;

/// The state of a PST sink: the spool's committed length and record count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PstState {
    version: u32,
    spool: SpoolState,
}

/// Writes a Unicode PST (and further volumes past the cap) with a content list beside
/// each volume.
///
/// See the [module documentation](super) for the layout, what a PST keeps, durability
/// (the spool) and the disk space needed.
#[derive(Debug)]
pub struct PstSink {
    dest: PathBuf,
    options: WriterOptions,
    spool: Option<Spool>,
    /// The PST being built alongside the spool (see [`Live`]); `None` when there is none
    /// (it failed): `finish` then builds from the spool.
    live: Option<Live>,
    finished: Option<Vec<Output>>,
    /// The state this sink was restored from when it belonged to a finished run: what
    /// `commit` returns then (nothing is written any more).
    finished_state: Option<PstState>,
    /// Messages the writer refused in `finish`, until the engine drains them.
    late: Vec<Settled>,
    broken: bool,
}

impl PstSink {
    /// A sink writing the PST `dest` with the writer's default options (permute encoding,
    /// 50 GB volumes). Nothing is touched until [`Sink::open`].
    pub fn new(dest: impl Into<PathBuf>) -> Self {
        Self::with_options(dest, WriterOptions::default())
    }

    /// A sink writing the PST `dest` with `options` (encoding, store display name, volume
    /// cap; a cap below 1 MiB makes [`Sink::finish`] fail).
    pub fn with_options(dest: impl Into<PathBuf>, options: WriterOptions) -> Self {
        PstSink {
            dest: dest.into(),
            options,
            spool: None,
            live: None,
            finished: None,
            finished_state: None,
            late: Vec::new(),
            broken: false,
        }
    }

    /// The final path of the first volume.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The path of the spool (`<dest>.partial.spool`).
    pub fn spool_path(&self) -> PathBuf {
        let mut s = partial_path(&self.dest).into_os_string();
        s.push(".spool");
        PathBuf::from(s)
    }

    /// The final path of volume `n` (1-based): `dest`, then `<stem>-002.<ext>`, …
    pub fn volume_path(&self, n: usize) -> PathBuf {
        volume_path(&self.dest, n)
    }

    fn spool(&mut self) -> SinkResult<&mut Spool> {
        self.spool
            .as_mut()
            .ok_or_else(|| SinkError::misuse(BACKEND, "the sink is not open (or already finished)"))
    }

    fn check_usable(&self) -> SinkResult<()> {
        if self.broken {
            return Err(SinkError::misuse(
                BACKEND,
                "an earlier write failed; abort first",
            ));
        }
        Ok(())
    }

    fn open_blocking(&mut self, resume: Option<PstState>) -> SinkResult<()> {
        let spool_path = self.spool_path();
        match resume {
            None => {
                self.spool = Some(Spool::create(&spool_path)?);
            }
            Some(state) => {
                if !spool_path.exists() && self.dest.exists() {
                    info!(message = "the PST was already finished", dest = %self.dest.display());
                    self.finished = Some(finished_outputs(&self.dest)?);
                    self.finished_state = Some(state);
                    return Ok(());
                }
                let spool = Spool::resume(&spool_path, state.spool)?;
                info!(
                    message = "PST spool resumed",
                    spool = %spool_path.display(),
                    messages = state.spool.records
                );
                self.spool = Some(spool);
            }
        }
        self.start_live();
        Ok(())
    }

    /// Starts building the PST alongside the spool from its committed records (replacing
    /// any live build). Failing to start is not an error: `finish` builds from the spool.
    fn start_live(&mut self) {
        if let Some(old) = self.live.take() {
            old.cancel();
        }
        let Some(spool) = &self.spool else {
            return;
        };
        let committed = spool.committed().len;
        match Live::start(&self.dest, &self.options, spool.path(), committed) {
            Ok(l) => self.live = Some(l),
            Err(e) => warn!(message = "could not start the live PST build", error = %e),
        }
    }

    fn write_blocking(&mut self, message: &Message) -> SinkResult<WriteOutcome> {
        self.check_usable()?;
        let cap = self.options.volume_cap;
        let folder = if message.folder.is_root() {
            FolderPath::inbox()
        } else {
            message.folder.clone()
        };
        let spool = self.spool()?;
        let key = key_of(&folder, &message.source_id);
        if spool.contains(key) {
            return Ok(WriteOutcome::Duplicate);
        }
        let size = message.size();
        if size >= MAX_MESSAGE || size.saturating_mul(3) + 64 * 1024 + VOLUME_RESERVE > cap {
            return Ok(WriteOutcome::Rejected {
                reason: format!(
                    "the message ({size} bytes) is too large for a PST volume (cap {cap} bytes)"
                ),
            });
        }
        let meta = RecordMeta {
            folder: folder.segments().to_vec(),
            source_id: message.source_id.clone(),
            read: message.has_flag(&Flag::Seen),
            flagged: message.has_flag(&Flag::Flagged),
            date: message.internal_date.map(|d| d.timestamp()),
        };
        if let Err(e) = spool.append(&meta, &message.raw) {
            self.broken = true;
            return Err(e);
        }
        if let Some(live) = &mut self.live
            && !live.send(meta, message.raw.clone())
        {
            warn!(
                message =
                    "the live PST build stopped; the PST will be built from the spool at finish"
            );
            if let Some(l) = self.live.take() {
                l.cancel();
            }
        }
        Ok(WriteOutcome::Written { id: None })
    }

    fn commit_blocking(&mut self) -> SinkResult<SinkState> {
        if let Some(state) = &self.finished_state {
            // Restored from a finished run: the engine's commit before `finish` changes
            // nothing.
            return serde_json::to_value(state)
                .map_err(|e| SinkError::misuse(BACKEND, format!("state: {e}")));
        }
        self.check_usable()?;
        let spool = self.spool()?;
        if spool.dirty() {
            let r = spool.commit();
            if r.is_err() {
                self.broken = true;
            }
            let st = r?;
            debug!(
                message = "PST spool committed",
                messages = st.records,
                bytes = st.len
            );
        }
        let state = PstState {
            version: STATE_VERSION,
            spool: self.spool()?.committed(),
        };
        serde_json::to_value(state).map_err(|e| SinkError::misuse(BACKEND, format!("state: {e}")))
    }

    fn finish_blocking(&mut self) -> SinkResult<Vec<Output>> {
        if let Some(outputs) = &self.finished {
            return Ok(outputs.clone());
        }
        self.check_usable()?;
        let state = match self.spool()?.commit() {
            Ok(s) => s,
            Err(e) => {
                self.broken = true;
                return Err(e);
            }
        };
        let spool_path = self.spool()?.path().to_path_buf();
        let built = match self.live.take() {
            Some(live) => match live.finish() {
                Ok(r) => Ok(r),
                Err(e) => {
                    warn!(message = "the live PST build failed; building from the spool", error = %e);
                    build_pst(&self.dest, &self.options, &spool_path, state)
                }
            },
            None => build_pst(&self.dest, &self.options, &spool_path, state),
        };
        let outputs = match built {
            Ok((o, late)) => {
                self.late = late;
                o
            }
            Err(e) => {
                // The spool is intact: a later finish (or a resume) starts again from it.
                self.broken = true;
                return Err(e);
            }
        };
        self.spool = None;
        remove_if_exists(&spool_path)
            .map_err(|e| SinkError::io(BACKEND, format!("remove {}", spool_path.display()), e))?;
        sync_parent(&spool_path).map_err(core_io)?;
        info!(message = "PST finished", dest = %self.dest.display(), volumes = outputs.len() / 2);
        self.finished = Some(outputs.clone());
        Ok(outputs)
    }
}

/// Builds the PST from the committed spool in one pass (after a resume, an abort or a
/// failed live build) and returns the outputs and the messages the writer refused.
fn build_pst(
    dest: &Path,
    options: &WriterOptions,
    spool_path: &Path,
    state: SpoolState,
) -> SinkResult<(Vec<Output>, Vec<Settled>)> {
    let mut builder = Builder::create(dest, options)?;
    builder.replay(spool_path, state.len, || false)?;
    builder.finish()
}

/// The outputs of a finished run, read from the files: every volume that exists (`dest`,
/// `<stem>-002.pst`, …) with its message count, and its content list.
fn finished_outputs(dest: &Path) -> SinkResult<Vec<Output>> {
    let mut outputs = Vec::new();
    let mut n = 1;
    loop {
        let path = volume_path(dest, n);
        if !path.exists() {
            break;
        }
        let bytes = std::fs::metadata(&path)
            .map_err(|e| SinkError::io(BACKEND, format!("stat {}", path.display()), e))?
            .len();
        let reader = PstReader::open(&path).map_err(|e| pst_err("open", e))?;
        let messages: u64 = reader
            .folders()
            .map_err(|e| pst_err("read folders", e))?
            .iter()
            .map(|f| f.message_count as u64)
            .sum();
        outputs.push(Output {
            location: path.display().to_string(),
            kind: OutputKind::Archive,
            bytes: Some(bytes),
            messages,
        });
        let csv = content_list_path(&path);
        let csv_bytes = std::fs::metadata(&csv)
            .map_err(|e| SinkError::io(BACKEND, format!("stat {}", csv.display()), e))?
            .len();
        outputs.push(Output {
            location: csv.display().to_string(),
            kind: OutputKind::ContentList,
            bytes: Some(csv_bytes),
            messages,
        });
        n += 1;
    }
    Ok(outputs)
}

#[async_trait]
impl Sink for PstSink {
    fn kind(&self) -> &str {
        BACKEND
    }

    async fn open(&mut self, resume: Option<SinkState>) -> Result<()> {
        if let Some(l) = self.live.take() {
            blocking(|| l.cancel());
        }
        self.spool = None;
        self.finished = None;
        self.finished_state = None;
        self.broken = false;
        let state = match resume {
            None => None,
            Some(v) => {
                let state: PstState = serde_json::from_value(v)
                    .map_err(|e| SinkError::state(BACKEND, format!("not a pst sink state: {e}")))?;
                if state.version != STATE_VERSION {
                    return Err(SinkError::state(
                        BACKEND,
                        format!("state version {} is not {STATE_VERSION}", state.version),
                    )
                    .into());
                }
                Some(state)
            }
        };
        Ok(blocking(|| self.open_blocking(state))?)
    }

    async fn begin_folder(&mut self, _folder: &FolderPath) -> Result<()> {
        // Folders are created by the writer at finish.
        Ok(())
    }

    async fn write(&mut self, message: &Message) -> Result<WriteOutcome> {
        Ok(blocking(|| self.write_blocking(message))?)
    }

    async fn commit(&mut self) -> Result<SinkState> {
        Ok(blocking(|| self.commit_blocking())?)
    }

    async fn abort(&mut self) -> Result<()> {
        if self.finished.is_some() {
            return Ok(());
        }
        let result = blocking(|| {
            // The live build holds records past the commit: start it again from the spool.
            if let Some(l) = self.live.take() {
                l.cancel();
            }
            let r = self.spool().and_then(Spool::rollback);
            if r.is_ok() {
                self.start_live();
            }
            r
        });
        match &result {
            Ok(()) => self.broken = false,
            Err(e) => warn!(message = "pst rollback failed", error = %e),
        }
        Ok(result?)
    }

    async fn finish(&mut self) -> Result<Vec<Output>> {
        Ok(blocking(|| self.finish_blocking())?)
    }

    fn settled(&mut self) -> Vec<Settled> {
        std::mem::take(&mut self.late)
    }
}
