//! The public writer: folders, messages, volumes.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_at, with_path};
use crate::messaging::folder::{FolderNode, write_folder, write_templates};
use crate::messaging::message::{MessageMeta, write_message_node};
use crate::messaging::store::{NID_DELETED, NID_FINDER, NID_IPM, NID_ROOT, write_store};
use crate::mime::with_parsed;
use crate::ndb::Encoding;
use crate::ndb::alloc::NdbWriter;
use crate::ndb::header::unicode_header;

/// Default volume cap: Outlook's default maximum PST size (50 GB).
pub const DEFAULT_VOLUME_CAP: u64 = 50 * 1024 * 1024 * 1024;

/// How to write.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Block encoding (`Permute`, Outlook's default, or `None`).
    pub encoding: Encoding,
    /// Store display name shown by Outlook.
    pub display_name: String,
    /// Maximum size of one file; when the next message might not fit, output continues in
    /// `name-002.pst`, `name-003.pst`, … A message is never split.
    pub volume_cap: u64,
    /// Write the file with direct I/O (`O_DIRECT`, Linux) from a writer thread: no copy
    /// through the page cache, no cache filled with the PST, no long flush at the end.
    /// Where the file system refuses it, the file is written through the page cache
    /// instead, so this is safe to leave on (the default).
    pub direct_io: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            encoding: Encoding::Permute,
            display_name: "Personal Folders".to_string(),
            volume_cap: DEFAULT_VOLUME_CAP,
            direct_io: true,
        }
    }
}

/// A folder handle returned by [`PstWriter::folder`]; valid across volumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FolderId(usize);

/// Result of [`PstWriter::add_message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddOutcome {
    /// Volume number (1 = the first file).
    pub volume: usize,
    /// NID of the message node in that volume.
    pub node_id: u32,
    /// Parts that could not be parsed or decoded (the message is stored anyway).
    pub problems: Vec<String>,
}

/// One file written by [`PstWriter::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSummary {
    /// File path.
    pub path: PathBuf,
    /// Messages stored in it.
    pub messages: u64,
    /// File size in bytes.
    pub bytes: u64,
}

struct Volume {
    path: PathBuf,
    ndb: NdbWriter,
    folders: Vec<FolderNode>,
    by_id: HashMap<usize, usize>,
    next_folder: u32,
    next_message: u32,
    messages: u64,
    record_key: [u8; 16],
}

const IPM_INDEX: usize = 1;

impl Volume {
    fn create(path: &Path, options: &WriterOptions) -> Result<Volume> {
        let file = File::create(path).map_err(io_at(path))?;
        let ndb = NdbWriter::new(file, path, options.encoding, options.direct_io)
            .map_err(|e| with_path(e, path))?;
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(path.as_os_str().as_encoded_bytes());
        let a = h.finish();
        h.write_u64(a);
        let b = h.finish();
        let mut record_key = [0u8; 16];
        record_key[..8].copy_from_slice(&a.to_le_bytes());
        record_key[8..].copy_from_slice(&b.to_le_bytes());
        let mut folders = vec![
            FolderNode::new(NID_ROOT, NID_ROOT, "", None),
            FolderNode::new(NID_IPM, NID_ROOT, "Top of Personal Folders", None),
            FolderNode::new(NID_FINDER, NID_ROOT, "Search Root", None),
            FolderNode::new(NID_DELETED, NID_IPM, "Deleted Items", Some("IPF.Note")),
        ];
        folders[0].children = vec![1, 2];
        folders[1].children = vec![3];
        Ok(Volume {
            path: path.to_path_buf(),
            ndb,
            folders,
            by_id: HashMap::new(),
            next_folder: 0x405,
            next_message: 0x10001,
            messages: 0,
            record_key,
        })
    }

    fn ensure(&mut self, id: usize, path: &[String]) -> usize {
        if let Some(&i) = self.by_id.get(&id) {
            return i;
        }
        let mut cur = IPM_INDEX;
        for seg in path {
            let found = self.folders.get(cur).and_then(|f| {
                f.children
                    .iter()
                    .copied()
                    .find(|&c| self.folders.get(c).is_some_and(|x| &x.name == seg) && c != 3)
            });
            cur = match found {
                Some(c) => c,
                None => {
                    let nid = (self.next_folder << 5) | 2;
                    self.next_folder += 1;
                    let parent = self.folders.get(cur).map(|f| f.nid).unwrap_or(NID_IPM);
                    self.folders
                        .push(FolderNode::new(nid, parent, seg, Some("IPF.Note")));
                    let new = self.folders.len() - 1;
                    if let Some(p) = self.folders.get_mut(cur) {
                        p.children.push(new);
                    }
                    new
                }
            };
        }
        self.by_id.insert(id, cur);
        cur
    }

