//! Store-level nodes ([MS-PST] §2.4.3, §2.7): message store PC, name-to-id map, empty
//! search nodes.

use std::borrow::Cow;

use super::props::entry_id;
use crate::error::Result;
use crate::ltp::pc::write_pc;
use crate::ltp::{NodeCtx, Value};
use crate::ndb::alloc::NdbWriter;

/// NID of the root folder.
pub const NID_ROOT: u32 = 0x122;
/// NID of the IPM subtree ("Top of Personal Folders").
pub const NID_IPM: u32 = 0x8022;
/// NID of the search root (finder).
pub const NID_FINDER: u32 = 0x8042;
/// NID of Deleted Items.
pub const NID_DELETED: u32 = 0x8062;

/// Writes the message store PC (0x21), the name-to-id map (0x61) and the empty search
/// management nodes.
pub fn write_store(ndb: &mut NdbWriter, display_name: &str, record_key: &[u8; 16]) -> Result<()> {
    {
        let mut ctx = NodeCtx::new(ndb);
        let props = vec![
            (0x0FF9, Value::Bin(Cow::Owned(record_key.to_vec()))),
            (0x3001, Value::Str(Cow::Borrowed(display_name))),
            (
                0x35E0,
                Value::Bin(Cow::Owned(entry_id(record_key, NID_IPM))),
            ),
            (
                0x35E3,
                Value::Bin(Cow::Owned(entry_id(record_key, NID_DELETED))),
            ),
            (
                0x35E7,
                Value::Bin(Cow::Owned(entry_id(record_key, NID_FINDER))),
            ),
            (0x35DF, Value::I32(0x89)),
            (0x6633, Value::Bool(true)),
            (0x67FF, Value::I32(0)),
        ];
        let bid = write_pc(&mut ctx, props)?;
        let sub = ctx.ndb.write_subnodes(&mut ctx.subs)?;
        ndb.add_node(0x21, bid, sub, 0);
    }
    {
        let mut ctx = NodeCtx::new(ndb);
        // One named property (PSETID_Common, LID 0x8554) so that readers that insist on
        // non-empty GUID / entry / string streams (libpff) accept the map.
        const PSETID_COMMON: [u8; 16] = [
            0x08, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x46,
        ];
        let lid: u32 = 0x8554;
        let wguid: u16 = 3 << 1;
        let mut entry = Vec::with_capacity(8);
        entry.extend_from_slice(&lid.to_le_bytes());
        entry.extend_from_slice(&wguid.to_le_bytes());
        entry.extend_from_slice(&0u16.to_le_bytes());
        let bucket = 0x1000 + ((lid ^ u32::from(wguid)) % 251) as u16;
        let strings: Vec<u8> = vec![2, 0, 0, 0, b'x', 0, 0, 0];
        let props = vec![
            (0x0001, Value::I32(251)),
            (0x0002, Value::Bin(Cow::Owned(PSETID_COMMON.to_vec()))),
            (0x0003, Value::Bin(Cow::Owned(entry.clone()))),
            (0x0004, Value::Bin(Cow::Owned(strings))),
            (bucket, Value::Bin(Cow::Owned(entry))),
        ];
        let bid = write_pc(&mut ctx, props)?;
        let sub = ctx.ndb.write_subnodes(&mut ctx.subs)?;
        ndb.add_node(0x61, bid, sub, 0);
    }
    ndb.add_node(0x1E1, 0, 0, 0);
    ndb.add_node(0x201, 0, 0, 0);
    ndb.add_node(0x261, 0, 0, 0);
    Ok(())
}
