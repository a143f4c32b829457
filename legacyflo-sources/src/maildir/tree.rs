//! Finding the folders of a Maildir tree and listing their messages.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use legacyflo_core::{Flag, FolderPath};
use tracing::{debug, warn};

use super::BACKEND;
use crate::error::{SourceError, SourceResult};
use legacyflo_core::codec::maildir_decode;

/// Deepest directory level walked (guards against symlink loops).
const MAX_DEPTH: usize = 64;

/// A folder and the Maildir directories that hold it (usually one).
#[derive(Debug, Clone)]
pub(crate) struct MaildirFolder {
    pub dirs: Vec<PathBuf>,
    pub messages: u64,
}

/// Lists the folders under `root`, sorted by path.
pub(crate) fn discover(root: &Path) -> SourceResult<BTreeMap<FolderPath, MaildirFolder>> {
    let meta = fs::metadata(root)
        .map_err(|e| SourceError::io(BACKEND, format!("stat {}", root.display()), e))?;
    if !meta.is_dir() {
        return Err(SourceError::invalid(
            BACKEND,
            format!("{} is not a Maildir directory", root.display()),
        ));
    }
    let mut found: BTreeMap<FolderPath, MaildirFolder> = BTreeMap::new();
    if is_maildir(root) {
        add(&mut found, FolderPath::inbox(), root)?;
    }
    for (name, path) in subdirs(root)? {
        if let Some(rest) = name.strip_prefix('.') {
            let path_segments: Vec<String> = rest
                .split('.')
                .filter(|s| !s.is_empty())
                .map(maildir_decode)
                .collect();
            if !path_segments.is_empty() && is_maildir(&path) {
                add(&mut found, FolderPath::new(path_segments), &path)?;
            }
        } else {
            walk_fs(&path, vec![maildir_decode(&name)], &mut found, 1)?;
        }
    }
    if found.is_empty() {
        warn!(message = "no Maildir folders found", root = %root.display());
    }
    Ok(found)
}

/// Dovecot `LAYOUT=fs`: any directory holding `cur/` or `new/` is a folder, nested freely.
fn walk_fs(
    dir: &Path,
    segments: Vec<String>,
    found: &mut BTreeMap<FolderPath, MaildirFolder>,
    depth: usize,
) -> SourceResult<()> {
    if depth > MAX_DEPTH {
        warn!(message = "directory tree too deep; not descending", dir = %dir.display());
        return Ok(());
    }
    if is_maildir(dir) {
        add(found, FolderPath::new(segments.clone()), dir)?;
    }
    for (name, path) in subdirs(dir)? {
        if name.starts_with('.') {
            continue;
        }
        let mut child = segments.clone();
        child.push(maildir_decode(&name));
        walk_fs(&path, child, found, depth + 1)?;
    }
    Ok(())
}

fn add(
    found: &mut BTreeMap<FolderPath, MaildirFolder>,
    path: FolderPath,
    dir: &Path,
) -> SourceResult<()> {
    let count = list_messages(dir)?.len() as u64;
    let entry = found.entry(path).or_insert(MaildirFolder {
        dirs: Vec::new(),
        messages: 0,
    });
    entry.dirs.push(dir.to_path_buf());
    entry.messages += count;
    Ok(())
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() || dir.join("new").is_dir()
}

/// Sub-directories of `dir` other than `cur`, `new` and `tmp`, sorted by name.
fn subdirs(dir: &Path) -> SourceResult<Vec<(String, PathBuf)>> {
    let entries = fs::read_dir(dir)
        .map_err(|e| SourceError::io(BACKEND, format!("list {}", dir.display()), e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| SourceError::io(BACKEND, format!("list {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if matches!(name.as_str(), "cur" | "new" | "tmp" | "." | "..") {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// One message file.
#[derive(Debug, Clone)]
pub(crate) struct MessageFile {
    /// The unique part of its name (before `:`).
    pub base: String,
    /// Its path.
    pub path: PathBuf,
    /// The letters after `:2,`.
    pub info: String,
}

/// The message files of one Maildir directory (`cur/` and `new/`; `tmp/` is skipped).
pub(crate) fn list_messages(dir: &Path) -> SourceResult<Vec<MessageFile>> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let d = dir.join(sub);
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SourceError::io(BACKEND, format!("list {}", d.display()), e)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| SourceError::io(BACKEND, format!("list {}", d.display()), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if !path.is_file() {
                debug!(message = "not a file; skipped", path = %path.display());
                continue;
            }
            let (base, info) = match name.split_once(':') {
                Some((b, i)) => (
                    b.to_string(),
                    i.strip_prefix("2,").unwrap_or("").to_string(),
                ),
                None => (name.clone(), String::new()),
            };
            out.push(MessageFile { base, path, info });
        }
    }
    Ok(out)
}

/// Dovecot's keyword letters of a folder (`dovecot-keywords`: lines `<n> <keyword>`, letter
/// `a` + n in the info part).
pub(crate) fn keywords(dir: &Path) -> Vec<Option<String>> {
    let mut out = vec![None; 26];
    let Ok(text) = fs::read_to_string(dir.join("dovecot-keywords")) else {
        return out;
    };
    for line in text.lines() {
        if let Some((n, kw)) = line.split_once(' ')
            && let Ok(n) = n.parse::<usize>()
            && let Some(slot) = out.get_mut(n)
        {
            *slot = Some(kw.to_string());
        }
    }
    out
}

/// The flags of an info part: `S` Seen, `R` Answered, `F` Flagged, `T` Deleted, `D` Draft,
/// and Dovecot keyword letters `a`–`z`; sorted, without duplicates.
pub(crate) fn info_flags(info: &str, keywords: &[Option<String>]) -> Vec<Flag> {
    let mut flags: Vec<Flag> = info
        .chars()
        .filter_map(|c| match c {
            'a'..='z' => keywords
                .get(c as usize - 'a' as usize)
                .cloned()
                .flatten()
                .map(Flag::Keyword),
            _ => Flag::from_maildir_letter(c),
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// A file's modification time.
pub(crate) fn mtime(meta: &fs::Metadata) -> Option<DateTime<Utc>> {
    meta.modified().ok().map(DateTime::<Utc>::from)
}
