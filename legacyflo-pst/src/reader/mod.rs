//! PST reader for Unicode and ANSI files: folders, and messages rebuilt as RFC 5322.

mod ltp;
mod ndb;
mod rfc822;

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::messaging::props::unix_from_filetime;
pub use ltp::PropValue;
use ltp::{Props, Table};
use ndb::Ndb;

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

/// An open PST file (Unicode or ANSI; encodings none, permute and cyclic).
pub struct PstReader {
    ndb: Ndb,
}

impl PstReader {
    /// Opens `path` and loads its node and block indexes.
    pub fn open(path: &Path) -> Result<PstReader> {
        Ok(PstReader {
            ndb: Ndb::open(path)?,
        })
    }

    /// True for Unicode (64-bit) files.
    pub fn is_unicode(&self) -> bool {
        self.ndb.unicode
    }

    fn node_props(&self, nid: u32) -> Result<Props> {
        let node = self
            .ndb
            .node(nid)
            .ok_or_else(|| Error::Corrupt(format!("node {nid:#x} not found")))?;
        let subs = self.ndb.subnodes(node.bid_sub)?;
        ltp::read_pc(&self.ndb, node.bid_data, &subs)
    }

    fn node_table(&self, nid: u32) -> Result<Option<Table>> {
        let Some(node) = self.ndb.node(nid) else {
            return Ok(None);
        };
        if node.bid_data == 0 {
            return Ok(None);
        }
        let subs = self.ndb.subnodes(node.bid_sub)?;
        ltp::read_tc(&self.ndb, node.bid_data, &subs).map(Some)
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
            if !path.is_empty() {
                let props = self.node_props(nid).unwrap_or_default();
                let count = self
                    .node_table((nid & !0x1F) | 0x0E)?
                    .map(|t| t.rows.len())
                    .unwrap_or(0);
                let unread = match props.get(&0x3603) {
                    Some(PropValue::Int(n)) => (*n).max(0) as usize,
                    _ => 0,
                };
                out.push(PstFolder {
                    path: path.clone(),
                    node_id: nid,
                    message_count: count,
                    unread_count: unread,
                });
            }
            let Some(h) = self.node_table((nid & !0x1F) | 0x0D)? else {
                continue;
            };
            let mut children = Vec::new();
            for row in &h.rows {
                let child = row.id;
                if child & 0x1F != 0x02 {
                    continue;
                }
                let name = match row.values.get(&0x3001) {
                    Some(PropValue::Str(s)) => s.clone(),
                    _ => match self
                        .node_props(child)
                        .ok()
                        .and_then(|p| p.get(&0x3001).cloned())
                    {
                        Some(PropValue::Str(s)) => s,
                        _ => format!("{child:#x}"),
                    },
                };
                let mut p = path.clone();
                p.push(name);
                children.push((child, p));
            }
            children.reverse();
            stack.extend(children);
        }
        Ok(out)
    }

    /// The messages of `folder`, read lazily in contents-table order. Messages without a
    /// subnode tree (no recipient or attachment tables) are read too.
    pub fn messages(
        &self,
        folder: &PstFolder,
    ) -> Result<impl Iterator<Item = Result<PstMessage>> + '_> {
        let ids: Vec<u32> = self
            .node_table((folder.node_id & !0x1F) | 0x0E)?
            .map(|t| t.rows.iter().map(|r| r.id).collect())
            .unwrap_or_default();
        Ok(ids.into_iter().map(move |nid| self.message(nid)))
    }

    /// Reads the message with node id `nid`.
    pub fn message(&self, nid: u32) -> Result<PstMessage> {
        let node = self
            .ndb
            .node(nid)
            .ok_or_else(|| Error::Corrupt(format!("message node {nid:#x} not found")))?;
        let subs = self.ndb.subnodes(node.bid_sub)?;
        let m = self.message_object(node.bid_data, &subs, 0)?;
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
        bid_data: u64,
        subs: &HashMap<u32, ndb::SubNode>,
        depth: usize,
    ) -> Result<rfc822::MessageObject> {
        if depth > 8 {
            return Err(Error::Corrupt("embedded messages nested too deeply".into()));
        }
        let props = ltp::read_pc(&self.ndb, bid_data, subs)?;
        let recipients = match subs.get(&0x692) {
            Some(s) => {
                let inner = self.ndb.subnodes(s.bid_sub)?;
                ltp::read_tc(&self.ndb, s.bid_data, &inner)?
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
            let table = ltp::read_tc(&self.ndb, s.bid_data, &inner)?;
            for row in table.rows {
                let Some(a) = subs.get(&row.id) else { continue };
                let asubs = self.ndb.subnodes(a.bid_sub)?;
                let aprops = ltp::read_pc(&self.ndb, a.bid_data, &asubs)?;
                let embedded = match aprops.get(&0x3701) {
                    Some(PropValue::Object(nid)) => match asubs.get(nid) {
                        Some(e) => {
                            let esubs = self.ndb.subnodes(e.bid_sub)?;
                            Some(Box::new(self.message_object(
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