    fn finish(mut self, options: &WriterOptions) -> Result<VolumeSummary> {
        write_store(&mut self.ndb, &options.display_name, &self.record_key)?;
        write_templates(&mut self.ndb)?;
        for i in 0..self.folders.len() {
            write_folder(&mut self.ndb, &self.folders, i)?;
        }
        let mut rgnid = [0x400u32; 32];
        let folders_last = (self.next_folder - 1).max(0x400);
        rgnid[2] = folders_last;
        rgnid[3] = 0x4000;
        rgnid[4] = (self.next_message - 1).max(0x10000);
        rgnid[8] = 0x8000;
        rgnid[13] = folders_last;
        rgnid[14] = folders_last;
        rgnid[15] = folders_last;
        let crypt = options.encoding.crypt_method();
        let totals = self
            .ndb
            .finish(|t| unicode_header(t, crypt, &rgnid, 1))
            .map_err(|e| with_path(e, &self.path))?;
        Ok(VolumeSummary {
            path: self.path,
            messages: self.messages,
            bytes: totals.eof,
        })
    }
}

/// Writes a new Unicode PST (and further volumes when the cap is reached).
pub struct PstWriter {
    base: PathBuf,
    options: WriterOptions,
    paths: Vec<Vec<String>>,
    ids: HashMap<Vec<String>, usize>,
    volume: Volume,
    volume_no: usize,
    done: Vec<VolumeSummary>,
}

/// The path of volume `n` (1-based) of a PST written at `base`: `base` itself, then
/// `<stem>-002.<ext>`, `<stem>-003.<ext>`, … (the extension `pst` when `base` has none).
pub fn volume_path(base: &Path, n: usize) -> PathBuf {
    if n <= 1 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let ext = base
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pst".into());
    base.with_file_name(format!("{stem}-{n:03}.{ext}"))
}

impl PstWriter {
    /// Creates (truncating) the PST at `path`. Nothing is valid on disk until
    /// [`PstWriter::finish`] returns.
    pub fn create(path: &Path, options: WriterOptions) -> Result<PstWriter> {
        if options.volume_cap < 1024 * 1024 {
            return Err(Error::Invalid("volume_cap below 1 MiB".into()));
        }
        let volume = Volume::create(path, &options)?;
        Ok(PstWriter {
            base: path.to_path_buf(),
            options,
            paths: Vec::new(),
            ids: HashMap::new(),
            volume,
            volume_no: 1,
            done: Vec::new(),
        })
    }

    /// Returns the folder at `path` below "Top of Personal Folders", creating it and its
    /// ancestors as needed. Segments may be any non-empty Unicode string.
    pub fn folder(&mut self, path: &[&str]) -> Result<FolderId> {
        if path.is_empty() || path.iter().any(|s| s.is_empty()) {
            return Err(Error::Invalid(format!("folder path {path:?}")));
        }
        let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let id = match self.ids.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.paths.len();
                self.paths.push(key.clone());
                self.ids.insert(key.clone(), id);
                id
            }
        };
        self.volume.ensure(id, &key);
        Ok(FolderId(id))
    }

    fn roll(&mut self) -> Result<()> {
        let next = volume_path(&self.base, self.volume_no + 1);
        tracing::info!(next = %next.display(), messages = self.volume.messages, "PST volume cap reached, rolling");
        let new = Volume::create(&next, &self.options)?;
        let old = std::mem::replace(&mut self.volume, new);
        self.done.push(old.finish(&self.options)?);
        self.volume_no += 1;
        Ok(())
    }

    /// Stores one RFC 5322 message in `folder`. A message that does not parse as MIME is
    /// stored with its header block as transport headers and its body as text; problems are
    /// listed in the outcome. Errors are I/O or format-limit errors only.
    pub fn add_message(
        &mut self,
        folder: FolderId,
        raw: &[u8],
        meta: &MessageMeta,
    ) -> Result<AddOutcome> {
        let path = self
            .paths
            .get(folder.0)
            .cloned()
            .ok_or_else(|| Error::Invalid("unknown folder id".into()))?;
        let estimate = (raw.len() as u64) * 3 + 64 * 1024;
        // Room for the folder tables and B-trees written at finish, and the final AMap
        // range rounding, so that a finished volume never exceeds the cap.
        let reserve = 1024 * 1024 + crate::ndb::AMAP_RANGE + self.volume.messages * 256;
        if self.volume.messages > 0
            && self.volume.ndb.position() + estimate + reserve > self.options.volume_cap
        {
            self.roll()?;
        }
        let v = &mut self.volume;
        let fi = v.ensure(folder.0, &path);
        let nid = (v.next_message << 5) | 4;
        v.next_message += 1;
        let parent = v.folders.get(fi).map(|f| f.nid).unwrap_or(NID_IPM);
        let (written, problems) = with_parsed(raw, |mail| {
            write_message_node(&mut v.ndb, mail, meta, nid).map(|w| (w, mail.problems.clone()))
        })?;
        v.ndb
            .add_node(nid, written.bid_data, written.bid_sub, parent);
        if let Some(f) = v.folders.get_mut(fi) {
            if !meta.read {
                f.unread += 1;
            }
            f.rows.push(written.row);
        }
        v.messages += 1;
        Ok(AddOutcome {
            volume: self.volume_no,
            node_id: nid,
            problems,
        })
    }

    /// Writes the folder tables, B-trees and header of the last volume and returns every
    /// volume written, in order.
    pub fn finish(mut self) -> Result<Vec<VolumeSummary>> {
        let last = self.volume.finish(&self.options)?;
        self.done.push(last);
        Ok(self.done)
    }
}
