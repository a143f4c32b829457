//! Finding the mbox files of an input and naming their folders.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use legacyflo_core::FolderPath;
use tracing::{debug, warn};
use zip::ZipArchive;

use crate::error::{SourceError, SourceResult};
use crate::util::SharedFile;
use legacyflo_core::codec::unescape_segment;

use super::BACKEND;

/// Where a folder's messages are.
#[derive(Clone, Debug)]
pub(crate) enum MboxFile {
    /// A file on disk.
    Path(PathBuf),
    /// An entry of the input ZIP, by index.
    ZipEntry(usize),
}

/// The folders of an input, in a stable order.
#[derive(Debug)]
pub(crate) struct MboxIndex {
    pub folders: Vec<(FolderPath, MboxFile)>,
    pub zip: Option<ZipArchive<SharedFile>>,
}

/// Deepest directory level walked (guards against symlink loops).
const MAX_DEPTH: usize = 64;

impl MboxIndex {
    /// Lists the mbox files of `input`: one file, a directory tree, or a `.zip` of either.
    pub(crate) fn build(input: &Path) -> SourceResult<MboxIndex> {
        let meta = fs::metadata(input)
            .map_err(|e| SourceError::io(BACKEND, format!("stat {}", input.display()), e))?;
        let mut found: Vec<(Vec<String>, MboxFile)> = Vec::new();
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
            found.push((vec![stem], MboxFile::Path(input.to_path_buf())));
        }
        if found.is_empty() {
            warn!(message = "no mbox files found", input = %input.display());
        }
        Ok(MboxIndex {
            folders: name_folders(found),
            zip,
        })
    }

    /// Where `folder` is stored.
    pub(crate) fn find(&self, folder: &FolderPath) -> Option<&MboxFile> {
        self.folders
            .iter()
            .find(|(p, _)| p == folder)
            .map(|(_, f)| f)
    }
}

fn is_zip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// Turns relative paths into folder paths, in sorted order; a folder name met twice gets
/// ` (2)`, ` (3)`, … appended to its last segment.
fn name_folders(mut found: Vec<(Vec<String>, MboxFile)>) -> Vec<(FolderPath, MboxFile)> {
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut seen: BTreeMap<FolderPath, u32> = BTreeMap::new();
    let mut out = Vec::with_capacity(found.len());
    for (segments, file) in found {
        let mut path = FolderPath::new(segments.clone());
        if path.is_root() {
            path = FolderPath::inbox();
        }
        let count = seen.entry(path.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            let mut segs = path.segments().to_vec();
            if let Some(last) = segs.last_mut() {
                last.push_str(&format!(" ({count})"));
            }
            warn!(message = "two mbox files map to one folder; renaming the second", folder = %path);
            path = FolderPath::new(segs);
        }
        out.push((path, file));
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

fn walk(
    dir: &Path,
    rel: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, MboxFile)>,
    depth: usize,
) -> SourceResult<()> {
    if depth > MAX_DEPTH {
        warn!(message = "directory tree too deep; not descending", dir = %dir.display());
        return Ok(());
    }
    let entries = fs::read_dir(dir)
        .map_err(|e| SourceError::io(BACKEND, format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| SourceError::io(BACKEND, format!("list {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            debug!(message = "skipping hidden entry", path = %entry.path().display());
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::metadata(&path) else {
            warn!(message = "cannot stat; skipped", path = %path.display());
            continue;
        };
        rel.push(name);
        if meta.is_dir() {
            walk(&path, rel, found, depth + 1)?;
        } else if meta.is_file() {
            let is_mbox = rel.last().is_some_and(|n| strip_ext(n, ".mbox").is_some())
                || starts_with_from(&path);
            if is_mbox {
                found.push((folder_segments(rel), MboxFile::Path(path)));
            } else {
                debug!(message = "not an mbox file; skipped", path = %path.display());
            }
        }
        rel.pop();
    }
    Ok(())
}

fn starts_with_from(path: &Path) -> bool {
    let mut head = [0u8; 5];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"From ")
}

fn zip_entries(
    archive: &mut ZipArchive<SharedFile>,
    found: &mut Vec<(Vec<String>, MboxFile)>,
) -> SourceResult<()> {
    for i in 0..archive.len() {
        let (name, is_file) = {
            let entry = archive
                .by_index_data(i)
                .map_err(|e| SourceError::zip(BACKEND, format!("read entry {i}"), e))?;
            (entry_name(entry.name_raw()), entry.is_file())
        };
        if !is_file {
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
        let is_mbox = components
            .last()
            .is_some_and(|n| strip_ext(n, ".mbox").is_some())
            || {
                let mut head = [0u8; 5];
                archive
                    .by_index(i)
                    .ok()
                    .is_some_and(|mut f| f.read_exact(&mut head).is_ok() && &head == b"From ")
            };
        if is_mbox {
            found.push((folder_segments(&components), MboxFile::ZipEntry(i)));
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
