//! [`Builder`]: turns spooled records into PST volumes and their content lists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use legacyflo_core::contentlist::{ContentList, content_list_path};
use legacyflo_core::fsutil::{partial_path, rename_durable};
use legacyflo_core::{FolderPath, Message, Output, OutputKind, Settled};
pub(super) use legacyflo_pst::volume_path;
use legacyflo_pst::{FolderId, MessageMeta, PstWriter, WriterOptions};
use tracing::{debug, info, warn};

use super::BACKEND;
use super::spool::{RecordMeta, SpoolReader};
use crate::error::{SinkError, SinkResult};
use crate::util::remove_if_exists;

pub(super) fn core_io(e: legacyflo_core::Error) -> SinkError {
    match e {
        legacyflo_core::Error::Io { context, source } => SinkError::io(BACKEND, context, source),
        other => SinkError::state(BACKEND, other.to_string()),
    }
}

pub(super) fn pst_err(what: &str, e: legacyflo_pst::Error) -> SinkError {
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

/// A PST being built into `<dest>.partial` (and further partial volumes), with its
/// content lists, from records in spool order.
pub(super) struct Builder {
    dest: PathBuf,
    writer: PstWriter,
    lists: Vec<ContentList>,
    folders: HashMap<Vec<String>, FolderId>,
    refused: Vec<Settled>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("dest", &self.dest)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Starts the partial PST of `dest`, replacing any earlier partial file.
    pub(super) fn create(dest: &Path, options: &WriterOptions) -> SinkResult<Builder> {
        let partial = partial_path(dest);
        let writer =
            PstWriter::create(&partial, options.clone()).map_err(|e| pst_err("create", e))?;
        let lists = vec![ContentList::create(&content_list_path(dest)).map_err(core_io)?];
        Ok(Builder {
            dest: dest.to_path_buf(),
            writer,
            lists,
            folders: HashMap::new(),
            refused: Vec::new(),
        })
    }

    /// Adds the committed records of the spool at `path` (up to byte `end`), calling
    /// `stop` between records: when it answers true the replay ends early (`Ok(false)`).
    pub(super) fn replay(
        &mut self,
        path: &Path,
        end: u64,
        stop: impl Fn() -> bool,
    ) -> SinkResult<bool> {
        let mut reader = SpoolReader::open(path, end)?;
        while let Some((meta, raw_len)) = reader.next_meta()? {
            if stop() {
                return Ok(false);
            }
            let raw = reader.read_raw(raw_len)?;
            self.add(meta, raw)?;
        }
        Ok(true)
    }

    /// Stores one message. A message the writer refuses (too large, invalid) is left out
    /// and kept for [`finish`](Self::finish) to report; other errors are returned.
    pub(super) fn add(&mut self, meta: RecordMeta, raw: impl Into<bytes::Bytes>) -> SinkResult<()> {
        let raw: bytes::Bytes = raw.into();
        let folder = match self.folders.get(&meta.folder) {
            Some(f) => *f,
            None => {
                let segs: Vec<&str> = meta.folder.iter().map(String::as_str).collect();
                let f = self
                    .writer
                    .folder(&segs)
                    .map_err(|e| pst_err("create folder", e))?;
                self.folders.insert(meta.folder.clone(), f);
                f
            }
        };
        let pst_meta = MessageMeta {
            read: meta.read,
            flagged: meta.flagged,
            internal_date: meta.date,
        };
        let outcome = match self.writer.add_message(folder, &raw, &pst_meta) {
            Ok(o) => o,
            Err(e @ (legacyflo_pst::Error::TooLarge(_) | legacyflo_pst::Error::Invalid(_))) => {
                warn!(
                    message = "the PST writer refused a message; it is not in the PST",
                    folder = %meta.folder.join("/"),
                    source_id = %meta.source_id,
                    reason = %e
                );
                self.refused.push(Settled::Refused {
                    folder: FolderPath::new(meta.folder.iter().cloned()),
                    source_id: meta.source_id.clone(),
                    bytes: raw.len() as u64,
                    reason: format!("the PST writer refused it: {e}"),
                });
                return Ok(());
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
        ensure_lists(&mut self.lists, &self.dest, outcome.volume)?;
        let fp = FolderPath::new(meta.folder.iter().cloned());
        let entry = format!("{}/{}", meta.folder.join("/"), outcome.node_id);
        let mut message = Message::new(raw, fp, meta.source_id);
        message.internal_date = meta.date.and_then(|t| DateTime::from_timestamp(t, 0));
        if let Some(list) = self.lists.get_mut(outcome.volume.saturating_sub(1)) {
            list.append(&message, &entry).map_err(core_io)?;
        }
        Ok(())
    }

    /// Writes the indexes, renames every volume and list to its final name, removes
    /// volumes left beyond the last one by an earlier run, and returns the outputs and
    /// the messages the writer refused.
    pub(super) fn finish(self) -> SinkResult<(Vec<Output>, Vec<Settled>)> {
        let Builder {
            dest,
            writer,
            mut lists,
            refused,
            ..
        } = self;
        let volumes = writer.finish().map_err(|e| pst_err("finish", e))?;
        ensure_lists(&mut lists, &dest, volumes.len())?;
        let mut outputs = Vec::new();
        for ((i, v), list) in volumes.iter().enumerate().zip(lists) {
            let target = volume_path(&dest, i + 1);
            rename_durable(&v.path, &target).map_err(core_io)?;
            outputs.push(Output {
                location: target.display().to_string(),
                kind: OutputKind::Archive,
                bytes: Some(v.bytes),
                messages: v.messages,
            });
            outputs.push(list.finish().map_err(core_io)?);
        }
        // Volumes beyond the last one are leftovers of an earlier run to the same
        // destination: they would make the output set incoherent.
        let mut n = volumes.len() + 1;
        loop {
            let stale = volume_path(&dest, n);
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
}

/// Creates the content lists of volumes up to `volumes`.
fn ensure_lists(lists: &mut Vec<ContentList>, dest: &Path, volumes: usize) -> SinkResult<()> {
    while lists.len() < volumes {
        let n = lists.len() + 1;
        let path = content_list_path(&volume_path(dest, n));
        lists.push(ContentList::create(&path).map_err(core_io)?);
    }
    Ok(())
}
