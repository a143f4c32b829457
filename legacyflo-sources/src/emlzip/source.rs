//! [`EmlZipSource`]: the [`Source`] implementation.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use legacyflo_core::spill::SpillLimits;
use legacyflo_core::{
    Failure, Filter, FolderInfo, FolderPath, Message, MessageStream, Position, Result, Source,
    SourceCapabilities, SourceEvent, SourceItem,
};
use tracing::{debug, warn};
use zip::ZipArchive;

use super::BACKEND;
use crate::error::{SourceError, SourceResult};
use crate::util::{Emitter, SharedFile, blocking, blocking_stream, parse_u64, read_bounded};
use legacyflo_core::codec::{EntryMeta, unescape_segment};

/// Reads a ZIP of `.eml` files.
///
/// See the [module documentation](super) for folders, entries, ids and positions. The
/// archive's central directory is read once and shared by all folder streams.
#[derive(Debug)]
pub struct EmlZipSource {
    path: PathBuf,
    limits: SpillLimits,
    index: OnceLock<Arc<ZipIndex>>,
}

#[derive(Debug)]
struct ZipIndex {
    archive: ZipArchive<SharedFile>,
    folders: BTreeMap<FolderPath, Listed>,
}

/// One folder: its entries, and what the listing skipped.
#[derive(Debug, Default)]
struct Listed {
    entries: Vec<Entry>,
    skipped: Vec<Failure>,
}

#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    name: String,
    /// `Some(reason)` for an entry that is reported instead of read.
    problem: Option<String>,
    meta: Option<EntryMeta>,
}

impl EmlZipSource {
    /// A source over the ZIP at `path` with the default message limits. Nothing is read
    /// until [`Source::list_folders`] or [`Source::stream`] is called.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        EmlZipSource {
            path: path.into(),
            limits: SpillLimits::default(),
            index: OnceLock::new(),
        }
    }

    /// The same source with other message limits: an entry that inflates past
    /// `limits.max_bytes` is reported and its inflation stops there; up to
    /// `limits.memory_threshold` bytes of an entry are held in memory, the rest in a
    /// temporary file.
    pub fn with_limits(mut self, limits: SpillLimits) -> Self {
        self.limits = limits;
        self
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
    let archive = ZipArchive::new(file.clone())
        .map_err(|e| SourceError::zip(BACKEND, format!("read {}", path.display()), e))?;
    let mut folders: BTreeMap<FolderPath, Listed> = BTreeMap::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|e| SourceError::zip(BACKEND, format!("read entry {index}"), e))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let meta = EntryMeta::from_comment(entry.comment());
        if entry.is_dir() {
            if entry.size() > 0 {
                folders
                    .entry(folder_of(&name, meta.is_some()).0)
                    .or_default()
                    .skipped
                    .push(Failure {
                        source_id: name.clone(),
                        reason: format!(
                            "a directory entry (its name ends in `/`) that holds {} bytes; not read",
                            entry.size()
                        ),
                    });
            }
            continue;
        }
        let (folder, file_name) = folder_of(&name, meta.is_some());
        let lower = file_name.to_ascii_lowercase();
        if folder == FolderPath::inbox() && !name.contains(['/', '\\']) && lower.ends_with(".csv") {
            debug!(message = "skipping the content list", entry = %name);
            continue;
        }
        let problem = if entry.is_symlink() {
            Some(
                "a symbolic link entry (its data is a path, not a message); not followed"
                    .to_string(),
            )
        } else if file_name.is_empty() {
            Some("an entry without a file name".to_string())
        } else if !lower.ends_with(".eml") {
            Some(format!("not an .eml file: {name}"))
        } else {
            None
        };
        folders.entry(folder).or_default().entries.push(Entry {
            index,
            name,
            problem,
            meta,
        });
    }
    if archive.has_duplicate_names() {
        report_duplicates(&file, &archive, &mut folders).map_err(|e| {
            SourceError::io(
                BACKEND,
                format!("read the central directory of {}", path.display()),
                e,
            )
        })?;
    }
    Ok(ZipIndex { archive, folders })
}

/// The folder of an entry name and its file name: the directories inside the ZIP (`/` and
/// `\\` both separate), percent-unescaped for entries written by legacyflo's sink; the root
/// is INBOX.
fn folder_of(name: &str, ours: bool) -> (FolderPath, String) {
    let mut parts: Vec<&str> = name.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
    let file_name = if name.ends_with(['/', '\\']) {
        String::new()
    } else {
        parts.pop().unwrap_or("").to_string()
    };
    let folder = FolderPath::new(parts.iter().map(|s| {
        if ours {
            unescape_segment(s)
        } else {
            (*s).to_string()
        }
    }));
    if folder.is_root() {
        (FolderPath::inbox(), file_name)
    } else {
        (folder, file_name)
    }
}

