//! Property context builder ([MS-PST] §2.3.3).

use super::heap::Heap;
use super::{MAX_HEAP_ITEM, NodeCtx, Value, bth, utf16_into, utf16_len};
use crate::error::Result;

/// A property: id and value.
pub type Prop<'a> = (u16, Value<'a>);

/// Stores the bytes of a variable-size value in the heap or, when large, in a subnode.
/// Empty values get HNID 0, as Outlook writes them (e.g. a zero-length attachment's
/// PidTagAttachDataBinary) and the PST SDK reads them; a zero-size heap item would be a
/// freed slot (Outlook counts exactly those in cFree and may reuse them).
pub fn store_var(ctx: &mut NodeCtx<'_>, heap: &mut Heap, bytes: &[u8]) -> Result<u32> {
    if bytes.is_empty() {
        Ok(0)
    } else if bytes.len() <= MAX_HEAP_ITEM {
        heap.alloc(bytes)
    } else {
        ctx.value_subnode(bytes, crate::ndb::MAX_BLOCK_DATA)
    }
}

/// The 4-byte cell of a value: inline data for small fixed types, else an HNID.
pub fn cell(ctx: &mut NodeCtx<'_>, heap: &mut Heap, v: &Value<'_>) -> Result<u32> {
    Ok(match v {
        Value::Bool(b) => u32::from(*b),
        Value::I16(x) => u32::from(*x as u16),
        Value::I32(x) => *x as u32,
        Value::I64(x) | Value::Time(x) => heap.alloc(&x.to_le_bytes())?,
        Value::Str(s) => match utf16_len(s) {
            0 => 0,
            n if n <= MAX_HEAP_ITEM => heap.alloc_with(n, |d| {
                utf16_into(s, d);
            })?,
            _ => ctx.str_subnode(s)?,
        },
        Value::Bin(b) => store_var(ctx, heap, b)?,
        Value::Object(nid, size) => {
            let mut d = [0u8; 8];
            d[..4].copy_from_slice(&nid.to_le_bytes());
            d[4..].copy_from_slice(&size.to_le_bytes());
            heap.alloc(&d)?
        }
    })
}

/// Builds a PC from `props` (any order, duplicates: first wins) and writes its heap;
/// returns the data block id. Large values become subnodes of `ctx`.
pub fn write_pc(ctx: &mut NodeCtx<'_>, mut props: Vec<Prop<'_>>) -> Result<u64> {
    props.sort_by_key(|p| p.0);
    props.dedup_by_key(|p| p.0);
    let mut heap = Heap::in_buffer(0xBC, ctx.ndb.heap_buffer());
    let mut records = Vec::with_capacity(props.len() * 8);
    for (id, v) in &props {
        let c = cell(ctx, &mut heap, v)?;
        records.extend_from_slice(&id.to_le_bytes());
        records.extend_from_slice(&v.ptype().to_le_bytes());
        records.extend_from_slice(&c.to_le_bytes());
    }
    drop(props);
    let root = bth::build(&mut heap, 2, 6, &records)?;
    heap.set_root(root);
    ctx.write_heap(heap.finish())
}
