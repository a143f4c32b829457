//! [`PstSource`]: the [`Source`] implementation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::DateTime;
use legacyflo_core::{
    Failure, Filter, Flag, FolderInfo, FolderPath, Message, MessageStream, Position, Result,
    Source, SourceCapabilities, SourceEvent, SourceItem,
};
use legacyflo_pst::{PstFolder, PstMessage, PstReader};
use tracing::{debug, warn};

use super::BACKEND;
use crate::error::{SourceError, SourceResult};
use crate::util::{Emitter, blocking, blocking_stream, parse_u64};

/// Reads an Outlook PST file (Unicode or ANSI).
///
/// See the [module documentation](super) for folders, messages, ids and positions.
pub struct PstSource {
    path: PathBuf,
    index: OnceLock<Arc<PstIndex>>,
}

impl std::fmt::Debug for PstSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PstSource")
            .field("path", &self.path)
            .field("loaded", &self.index.get().is_some())
            .finish()
    }
}

/// The open file and its folders, grouped by path in the reader's order.
struct PstIndex {
    reader: PstReader,
    folders: Vec<(FolderPath, Vec<PstFolder>)>,
    by_path: HashMap<FolderPath, usize>,
}

/// What the report says about the damaged tables of `f`: notes (how its messages or
/// subfolders were found instead) and skipped entries (messages that may be missing).
/// The number of entries comes from the folder's stored message count, bounded by what
/// the file could hold (a message takes at least a 64-byte block).
pub(super) fn damage_report(reader: &PstReader, f: &PstFolder, info: &mut FolderInfo) {
    let index = reader.node_index_damage().map(|e| e.to_string());
    if let Some(e) = &f.contents_error {
        info.notes.push(format!(
            "its contents table is damaged ({e}); its {} messages were found through the \
             node B-tree instead, in node order",
            f.message_count
        ));
        let stored = f.stored_count.unwrap_or(0);
        if stored > f.message_count || index.is_some() {
            let missing = stored
                .saturating_sub(f.message_count)
                .max(1)
                .min(usize::try_from(reader.file_size() / 64).unwrap_or(usize::MAX));
            let reason = format!(
                "message of a damaged contents table ({e}) not found: the folder says it \
                 holds {stored} messages, the node B-tree gives it {}{}",
                f.message_count,
                index
                    .as_ref()
                    .map(|d| format!("; the node B-tree is damaged too ({d})"))
                    .unwrap_or_default()
            );
            info.skipped.extend((0..missing).map(|i| Failure {
                source_id: format!("lost #{i}"),
                reason: reason.clone(),
            }));
        }
    }
    if let Some(e) = &f.subfolders_error {
        info.notes.push(format!(
            "its hierarchy table is damaged ({e}); its subfolders were found through the \
             node B-tree instead"
        ));
        if let Some(d) = &index {
            info.skipped.push(Failure {
                source_id: "subfolders".into(),
                reason: format!(
                    "subfolders may be missing: the hierarchy table is damaged ({e}) and so \
                     is the node B-tree ({d})"
                ),
            });
        }
    }
}

impl PstSource {
    /// A source over the PST at `path`. Nothing is read until [`Source::list_folders`] or
    /// [`Source::stream`] is called.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PstSource {
            path: path.into(),
            index: OnceLock::new(),
        }
    }

    /// The PST path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn index(&self) -> SourceResult<Arc<PstIndex>> {
        if let Some(i) = self.index.get() {
            return Ok(i.clone());
        }
        let path = self.path.clone();
        let built = Arc::new(blocking(move || build(&path)).await?);
        Ok(self.index.get_or_init(|| built).clone())
    }
}

/// Converts a reader error into this crate's error, naming the file.
pub(crate) fn pst_err(path: &Path, what: &str, e: legacyflo_pst::Error) -> SourceError {
    match e {
        legacyflo_pst::Error::Io { source, .. } => {
            SourceError::io(BACKEND, format!("{what} {}", path.display()), source)
        }
        other => SourceError::invalid(BACKEND, format!("{what} {}: {other}", path.display())),
    }
}

fn build(path: &Path) -> SourceResult<PstIndex> {
    let reader = PstReader::open(path).map_err(|e| pst_err(path, "open", e))?;
    let list = reader
        .folders()
        .map_err(|e| pst_err(path, "read the folders of", e))?;
    let mut folders: Vec<(FolderPath, Vec<PstFolder>)> = Vec::new();
    let mut by_path: HashMap<FolderPath, usize> = HashMap::new();
    let top = match ipm_subtree(&reader, &list) {
        Ok(t) => t.filter(|t| t.message_count > 0),
        Err(e) => return Err(pst_err(path, "read the folders of", e)),
    };
    for (fp, f) in top.into_iter().map(|t| (FolderPath::inbox(), t)).chain(
        list.into_iter()
            .map(|f| (FolderPath::new(f.path.iter().cloned()), f)),
    ) {
        if fp.is_root() {
            continue;
        }
        match by_path.get(&fp) {
            Some(&i) => {
                warn!(message = "two PST folders have the same path; streamed as one", folder = %fp);
                if let Some((_, group)) = folders.get_mut(i) {
                    group.push(f);
                }
            }
            None => {
                by_path.insert(fp.clone(), folders.len());
                folders.push((fp, vec![f]));
            }
        }
    }
    debug!(
        message = "pst opened",
        path = %path.display(),
        unicode = reader.is_unicode(),
        folders = folders.len()
    );
    Ok(PstIndex {
        reader,
        folders,
        by_path,
    })
}

