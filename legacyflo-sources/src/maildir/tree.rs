//! Finding the folders of a Maildir tree and listing their messages, without following
//! symbolic links below the root (the rules are in the [module docs](super)).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use legacyflo_core::codec::maildir_decode;
use legacyflo_core::fsutil::open_beneath;
use legacyflo_core::{Failure, Flag, FolderPath};
use tracing::{debug, warn};

use super::BACKEND;
use crate::error::{SourceError, SourceResult};

/// Deepest directory level walked below the root.
const MAX_DEPTH: usize = 64;

/// Largest `dovecot-keywords` file read.
const MAX_KEYWORDS_FILE: u64 = 1 << 20;

/// A folder and the Maildir directories that hold it (usually one), relative to the root.
#[derive(Debug, Clone, Default)]
pub(crate) struct MaildirFolder {
    /// Its directories, relative to the root (the root itself is the empty path).
    pub dirs: Vec<PathBuf>,
    /// Regular files in `cur/` and `new/` (other entries there are reported when read).
    pub messages: u64,
    /// What the listing noticed (odd names, names kept apart, a merged `.INBOX`).
    pub notes: Vec<String>,
    /// Entries skipped while listing (symbolic links, a tree too deep), with reasons.
    pub skipped: Vec<Failure>,
}

/// A directory found by the walk that names a folder, before names are made unique.
struct Found {
    rel: PathBuf,
    path: FolderPath,
    note: Option<String>,
    /// `Some` for an entry that is only reported (a link, a tree too deep).
    skip: Option<Failure>,
}

/// Lists the folders under `root` (which may itself be a symbolic link), sorted by path.
pub(crate) fn discover(root: &Path) -> SourceResult<BTreeMap<FolderPath, MaildirFolder>> {
    let meta = fs::metadata(root)
        .map_err(|e| SourceError::io(BACKEND, format!("stat {}", root.display()), e))?;
    if !meta.is_dir() {
        return Err(SourceError::invalid(
            BACKEND,
            format!("{} is not a Maildir directory", root.display()),
        ));
    }
    let mut found = Vec::new();
    walk(root, Path::new(""), 0, &mut found)?;
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut folders: BTreeMap<FolderPath, MaildirFolder> = BTreeMap::new();
    // The directory each folder name was first given to, for the notes of names kept apart.
    let mut owner: BTreeMap<FolderPath, PathBuf> = BTreeMap::new();
    for f in found {
        let path = unique_name(f.path, &f.rel, &mut owner, &mut folders);
        let entry = folders.entry(path).or_default();
        entry.notes.extend(f.note);
        match f.skip {
            Some(skip) => entry.skipped.push(skip),
            None => {
                let (files, problems) = list_messages(root, &f.rel)?;
                entry.messages += files.iter().filter(|f| f.problem.is_none()).count() as u64;
                entry.skipped.extend(problems);
                if let Some(note) = keywords_note(root, &f.rel) {
                    entry.notes.push(note);
                }
                entry.dirs.push(f.rel);
            }
        }
    }
    if folders.is_empty() {
        warn!(message = "no Maildir folders found", root = %root.display());
    }
    Ok(folders)
}

/// The name `path` gets for the directory `rel`: itself, unless another directory has it
/// already, then ` (2)`, ` (3)`, … appended to its last segment, with a note. The root
/// Maildir and a Maildir++ `.INBOX` are the same folder (read as one, with a note).
fn unique_name(
    path: FolderPath,
    rel: &Path,
    owner: &mut BTreeMap<FolderPath, PathBuf>,
    folders: &mut BTreeMap<FolderPath, MaildirFolder>,
) -> FolderPath {
    let Some(first) = owner.get(&path).cloned() else {
        owner.insert(path.clone(), rel.to_path_buf());
        return path;
    };
    if first == rel {
        return path;
    }
    if path == FolderPath::inbox() && first.as_os_str().is_empty() && rel == Path::new(".INBOX") {
        if let Some(f) = folders.get_mut(&path) {
            f.notes.push(
                "the root Maildir and the Maildir++ directory `.INBOX` are both INBOX; read as one folder"
                    .to_string(),
            );
        }
        return path;
    }
    let mut n = 2u32;
    let renamed = loop {
        let mut segs = path.segments().to_vec();
        if let Some(last) = segs.last_mut() {
            last.push_str(&format!(" ({n})"));
        }
        let candidate = FolderPath::new(segs);
        if !owner.contains_key(&candidate) {
            break candidate;
        }
        n += 1;
    };
    owner.insert(renamed.clone(), rel.to_path_buf());
    warn!(message = "two Maildir directories map to one folder name; keeping them apart", folder = %path, dir = %rel.display());
    folders.entry(renamed.clone()).or_default().notes.push(format!(
        "the directory `{}` maps to the folder name `{path}` of `{}`; kept apart as `{renamed}`",
        shown(rel),
        shown(&first)
    ));
    renamed
}

