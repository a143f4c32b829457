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
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bytes = s.as_bytes();
    // Every byte counts one unit, except continuation bytes (10xxxxxx), and 4-byte
    // leads (11110xxx) count two. Eight bytes at a time: bit 7 of each byte of `cont`
    // marks a continuation byte, of `four` a byte >= 0xF0.
    let mut units = bytes.len();
    // 32 bytes at a time with AVX2 where the CPU has it, then the rest.
    #[cfg(target_arch = "x86_64")]
    let bytes = {
        let (done, delta) = crate::ndb::simd::utf16_units_delta(bytes);
        units = units.saturating_add_signed(delta);
        bytes.get(done..).unwrap_or(&[])
    };
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let Ok(w) = <[u8; 8]>::try_from(w) else {
            break;
        };
        let x = u64::from_le_bytes(w);
        if x & HIGH == 0 {
            continue;
        }
        let cont = x & !(x << 1) & HIGH;
        let four = x & (x << 1) & (x << 2) & (x << 3) & HIGH;
        units = units + four.count_ones() as usize - cont.count_ones() as usize;
    }
    for &x in words.remainder() {
        units = units + usize::from(x >= 0xF0) - usize::from((x & 0xC0) == 0x80);
    }
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

/// Encodes a string as UTF-16LE.
pub fn utf16(s: &str) -> Vec<u8> {
    let mut v = vec![0u8; utf16_len(s)];
    let (_, written) = utf16_into(s, &mut v);
    v.truncate(written);
    v
}

/// Encodes as much of `s` as fits into `out` as UTF-16LE, never splitting a character
/// (a surrogate pair stays whole); returns (bytes of `s` consumed, bytes written). ASCII is
/// widened 32 bytes at a time with AVX2, else eight at a time; other characters are
/// decoded one at a time.
pub fn utf16_into(s: &str, out: &mut [u8]) -> (usize, usize) {
    utf16_into_with(s, out, false)
}

/// [`utf16_into`], with the bytes written permute-encoded ([`crate::ndb::crypt`]): runs of
/// ASCII are widened and encoded in one pass, the rest is encoded after it is written.
pub fn utf16_into_encoded(s: &str, out: &mut [u8]) -> (usize, usize) {
    utf16_into_with(s, out, true)
}

fn utf16_into_with(s: &str, out: &mut [u8], encode: bool) -> (usize, usize) {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bytes = s.as_bytes();
    let (mut i, mut o) = (0, 0);
    // With `encode`: out[..plain] is encoded, out[plain..o] still to be.
    let mut plain = 0;
    loop {
        // Runs of ASCII 32 bytes at a time with AVX2 where the CPU has it.
        let n = match bytes.get(i..) {
            Some(src) if encode => {
                let dst = out.get_mut(o..).unwrap_or(&mut []);
                let n = crate::ndb::crypt::widen_ascii_encoded(dst, src);
                if n > 0 {
                    // What the scalar steps wrote since the last vector run, before it.
                    crate::ndb::crypt::encode(out.get_mut(plain..o).unwrap_or(&mut []));
                    plain = o + 2 * n;
                }
                n
            }
            Some(src) => widen(out.get_mut(o..).unwrap_or(&mut []), src),
            None => 0,
        };
        i += n;
        o += 2 * n;
        while let (Some(src), Some(dst)) = (bytes.get(i..i + 8), out.get_mut(o..o + 16)) {
            let Ok(word) = <[u8; 8]>::try_from(src) else {
                break;
            };
            let high = u64::from_le_bytes(word) & HIGH;
            // ASCII bytes before the first non-ASCII one (all eight when there is none).
            let ascii = (high.trailing_zeros() / 8) as usize;
            for (d, &b) in dst.chunks_exact_mut(2).zip(&word) {
                d[0] = b;
                d[1] = 0;
            }
            i += ascii;
            o += ascii * 2;
            if ascii < 8 {
                break;
            }
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        if b < 0x80 {
            let Some(d) = out.get_mut(o..o + 2) else {
                break;
            };
            d[0] = b;
            d[1] = 0;
            i += 1;
            o += 2;
            continue;
        }
        if b & 0xE0 == 0xC0
            && let (Some(&n), Some(d)) = (bytes.get(i + 1), out.get_mut(o..o + 2))
        {
            // Two-byte sequence (U+0080..U+07FF), the common case of Latin text.
            let u = (u16::from(b & 0x1F) << 6) | u16::from(n & 0x3F);
            d.copy_from_slice(&u.to_le_bytes());
            i += 2;
            o += 2;
            continue;
        }
        let Some(c) = s.get(i..).and_then(|r| r.chars().next()) else {
            break;
        };
        let mut units = [0u16; 2];
        let units = c.encode_utf16(&mut units);
        let Some(d) = out.get_mut(o..o + units.len() * 2) else {
            break;
        };
        for (d, u) in d.chunks_exact_mut(2).zip(units.iter()) {
            d.copy_from_slice(&u.to_le_bytes());
        }
        i += c.len_utf8();
        o += units.len() * 2;
    }
    if encode {
        crate::ndb::crypt::encode(out.get_mut(plain..o).unwrap_or(&mut []));
    }
    (i, o)
}

/// Widens leading all-ASCII 32-byte blocks with AVX2 where the CPU has it; bytes of `src`
/// done.
fn widen(dst: &mut [u8], src: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        crate::ndb::simd::widen_ascii(dst, src)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dst, src);
        0
    }
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

    /// Makes an LTP subnode of data blocks already written (bid, size), in order; returns
    /// its NID.
    pub fn tree_subnode(&mut self, leaves: &[(u64, u64)]) -> Result<u32> {
        let nid = self.new_nid(0x1F);
        let bid = self.ndb.write_tree(leaves)?;
        self.subs.push(SubEntry {
            nid,
            bid_data: bid,
            bid_sub: 0,
        });
        Ok(nid)
    }

    /// Writes the string `s` as an LTP subnode in UTF-16LE, converted block by block
    /// (no copy of the whole value); returns its NID.
    pub fn str_subnode(&mut self, s: &str) -> Result<u32> {
        let nid = self.new_nid(0x1F);
        let bid = self.ndb.write_utf16_stream(s)?;
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
    ndb.recycle_heap_buffers(blocks);
    ndb.write_tree(&leaves)
}
