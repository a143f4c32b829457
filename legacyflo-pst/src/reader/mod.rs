//! PST reader for Unicode and ANSI files: folders, and messages rebuilt as RFC 5322.

mod ltp;
mod ndb;
mod rfc822;

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::messaging::props::unix_from_filetime;
pub use ltp::PropValue;
use ltp::{Budget, Props, Table};
use ndb::{Checks, Ndb};

/// A folder below the IPM subtree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PstFolder {
    /// Path segments below "Top of Personal Folders" (never empty).
    pub path: Vec<String>,
    /// Folder NID.
    pub node_id: u32,
    /// Rows in the contents table.
    pub message_count: usize,
    /// PidTagContentUnreadCount as stored.
    pub unread_count: usize,
    /// Why the folder's contents table could not be read, when it could not (a damaged
    /// block or page). Its messages are then the message nodes whose parent is this
    /// folder in the node B-tree, in NID order (`message_count` counts them), and
    /// [`PstReader::messages`] yields them.
    pub contents_error: Option<String>,
    /// Why the folder's hierarchy table could not be read, when it could not. Its
    /// subfolders are then the folder nodes whose parent is this folder in the node
    /// B-tree.
    pub subfolders_error: Option<String>,
    /// PidTagContentCount as stored, if the folder's properties could be read.
    pub stored_count: Option<usize>,
}

/// A message read back from a PST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PstMessage {
    /// RFC 5322 bytes rebuilt from the stored properties: transport headers (or headers
    /// synthesised from properties), plain and HTML bodies, attachments, embedded messages.
    pub raw: Vec<u8>,
    /// MSGFLAG_READ.
    pub read: bool,
    /// Delivery time (unix seconds), if stored.
    pub internal_date: Option<i64>,
    /// Message NID: stable within one file.
    pub node_id: u32,
    /// Message class, e.g. `IPM.Note`.
    pub class: String,
}

/// How a file is read.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Verify the CRC of the header, of every B-tree page and of every block read (the
    /// default). Trailer sizes, ids and signatures are checked either way. Turning this
    /// off is for measuring what the check costs: a damaged file is then read as stored.
    pub verify_crc: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { verify_crc: true }
    }
}

/// An open PST file (Unicode or ANSI; encodings none, permute and cyclic).
///
/// Everything read is checked (see [`ReadOptions`]): a block or page that fails its
/// checks gives [`Error::Damaged`] naming it, for the message (or table) that needed it;
/// the rest of the file stays readable. A damaged header or B-tree root page fails
/// [`PstReader::open`]. No size or count read from the file is allocated without being
/// bounded by the file's size.
pub struct PstReader {
    ndb: Ndb,
}

impl PstReader {
    /// Opens `path` and loads its node and block indexes.
    pub fn open(path: &Path) -> Result<PstReader> {
        PstReader::open_with(path, ReadOptions::default())
    }

    /// [`PstReader::open`] with `options`.
    pub fn open_with(path: &Path, options: ReadOptions) -> Result<PstReader> {
        Ok(PstReader {
            ndb: Ndb::open(path, checks(options))?,
        })
    }

