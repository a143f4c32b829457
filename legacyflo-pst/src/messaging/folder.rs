//! Folder objects ([MS-PST] §2.4.4): PC, hierarchy, contents and FAI tables.

use std::borrow::Cow;

use super::message::{CONTENTS_COLUMNS, ContentRow};
use crate::error::Result;
use crate::ltp::pc::write_pc;
use crate::ltp::tc::{Column, Row, write_tc};
use crate::ltp::{NodeCtx, Value};
use crate::ndb::alloc::NdbWriter;

/// Hierarchy table columns ([MS-PST] §2.4.4.4.1).
pub const HIERARCHY_COLUMNS: &[Column] = &[
    (0x0E30, 0x0003),
    (0x0E33, 0x0014),
    (0x0E34, 0x0102),
    (0x0E38, 0x0003),
    (0x3001, 0x001F),
    (0x3602, 0x0003),
    (0x3603, 0x0003),
    (0x360A, 0x000B),
    (0x3613, 0x001F),
    (0x6635, 0x0003),
    (0x6636, 0x0003),
];

/// FAI contents table columns ([MS-PST] §2.4.4.6.1, subset).
pub const FAI_COLUMNS: &[Column] = &[
    (0x001A, 0x001F),
    (0x0E07, 0x0003),
    (0x0E17, 0x0003),
    (0x3001, 0x001F),
    (0x7003, 0x0003),
    (0x7004, 0x0102),
    (0x7006, 0x0102),
    (0x7007, 0x001F),
];

/// A folder being assembled in one volume.
#[derive(Debug)]
pub struct FolderNode {
    /// Folder NID (type NORMAL_FOLDER).
    pub nid: u32,
    /// Parent folder NID.
    pub parent: u32,
    /// Display name.
    pub name: String,
    /// Container class, e.g. `IPF.Note`.
    pub class: Option<&'static str>,
    /// Indexes of child folders in the volume's folder list.
    pub children: Vec<usize>,
    /// Contents-table rows.
    pub rows: Vec<ContentRow>,
    /// Unread messages.
    pub unread: u32,
}

impl FolderNode {
    /// A new empty folder.
    pub fn new(nid: u32, parent: u32, name: &str, class: Option<&'static str>) -> FolderNode {
        FolderNode {
            nid,
            parent,
            name: name.to_string(),
            class,
            children: Vec::new(),
            rows: Vec::new(),
            unread: 0,
        }
    }
}

fn write_empty_tc(ndb: &mut NdbWriter, nid: u32, columns: &[Column]) -> Result<()> {
    let mut ctx = NodeCtx::new(ndb);
    let bid = write_tc(&mut ctx, columns, std::iter::empty())?;
    let sub = ctx.ndb.write_subnodes(&mut ctx.subs)?;
    ndb.add_node(nid, bid, sub, 0);
    Ok(())
}

/// Writes the template tables ([MS-PST] §2.7.3.3) and other column-only tables.
pub fn write_templates(ndb: &mut NdbWriter) -> Result<()> {
    write_empty_tc(ndb, 0x60D, HIERARCHY_COLUMNS)?;
    write_empty_tc(ndb, 0x60E, CONTENTS_COLUMNS)?;
    write_empty_tc(ndb, 0x60F, FAI_COLUMNS)?;
    write_empty_tc(ndb, 0x610, CONTENTS_COLUMNS)?;
    write_empty_tc(ndb, 0x671, super::message::ATTACHMENT_COLUMNS)?;
    write_empty_tc(ndb, 0x692, super::message::RECIPIENT_COLUMNS)?;
    Ok(())
}

/// Writes the four nodes of `folders[i]`.
pub fn write_folder(ndb: &mut NdbWriter, folders: &[FolderNode], i: usize) -> Result<()> {
    let Some(f) = folders.get(i) else {
        return Ok(());
    };
    let base = f.nid & !0x1F;
    let count = f.rows.len().min(i32::MAX as usize) as i32;
    let unread = f.unread.min(i32::MAX as u32) as i32;
    // PC
    {
        let mut ctx = NodeCtx::new(ndb);
        let mut props = vec![
            (0x3001, Value::Str(Cow::Borrowed(f.name.as_str()))),
            (0x3602, Value::I32(count)),
            (0x3603, Value::I32(unread)),
            (0x360A, Value::Bool(!f.children.is_empty())),
            // PidTagAssociatedContentCount: the FAI contents table is empty (the writer
            // stores no folder-associated items; Outlook adds its views on first open).
            (0x3617, Value::I32(0)),
        ];
        if let Some(c) = f.class {
            props.push((0x3613, Value::Str(Cow::Borrowed(c))));
        }
        let bid = write_pc(&mut ctx, props)?;
        let sub = ctx.ndb.write_subnodes(&mut ctx.subs)?;
        ndb.add_node(f.nid, bid, sub, f.parent);
    }
    // Hierarchy table
    {
        let mut ctx = NodeCtx::new(ndb);
        let rows = f.children.iter().filter_map(|&c| folders.get(c)).map(|c| {
            let cells = HIERARCHY_COLUMNS
                .iter()
                .map(|(id, _)| match id {
                    0x3001 => Some(Value::Str(Cow::Borrowed(c.name.as_str()))),
                    0x3602 => Some(Value::I32(c.rows.len().min(i32::MAX as usize) as i32)),
                    0x3603 => Some(Value::I32(c.unread.min(i32::MAX as u32) as i32)),
                    0x360A => Some(Value::Bool(!c.children.is_empty())),
                    0x3613 => c.class.map(|s| Value::Str(Cow::Borrowed(s))),
                    _ => None,
                })
                .collect();
            Row { id: c.nid, cells }
        });
        let rows: Vec<Row<'_>> = rows.collect();
        let bid = write_tc(&mut ctx, HIERARCHY_COLUMNS, rows.into_iter())?;
        let sub = ctx.ndb.write_subnodes(&mut ctx.subs)?;
        ndb.add_node(base | 0x0D, bid, sub, 0);
    }
    // Contents table
    {
        let mut ctx = NodeCtx::new(ndb);
        let bid = write_tc(
            &mut ctx,
            CONTENTS_COLUMNS,
            f.rows.iter().map(ContentRow::row),
        )?;
        let sub = ctx.ndb.write_subnodes(&mut ctx.subs)?;
        ndb.add_node(base | 0x0E, bid, sub, 0);
    }
    write_empty_tc(ndb, base | 0x0F, FAI_COLUMNS)
}
