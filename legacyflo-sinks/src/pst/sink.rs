//! [`PstSink`]: the [`Sink`] implementation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::DateTime;
use legacyflo_core::contentlist::{ContentList, content_list_path};
use legacyflo_core::fsutil::{partial_path, rename_durable, sync_parent};
use legacyflo_core::{
    Flag, FolderPath, Message, Output, OutputKind, Result, Settled, Sink, SinkState, WriteOutcome,
};
use legacyflo_pst::{FolderId, MessageMeta, PstReader, PstWriter, WriterOptions};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::BACKEND;
use super::spool::{RecordMeta, Spool, SpoolReader, SpoolState};
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
    finished: Option<Vec<Output>>,
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
            finished: None,
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
        Ok(())
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
        Ok(WriteOutcome::Written { id: None })
    }

    fn commit_blocking(&mut self) -> SinkResult<SinkState> {
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
        let outputs = match build_pst(&self.dest, &self.options, &spool_path, state) {
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

/// The writer's volume naming applied to `base`: `base` for volume 1, then
/// `<stem>-002.<ext>`, `<stem>-003.<ext>`, …
fn volume_path(base: &Path, n: usize) -> PathBuf {
    if n <= 1 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let ext = base
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pst".into());
    base.with_file_name(format!("{stem}-{n:03}.{ext}"))
}

fn core_io(e: legacyflo_core::Error) -> SinkError {
    match e {
        legacyflo_core::Error::Io { context, source } => SinkError::io(BACKEND, context, source),
        other => SinkError::state(BACKEND, other.to_string()),
    }
}

fn pst_err(what: &str, e: legacyflo_pst::Error) -> SinkError {
    match e {
        legacyflo_pst::Error::Io { path, source } => SinkError::io(
            BACKEND,
            match path {
                Some(p) => format!("{what} {}", p.display()),
                None => what.to_string(),
            },
            source,
        ),
        other => SinkError::misuse(BACKEND, format!("{what}: {other}")),
    }
}

/// Streams the committed spool through the PST writer, writes the content lists, renames
/// everything to its final name and returns the outputs and the messages the writer
/// refused.
fn build_pst(
    dest: &Path,
    options: &WriterOptions,
    spool_path: &Path,
    state: SpoolState,
) -> SinkResult<(Vec<Output>, Vec<Settled>)> {
    let partial = partial_path(dest);
    let mut writer =
        PstWriter::create(&partial, options.clone()).map_err(|e| pst_err("create", e))?;
    let mut lists: Vec<ContentList> =
        vec![ContentList::create(&content_list_path(dest)).map_err(core_io)?];
    let mut folders: HashMap<Vec<String>, FolderId> = HashMap::new();
    let mut reader = SpoolReader::open(spool_path, state.len)?;
    let mut refused: Vec<Settled> = Vec::new();
    while let Some((meta, raw_len)) = reader.next_meta()? {
        let raw = reader.read_raw(raw_len)?;
        let folder = match folders.get(&meta.folder) {
            Some(f) => *f,
            None => {
                let segs: Vec<&str> = meta.folder.iter().map(String::as_str).collect();
                let f = writer
                    .folder(&segs)
                    .map_err(|e| pst_err("create folder", e))?;
                folders.insert(meta.folder.clone(), f);
                f
            }
        };
        let pst_meta = MessageMeta {
            read: meta.read,
            flagged: meta.flagged,
            internal_date: meta.date,
        };
        let outcome = match writer.add_message(folder, &raw, &pst_meta) {
            Ok(o) => o,
            Err(e @ (legacyflo_pst::Error::TooLarge(_) | legacyflo_pst::Error::Invalid(_))) => {
                warn!(
                    message = "the PST writer refused a message; it is not in the PST",
                    folder = %meta.folder.join("/"),
                    source_id = %meta.source_id,
                    reason = %e
                );
                refused.push(Settled::Refused {
                    folder: FolderPath::new(meta.folder.iter().cloned()),
                    source_id: meta.source_id.clone(),
                    bytes: raw.len() as u64,
                    reason: format!("the PST writer refused it: {e}"),
                });
                continue;
            }
            Err(e) => return Err(pst_err("write", e)),
        };
        if !outcome.problems.is_empty() {
            debug!(
                message = "message stored with problems",
                folder = %meta.folder.join("/"),
                source_id = %meta.source_id,
                problems = ?outcome.problems
            );
        }
        while lists.len() < outcome.volume {
            let n = lists.len() + 1;
            lists.push(
                ContentList::create(&content_list_path(&volume_path(dest, n))).map_err(core_io)?,
            );
        }
        let fp = FolderPath::new(meta.folder.iter().cloned());
        let mut message = Message::new(raw, fp, meta.source_id);
        message.internal_date = meta.date.and_then(|t| DateTime::from_timestamp(t, 0));
        let entry = format!("{}/{}", meta.folder.join("/"), outcome.node_id);
        if let Some(list) = lists.get_mut(outcome.volume.saturating_sub(1)) {
            list.append(&message, &entry).map_err(core_io)?;
        }
    }
    let volumes = writer.finish().map_err(|e| pst_err("finish", e))?;
    while lists.len() < volumes.len() {
        let n = lists.len() + 1;
        lists
            .push(ContentList::create(&content_list_path(&volume_path(dest, n))).map_err(core_io)?);
    }
    let mut outputs = Vec::new();
    for ((i, v), list) in volumes.iter().enumerate().zip(lists) {
        let target = volume_path(dest, i + 1);
        rename_durable(&v.path, &target).map_err(core_io)?;
        outputs.push(Output {
            location: target.display().to_string(),
            kind: OutputKind::Archive,
            bytes: Some(v.bytes),
            messages: v.messages,
        });
        outputs.push(list.finish().map_err(core_io)?);
    }
    // Volumes beyond the last one are leftovers of an earlier run to the same destination:
    // they would make the output set incoherent.
    let mut n = volumes.len() + 1;
    loop {
        let stale = volume_path(dest, n);
        if !stale.exists() {
            break;
        }
        info!(message = "removing a volume left by an earlier run", path = %stale.display());
        for p in [content_list_path(&stale), stale] {
            remove_if_exists(&p)
                .map_err(|e| SinkError::io(BACKEND, format!("remove {}", p.display()), e))?;
        }
        n += 1;
    }
    if !refused.is_empty() {
        warn!(
            message = "messages refused by the PST writer",
            count = refused.len()
        );
    }
    Ok((outputs, refused))
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
        self.spool = None;
        self.finished = None;
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
        let result = blocking(|| self.spool().and_then(Spool::rollback));
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