    /// A PST held in memory, e.g. arbitrary bytes from a fuzzer: the same checks as
    /// [`PstReader::open`], and errors, never panics, on any input.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<PstReader> {
        Ok(PstReader {
            ndb: Ndb::from_bytes(bytes, checks(ReadOptions::default()))?,
        })
    }

    /// A budget of decoded bytes for one read (see [`Budget`]): four times the file plus
    /// 1 MiB. An object's heaps, row matrices and value streams each come from the file
    /// once, and heap items are copied out of heaps already counted, so a sound object
    /// stays well below it.
    fn budget(&self) -> Budget {
        Budget::new(self.ndb.len().saturating_mul(4).saturating_add(1 << 20))
    }

    /// The first damaged page of the node B-tree, if any: the nodes it indexed read as
    /// damaged, and a folder whose contents or hierarchy table is lost too may then miss
    /// messages or subfolders that were indexed there.
    pub fn node_index_damage(&self) -> Option<&Error> {
        self.ndb.node_damage()
    }

    /// The file's size in bytes.
    pub fn file_size(&self) -> u64 {
        self.ndb.len()
    }

    /// True for Unicode (64-bit) files.
    pub fn is_unicode(&self) -> bool {
        self.ndb.unicode
    }

    fn node_props(&self, nid: u32) -> Result<Props> {
        let node = self
            .ndb
            .node(nid)?
            .ok_or_else(|| Error::Corrupt(format!("node {nid:#x} not found")))?;
        let subs = self.ndb.subnodes(node.bid_sub)?;
        ltp::read_pc(&self.ndb, &self.budget(), node.bid_data, &subs)
    }

    fn node_table(&self, nid: u32) -> Result<Option<Table>> {
        let Some(node) = self.ndb.node(nid)? else {
            return Ok(None);
        };
        if node.bid_data == 0 {
            return Ok(None);
        }
        let subs = self.ndb.subnodes(node.bid_sub)?;
        ltp::read_tc(&self.ndb, &self.budget(), node.bid_data, &subs).map(Some)
    }

    fn ipm_subtree(&self) -> u32 {
        self.node_props(0x21)
            .ok()
            .and_then(|p| match p.get(&0x35E0) {
                Some(PropValue::Binary(b)) if b.len() >= 24 => b
                    .get(20..24)
                    .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]])),
                _ => None,
            })
            .unwrap_or(0x8022)
    }

    /// Every folder below the IPM subtree, parents before children; paths are relative to
    /// the IPM subtree ("Top of Personal Folders").
    pub fn folders(&self) -> Result<Vec<PstFolder>> {
        self.walk(self.ipm_subtree())
    }

    /// Every folder below the root folder (IPM subtree, search root and Outlook's hidden
    /// folders such as "Freebusy Data"); paths are relative to the root folder.
    pub fn all_folders(&self) -> Result<Vec<PstFolder>> {
        self.walk(0x122)
    }

    fn walk(&self, start: u32) -> Result<Vec<PstFolder>> {
        let mut out = Vec::new();
        let mut stack = vec![(start, Vec::<String>::new())];
        let mut seen = std::collections::HashSet::new();
        while let Some((nid, path)) = stack.pop() {
            if !seen.insert(nid) {
                continue;
            }
            // The starting folder's hierarchy must be readable: without it nothing below
            // can be found by its table.
            let hierarchy = match self.node_table((nid & !0x1F) | 0x0D) {
                Ok(h) => Ok(h),
                Err(e) if path.is_empty() => return Err(e),
                Err(e) => Err(e),
            };
            if !path.is_empty() {
                out.push(self.folder_entry(nid, path.clone(), hierarchy.as_ref().err()));
            }
            let children: Vec<(u32, Option<String>)> = match hierarchy {
                Ok(Some(h)) => h
                    .rows
                    .iter()
                    .filter(|r| r.id & 0x1F == 0x02)
                    .map(|r| {
                        let name = match r.values.get(&0x3001) {
                            Some(PropValue::Str(s)) => Some(s.clone()),
                            _ => None,
                        };
                        (r.id, name)
                    })
                    .collect(),
                Ok(None) => Vec::new(),
                // Salvage: the folders the node B-tree gives this folder as parent.
                Err(_) => self
                    .ndb
                    .children(nid, 0x02)
                    .into_iter()
                    .map(|c| (c, None))
                    .collect(),
            };
            let mut next = Vec::with_capacity(children.len());
            for (child, name) in children {
                let name = name.unwrap_or_else(|| {
                    match self
                        .node_props(child)
                        .ok()
                        .and_then(|p| p.get(&0x3001).cloned())
                    {
                        Some(PropValue::Str(s)) => s,
                        _ => format!("{child:#x}"),
                    }
                });
                let mut p = path.clone();
                p.push(name);
                next.push((child, p));
            }
            next.reverse();
            stack.extend(next);
        }
        Ok(out)
    }

    /// The folder `nid` at `path`, its contents table read (or its messages found through
    /// the node B-tree when the table is damaged).
    fn folder_entry(&self, nid: u32, path: Vec<String>, hierarchy: Option<&Error>) -> PstFolder {
        let props = self.node_props(nid).ok();
        let count = |id| match props.as_ref().and_then(|p| p.get(&id)) {
            Some(PropValue::Int(n)) => Some((*n).max(0) as usize),
            _ => None,
        };
        let (message_count, contents_error) = match self.node_table((nid & !0x1F) | 0x0E) {
            Ok(t) => (t.map(|t| t.rows.len()).unwrap_or(0), None),
            Err(e) => (self.ndb.children(nid, 0x04).len(), Some(e.to_string())),
        };
        PstFolder {
            path,
            node_id: nid,
            message_count,
            unread_count: count(0x3603).unwrap_or(0),
            contents_error,
            subfolders_error: hierarchy.map(Error::to_string),
            stored_count: count(0x3602),
        }
    }

    /// The messages of `folder`, read lazily in contents-table order. Messages without a
    /// subnode tree (no recipient or attachment tables) are read too.
    pub fn messages(
        &self,
        folder: &PstFolder,
    ) -> Result<impl Iterator<Item = Result<PstMessage>> + '_> {
        let ids = self.message_ids(folder)?;
        Ok(ids.into_iter().map(move |nid| self.message(nid)))
    }

    /// The node ids of the messages of `folder`, in contents-table order; when the table
    /// is damaged (see [`PstFolder::contents_error`]), the message nodes whose parent is
    /// the folder, in NID order.
    pub fn message_ids(&self, folder: &PstFolder) -> Result<Vec<u32>> {
        match self.node_table((folder.node_id & !0x1F) | 0x0E) {
            Ok(t) => Ok(t
                .map(|t| t.rows.iter().map(|r| r.id).collect())
                .unwrap_or_default()),
            Err(_) if folder.contents_error.is_some() => {
                Ok(self.ndb.children(folder.node_id, 0x04))
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the message with node id `nid`. A block or page it needs that fails its
    /// checks gives [`Error::Damaged`] naming it.
    pub fn message(&self, nid: u32) -> Result<PstMessage> {
        let node = self
            .ndb
            .node(nid)?
            .ok_or_else(|| Error::Corrupt(format!("message node {nid:#x} not found")))?;
        let subs = self.ndb.subnodes(node.bid_sub)?;
        let budget = self.budget();
        let m = self.message_object(&budget, node.bid_data, &subs, 0)?;
        let flags = match m.props.get(&0x0E07) {
            Some(PropValue::Int(f)) => *f,
            _ => 0,
        };
        let internal_date = match m.props.get(&0x0E06) {
            Some(PropValue::Time(t)) => Some(unix_from_filetime(*t)),
            _ => None,
        };
        let class = match m.props.get(&0x001A) {
            Some(PropValue::Str(s)) => s.clone(),
            _ => String::new(),
        };
        Ok(PstMessage {
            raw: rfc822::build(&m),
            read: flags & 1 != 0,
            internal_date,
            node_id: nid,
            class,
        })
    }

    fn message_object(
        &self,
        budget: &Budget,
        bid_data: u64,
        subs: &HashMap<u32, ndb::SubNode>,
        depth: usize,
    ) -> Result<rfc822::MessageObject> {
        if depth > 8 {
            return Err(Error::Corrupt("embedded messages nested too deeply".into()));
        }
        let props = ltp::read_pc(&self.ndb, budget, bid_data, subs)?;
        let recipients = match subs.get(&0x692) {
            Some(s) => {
                let inner = self.ndb.subnodes(s.bid_sub)?;
                ltp::read_tc(&self.ndb, budget, s.bid_data, &inner)?
                    .rows
                    .into_iter()
                    .map(|r| r.values)
                    .collect()
            }
            None => Vec::new(),
        };
        let mut attachments = Vec::new();
        if let Some(s) = subs.get(&0x671) {
            let inner = self.ndb.subnodes(s.bid_sub)?;
            let table = ltp::read_tc(&self.ndb, budget, s.bid_data, &inner)?;
            for row in table.rows {
                let Some(a) = subs.get(&row.id) else { continue };
                let asubs = self.ndb.subnodes(a.bid_sub)?;
                let aprops = ltp::read_pc(&self.ndb, budget, a.bid_data, &asubs)?;
                let embedded = match aprops.get(&0x3701) {
                    Some(PropValue::Object(nid)) => match asubs.get(nid) {
                        Some(e) => {
                            let esubs = self.ndb.subnodes(e.bid_sub)?;
                            Some(Box::new(self.message_object(
                                budget,
                                e.bid_data,
                                &esubs,
                                depth + 1,
                            )?))
                        }
                        None => None,
                    },
                    _ => None,
                };
                attachments.push(rfc822::AttachmentObject {
                    props: aprops,
                    embedded,
                });
            }
        }
        Ok(rfc822::MessageObject {
            props,
            recipients,
            attachments,
        })
    }
}

fn checks(options: ReadOptions) -> Checks {
    Checks {
        crc: options.verify_crc,
    }
}
