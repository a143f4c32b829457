//! Sequential allocator and block writer: fills one AMap range (253,952 bytes) in memory,
//! then writes it out with its AMap (and PMap/FMap/FPMap) pages filled in.

use std::fs::File;
use std::path::Path;

use super::crc::{crc, signature};
use super::out::{PageBuf, RangeOut, Seal};
use super::{
    AMAP_FIRST, AMAP_RANGE, Encoding, MAX_BLOCK_DATA, NbtEntry, PAGE, SubEntry, XBLOCK_FANOUT,
    align_up, crypt,
};
use crate::error::{Error, Result};

/// Page types ([MS-PST] §2.2.2.7.1).
pub mod ptype {
    /// Block B-tree page.
    pub const BBT: u8 = 0x80;
    /// Node B-tree page.
    pub const NBT: u8 = 0x81;
    /// Free map page.
    pub const FMAP: u8 = 0x82;
    /// Page map page.
    pub const PMAP: u8 = 0x83;
    /// Allocation map page.
    pub const AMAP: u8 = 0x84;
    /// Free page map page.
    pub const FPMAP: u8 = 0x85;
    /// Density list page.
    pub const DLIST: u8 = 0x86;
}

const SLENTRIES_PER_BLOCK: usize = (MAX_BLOCK_DATA - 8) / 24;
const SIENTRIES_PER_BLOCK: usize = (MAX_BLOCK_DATA - 8) / 16;

/// One BBT leaf entry (every block is referenced once, so cRef is always 2).
#[derive(Clone, Copy, Debug)]
pub struct BbtEntry {
    /// Block id.
    pub bid: u64,
    /// File offset.
    pub ib: u64,
    /// Stored data size.
    pub cb: u16,
}

/// A block as kept in memory until `finish`: 8 bytes. Block ids are dense (the n-th
/// block written has index n + 1), so only the offset (64-aligned), the size and the
/// internal bit are stored: `ib >> 6 << 14 | internal << 13 | cb`.
#[derive(Clone, Copy, Debug)]
struct PackedBlock(u64);

impl PackedBlock {
    fn new(ib: u64, cb: u16, internal: bool) -> PackedBlock {
        PackedBlock(((ib >> 6) << 14) | (u64::from(internal) << 13) | u64::from(cb & 0x1FFF))
    }

    fn entry(self, index: usize) -> BbtEntry {
        let internal = (self.0 >> 13) & 1;
        BbtEntry {
            bid: ((index as u64 + 1) << 2) | (internal << 1),
            ib: (self.0 >> 14) << 6,
            cb: (self.0 & 0x1FFF) as u16,
        }
    }
}

/// Writes blocks and pages sequentially into the file.
pub struct NdbWriter {
    out: RangeOut,
    encoding: Encoding,
    range_index: u64,
    buf: PageBuf,
    /// Blocks of `buf` whose encoding and CRC the writer thread completes.
    seals: Vec<Seal>,
    used: usize,
    free_total: u64,
    next_bid: u64,
    next_page_bid: u64,
    /// Every block written, in id order (block index n has id (n + 1) << 2).
    bbt: Vec<PackedBlock>,
    /// Every top-level node.
    pub nbt: Vec<NbtEntry>,
    scratch: Vec<u8>,
    /// Block buffers of heaps already written, for the next heaps.
    heap_buffers: Vec<Vec<u8>>,
}

/// What the header needs from the NDB layer at the end.
#[derive(Debug, Clone, Copy)]
pub struct NdbTotals {
    /// File size.
    pub eof: u64,
    /// Offset of the last AMap page.
    pub amap_last: u64,
    /// Free bytes in all AMap ranges.
    pub amap_free: u64,
    /// NBT root page (bid, ib).
    pub nbt_root: (u64, u64),
    /// BBT root page (bid, ib).
    pub bbt_root: (u64, u64),
    /// Next page id.
    pub next_page_bid: u64,
    /// Next block id.
    pub next_bid: u64,
    /// DList page id.
    pub dlist_bid: u64,
}