/// A relative directory as the report shows it (`.` for the root).
fn shown(rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        ".".to_string()
    } else {
        rel.display().to_string()
    }
}

/// Walks the directory `rel` below `root` (never through a link), collecting the
/// directories that hold `cur/` or `new/`, and the links and too-deep trees to report.
fn walk(root: &Path, rel: &Path, depth: usize, found: &mut Vec<Found>) -> SourceResult<()> {
    let dir = root.join(rel);
    let maildir = is_maildir(&dir);
    if maildir {
        let (path, note) = folder_name(rel);
        found.push(Found {
            rel: rel.to_path_buf(),
            path,
            note,
            skip: None,
        });
    }
    let list = entries(&dir)?;
    let deeper = list.iter().any(|(name, kind)| {
        matches!(kind, Kind::Dir | Kind::Link)
            && !(maildir && matches!(name.as_str(), "cur" | "new" | "tmp"))
    });
    if depth >= MAX_DEPTH && deeper {
        warn!(message = "directory tree too deep; not descending", dir = %dir.display());
        let (path, note) = folder_name(rel);
        found.push(Found {
            rel: rel.to_path_buf(),
            path,
            note,
            skip: Some(Failure {
                source_id: shown(rel),
                reason: format!(
                    "the directory tree is deeper than {MAX_DEPTH} levels here; nothing below it is read"
                ),
            }),
        });
        return Ok(());
    }
    for (name, kind) in list {
        if maildir && matches!(name.as_str(), "cur" | "new" | "tmp") {
            continue;
        }
        let child = rel.join(&name);
        match kind {
            Kind::Dir => walk(root, &child, depth + 1, found)?,
            Kind::Link => {
                // A link to a file is no folder (messages are only in cur/ and new/);
                // a link to a directory, a dangling link or a loop would have been one.
                let target = fs::metadata(root.join(&child));
                if target.as_ref().is_ok_and(|m| !m.is_dir()) {
                    debug!(message = "a link to a file outside cur/ and new/; ignored", path = %child.display());
                    continue;
                }
                let (path, note) = folder_name(&child);
                found.push(Found {
                    skip: Some(Failure {
                        source_id: child.display().to_string(),
                        reason: link_reason(root, &child),
                    }),
                    rel: child,
                    path,
                    note,
                });
            }
            Kind::File | Kind::Other => {}
        }
    }
    Ok(())
}

/// What a directory entry is, without following links.
enum Kind {
    Dir,
    Link,
    File,
    /// A device, FIFO or socket.
    Other,
}

