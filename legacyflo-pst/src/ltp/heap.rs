//! Heap-on-node builder ([MS-PST] §2.3.1).

use super::MAX_HEAP_ITEM;
use crate::error::{Error, Result};
use crate::ndb::MAX_BLOCK_DATA;

struct HeapBlock {
    data: Vec<u8>,
    allocs: Vec<u16>,
}

impl HeapBlock {
    /// An empty block with its `header` bytes, sized for a whole block (no regrowth).
    fn new(header: usize) -> HeapBlock {
        HeapBlock::in_buffer(header, Vec::with_capacity(MAX_BLOCK_DATA))
    }

    /// [`HeapBlock::new`] in `data` (cleared; grown to a whole block if smaller).
    fn in_buffer(header: usize, mut data: Vec<u8>) -> HeapBlock {
        data.clear();
        data.reserve(MAX_BLOCK_DATA);
        data.resize(header, 0);
        HeapBlock {
            data,
            // A message's PC holds some 60 items: one allocation, not six regrowths.
            allocs: Vec::with_capacity(64),
        }
    }
}

/// An in-memory heap, serialised into data blocks by [`Heap::finish`].
pub struct Heap {
    client_sig: u8,
    blocks: Vec<HeapBlock>,
    root: u32,
}

fn header_len(i: usize) -> usize {
    if i == 0 {
        12
    } else if i >= 8 && (i - 8).is_multiple_of(128) {
        66
    } else {
        2
    }
}

fn fill_level(free: usize) -> u8 {
    match free {
        f if f >= 3584 => 0,
        f if f >= 2560 => 1,
        f if f >= 2048 => 2,
        f if f >= 1792 => 3,
        f if f >= 1536 => 4,
        f if f >= 1280 => 5,
        f if f >= 1024 => 6,
        f if f >= 768 => 7,
        f if f >= 512 => 8,
        f if f >= 256 => 9,
        f if f >= 128 => 10,
        f if f >= 64 => 11,
        f if f >= 32 => 12,
        f if f >= 16 => 13,
        f if f >= 8 => 14,
        _ => 15,
    }
}

impl Heap {
    /// A new heap with client signature `client_sig` (0xBC PC, 0x7C TC, 0xB5 BTH).
    pub fn new(client_sig: u8) -> Heap {
        Heap::in_buffer(client_sig, Vec::new())
    }

    /// [`Heap::new`] with its first block built in `buf`, a buffer used before (see
    /// [`crate::ndb::alloc::NdbWriter::heap_buffer`]): most heaps are one block, so a heap
    /// then costs no allocation of a block.
    pub fn in_buffer(client_sig: u8, buf: Vec<u8>) -> Heap {
        Heap {
            client_sig,
            blocks: vec![HeapBlock::in_buffer(12, buf)],
            root: 0,
        }
    }

    /// Sets hidUserRoot.
    pub fn set_root(&mut self, hid: u32) {
        self.root = hid;
    }

    /// Allocates an item (at most 3580 bytes); returns its HID.
    pub fn alloc(&mut self, bytes: &[u8]) -> Result<u32> {
        let (data, hid) = self.item(bytes.len())?;
        data.extend_from_slice(bytes);
        Ok(hid)
    }

    /// Allocates an item of `len` bytes (at most 3580) written by `fill` into the heap
    /// block (zeroed first); returns its HID.
    pub fn alloc_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<u32> {
        let (data, hid) = self.item(len)?;
        let start = data.len();
        data.resize(start + len, 0);
        fill(data.get_mut(start..).unwrap_or(&mut []));
        Ok(hid)
    }

    /// The block an item of `len` bytes goes to (its bytes are to be appended to the
    /// returned data) and the item's HID.
    fn item(&mut self, len: usize) -> Result<(&mut Vec<u8>, u32)> {
        if len > MAX_HEAP_ITEM {
            return Err(Error::Invalid(format!("heap item of {len} bytes")));
        }
        let fits = |b: &HeapBlock| {
            let end = (b.data.len() + len + 1) & !1;
            end + 4 + 2 * (b.allocs.len() + 2) <= MAX_BLOCK_DATA && b.allocs.len() < 2047
        };
        let need_new = self.blocks.last().is_none_or(|b| !fits(b));
        if need_new {
            let i = self.blocks.len();
            if i >= 0xFFFF {
                return Err(Error::TooLarge("heap exceeds 65535 blocks".into()));
            }
            self.blocks.push(HeapBlock::new(header_len(i)));
        }
        let index = self.blocks.len() - 1;
        let Some(b) = self.blocks.last_mut() else {
            return Err(Error::Invalid("heap without block".into()));
        };
        b.allocs.push(b.data.len() as u16);
        Ok((
            &mut b.data,
            ((b.allocs.len() as u32) << 5) | ((index as u32) << 16),
        ))
    }

    /// Serialises the heap into its blocks (each ≤ 8176 bytes).
    pub fn finish(self) -> Vec<Vec<u8>> {
        let n = self.blocks.len();
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(n);
        let mut levels = Vec::with_capacity(n);
        for b in self.blocks {
            let mut d = b.data;
            let end = d.len();
            if d.len() % 2 == 1 {
                d.push(0);
            }
            let ib = d.len() as u16;
            d[0..2].copy_from_slice(&ib.to_le_bytes());
            d.extend_from_slice(&(b.allocs.len() as u16).to_le_bytes());
            d.extend_from_slice(&0u16.to_le_bytes());
            for a in &b.allocs {
                d.extend_from_slice(&a.to_le_bytes());
            }
            d.extend_from_slice(&(end as u16).to_le_bytes());
            levels.push(fill_level(MAX_BLOCK_DATA.saturating_sub(d.len())));
            out.push(d);
        }
        let nib = |i: usize| levels.get(i).copied().unwrap_or(0);
        if let Some(first) = out.first_mut() {
            first[2] = 0xEC;
            first[3] = self.client_sig;
            first[4..8].copy_from_slice(&self.root.to_le_bytes());
            for k in 0..4 {
                first[8 + k] = nib(2 * k) | (nib(2 * k + 1) << 4);
            }
        }
        for (i, d) in out.iter_mut().enumerate() {
            if i > 0 && header_len(i) == 66 {
                for k in 0..64 {
                    d[2 + k] = nib(i + 2 * k) | (nib(i + 2 * k + 1) << 4);
                }
            }
        }
        out
    }
}
