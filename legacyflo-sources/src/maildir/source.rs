//! [`MaildirSource`]: the [`Source`] implementation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use legacyflo_core::fsutil::open_beneath;
use legacyflo_core::spill::SpillLimits;
use legacyflo_core::{
    Filter, FolderInfo, FolderPath, Message, MessageStream, Position, Result, Source,
    SourceCapabilities, SourceEvent, SourceItem,
};
use tracing::debug;

use super::BACKEND;
use super::tree::{
    MaildirFolder, MessageFile, discover, info_flags, keywords, list_messages, mtime,
};
use crate::error::{SourceError, SourceResult};
use crate::util::{Emitter, blocking, blocking_stream, read_bounded};

/// Reads a Maildir or a Maildir++ / Dovecot `LAYOUT=fs` tree.
///
/// See the [module documentation](super) for folder naming, symbolic links, ordering, ids
/// and positions. Message files are opened read-only without following links; nothing is
/// moved or renamed.
#[derive(Debug)]
pub struct MaildirSource {
    root: PathBuf,
    limits: SpillLimits,
    folders: OnceLock<Arc<BTreeMap<FolderPath, MaildirFolder>>>,
}

impl MaildirSource {
    /// A source over the Maildir at `root` (which may be a symbolic link), with the
    /// default message limits. Nothing is read until [`Source::list_folders`] or
    /// [`Source::stream`] is called.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MaildirSource {
            root: root.into(),
            limits: SpillLimits::default(),
            folders: OnceLock::new(),
        }
    }

    /// The same source with other message limits: a file larger than
    /// `limits.max_bytes` is reported, not read; up to `limits.memory_threshold` bytes
    /// of a message are held in memory, the rest in a temporary file.
    pub fn with_limits(mut self, limits: SpillLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn folders(&self) -> SourceResult<Arc<BTreeMap<FolderPath, MaildirFolder>>> {
        if let Some(f) = self.folders.get() {
            return Ok(f.clone());
        }
        let root = self.root.clone();
        let built = Arc::new(blocking(move || discover(&root)).await?);
        Ok(self.folders.get_or_init(|| built).clone())
    }
}

