//! [`MaildirSource`]: the [`Source`] implementation.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
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
use crate::util::{Emitter, blocking, blocking_stream};

/// Reads a Maildir or a Maildir++ / Dovecot `LAYOUT=fs` tree.
///
/// See the [module documentation](super) for folder naming, ordering, ids and positions.
/// Message files are opened read-only; nothing is moved or renamed.
#[derive(Debug)]
pub struct MaildirSource {
    root: PathBuf,
    folders: OnceLock<Arc<BTreeMap<FolderPath, MaildirFolder>>>,
}

impl MaildirSource {
    /// A source over the Maildir at `root`. Nothing is read until
    /// [`Source::list_folders`] or [`Source::stream`] is called.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MaildirSource {
            root: root.into(),
            folders: OnceLock::new(),
        }
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
        let Some(entry) = folders.get(folder) else {
            return Err(SourceError::FolderNotFound {
                backend: BACKEND,
                folder: folder.to_string(),
                input: self.root.display().to_string(),
            }
            .into());
        };
        let dirs = entry.dirs.clone();
        let folder = folder.clone();
        let after = after.cloned();
        Ok(blocking_stream(BACKEND, move |out| {
            read_folder(&dirs, &folder, after.as_deref(), out)
        }))
    }
}

/// A message file with its source id.
struct Listed {
    id: String,
    file: MessageFile,
    keywords: usize,
}

/// Dovecot keyword names by letter index, one table per directory.
type KeywordTables = Vec<Vec<Option<String>>>;

/// The folder's messages in the documented order, with unique ids.
fn ordered(dirs: &[PathBuf]) -> SourceResult<(Vec<Listed>, KeywordTables)> {
    let mut all = Vec::new();
    let mut kw = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        kw.push(keywords(dir));
        for file in list_messages(dir)? {
            all.push((file, i));
        }
    }
    all.sort_by(|(a, ai), (b, bi)| {
        (a.base.as_str(), ai, a.path.as_path()).cmp(&(b.base.as_str(), bi, b.path.as_path()))
    });
    let mut seen: HashMap<String, u32> = HashMap::new();
    let listed = all
        .into_iter()
        .map(|(file, i)| {
            let n = seen.entry(file.base.clone()).or_insert(0);
            *n += 1;
            let id = if *n == 1 {
                file.base.clone()
            } else {
                format!("{}#{n}", file.base)
            };
            Listed {
                id,
                file,
                keywords: i,
            }
        })
        .collect();
    Ok((listed, kw))
}

fn read_folder(
    dirs: &[PathBuf],
    folder: &FolderPath,
    after: Option<&str>,
    out: &Emitter,
) -> SourceResult<()> {
    let (listed, kw) = ordered(dirs)?;
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
    for l in listed.into_iter().skip(start) {
        let event = match read_one(&l, folder, &kw) {
            Ok(message) => SourceEvent::Message(SourceItem {
                message,
                position: l.id,
            }),
            Err(reason) => SourceEvent::Unreadable {
                source_id: l.id.clone(),
                position: l.id,
                reason,
            },
        };
        if !out.send(event) {
            debug!(message = "stream dropped; reader stops", folder = %folder);
            return Ok(());
        }
    }
    Ok(())
}

fn read_one(
    l: &Listed,
    folder: &FolderPath,
    kw: &[Vec<Option<String>>],
) -> std::result::Result<Message, String> {
    let path = &l.file.path;
    let raw = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = fs::metadata(path).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    let keywords = kw.get(l.keywords).map(Vec::as_slice).unwrap_or(&[]);
    let mut message = Message::new(Bytes::from(raw), folder.clone(), l.id.clone());
    message.flags = info_flags(&l.file.info, keywords);
    message.internal_date = mtime(&meta);
    Ok(message)
}