fn range_pages(index: u64) -> usize {
    let pmap = index.is_multiple_of(8);
    let fmap = pmap && index >= 128 && (index - 128).is_multiple_of(496);
    let fpmap = pmap && index >= 8192 && (index - 8192).is_multiple_of(496 * 64);
    if fpmap {
        4
    } else if fmap {
        3
    } else if pmap {
        2
    } else {
        1
    }
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes a page trailer (ptype, ptype, wSig, dwCRC over the first 496 bytes, bid) into `page`.
pub fn page_trailer(page: &mut [u8], ptype: u8, sig: u16, bid: u64) {
    let c = crc(page.get(..496).unwrap_or(&[]));
    if let Some(t) = page.get_mut(496..512) {
        t[0] = ptype;
        t[1] = ptype;
        t[2..4].copy_from_slice(&sig.to_le_bytes());
        t[4..8].copy_from_slice(&c.to_le_bytes());
        t[8..16].copy_from_slice(&bid.to_le_bytes());
    }
}

impl NdbWriter {
    /// Most heap blocks kept for reuse by [`NdbWriter::recycle_heap_buffers`].
    const HEAP_BUFFERS: usize = 8;

    /// A buffer for a heap block: one kept by [`NdbWriter::recycle_heap_buffers`], or a new
    /// empty one. Its contents are to be discarded.
    pub fn heap_buffer(&mut self) -> Vec<u8> {
        self.heap_buffers.pop().unwrap_or_default()
    }

    /// Keeps up to [`NdbWriter::HEAP_BUFFERS`] of `blocks`, written heap blocks, for the
    /// next heaps: a message writes several heaps of one 8 KiB block each.
    pub fn recycle_heap_buffers(&mut self, blocks: Vec<Vec<u8>>) {
        for b in blocks {
            if self.heap_buffers.len() >= Self::HEAP_BUFFERS {
                break;
            }
            self.heap_buffers.push(b);
        }
    }

    /// Starts writing at the first AMap range of `file`, the empty file just created at
    /// `path` (the header area is written by [`NdbWriter::finish`]). Ranges are written by
    /// a [`RangeOut`] thread, with direct I/O when `direct_io` and the file system allow it.
    pub fn new(file: File, path: &Path, encoding: Encoding, direct_io: bool) -> Result<NdbWriter> {
        let mut out = RangeOut::new(file, path, direct_io)?;
        out.put(PageBuf::zeroed(AMAP_FIRST as usize, 0), Vec::new())?;
        let mut w = NdbWriter {
            out,
            encoding,
            range_index: 0,
            buf: PageBuf::zeroed(AMAP_RANGE as usize, AMAP_FIRST),
            seals: Vec::new(),
            used: 0,
            free_total: 0,
            next_bid: 1,
            next_page_bid: 1,
            bbt: Vec::new(),
            nbt: Vec::new(),
            scratch: Vec::new(),
            heap_buffers: Vec::new(),
        };
        w.start_range();
        Ok(w)
    }

    /// Bytes the file will have if it were finished now (approximately; used for volume caps).
    pub fn position(&self) -> u64 {
        AMAP_FIRST + self.range_index * AMAP_RANGE + self.used as u64
    }

    fn range_start(&self) -> u64 {
        AMAP_FIRST + self.range_index * AMAP_RANGE
    }

    fn start_range(&mut self) {
        // Only the map pages are zeroed here: blocks and pages zero their own padding,
        // `alloc` zeroes alignment gaps and `close_range` the free tail, so every byte of
        // the range is written once.
        let pages = range_pages(self.range_index);
        self.buf[..pages * PAGE].fill(0);
        self.used = pages * PAGE;
        self.mark(0, pages * PAGE);
        let start = self.range_start();
        if pages >= 2 {
            // PMap: all 0xFF (observed in Outlook files).
            let p = &mut self.buf[PAGE..2 * PAGE];
            p[..496].fill(0xFF);
            page_trailer(p, ptype::PMAP, 0, start + PAGE as u64);
        }
        if pages == 3 {
            let p = &mut self.buf[2 * PAGE..3 * PAGE];
            page_trailer(p, ptype::FMAP, 0, start + 2 * PAGE as u64);
        }
        if pages == 4 {
            let p = &mut self.buf[3 * PAGE..4 * PAGE];
            page_trailer(p, ptype::FPMAP, 0, start + 3 * PAGE as u64);
        }
    }

    fn mark(&mut self, pos: usize, size: usize) {
        let first = pos / 64;
        let last = (pos + size).div_ceil(64);
        for slot in first..last {
            if let Some(b) = self.buf.get_mut(slot / 8) {
                *b |= 0x80 >> (slot % 8);
            }
        }
    }

    fn close_range(&mut self) -> Result<()> {
        if let Some(tail) = self.buf.get_mut(self.used..) {
            tail.fill(0);
        }
        let allocated: u32 = self.buf[..496].iter().map(|b| b.count_ones()).sum();
        self.free_total += (496 * 8 - allocated as u64) * 64;
        let start = self.range_start();
        page_trailer(&mut self.buf[..PAGE], ptype::AMAP, 0, start);
        let full = std::mem::take(&mut self.buf);
        let seals = std::mem::take(&mut self.seals);
        (self.buf, self.seals) = self.out.put(full, seals)?;
        self.range_index += 1;
        Ok(())
    }

    /// Reserves `size` bytes aligned to `align`; returns (file offset, offset in the range buffer).
    fn alloc(&mut self, size: usize, align: usize) -> Result<(u64, usize)> {
        let mut pos = align_up(self.used as u64, align as u64) as usize;
        if pos + size > AMAP_RANGE as usize {
            self.close_range()?;
            self.start_range();
            pos = align_up(self.used as u64, align as u64) as usize;
        }
        if let Some(gap) = self.buf.get_mut(self.used..pos) {
            gap.fill(0);
        }
        self.used = pos + size;
        self.mark(pos, size);
        Ok((self.range_start() + pos as u64, pos))
    }

    fn new_bid(&mut self, internal: bool) -> u64 {
        let bid = (self.next_bid << 2) | if internal { 2 } else { 0 };
        self.next_bid += 1;
        bid
    }

    /// Writes one block (at most 8176 data bytes); external blocks are encoded. Returns its id.
    pub fn write_block(&mut self, data: &[u8], internal: bool) -> Result<u64> {
        let len = data.len();
        let pos = self.block_space(len)?;
        let encode = !internal && self.encoding == Encoding::Permute;
        let b = &mut self.buf[pos..pos + len];
        if encode && self.out.seals_here() {
            // One pass (copy and encode) where the seal is applied in this thread anyway.
            crypt::encode_into(b, data);
            return Ok(self.seal_block(pos, len, internal, false));
        }
        b.copy_from_slice(data);
        Ok(self.seal_block(pos, len, internal, true))
    }

    /// Makes room for a block of at most `max_len` data bytes at the end of the range
    /// (closing the range when it does not fit) and returns the block's offset in the
    /// range buffer; [`NdbWriter::seal_block`] then takes the bytes written there.
    fn block_space(&mut self, max_len: usize) -> Result<usize> {
        if max_len > MAX_BLOCK_DATA {
            return Err(Error::Invalid(format!("block of {max_len} bytes")));
        }
        let total = align_up(max_len as u64 + 16, 64) as usize;
        let mut pos = align_up(self.used as u64, 64) as usize;
        if pos + total > AMAP_RANGE as usize {
            self.close_range()?;
            self.start_range();
            pos = align_up(self.used as u64, 64) as usize;
        }
        if let Some(gap) = self.buf.get_mut(self.used..pos) {
            gap.fill(0);
        }
        Ok(pos)
    }

    /// Completes the block whose `len` data bytes are at `pos` (from
    /// [`NdbWriter::block_space`]): zeroes the padding and writes the trailer, leaving the
    /// encoding (when `encode`, for external blocks of a permute-encoded file) and the CRC
    /// to the writer thread (a [`Seal`]). Returns its id.
    fn seal_block(&mut self, pos: usize, len: usize, internal: bool, encode: bool) -> u64 {
        let total = align_up(len as u64 + 16, 64) as usize;
        let ib = self.range_start() + pos as u64;
        self.used = pos + total;
        self.mark(pos, total);
        let bid = self.new_bid(internal);
        let b = &mut self.buf[pos..pos + total];
        let t = total - 16;
        b[len..t].fill(0);
        put_u16(b, t, len as u16);
        put_u16(b, t + 2, signature(ib, bid));
        put_u64(b, t + 8, bid);
        self.seals.push(Seal {
            pos: pos as u32,
            len: len as u16,
            encode: encode && !internal && self.encoding == Encoding::Permute,
        });
        self.bbt.push(PackedBlock::new(ib, len as u16, internal));
        bid
    }

    /// Writes `data` as a data tree (one block, or XBLOCK/XXBLOCK over 8176-byte blocks).
    /// An empty stream is written as one empty block.
    pub fn write_stream(&mut self, data: &[u8]) -> Result<u64> {
        self.write_stream_chunked(data, MAX_BLOCK_DATA)
    }

    /// Like [`NdbWriter::write_stream`] with blocks of at most `chunk` bytes (TC row matrices).
    pub fn write_stream_chunked(&mut self, data: &[u8], chunk: usize) -> Result<u64> {
        let chunk = chunk.clamp(1, MAX_BLOCK_DATA);
        if data.len() <= chunk {
            return self.write_block(data, false);
        }
        let mut leaves = Vec::with_capacity(data.len().div_ceil(chunk));
        for c in data.chunks(chunk) {
            leaves.push((self.write_block(c, false)?, c.len() as u64));
        }
        self.write_tree(&leaves)
    }

    /// Writes the string `s` in UTF-16LE as a data tree like [`NdbWriter::write_stream`],
    /// converting one block's worth at a time into a reused buffer, so a large body is
    /// never held whole in UTF-16. Blocks end on character boundaries.
    pub fn write_utf16_stream(&mut self, s: &str) -> Result<u64> {
        let mut leaves = Vec::with_capacity(s.len().div_ceil(MAX_BLOCK_DATA / 2));
        let mut rest = s;
        // Encoded as it is widened where the seal is applied in this thread anyway.
        let encode_now = self.encoding == Encoding::Permute && self.out.seals_here();
        loop {
            // Converted straight into the block's place in the range buffer, then encoded
            // there: at most 2 UTF-16 bytes per UTF-8 byte.
            let room = MAX_BLOCK_DATA.min(rest.len().saturating_mul(2));
            let pos = self.block_space(room)?;
            let dst = self.buf.get_mut(pos..pos + room).unwrap_or(&mut []);
            let (used, written) = if encode_now {
                crate::ltp::utf16_into_encoded(rest, dst)
            } else {
                crate::ltp::utf16_into(rest, dst)
            };
            let bid = self.seal_block(pos, written, false, !encode_now);
            leaves.push((bid, written as u64));
            rest = rest.get(used..).unwrap_or("");
            if rest.is_empty() {
                break;
            }
            if used == 0 {
                return Err(Error::Invalid(
                    "string value: a character does not fit a block".into(),
                ));
            }
        }
        self.write_tree(&leaves)
    }

    /// Builds the XBLOCK/XXBLOCK levels over data blocks already written (bid, size).
    pub fn write_tree(&mut self, leaves: &[(u64, u64)]) -> Result<u64> {
        match leaves {
            [] => self.write_block(&[], false),
            [(bid, _)] => Ok(*bid),
            _ if leaves.len() <= XBLOCK_FANOUT => self.write_xblock(1, leaves),
            _ => {
                if leaves.len() > XBLOCK_FANOUT * XBLOCK_FANOUT {
                    return Err(Error::TooLarge("stream exceeds an XXBLOCK".into()));
                }
                let mut mids = Vec::new();
                for group in leaves.chunks(XBLOCK_FANOUT) {
                    let size: u64 = group.iter().map(|l| l.1).sum();
                    mids.push((self.write_xblock(1, group)?, size));
                }
                self.write_xblock(2, &mids)
            }
        }
    }

    fn write_xblock(&mut self, level: u8, children: &[(u64, u64)]) -> Result<u64> {
        let total: u64 = children.iter().map(|l| l.1).sum();
        let total = u32::try_from(total)
            .map_err(|_| Error::TooLarge(format!("node stream of {total} bytes (limit 4 GiB)")))?;
        let mut b = std::mem::take(&mut self.scratch);
        b.clear();
        b.push(1);
        b.push(level);
        b.extend_from_slice(&(children.len() as u16).to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        for (bid, _) in children {
            b.extend_from_slice(&bid.to_le_bytes());
        }
        let r = self.write_block(&b, true);
        self.scratch = b;
        r
    }

    /// Writes a subnode B-tree (SLBLOCKs, and an SIBLOCK level when needed); 0 if `entries` is empty.
    pub fn write_subnodes(&mut self, entries: &mut [SubEntry]) -> Result<u64> {
        if entries.is_empty() {
            return Ok(0);
        }
        entries.sort_by_key(|e| e.nid);
        let mut sl = Vec::new();
        for group in entries.chunks(SLENTRIES_PER_BLOCK) {
            let mut b = Vec::with_capacity(8 + group.len() * 24);
            b.extend_from_slice(&[2, 0]);
            b.extend_from_slice(&(group.len() as u16).to_le_bytes());
            b.extend_from_slice(&[0; 4]);
            for e in group {
                b.extend_from_slice(&u64::from(e.nid).to_le_bytes());
                b.extend_from_slice(&e.bid_data.to_le_bytes());
                b.extend_from_slice(&e.bid_sub.to_le_bytes());
            }
            let first = group.first().map(|e| e.nid).unwrap_or(0);
            sl.push((first, self.write_block(&b, true)?));
        }
        if let [(_, bid)] = sl.as_slice() {
            return Ok(*bid);
        }
        if sl.len() > SIENTRIES_PER_BLOCK {
            return Err(Error::TooLarge("too many subnodes in one node".into()));
        }
        let mut b = Vec::with_capacity(8 + sl.len() * 16);
        b.extend_from_slice(&[2, 1]);
        b.extend_from_slice(&(sl.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        for (nid, bid) in &sl {
            b.extend_from_slice(&u64::from(*nid).to_le_bytes());
            b.extend_from_slice(&bid.to_le_bytes());
        }
        self.write_block(&b, true)
    }

    /// Records a top-level node.
    pub fn add_node(&mut self, nid: u32, bid_data: u64, bid_sub: u64, parent: u32) {
        self.nbt.push(NbtEntry {
            nid,
            bid_data,
            bid_sub,
            parent,
        });
    }

    /// Writes one 512-byte page from its 496-byte body; returns (bid, ib).
    pub fn write_page(&mut self, body: &[u8], ptype: u8) -> Result<(u64, u64)> {
        let (ib, pos) = self.alloc(PAGE, PAGE)?;
        let bid = self.next_page_bid;
        self.next_page_bid += 1;
        let p = &mut self.buf[pos..pos + PAGE];
        let n = body.len().min(496);
        p[..n].copy_from_slice(&body[..n]);
        p[n..].fill(0);
        page_trailer(p, ptype, signature(ib, bid), bid);
        Ok((bid, ib))
    }

    /// Writes the B-trees, the last AMap range and the header area, and syncs the file;
    /// returns the totals.
    pub fn finish(mut self, header: impl FnOnce(&NdbTotals) -> Vec<u8>) -> Result<NdbTotals> {
        let mut nbt = std::mem::take(&mut self.nbt);
        nbt.sort_unstable_by_key(|e| e.nid);
        let nbt_root = super::btree::write_btree(&mut self, ptype::NBT, 32, nbt.len(), |i| {
            let mut r = [0u8; 32];
            let e = nbt.get(i).copied().unwrap_or(NbtEntry {
                nid: 0,
                bid_data: 0,
                bid_sub: 0,
                parent: 0,
            });
            r[..8].copy_from_slice(&u64::from(e.nid).to_le_bytes());
            r[8..16].copy_from_slice(&e.bid_data.to_le_bytes());
            r[16..24].copy_from_slice(&e.bid_sub.to_le_bytes());
            r[24..28].copy_from_slice(&e.parent.to_le_bytes());
            (u64::from(e.nid), r)
        })?;
        drop(nbt);
        // Pages are not blocks: only blocks are listed in the BBT.
        let bbt = std::mem::take(&mut self.bbt);
        let bbt_root = super::btree::write_btree(&mut self, ptype::BBT, 24, bbt.len(), |i| {
            let mut r = [0u8; 32];
            let e = bbt.get(i).copied().unwrap_or(PackedBlock(0)).entry(i);
            r[..8].copy_from_slice(&e.bid.to_le_bytes());
            r[8..16].copy_from_slice(&e.ib.to_le_bytes());
            r[16..18].copy_from_slice(&e.cb.to_le_bytes());
            r[18..20].copy_from_slice(&2u16.to_le_bytes());
            (e.bid, r)
        })?;
        drop(bbt);
        let amap_last = self.range_start();
        self.close_range()?;
        let dlist_bid = self.next_page_bid;
        let totals = NdbTotals {
            eof: self.range_start(),
            amap_last,
            amap_free: self.free_total,
            nbt_root,
            bbt_root,
            next_page_bid: self.next_page_bid,
            next_bid: self.next_bid << 2,
            dlist_bid,
        };
        let head = header(&totals);
        let mut area = vec![0u8; AMAP_FIRST as usize];
        area[..head.len().min(0x4200)].copy_from_slice(&head[..head.len().min(0x4200)]);
        {
            let d = &mut area[0x4200..0x4400];
            page_trailer(d, ptype::DLIST, signature(0x4200, dlist_bid), dlist_bid);
        }
        self.out.finish(&area)?;
        Ok(totals)
    }
}
