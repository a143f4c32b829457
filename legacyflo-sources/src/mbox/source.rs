//! [`MboxSource`]: the [`Source`] implementation.

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use legacyflo_core::fsutil::{open_beneath, open_regular};
use legacyflo_core::spill::SpillLimits;
use legacyflo_core::{
    Filter, FolderInfo, FolderPath, Message, MessageStream, Position, Result, Source,
    SourceCapabilities, SourceEvent, SourceItem,
};
use tracing::debug;

use super::BACKEND;
use super::parse::{Item, MboxReader, from_line_date, header_flags};
use super::tree::{MboxFile, MboxIndex};
use crate::error::{SourceError, SourceResult};
use crate::util::{Emitter, blocking, blocking_stream, parse_u64};

/// Read buffer of an mbox file.
const READ_BUFFER: usize = 256 * 1024;

/// Reads an mbox file, a directory tree of mbox files, or a `.zip` of them.
///
/// See the [module documentation](super) for folder naming, parsing rules, ids and
/// positions. Files are opened read-only and read one message at a time.
#[derive(Debug)]
pub struct MboxSource {
    input: PathBuf,
    limits: SpillLimits,
    index: OnceLock<Arc<MboxIndex>>,
}

impl MboxSource {
    /// A source over `input` (a file, a directory or a `.zip`; the path given may be a
    /// symbolic link) with the default message limits. Nothing is read until
    /// [`Source::list_folders`] or [`Source::stream`] is called.
    pub fn new(input: impl Into<PathBuf>) -> Self {
        MboxSource {
            input: input.into(),
            limits: SpillLimits::default(),
            index: OnceLock::new(),
        }
    }

    /// The same source with other message limits: a message larger than
    /// `limits.max_bytes` is reported, not read; up to `limits.memory_threshold` bytes of a
    /// message are held in memory, the rest in a temporary file.
    pub fn with_limits(mut self, limits: SpillLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The input path.
    pub fn input(&self) -> &Path {
        &self.input
    }

    async fn index(&self) -> SourceResult<Arc<MboxIndex>> {
        if let Some(i) = self.index.get() {
            return Ok(i.clone());
        }
        let input = self.input.clone();
        let built = Arc::new(blocking(move || MboxIndex::build(&input)).await?);
        Ok(self.index.get_or_init(|| built).clone())
    }
}

#[async_trait]
impl Source for MboxSource {
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
            .map(|f| FolderInfo {
                notes: f.notes.clone(),
                skipped: f.skipped.clone(),
                ..FolderInfo::new(f.path.clone())
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
        let Some(file) = index.find(folder).map(|f| f.file.clone()) else {
            return Err(SourceError::FolderNotFound {
                backend: BACKEND,
                folder: folder.to_string(),
                input: self.input.display().to_string(),
            }
            .into());
        };
        let start = match after {
            None => 0,
            Some(p) => parse_u64(p).ok_or_else(|| {
                SourceError::invalid(BACKEND, format!("`{p}` is not an mbox position"))
            })?,
        };
        let reader = FolderReader {
            index,
            input: self.input.clone(),
            folder: folder.clone(),
            limits: self.limits,
        };
        Ok(blocking_stream(BACKEND, move |out| {
            reader.read(file, start, start > 0, out)
        }))
    }
}

/// What a folder stream needs.
struct FolderReader {
    index: Arc<MboxIndex>,
    input: PathBuf,
    folder: FolderPath,
    limits: SpillLimits,
}

impl FolderReader {
    fn read(&self, file: MboxFile, start: u64, strict: bool, out: &Emitter) -> SourceResult<()> {
        match file {
            MboxFile::Nothing => Ok(()),
            MboxFile::Input(path) => {
                let f = open_regular(&path)
                    .map_err(|e| SourceError::io(BACKEND, format!("open {}", path.display()), e))?;
                self.read_file(f, &path.display().to_string(), start, strict, out)
            }
            MboxFile::Beneath(rel) => {
                let path = self.input.join(&rel);
                let f = open_beneath(&self.input, &rel)
                    .map_err(|e| SourceError::io(BACKEND, format!("open {}", path.display()), e))?;
                self.read_file(f, &path.display().to_string(), start, strict, out)
            }
            MboxFile::ZipEntry(i) => {
                let Some(archive) = &self.index.zip else {
                    return Err(SourceError::invalid(
                        BACKEND,
                        "ZIP entry without an archive",
                    ));
                };
                let mut archive = archive.clone();
                let what = format!("{} entry {i}", self.input.display());
                let entry = archive
                    .by_index(i)
                    .map_err(|e| SourceError::zip(BACKEND, format!("read {what}"), e))?;
                let mut reader = BufReader::with_capacity(READ_BUFFER, entry);
                let skipped = io::copy(&mut (&mut reader).take(start), &mut io::sink())
                    .map_err(|e| SourceError::io(BACKEND, format!("read {what}"), e))?;
                if skipped < start {
                    return Err(SourceError::invalid(
                        BACKEND,
                        format!("position {start} is past the end of {what}"),
                    ));
                }
                self.emit_all(reader, start, strict, &what, out)
            }
        }
    }

    fn read_file(
        &self,
        mut f: std::fs::File,
        what: &str,
        start: u64,
        strict: bool,
        out: &Emitter,
    ) -> SourceResult<()> {
        f.seek(SeekFrom::Start(start))
            .map_err(|e| SourceError::io(BACKEND, format!("seek {what}"), e))?;
        let reader = BufReader::with_capacity(READ_BUFFER, f);
        self.emit_all(reader, start, strict, what, out)
    }

    fn emit_all<R: BufRead>(
        &self,
        reader: R,
        start: u64,
        strict: bool,
        what: &str,
        out: &Emitter,
    ) -> SourceResult<()> {
        let folder = &self.folder;
        let mut parser = MboxReader::new(reader, start, strict, self.limits);
        loop {
            let item = parser.next_item().map_err(|e| {
                let kind = e.kind();
                if kind == io::ErrorKind::InvalidData {
                    SourceError::invalid(BACKEND, format!("{what}: {e}"))
                } else {
                    SourceError::io(BACKEND, format!("read {what}"), e)
                }
            })?;
            let event = match item {
                None => return Ok(()),
                Some(Item::Junk { offset, end }) => SourceEvent::Unreadable {
                    source_id: offset.to_string(),
                    position: end.to_string(),
                    reason: format!(
                        "{} bytes at offset {offset} of {what} come before the first `From ` line and belong to no message",
                        end - offset
                    ),
                },
                Some(Item::Bad {
                    offset,
                    end,
                    reason,
                }) => SourceEvent::Unreadable {
                    source_id: offset.to_string(),
                    position: end.to_string(),
                    reason: format!("the message at offset {offset} of {what}: {reason}"),
                },
                Some(Item::Message(m)) => {
                    let flags = header_flags(&m.body);
                    let mut message = Message::new(m.body, folder.clone(), m.offset.to_string());
                    message.internal_date = from_line_date(&m.from_line);
                    message.flags = flags;
                    SourceEvent::Message(SourceItem {
                        message,
                        position: m.end.to_string(),
                    })
                }
            };
            if !out.send(event) {
                debug!(message = "stream dropped; reader stops", folder = %folder);
                return Ok(());
            }
        }
    }
}