/// The IPM subtree ("Top of Personal Folders") itself, which may hold messages of its own.
///
/// The reader lists the folders below it only; the subtree is found in
/// [`PstReader::all_folders`] as the parent (one segment) of the top-level folders, or as
/// Outlook's usual node `0x8022`.
fn ipm_subtree(
    reader: &PstReader,
    below: &[PstFolder],
) -> legacyflo_pst::Result<Option<PstFolder>> {
    let all = reader.all_folders()?;
    let name = below
        .iter()
        .filter(|f| f.path.len() == 1)
        .find_map(|f| all.iter().find(|a| a.node_id == f.node_id))
        .and_then(|a| (a.path.len() == 2).then(|| a.path[0].clone()));
    let found = match name {
        Some(n) => all
            .into_iter()
            .find(|a| a.path.len() == 1 && a.path[0] == n),
        None => all
            .into_iter()
            .find(|a| a.path.len() == 1 && a.node_id == 0x8022),
    };
    Ok(found)
}

/// The [`Message`] of a message read from the PST.
fn to_message(m: PstMessage, folder: &FolderPath) -> Message {
    let mut message = Message::new(Bytes::from(m.raw), folder.clone(), m.node_id.to_string());
    if m.read {
        message.flags.push(Flag::Seen);
    }
    message.internal_date = m.internal_date.and_then(|t| DateTime::from_timestamp(t, 0));
    message
}

#[async_trait]
impl Source for PstSource {
    fn kind(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            filters_dates: false,
            concurrent_folders: true,
        }
    }

    async fn list_folders(&self) -> Result<Vec<FolderInfo>> {
        let index = self.index().await?;
        Ok(index
            .folders
            .iter()
            .map(|(path, group)| {
                let mut info = FolderInfo {
                    messages: Some(group.iter().map(|f| f.message_count as u64).sum()),
                    ..FolderInfo::new(path.clone())
                };
                for f in group {
                    damage_report(&index.reader, f, &mut info);
                }
                info
            })
            .collect())
    }

    async fn stream<'a>(
        &'a self,
        folder: &FolderPath,
        _filter: &Filter,
        after: Option<&Position>,
    ) -> Result<MessageStream<'a>> {
        let index = self.index().await?;
        let Some(&group) = index.by_path.get(folder) else {
            return Err(SourceError::FolderNotFound {
                backend: BACKEND,
                folder: folder.to_string(),
                input: self.path.display().to_string(),
            }
            .into());
        };
        let after = match after {
            None => None,
            Some(p) => Some(parse_u64(p).ok_or_else(|| {
                SourceError::invalid(BACKEND, format!("`{p}` is not a pst position"))
            })?),
        };
        let path = self.path.clone();
        Ok(blocking_stream(BACKEND, move |out| {
            read_folder(&index, &path, group, after, out)
        }))
    }
}

fn read_folder(
    index: &PstIndex,
    path: &Path,
    group: usize,
    after: Option<u64>,
    out: &Emitter,
) -> SourceResult<()> {
    let Some((folder, parts)) = index.folders.get(group) else {
        return Ok(());
    };
    let mut position: u64 = 0;
    for part in parts {
        // Skip whole parts before the resume point without reading their messages.
        let count = part.message_count as u64;
        if after.is_some_and(|a| position + count <= a + 1) && count > 0 {
            position += count;
            continue;
        }
        let ids = index
            .reader
            .message_ids(part)
            .map_err(|e| pst_err(path, &format!("read folder {folder} of"), e))?;
        for nid in ids {
            let idx = position;
            position += 1;
            if after.is_some_and(|a| idx <= a) {
                continue;
            }
            let event = match index.reader.message(nid) {
                Ok(m) => SourceEvent::Message(SourceItem {
                    message: to_message(m, folder),
                    position: idx.to_string(),
                }),
                Err(e) => {
                    warn!(message = "unreadable PST message", folder = %folder, index = idx, node = nid, error = %e);
                    SourceEvent::Unreadable {
                        source_id: nid.to_string(),
                        position: idx.to_string(),
                        reason: format!("cannot read message {nid:#x}: {e}"),
                    }
                }
            };
            if !out.send(event) {
                debug!(message = "stream dropped; reader stops", folder = %folder);
                return Ok(());
            }
        }
    }
    Ok(())
}
