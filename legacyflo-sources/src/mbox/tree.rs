//! Finding the mbox files of an input and naming their folders, without following
//! symbolic links below a directory input (the rules are in the [module docs](super)).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use legacyflo_core::codec::unescape_segment;
use legacyflo_core::fsutil::open_beneath;
use legacyflo_core::{Failure, FolderPath};
use tracing::{debug, warn};
use zip::ZipArchive;

use crate::error::{SourceError, SourceResult};
use crate::util::SharedFile;

use super::BACKEND;

/// Where a folder's messages are.
#[derive(Clone, Debug)]
pub(crate) enum MboxFile {
    /// The input itself, a file (a link to it is followed: it is the path given).
    Input(PathBuf),
    /// A file below the input directory, by its path relative to it (opened without
    /// following links).
    Beneath(PathBuf),
    /// An entry of the input ZIP, by index.
    ZipEntry(usize),
    /// Nothing to read: the folder only holds what the listing skipped.
    Nothing,
}

/// One folder of the input.
#[derive(Debug)]
pub(crate) struct IndexedFolder {
    pub path: FolderPath,
    pub file: MboxFile,
    pub notes: Vec<String>,
    pub skipped: Vec<Failure>,
}

/// The folders of an input, in a stable order.
#[derive(Debug)]
pub(crate) struct MboxIndex {
    pub folders: Vec<IndexedFolder>,
    pub zip: Option<ZipArchive<SharedFile>>,
}

/// What the walk found at one relative path: a file to read, or an entry to report.
type Found = (Vec<String>, MboxFile, Option<Failure>);

/// Deepest directory level walked below a directory input.
const MAX_DEPTH: usize = 64;

impl MboxIndex {
    /// Lists the mbox files of `input`: one file, a directory tree, or a `.zip` of either.
    pub(crate) fn build(input: &Path) -> SourceResult<MboxIndex> {
        let meta = fs::metadata(input)
            .map_err(|e| SourceError::io(BACKEND, format!("stat {}", input.display()), e))?;
        let mut found: Vec<Found> = Vec::new();
        let mut zip = None;
        if meta.is_dir() {
            walk(input, &mut Vec::new(), &mut found, 0)?;
        } else if is_zip(input) {
            let file = SharedFile::open(input)
                .map_err(|e| SourceError::io(BACKEND, format!("open {}", input.display()), e))?;
            let mut archive = ZipArchive::new(file)
                .map_err(|e| SourceError::zip(BACKEND, format!("read {}", input.display()), e))?;
            zip_entries(&mut archive, &mut found)?;
            zip = Some(archive);
        } else {
            let stem = input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "INBOX".to_string());
            found.push((vec![stem], MboxFile::Input(input.to_path_buf()), None));
        }
        if found.is_empty() {
            warn!(message = "no mbox files found", input = %input.display());
        }
        Ok(MboxIndex {
            folders: name_folders(found),
            zip,
        })
    }

    /// The folder `folder`.
    pub(crate) fn find(&self, folder: &FolderPath) -> Option<&IndexedFolder> {
        self.folders.iter().find(|f| &f.path == folder)
    }
}

fn is_zip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// Turns relative paths into folder paths, in sorted order; a folder name met twice gets
/// ` (2)`, ` (3)`, … appended to its last segment, with a note.
fn name_folders(mut found: Vec<Found>) -> Vec<IndexedFolder> {
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut seen: BTreeMap<FolderPath, u32> = BTreeMap::new();
    let mut out: Vec<IndexedFolder> = Vec::with_capacity(found.len());
    for (segments, file, skip) in found {
        let mut path = FolderPath::new(segments.clone());
        if path.is_root() {
            path = FolderPath::inbox();
        }
        let mut notes = Vec::new();
        let count = seen.entry(path.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            let mut segs = path.segments().to_vec();
            if let Some(last) = segs.last_mut() {
                last.push_str(&format!(" ({count})"));
            }
            let renamed = FolderPath::new(segs);
            warn!(message = "two mbox files map to one folder; renaming the second", folder = %path);
            notes.push(format!(
                "`{}` maps to the folder name `{path}` of another file; kept apart as `{renamed}`",
                segments.join("/")
            ));
            path = renamed;
        }
        out.push(IndexedFolder {
            path,
            file,
            notes,
            skipped: skip.into_iter().collect(),
        });
    }
    out
}

/// The folder segments of a path inside a tree: `X.sbd` directories are the sub-folders of
/// `X`, the last segment loses a `.mbox` extension, an Apple Mail `X.mbox/mbox` file is the
/// folder `X`, and every segment is percent-unescaped.
pub(crate) fn folder_segments(components: &[String]) -> Vec<String> {
    let mut segs: Vec<String> = Vec::with_capacity(components.len());
    let n = components.len();
    for (i, c) in components.iter().enumerate() {
        let last = i + 1 == n;
        let name = if last {
            if c == "mbox" && i > 0 && strip_ext(&components[i - 1], ".mbox").is_some() {
                continue;
            }
            strip_ext(c, ".mbox").unwrap_or(c)
        } else {
            strip_ext(c, ".sbd")
                .or_else(|| strip_ext(c, ".mbox"))
                .unwrap_or(c)
        };
        segs.push(unescape_segment(name));
    }
    segs
}

