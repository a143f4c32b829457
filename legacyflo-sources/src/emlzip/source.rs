//! [`EmlZipSource`]: the [`Source`] implementation.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use legacyflo_core::{
    Filter, FolderInfo, FolderPath, Message, MessageStream, Position, Result, Source,
    SourceCapabilities, SourceEvent, SourceItem,
};
use tracing::{debug, warn};
use zip::ZipArchive;

use super::BACKEND;
use crate::error::{SourceError, SourceResult};
use crate::util::{Emitter, SharedFile, blocking, blocking_stream, parse_u64};
use legacyflo_core::codec::{EntryMeta, unescape_segment};

/// Reads a ZIP of `.eml` files.
///
/// See the [module documentation](super) for folders, entries, ids and positions. The
/// archive's central directory is read once and shared by all folder streams.
#[derive(Debug)]
pub struct EmlZipSource {
    path: PathBuf,
    index: OnceLock<Arc<ZipIndex>>,
}

#[derive(Debug)]
struct ZipIndex {
    archive: ZipArchive<SharedFile>,
    folders: BTreeMap<FolderPath, Vec<Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    name: String,
    eml: bool,
    meta: Option<EntryMeta>,
}

impl EmlZipSource {
    /// A source over the ZIP at `path`. Nothing is read until [`Source::list_folders`] or
    /// [`Source::stream`] is called.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        EmlZipSource {
            path: path.into(),
            index: OnceLock::new(),
        }
    }

    /// The archive path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn index(&self) -> SourceResult<Arc<ZipIndex>> {
        if let Some(i) = self.index.get() {
            return Ok(i.clone());
        }
        let path = self.path.clone();
        let built = Arc::new(blocking(move || build(&path)).await?);
        Ok(self.index.get_or_init(|| built).clone())
    }
}

fn build(path: &Path) -> SourceResult<ZipIndex> {
    let file = SharedFile::open(path)
        .map_err(|e| SourceError::io(BACKEND, format!("open {}", path.display()), e))?;
    let archive = ZipArchive::new(file)
        .map_err(|e| SourceError::zip(BACKEND, format!("read {}", path.display()), e))?;
    if archive.has_duplicate_names() {
        warn!(
            message = "the ZIP has several entries with the same name; only one of each can be read",
            path = %path.display()
        );
    }
    let mut folders: BTreeMap<FolderPath, Vec<Entry>> = BTreeMap::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|e| SourceError::zip(BACKEND, format!("read entry {index}"), e))?;
        if entry.is_dir() {
            continue;
        }
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let meta = EntryMeta::from_comment(entry.comment());
        let mut parts: Vec<&str> = name.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
        let Some(file_name) = parts.pop() else {
            continue;
        };
        let lower = file_name.to_ascii_lowercase();
        if parts.is_empty() && lower.ends_with(".csv") {
            debug!(message = "skipping the content list", entry = %name);
            continue;
        }
        let segments: Vec<String> = parts
            .iter()
            .map(|s| {
                if meta.is_some() {
                    unescape_segment(s)
                } else {
                    (*s).to_string()
                }
            })
            .collect();
        let mut folder = FolderPath::new(segments);
        if folder.is_root() {
            folder = FolderPath::inbox();
        }
        folders.entry(folder).or_default().push(Entry {
            index,
            eml: lower.ends_with(".eml"),
            name,
            meta,
        });
    }
    Ok(ZipIndex { archive, folders })
}

#[async_trait]
impl Source for EmlZipSource {
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
            .map(|(path, entries)| FolderInfo {
                messages: Some(entries.iter().filter(|e| e.eml).count() as u64),
                ..FolderInfo::new(path.clone())
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
        if !index.folders.contains_key(folder) {
            return Err(SourceError::FolderNotFound {
                backend: BACKEND,
                folder: folder.to_string(),
                input: self.path.display().to_string(),
            }
            .into());
        }
        let after = match after {
            None => None,
            Some(p) => Some(parse_u64(p).ok_or_else(|| {
                SourceError::invalid(BACKEND, format!("`{p}` is not an eml-zip position"))
            })?),
        };
        let folder = folder.clone();
        Ok(blocking_stream(BACKEND, move |out| {
            read_folder(&index, &folder, after, out)
        }))
    }
}

fn read_folder(
    index: &ZipIndex,
    folder: &FolderPath,
    after: Option<u64>,
    out: &Emitter,
) -> SourceResult<()> {
    let mut archive = index.archive.clone();
    let entries = index.folders.get(folder).map(Vec::as_slice).unwrap_or(&[]);
    for entry in entries {
        if after.is_some_and(|a| entry.index as u64 <= a) {
            continue;
        }
        let position = entry.index.to_string();
        let event = if !entry.eml {
            SourceEvent::Unreadable {
                source_id: entry.name.clone(),
                position,
                reason: format!("not an .eml file: {}", entry.name),
            }
        } else {
            match read_entry(&mut archive, entry.index) {
                Ok(raw) => {
                    let mut message =
                        Message::new(Bytes::from(raw), folder.clone(), entry.name.clone());
                    if let Some(meta) = &entry.meta {
                        message.internal_date = meta.date;
                        message.flags = meta.flags.clone();
                    }
                    SourceEvent::Message(SourceItem { message, position })
                }
                Err(reason) => SourceEvent::Unreadable {
                    source_id: entry.name.clone(),
                    position,
                    reason: format!("cannot read {}: {reason}", entry.name),
                },
            }
        };
        if !out.send(event) {
            debug!(message = "stream dropped; reader stops", folder = %folder);
            return Ok(());
        }
    }
    Ok(())
}

fn read_entry(
    archive: &mut ZipArchive<SharedFile>,
    index: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut file = archive.by_index(index).map_err(|e| e.to_string())?;
    let mut raw = Vec::with_capacity(usize::try_from(file.size()).unwrap_or(0).min(64 << 20));
    file.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    Ok(raw)
}
