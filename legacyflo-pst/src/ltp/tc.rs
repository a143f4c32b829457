//! Table context builder ([MS-PST] §2.3.4).

use super::heap::Heap;
use super::pc::cell;
use super::{MAX_HEAP_ITEM, NodeCtx, Value, bth, cell_size};
use crate::error::Result;
use crate::ndb::MAX_BLOCK_DATA;

/// A column: property id and type.
pub type Column = (u16, u16);

/// One row: its id (e.g. the message NID) and one optional value per column.
pub struct Row<'a> {
    /// Row id (PidTagLtpRowId).
    pub id: u32,
    /// Cells, in the column order given to [`write_tc`].
    pub cells: Vec<Option<Value<'a>>>,
}

struct Desc {
    tag: u32,
    ib: u16,
    cb: u8,
    bit: u8,
    /// Index into the caller's columns; `None` for row id / row version.
    src: Option<usize>,
}

/// Builds a TC with `columns` (row id and version columns are added) and `rows`, writes
/// its heap and returns the data block id.
pub fn write_tc<'r>(
    ctx: &mut NodeCtx<'_>,
    columns: &[Column],
    rows: impl ExactSizeIterator<Item = Row<'r>>,
) -> Result<u64> {
    let mut descs = Vec::with_capacity(columns.len() + 2);
    descs.extend([
        Desc {
            tag: 0x67F2_0003,
            ib: 0,
            cb: 4,
            bit: 0,
            src: None,
        },
        Desc {
            tag: 0x67F3_0003,
            ib: 4,
            cb: 4,
            bit: 1,
            src: None,
        },
    ]);
    let mut order: Vec<usize> = (0..columns.len()).collect();
    // 8-byte, then 4-byte, 2-byte, 1-byte columns.
    order.sort_by_key(|&i| {
        let s = columns.get(i).map(|c| cell_size(c.1)).unwrap_or(4);
        match s {
            8 => 0,
            4 => 1,
            2 => 2,
            _ => 3,
        }
    });
    let mut ib = 8usize;
    let mut rgib = [0u16; 4];
    let mut bit = 2u8;
    let group_end = |g: usize, ib: usize, rgib: &mut [u16; 4]| {
        for r in rgib.iter_mut().skip(g) {
            *r = ib as u16;
        }
    };
    let mut last_group = 0;
    for &i in &order {
        let Some(&(id, ty)) = columns.get(i) else {
            continue;
        };
        let size = cell_size(ty);
        let group = match size {
            8 | 4 => 0,
            2 => 1,
            _ => 2,
        };
        while last_group < group {
            group_end(last_group, ib, &mut rgib);
            last_group += 1;
        }
        descs.push(Desc {
            tag: (u32::from(id) << 16) | u32::from(ty),
            ib: ib as u16,
            cb: size as u8,
            bit,
            src: Some(i),
        });
        bit = bit.wrapping_add(1);
        ib += size;
    }
    while last_group < 3 {
        group_end(last_group, ib, &mut rgib);
        last_group += 1;
    }
    let ceb = descs.len().div_ceil(8);
    let row_size = ib + ceb;
    rgib[3] = row_size as u16;

    let mut heap = Heap::in_buffer(0x7C, ctx.ndb.heap_buffer());
    let count = rows.len();
    // The row matrix: in the heap when small, else a subnode written block by block as
    // the rows come (a folder of 100,000 messages does not hold its matrix in memory).
    let in_heap = count * row_size <= MAX_HEAP_ITEM;
    let per_block = (MAX_BLOCK_DATA / row_size).max(1);
    let mut chunk = vec![0u8; if in_heap { count } else { per_block } * row_size];
    let mut in_chunk = 0usize;
    let mut leaves: Vec<(u64, u64)> = Vec::new();
    let mut index = Vec::with_capacity(count * 8);
    let mut sorted: Vec<(u32, u32)> = Vec::with_capacity(count);
    for (n, row) in rows.enumerate() {
        let base = in_chunk * row_size;
        let Some(r) = chunk.get_mut(base..base + row_size) else {
            continue;
        };
        r.fill(0);
        r[0..4].copy_from_slice(&row.id.to_le_bytes());
        r[ib] |= 0xC0;
        for d in &descs {
            let Some(src) = d.src else { continue };
            let Some(Some(v)) = row.cells.get(src) else {
                continue;
            };
            if v.is_empty_var() {
                continue;
            }
            let at = d.ib as usize;
            match v {
                Value::I64(x) | Value::Time(x) => {
                    r[at..at + 8].copy_from_slice(&x.to_le_bytes());
                }
                Value::I16(x) => r[at..at + 2].copy_from_slice(&x.to_le_bytes()),
                Value::Bool(b) => r[at] = u8::from(*b),
                _ => {
                    let c = cell(ctx, &mut heap, v)?;
                    r[at..at + 4].copy_from_slice(&c.to_le_bytes());
                }
            }
            r[ib + d.bit as usize / 8] |= 0x80 >> (d.bit % 8);
        }
        sorted.push((row.id, n as u32));
        in_chunk += 1;
        if !in_heap && in_chunk == per_block {
            let bid = ctx.ndb.write_block(&chunk, false)?;
            leaves.push((bid, chunk.len() as u64));
            in_chunk = 0;
        }
    }
    sorted.sort_by_key(|s| s.0);
    for (id, n) in sorted {
        index.extend_from_slice(&id.to_le_bytes());
        index.extend_from_slice(&n.to_le_bytes());
    }
    let hid_index = bth::build(&mut heap, 4, 4, &index)?;
    drop(index);
    let filled = chunk.get(..in_chunk * row_size).unwrap_or(&[]);
    let hnid_rows = if in_heap {
        if filled.is_empty() {
            0
        } else {
            heap.alloc(filled)?
        }
    } else {
        if !filled.is_empty() {
            let bid = ctx.ndb.write_block(filled, false)?;
            leaves.push((bid, filled.len() as u64));
        }
        ctx.tree_subnode(&leaves)?
    };
    drop(chunk);
    descs.sort_by_key(|d| d.tag);
    let mut info = Vec::with_capacity(22 + descs.len() * 8);
    info.push(0x7C);
    info.push(descs.len() as u8);
    for r in rgib {
        info.extend_from_slice(&r.to_le_bytes());
    }
    info.extend_from_slice(&hid_index.to_le_bytes());
    info.extend_from_slice(&hnid_rows.to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes());
    for d in &descs {
        info.extend_from_slice(&d.tag.to_le_bytes());
        info.extend_from_slice(&d.ib.to_le_bytes());
        info.push(d.cb);
        info.push(d.bit);
    }
    let root = heap.alloc(&info)?;
    heap.set_root(root);
    ctx.write_heap(heap.finish())
}
