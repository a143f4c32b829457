//! Bulk-built NBT/BBT pages ([MS-PST] §2.2.2.7.7): sorted leaves, then intermediate levels.

use super::alloc::NdbWriter;
use crate::error::Result;

/// Writes a B-tree over `count` sorted leaf entries, `entry(i)` giving entry `i` as
/// (key, bytes of `leaf_size`); returns the root page (bid, ib). Only the index levels
/// (1/15 or 1/20 of the entries) are held in memory.
pub fn write_btree(
    w: &mut NdbWriter,
    ptype: u8,
    leaf_size: usize,
    count: usize,
    entry: impl Fn(usize) -> (u64, [u8; 32]),
) -> Result<(u64, u64)> {
    let per_leaf = 488 / leaf_size;
    let mut level: Vec<(u64, u64, u64)> = Vec::with_capacity(count / per_leaf + 1);
    if count == 0 {
        let (bid, ib) = write_one(w, ptype, leaf_size, per_leaf, 0, &[])?;
        level.push((0, bid, ib));
    }
    let mut start = 0;
    while start < count {
        let end = (start + per_leaf).min(count);
        let entries: Vec<(u64, [u8; 32])> = (start..end).map(&entry).collect();
        let rows: Vec<&[u8]> = entries.iter().map(|(_, e)| &e[..leaf_size]).collect();
        let (bid, ib) = write_one(w, ptype, leaf_size, per_leaf, 0, &rows)?;
        level.push((entries.first().map(|e| e.0).unwrap_or(0), bid, ib));
        start = end;
    }
    let mut depth = 0u8;
    while level.len() > 1 {
        depth += 1;
        let mut next = Vec::with_capacity(level.len() / 20 + 1);
        for group in level.chunks(20) {
            let rows: Vec<[u8; 24]> = group
                .iter()
                .map(|(k, bid, ib)| {
                    let mut r = [0u8; 24];
                    r[..8].copy_from_slice(&k.to_le_bytes());
                    r[8..16].copy_from_slice(&bid.to_le_bytes());
                    r[16..].copy_from_slice(&ib.to_le_bytes());
                    r
                })
                .collect();
            let entries: Vec<&[u8]> = rows.iter().map(|r| r.as_slice()).collect();
            let (bid, ib) = write_one(w, ptype, 24, 20, depth, &entries)?;
            next.push((group.first().map(|g| g.0).unwrap_or(0), bid, ib));
        }
        level = next;
    }
    Ok(level.first().map(|l| (l.1, l.2)).unwrap_or((0, 0)))
}

fn write_one(
    w: &mut NdbWriter,
    ptype: u8,
    size: usize,
    max: usize,
    level: u8,
    entries: &[&[u8]],
) -> Result<(u64, u64)> {
    let mut body = [0u8; 496];
    for (i, e) in entries.iter().enumerate() {
        if let Some(dst) = body.get_mut(i * size..(i + 1) * size) {
            dst.copy_from_slice(e);
        }
    }
    body[488] = entries.len() as u8;
    body[489] = max as u8;
    body[490] = size as u8;
    body[491] = level;
    let (bid, ib) = w.write_page(&body, ptype)?;
    Ok((bid, ib))
}
