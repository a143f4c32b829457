//! Lists, tables and properties layer ([MS-PST] §2.3): heap-on-node, BTH, PC, TC.

pub mod bth;
pub mod heap;
pub mod pc;
pub mod tc;

use std::borrow::Cow;

use crate::error::Result;
use crate::ndb::SubEntry;
use crate::ndb::alloc::NdbWriter;

/// Largest heap allocation; larger values go to a subnode.
pub const MAX_HEAP_ITEM: usize = 3580;

/// A property value to write.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    /// PtypBoolean.
    Bool(bool),
    /// PtypInteger16.
    I16(i16),
    /// PtypInteger32.
    I32(i32),
    /// PtypInteger64.
    I64(i64),
    /// PtypTime (FILETIME).
    Time(i64),
    /// PtypString (written as UTF-16LE).
    Str(Cow<'a, str>),
    /// PtypBinary.
    Bin(Cow<'a, [u8]>),
    /// PtypObject: a subnode (embedded message) and its size.
    Object(u32, u32),
}

impl Value<'_> {
    /// True for empty strings and binaries.
    pub fn is_empty_var(&self) -> bool {
        match self {
            Value::Str(s) => s.is_empty(),
            Value::Bin(b) => b.is_empty(),
            _ => false,
        }
    }

    /// The property type code.
    pub fn ptype(&self) -> u16 {
        match self {
            Value::Bool(_) => 0x000B,
            Value::I16(_) => 0x0002,
            Value::I32(_) => 0x0003,
            Value::I64(_) => 0x0014,
            Value::Time(_) => 0x0040,
            Value::Str(_) => 0x001F,
            Value::Bin(_) => 0x0102,
            Value::Object(..) => 0x000D,
        }
    }
}

/// Bytes a value occupies as stored: fixed sizes for fixed types, UTF-16 bytes for
/// strings, the length of binaries, the object's size for an embedded message. Used for
/// PidTagMessageSize and PidTagAttachSize (the sum of a message's property sizes).
pub fn stored_size(v: &Value<'_>) -> u64 {
    match v {
        Value::Bool(_) | Value::I16(_) | Value::I32(_) => 4,
        Value::I64(_) | Value::Time(_) => 8,
        Value::Str(s) => utf16_len(s) as u64,
        Value::Bin(b) => b.len() as u64,
        Value::Object(_, size) => u64::from(*size),
    }
}

/// Length in bytes of `s` encoded as UTF-16LE: two per character, four for characters
/// outside the BMP (counted from the UTF-8 lead bytes, without decoding).
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        return s.len() * 2;
    }
    let units: usize = s
        .as_bytes()
        .iter()
        .map(|&x| usize::from((x & 0xC0) != 0x80) + usize::from(x >= 0xF0))
        .sum();
    units * 2
}

/// Width of a TC cell for a property type.
pub fn cell_size(ptype: u16) -> usize {
    match ptype {
        0x000B => 1,
        0x0002 => 2,
        0x0014 | 0x0040 | 0x0005 => 8,
        _ => 4,
    }
}

/// Encodes a string as UTF-16LE. Runs of ASCII are widened byte by byte; other
/// characters are decoded one at a time.
pub fn utf16(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut v = vec![0u8; utf16_len(s)];
    let mut o = 0;
    let mut i = 0;
    while i < bytes.len() {
        let rest = bytes.get(i..).unwrap_or(&[]);
        let run = rest.iter().position(|&b| b >= 0x80).unwrap_or(rest.len());
        if run > 0 {
            // `v` is zeroed: only the low bytes are written.
            let dst = v.get_mut(o..o + run * 2).unwrap_or(&mut []);
            for (d, &b) in dst.chunks_exact_mut(2).zip(rest) {
                d[0] = b;
            }
            o += run * 2;
            i += run;
            continue;
        }
        let Some(c) = s.get(i..).and_then(|r| r.chars().next()) else {
            break;
        };
        i += c.len_utf8();
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units).iter() {
            if let Some(d) = v.get_mut(o..o + 2) {
                d.copy_from_slice(&u.to_le_bytes());
            }
            o += 2;
        }
    }
    v.truncate(o);
    v
}

/// Where a node's large values go: its subnode list, with a local NID counter.
pub struct NodeCtx<'w> {
    /// The NDB writer.
    pub ndb: &'w mut NdbWriter,
    /// Subnodes of the node being built.
    pub subs: Vec<SubEntry>,
    next_index: u32,
}

impl<'w> NodeCtx<'w> {
    /// A context for one node.
    pub fn new(ndb: &'w mut NdbWriter) -> NodeCtx<'w> {
        NodeCtx {
            ndb,
            subs: Vec::new(),
            next_index: 0x400,
        }
    }

    /// Allocates a subnode NID of `nid_type`.
    pub fn new_nid(&mut self, nid_type: u32) -> u32 {
        self.next_index += 1;
        (self.next_index << 5) | nid_type
    }

    /// Writes `data` as an LTP subnode and returns its NID.
    pub fn value_subnode(&mut self, data: &[u8], chunk: usize) -> Result<u32> {
        let nid = self.new_nid(0x1F);
        let bid = self.ndb.write_stream_chunked(data, chunk)?;
        self.subs.push(SubEntry {
            nid,
            bid_data: bid,
            bid_sub: 0,
        });
        Ok(nid)
    }

    /// Writes heap blocks as the node's data tree; returns the root block id.
    pub fn write_heap(&mut self, blocks: Vec<Vec<u8>>) -> Result<u64> {
        write_heap(self.ndb, blocks)
    }
}

/// Writes heap blocks as a data tree; returns the root block id.
pub fn write_heap(ndb: &mut NdbWriter, blocks: Vec<Vec<u8>>) -> Result<u64> {
    let mut leaves = Vec::with_capacity(blocks.len());
    for b in &blocks {
        leaves.push((ndb.write_block(b, false)?, b.len() as u64));
    }
    ndb.write_tree(&leaves)
}