/// Entries sharing a name: the ZIP reader keys entries by name and keeps one of each (the
/// last in the central directory); the others are counted from the central directory and
/// reported as skipped entries of their folder.
fn report_duplicates(
    file: &SharedFile,
    archive: &ZipArchive<SharedFile>,
    folders: &mut BTreeMap<FolderPath, Listed>,
) -> io::Result<()> {
    let mut counts: HashMap<Vec<u8>, u32> = HashMap::new();
    for name in central_directory_names(file.clone(), archive.central_directory_start())? {
        *counts.entry(name).or_insert(0) += 1;
    }
    let mut dups: Vec<(Vec<u8>, u32)> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
    dups.sort();
    for (raw, n) in dups {
        let name = String::from_utf8_lossy(&raw).into_owned();
        warn!(message = "the ZIP has several entries with one name; only one can be read", entry = %name, copies = n);
        let (folder, _) = folder_of(&name, false);
        let listed = folders.entry(folder).or_default();
        for copy in 1..n {
            listed.skipped.push(Failure {
                source_id: format!("{name} (copy {copy} of {n})"),
                reason: format!(
                    "the archive holds {n} entries named `{name}`; only the last one can be read, this one is not"
                ),
            });
        }
    }
    Ok(())
}

/// The raw names of the central directory records from `start` on.
fn central_directory_names(mut file: SharedFile, start: u64) -> io::Result<Vec<Vec<u8>>> {
    use std::io::{BufReader, Seek, SeekFrom};
    file.seek(SeekFrom::Start(start))?;
    let mut r = BufReader::new(file);
    let mut names = Vec::new();
    let mut head = [0u8; 46];
    loop {
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        if head[..4] != [0x50, 0x4b, 0x01, 0x02] {
            break;
        }
        let u16_at = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]);
        let (n, extra, comment) = (u16_at(28), u16_at(30), u16_at(32));
        let mut name = vec![0u8; usize::from(n)];
        r.read_exact(&mut name)?;
        r.seek_relative(i64::from(extra) + i64::from(comment))?;
        names.push(name);
    }
    Ok(names)
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
            .map(|(path, listed)| FolderInfo {
                messages: Some(
                    listed
                        .entries
                        .iter()
                        .filter(|e| e.problem.is_none())
                        .count() as u64,
                ),
                skipped: listed.skipped.clone(),
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
        let limits = self.limits;
        Ok(blocking_stream(BACKEND, move |out| {
            read_folder(&index, &folder, after, limits, out)
        }))
    }
}

fn read_folder(
    index: &ZipIndex,
    folder: &FolderPath,
    after: Option<u64>,
    limits: SpillLimits,
    out: &Emitter,
) -> SourceResult<()> {
    let mut archive = index.archive.clone();
    let entries = index
        .folders
        .get(folder)
        .map(|l| l.entries.as_slice())
        .unwrap_or(&[]);
    for entry in entries {
        if after.is_some_and(|a| entry.index as u64 <= a) {
            continue;
        }
        let position = entry.index.to_string();
        let unreadable = |reason: String| SourceEvent::Unreadable {
            source_id: entry.name.clone(),
            position: position.clone(),
            reason,
        };
        let event = if let Some(problem) = &entry.problem {
            unreadable(problem.clone())
        } else {
            match read_entry(&mut archive, entry.index, limits) {
                Ok(raw) => {
                    let mut message = Message::new(raw, folder.clone(), entry.name.clone());
                    if let Some(meta) = &entry.meta {
                        message.internal_date = meta.date;
                        message.flags = meta.flags.clone();
                    }
                    SourceEvent::Message(SourceItem {
                        message,
                        position: position.clone(),
                    })
                }
                Err(reason) => unreadable(format!("cannot read {}: {reason}", entry.name)),
            }
        };
        if !out.send(event) {
            debug!(message = "stream dropped; reader stops", folder = %folder);
            return Ok(());
        }
    }
    Ok(())
}

/// Inflates one entry through a spill buffer: never more than the limit (an entry whose
/// header claims more is refused before inflating), the declared size only a hint, and the
/// CRC and declared size checked by the ZIP reader at the end of the data.
fn read_entry(
    archive: &mut ZipArchive<SharedFile>,
    index: usize,
    limits: SpillLimits,
) -> std::result::Result<Bytes, String> {
    let file = archive.by_index(index).map_err(|e| e.to_string())?;
    let declared = file.size();
    read_bounded(file, limits, declared).map_err(|e| {
        if e == "Invalid checksum" {
            "the CRC-32 of the inflated data does not match the archive's (the entry is corrupt)"
                .to_string()
        } else {
            e
        }
    })
}