/// The entries of `dir`, sorted by name (names that are not UTF-8 are made lossy).
fn entries(dir: &Path) -> SourceResult<Vec<(String, Kind)>> {
    let list = fs::read_dir(dir)
        .map_err(|e| SourceError::io(BACKEND, format!("list {}", dir.display()), e))?;
    let mut out = Vec::new();
    for entry in list {
        let entry =
            entry.map_err(|e| SourceError::io(BACKEND, format!("list {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = match entry.file_type() {
            Ok(t) if t.is_symlink() => Kind::Link,
            Ok(t) if t.is_dir() => Kind::Dir,
            Ok(t) if t.is_file() => Kind::File,
            Ok(_) => Kind::Other,
            Err(e) => {
                return Err(SourceError::io(
                    BACKEND,
                    format!("stat {}", entry.path().display()),
                    e,
                ));
            }
        };
        out.push((name, kind));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The reason given for a link that is not followed, naming its target.
fn link_reason(root: &Path, rel: &Path) -> String {
    match fs::read_link(root.join(rel)) {
        Ok(t) => format!(
            "a symbolic link (to `{}`); links below the Maildir root are not followed",
            t.display()
        ),
        Err(_) => "a symbolic link; links below the Maildir root are not followed".to_string(),
    }
}

/// Whether `dir` holds an entry `cur` or `new` (a link there is reported when listed).
fn is_maildir(dir: &Path) -> bool {
    ["cur", "new"]
        .iter()
        .any(|s| fs::symlink_metadata(dir.join(s)).is_ok())
}

/// The folder of the directory `rel` (relative to the root), and a note when the name is
/// not a plain one of the two layouts.
fn folder_name(rel: &Path) -> (FolderPath, Option<String>) {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let Some(first) = parts.first() else {
        return (FolderPath::inbox(), None);
    };
    if let Some(rest) = first.strip_prefix('.')
        && parts.len() == 1
    {
        let pieces: Vec<&str> = rest.split('.').collect();
        if pieces.iter().all(|p| !p.is_empty()) {
            return (
                FolderPath::new(pieces.into_iter().map(maildir_decode)),
                None,
            );
        }
        // `...`, `..foo`, `.a..b`, `.a.`: a name part is empty. The directory name is
        // kept whole, so that the folder neither vanishes nor merges with another.
        let path = FolderPath::new([maildir_decode(first)]);
        let note = format!(
            "the Maildir++ directory `{first}` has an empty name part; read as the folder `{path}`"
        );
        return (path, Some(note));
    }
    let hidden = parts.iter().any(|p| p.starts_with('.'));
    let path = FolderPath::new(parts.iter().map(|p| maildir_decode(p)));
    if !hidden {
        // Dovecot LAYOUT=fs.
        return (path, None);
    }
    let note = format!(
        "the Maildir `{}` is not a folder of the Maildir++ or LAYOUT=fs naming; read as the folder `{path}`",
        rel.display()
    );
    (path, Some(note))
}

/// One entry of `cur/` or `new/`.
#[derive(Debug, Clone)]
pub(crate) struct MessageFile {
    /// The unique part of its name (before `:`).
    pub base: String,
    /// Its path relative to the root.
    pub rel: PathBuf,
    /// The letters after `:2,`.
    pub info: String,
    /// `Some(reason)` when it is not a regular file (a link, a directory, a FIFO): it is
    /// reported, not read.
    pub problem: Option<String>,
}

/// The entries of `cur/` and `new/` of the Maildir `rel` (hidden names and `tmp/` are
/// left out), and what is wrong with `cur/` or `new/` themselves (a link instead of a
/// directory: not followed, reported).
pub(crate) fn list_messages(
    root: &Path,
    rel: &Path,
) -> SourceResult<(Vec<MessageFile>, Vec<Failure>)> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for sub in ["cur", "new"] {
        let sub_rel = rel.join(sub);
        let d = root.join(&sub_rel);
        match fs::symlink_metadata(&d) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SourceError::io(BACKEND, format!("stat {}", d.display()), e)),
            Ok(m) if m.file_type().is_symlink() => {
                problems.push(Failure {
                    source_id: sub_rel.display().to_string(),
                    reason: link_reason(root, &sub_rel),
                });
                continue;
            }
            Ok(m) if !m.is_dir() => {
                problems.push(Failure {
                    source_id: sub_rel.display().to_string(),
                    reason: format!("`{sub}` is not a directory"),
                });
                continue;
            }
            Ok(_) => {}
        }
        for (name, kind) in entries(&d)? {
            if name.starts_with('.') {
                continue;
            }
            let file_rel = sub_rel.join(&name);
            let problem = match kind {
                Kind::Link => Some(link_reason(root, &file_rel)),
                Kind::Dir => Some("a directory, not a message file".to_string()),
                Kind::File => None,
                Kind::Other => Some("not a regular file (a device, FIFO or socket)".to_string()),
            };
            let (base, info) = match name.split_once(':') {
                Some((b, i)) => (
                    b.to_string(),
                    i.strip_prefix("2,").unwrap_or("").to_string(),
                ),
                None => (name.clone(), String::new()),
            };
            out.push(MessageFile {
                base,
                rel: file_rel,
                info,
                problem,
            });
        }
    }
    Ok((out, problems))
}

/// Dovecot's keyword letters of the folder `rel` (`dovecot-keywords`: lines
/// `<n> <keyword>`, letter `a` + n in the info part). The file is opened without following
/// a link and read up to 1 MiB.
pub(crate) fn keywords(root: &Path, rel: &Path) -> Vec<Option<String>> {
    let mut out = vec![None; 26];
    let Ok(file) = open_beneath(root, &rel.join("dovecot-keywords")) else {
        return out;
    };
    let mut text = String::new();
    if file
        .take(MAX_KEYWORDS_FILE)
        .read_to_string(&mut text)
        .is_err()
    {
        return out;
    }
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

/// A note when the folder `rel` has a `dovecot-keywords` that cannot be read (a link, not
/// a file): its keyword flags are not restored.
fn keywords_note(root: &Path, rel: &Path) -> Option<String> {
    let p = rel.join("dovecot-keywords");
    fs::symlink_metadata(root.join(&p)).ok()?;
    let e = open_beneath(root, &p).err()?;
    Some(format!(
        "`{}` is not read ({e}); the folder's keyword flags are not restored",
        p.display()
    ))
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
