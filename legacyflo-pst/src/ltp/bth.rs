//! BTree-on-heap builder ([MS-PST] §2.3.2).

use super::MAX_HEAP_ITEM;
use super::heap::Heap;
use crate::error::Result;

/// Builds a BTH from `records` (each `key_size + data_size` bytes, sorted by key) and
/// returns the HID of its BTHHEADER.
pub fn build(heap: &mut Heap, key_size: usize, data_size: usize, records: &[u8]) -> Result<u32> {
    let rec = key_size + data_size;
    let mut root = 0u32;
    let mut levels = 0u8;
    if !records.is_empty() && rec > 0 {
        let per = MAX_HEAP_ITEM / rec;
        let mut index: Vec<(Vec<u8>, u32)> = Vec::new();
        for chunk in records.chunks(per * rec) {
            let hid = heap.alloc(chunk)?;
            index.push((chunk[..key_size].to_vec(), hid));
        }
        while index.len() > 1 {
            levels += 1;
            let per = MAX_HEAP_ITEM / (key_size + 4);
            let mut next = Vec::new();
            for group in index.chunks(per) {
                let mut item = Vec::with_capacity(group.len() * (key_size + 4));
                for (k, hid) in group {
                    item.extend_from_slice(k);
                    item.extend_from_slice(&hid.to_le_bytes());
                }
                let hid = heap.alloc(&item)?;
                next.push((group.first().map(|g| g.0.clone()).unwrap_or_default(), hid));
            }
            index = next;
        }
        root = index.first().map(|i| i.1).unwrap_or(0);
    }
    let mut h = [0u8; 8];
    h[0] = 0xB5;
    h[1] = key_size as u8;
    h[2] = data_size as u8;
    h[3] = levels;
    h[4..8].copy_from_slice(&root.to_le_bytes());
    heap.alloc(&h)
}