#[async_trait]
impl Source for MaildirSource {
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
        let folders = self.folders().await?;
        Ok(folders
            .iter()
            .map(|(path, f)| FolderInfo {
                messages: Some(f.messages),
                notes: f.notes.clone(),
                skipped: f.skipped.clone(),
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
        let folders = self.folders().await?;
        let Some(entry) = folders.get(folder).cloned() else {
            return Err(SourceError::FolderNotFound {
                backend: BACKEND,
                folder: folder.to_string(),
                input: self.root.display().to_string(),
            }
            .into());
        };
        let reader = FolderReader {
            root: self.root.clone(),
            entry,
            folder: folder.clone(),
            limits: self.limits,
        };
        let after = after.cloned();
        Ok(blocking_stream(BACKEND, move |out| {
            reader.read(after.as_deref(), out)
        }))
    }
}

/// A message file with its source id.
struct Listed {
    id: String,
    file: MessageFile,
    /// The index of its directory in the folder's `dirs`.
    dir: usize,
}

/// Dovecot keyword names by letter index, one table per directory.
type KeywordTables = Vec<Vec<Option<String>>>;

/// What a folder stream needs.
struct FolderReader {
    root: PathBuf,
    entry: MaildirFolder,
    folder: FolderPath,
    limits: SpillLimits,
}

impl FolderReader {
    /// The folder's entries in the documented order, with unique ids. A `cur/` or `new/`
    /// that became a link (or other non-directory) since the listing is an error; one the
    /// listing reported is left out.
    fn ordered(&self) -> SourceResult<(Vec<Listed>, KeywordTables)> {
        let mut all = Vec::new();
        let mut kw = Vec::new();
        for (i, dir) in self.entry.dirs.iter().enumerate() {
            kw.push(keywords(&self.root, dir));
            let (files, problems) = list_messages(&self.root, dir)?;
            if let Some(p) = problems.iter().find(|p| {
                !self
                    .entry
                    .skipped
                    .iter()
                    .any(|s| s.source_id == p.source_id)
            }) {
                return Err(SourceError::invalid(
                    BACKEND,
                    format!(
                        "{}: {}: {} (changed since the folder was listed)",
                        self.root.display(),
                        p.source_id,
                        p.reason
                    ),
                ));
            }
            for file in files {
                all.push((file, i));
            }
        }
        all.sort_by(|(a, ai), (b, bi)| {
            (a.base.as_str(), ai, a.rel.as_path()).cmp(&(b.base.as_str(), bi, b.rel.as_path()))
        });
        let mut seen: HashMap<String, u32> = HashMap::new();
        let listed = all
            .into_iter()
            .map(|(file, dir)| {
                let n = seen.entry(file.base.clone()).or_insert(0);
                *n += 1;
                let id = if *n == 1 {
                    file.base.clone()
                } else {
                    format!("{}#{n}", file.base)
                };
                Listed { id, file, dir }
            })
            .collect();
        Ok((listed, kw))
    }

    fn read(&self, after: Option<&str>, out: &Emitter) -> SourceResult<()> {
        let (listed, kw) = self.ordered()?;
        let start = match after {
            None => 0,
            Some(p) => match listed.iter().position(|l| l.id == p) {
                Some(i) => i + 1,
                None => {
                    let base = p.split('#').next().unwrap_or(p);
                    listed
                        .iter()
                        .position(|l| l.file.base.as_str() > base)
                        .unwrap_or(listed.len())
                }
            },
        };
        let snapshot: HashSet<PathBuf> = listed.iter().map(|l| l.file.rel.clone()).collect();
        for l in listed.into_iter().skip(start) {
            let event = self.event(&l, &kw, &snapshot);
            if !out.send(event) {
                debug!(message = "stream dropped; reader stops", folder = %self.folder);
                return Ok(());
            }
        }
        Ok(())
    }

    /// The event of one listed entry: its message; `Unreadable` with the reason; or, when
    /// the file is gone, the same message under its new name (a live server renames a
    /// file when it moves it from `new/` to `cur/` or changes its flags), and `Expunged`
    /// when no file of that unique name is left.
    fn event(
        &self,
        l: &Listed,
        kw: &[Vec<Option<String>>],
        snapshot: &HashSet<PathBuf>,
    ) -> SourceEvent {
        let unreadable = |reason: String| SourceEvent::Unreadable {
            source_id: l.id.clone(),
            position: l.id.clone(),
            reason,
        };
        if let Some(problem) = &l.file.problem {
            return unreadable(format!("`{}` is {problem}", l.file.rel.display()));
        }
        let keywords = kw.get(l.dir).map(Vec::as_slice).unwrap_or(&[]);
        let mut file = l.file.clone();
        let mut tried = 0;
        loop {
            match self.read_one(&file, &l.id, keywords) {
                Ok(message) => {
                    return SourceEvent::Message(SourceItem {
                        message,
                        position: l.id.clone(),
                    });
                }
                Err(Missing::Gone) if tried < 3 => {
                    tried += 1;
                    match self.relocate(l, snapshot) {
                        Ok(Some(moved)) => {
                            debug!(message = "message file renamed since the listing", from = %file.rel.display(), to = %moved.rel.display());
                            file = moved;
                        }
                        Ok(None) => {
                            return SourceEvent::Expunged {
                                source_id: l.id.clone(),
                                position: l.id.clone(),
                            };
                        }
                        Err(e) => {
                            return unreadable(format!(
                                "`{}` vanished and the folder cannot be listed again: {e}",
                                file.rel.display()
                            ));
                        }
                    }
                }
                Err(Missing::Gone) => {
                    return unreadable(format!(
                        "`{}` keeps being renamed while it is read",
                        l.file.rel.display()
                    ));
                }
                Err(Missing::Unreadable(reason)) => return unreadable(reason),
            }
        }
    }

    /// The file of `l`'s unique name that is not one of the files listed (the name it was
    /// renamed to), if any.
    fn relocate(
        &self,
        l: &Listed,
        snapshot: &HashSet<PathBuf>,
    ) -> SourceResult<Option<MessageFile>> {
        let Some(dir) = self.entry.dirs.get(l.dir) else {
            return Ok(None);
        };
        let (files, _) = list_messages(&self.root, dir)?;
        let mut moved: Vec<MessageFile> = files
            .into_iter()
            .filter(|f| f.base == l.file.base && f.problem.is_none() && !snapshot.contains(&f.rel))
            .collect();
        moved.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(moved.into_iter().next())
    }

    fn read_one(
        &self,
        file: &MessageFile,
        id: &str,
        keywords: &[Option<String>],
    ) -> std::result::Result<Message, Missing> {
        let shown = file.rel.display();
        let f = match open_beneath(&self.root, &file.rel) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Missing::Gone),
            Err(e) => return Err(Missing::Unreadable(format!("cannot open `{shown}`: {e}"))),
        };
        let meta = f
            .metadata()
            .map_err(|e| Missing::Unreadable(format!("cannot stat `{shown}`: {e}")))?;
        let raw = read_bounded(&f, self.limits, meta.len())
            .map_err(|e| Missing::Unreadable(format!("`{shown}`: {e}")))?;
        let mut message = Message::new(raw, self.folder.clone(), id.to_string());
        message.flags = info_flags(&file.info, keywords);
        message.internal_date = mtime(&meta);
        Ok(message)
    }
}

/// Why a listed file was not read.
enum Missing {
    /// It is no longer there under its listed name.
    Gone,
    /// It cannot be read; the reason.
    Unreadable(String),
}