fn strip_ext<'a>(name: &'a str, ext: &str) -> Option<&'a str> {
    let cut = name.len().checked_sub(ext.len())?;
    if cut == 0 || !name.is_char_boundary(cut) || !name[cut..].eq_ignore_ascii_case(ext) {
        return None;
    }
    Some(&name[..cut])
}

/// A skipped entry of the walk at `rel`, reported in the folder its path names.
fn skip(rel: &[String], reason: String) -> Found {
    (
        folder_segments(rel),
        MboxFile::Nothing,
        Some(Failure {
            source_id: rel.join("/"),
            reason,
        }),
    )
}

fn walk(
    root: &Path,
    rel: &mut Vec<String>,
    found: &mut Vec<Found>,
    depth: usize,
) -> SourceResult<()> {
    let dir = root.join(rel.iter().collect::<PathBuf>());
    let entries = fs::read_dir(&dir)
        .map_err(|e| SourceError::io(BACKEND, format!("list {}", dir.display()), e))?;
    let mut list = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| SourceError::io(BACKEND, format!("list {}", dir.display()), e))?;
        list.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.file_type(),
        ));
    }
    list.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in list {
        if name.starts_with('.') {
            debug!(message = "skipping hidden entry", dir = %dir.display(), name);
            continue;
        }
        rel.push(name);
        let rel_path: PathBuf = rel.iter().collect();
        match kind {
            Err(e) => found.push(skip(rel, format!("cannot be examined: {e}"))),
            Ok(t) if t.is_symlink() => {
                let target = fs::read_link(root.join(&rel_path))
                    .map(|t| format!(" (to `{}`)", t.display()))
                    .unwrap_or_default();
                found.push(skip(
                    rel,
                    format!("a symbolic link{target}; links below the input directory are not followed"),
                ));
            }
            Ok(t) if t.is_dir() && depth >= MAX_DEPTH => found.push(skip(
                rel,
                format!("the directory tree is deeper than {MAX_DEPTH} levels here; nothing below it is read"),
            )),
            Ok(t) if t.is_dir() => walk(root, rel, found, depth + 1)?,
            Ok(t) if t.is_file() => {
                let is_mbox = rel.last().is_some_and(|n| strip_ext(n, ".mbox").is_some())
                    || starts_with_from(root, &rel_path);
                if is_mbox {
                    found.push((folder_segments(rel), MboxFile::Beneath(rel_path), None));
                } else {
                    debug!(message = "not an mbox file; skipped", path = %rel_path.display());
                }
            }
            Ok(_) => {
                if rel.last().is_some_and(|n| strip_ext(n, ".mbox").is_some()) {
                    found.push(skip(rel, "not a regular file (a device, FIFO or socket)".to_string()));
                }
            }
        }
        rel.pop();
    }
    Ok(())
}

fn starts_with_from(root: &Path, rel: &Path) -> bool {
    let mut head = [0u8; 5];
    open_beneath(root, rel)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"From ")
}

fn zip_entries(archive: &mut ZipArchive<SharedFile>, found: &mut Vec<Found>) -> SourceResult<()> {
    for i in 0..archive.len() {
        let (name, is_dir, is_link) = {
            let entry = archive
                .by_index_data(i)
                .map_err(|e| SourceError::zip(BACKEND, format!("read entry {i}"), e))?;
            (
                entry_name(entry.name_raw()),
                entry.is_dir(),
                entry.is_symlink(),
            )
        };
        if is_dir {
            continue;
        }
        let components: Vec<String> = name
            .split(['/', '\\'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if components
            .iter()
            .any(|c| c.starts_with('.') || c == "__MACOSX")
        {
            debug!(message = "skipping hidden ZIP entry", entry = %name);
            continue;
        }
        let is_mbox = !is_link
            && components
                .last()
                .is_some_and(|n| strip_ext(n, ".mbox").is_some())
            || {
                let mut head = [0u8; 5];
                archive
                    .by_index(i)
                    .ok()
                    .is_some_and(|mut f| f.read_exact(&mut head).is_ok() && &head == b"From ")
            };
        if is_link {
            found.push(skip(
                &components,
                "a symbolic link entry (its data is a path, not mail); not followed".to_string(),
            ));
        } else if is_mbox {
            found.push((folder_segments(&components), MboxFile::ZipEntry(i), None));
        } else {
            debug!(message = "not an mbox file; skipped", entry = %name);
        }
    }
    Ok(())
}

/// A ZIP entry name as UTF-8 (invalid bytes replaced).
pub(crate) fn entry_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        folder_segments(&p.split('/').map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn folder_names() {
        assert_eq!(segs("INBOX.mbox"), ["INBOX"]);
        assert_eq!(segs("Projekte/Entwürfe.mbox"), ["Projekte", "Entwürfe"]);
        assert_eq!(segs("Inbox.sbd/Sub"), ["Inbox", "Sub"]);
        assert_eq!(segs("Inbox"), ["Inbox"]);
        assert_eq!(segs("Foo.mbox/mbox"), ["Foo"]);
        assert_eq!(segs("a%2Fb.mbox"), ["a/b"]);
        assert_eq!(segs("x%2Embox.mbox"), ["x.mbox"]);
        assert_eq!(segs(".mbox"), [".mbox"]);
    }
}
