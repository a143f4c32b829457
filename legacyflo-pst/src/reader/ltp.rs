//! Reading side of the LTP layer: heap, BTH, PC, TC.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use super::ndb::{Ndb, SubNode};
use crate::error::{Error, Result};

/// The bytes one read may still decode (heaps, row matrices, values), shared by every
/// object it reads: a message, its recipients, attachments and embedded messages are
/// bounded together by the file's size, so an object graph that references the same
/// large stream over and over fails instead of growing without bound.
pub struct Budget {
    left: Cell<u64>,
}

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Budget {
        Budget {
            left: Cell::new(bytes),
        }
    }

    fn spend(&self, n: usize) -> Result<()> {
        let left = self.left.get();
        match left.checked_sub(n as u64) {
            Some(rest) => {
                self.left.set(rest);
                Ok(())
            }
            None => Err(Error::Corrupt(
                "the object's values add up to more than the file holds (values referenced \
                 over and over)"
                    .into(),
            )),
        }
    }
}

/// `e` with `what` (the value being read) added to a corruption's description; damage
/// (which names its block) and I/O errors are returned as they are.
fn with_context(e: Error, what: &str) -> Error {
    match e {
        Error::Corrupt(m) => Error::Corrupt(format!("{what}: {m}")),
        other => other,
    }
}

/// Deepest BTH: with 3580-byte items, 4 levels index more records than a heap can hold.
const MAX_BTH_LEVELS: u8 = 4;

/// A property value as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropValue {
    /// Integer types and booleans (as 0/1).
    Int(i32),
    /// 64-bit integers.
    Long(i64),
    /// FILETIME.
    Time(i64),
    /// Strings (Unicode, or 8-bit read as Windows-1252/Latin-1).
    Str(String),
    /// Binary.
    Binary(Vec<u8>),
    /// PtypObject: the subnode id.
    Object(u32),
    /// Anything else (type code kept).
    Other(u16),
}

/// Properties by id.
pub type Props = HashMap<u16, PropValue>;

/// A table row.
pub struct TableRow {
    pub id: u32,
    pub values: Props,
}

/// A table.
pub struct Table {
    pub rows: Vec<TableRow>,
}

struct Heap {
    blocks: Vec<Vec<u8>>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map(|x| u16::from_le_bytes([x[0], x[1]]))
        .unwrap_or(0)
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
        .unwrap_or(0)
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    b.get(at..at + 8)
        .map(|x| i64::from_le_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]))
        .unwrap_or(0)
}

/// Checks a heap block's HNPAGEMAP ([MS-PST] §2.3.1.5): it lies in the block, its
/// allocation table fits, and the allocations follow one another before the map.
fn check_page_map(b: &[u8]) -> std::result::Result<(), String> {
    let map = usize::from(u16_at(b, 0));
    let count = usize::from(u16_at(b, map));
    let table = map + 4;
    if map + 4 > b.len() || table + 2 * (count + 1) > b.len() {
        return Err(format!(
            "page map at {map} with {count} allocations does not fit in {} bytes",
            b.len()
        ));
    }
    let mut last = 0;
    for i in 0..=count {
        let at = usize::from(u16_at(b, table + 2 * i));
        if at < last || at > map {
            return Err(format!("allocation {i} at {at} is out of order"));
        }
        last = at;
    }
    Ok(())
}

impl Heap {
    fn read(ndb: &Ndb, budget: &Budget, bid: u64, sig: u8) -> Result<Heap> {
        let blocks = ndb.blocks(bid)?;
        budget.spend(blocks.iter().map(Vec::len).sum())?;
        let first = blocks
            .first()
            .ok_or_else(|| Error::Corrupt("empty heap".into()))?;
        if first.get(2) != Some(&0xEC) || first.get(3) != Some(&sig) {
            return Err(Error::Corrupt(format!(
                "heap signature {:?}/{:?}, expected 0xEC/{sig:#x}",
                first.get(2),
                first.get(3)
            )));
        }
        for (i, b) in blocks.iter().enumerate() {
            check_page_map(b).map_err(|m| Error::Corrupt(format!("heap block {i}: {m}")))?;
        }
        Ok(Heap { blocks })
    }

    fn root(&self) -> u32 {
        self.blocks.first().map(|b| u32_at(b, 4)).unwrap_or(0)
    }

    fn get(&self, hid: u32) -> Result<&[u8]> {
        let block = (hid >> 16) as usize;
        let index = ((hid >> 5) & 0x7FF) as usize;
        let b = self
            .blocks
            .get(block)
            .ok_or_else(|| Error::Corrupt(format!("hid {hid:#x}: no block")))?;
        let map = u16_at(b, 0) as usize;
        let count = u16_at(b, map) as usize;
        if index == 0 || index > count {
            return Err(Error::Corrupt(format!("hid {hid:#x}: bad index")));
        }
        let start = u16_at(b, map + 4 + 2 * (index - 1)) as usize;
        let end = u16_at(b, map + 4 + 2 * index) as usize;
        b.get(start..end)
            .ok_or_else(|| Error::Corrupt(format!("hid {hid:#x}: out of range")))
    }

    /// All records of the BTH whose header is at `hid`: (key size, data size, records).
    fn bth(&self, hid: u32) -> Result<(usize, usize, Vec<Vec<u8>>)> {
        let h = self.get(hid)?;
        if h.first() != Some(&0xB5) || h.len() < 8 {
            return Err(Error::Corrupt("bad BTH header".into()));
        }
        let (k, d, levels, root) = (h[1] as usize, h[2] as usize, h[3], u32_at(h, 4));
        if levels > MAX_BTH_LEVELS {
            return Err(Error::Corrupt(format!("BTH of {levels} levels")));
        }
        let mut out = Vec::new();
        if root != 0 && k + d > 0 {
            let mut seen = HashSet::new();
            self.bth_walk(root, k, d, levels, &mut out, &mut seen)?;
        }
        Ok((k, d, out))
    }

    /// Appends the records below `hid`; every heap item is visited once, so a BTH whose
    /// index items point at the same item over and over fails instead of multiplying.
    fn bth_walk(
        &self,
        hid: u32,
        k: usize,
        d: usize,
        level: u8,
        out: &mut Vec<Vec<u8>>,
        seen: &mut HashSet<u32>,
    ) -> Result<()> {
        if !seen.insert(hid) {
            return Err(Error::Corrupt(format!(
                "BTH item {hid:#x} referenced twice"
            )));
        }
        let item = self.get(hid)?;
        if level == 0 {
            for r in item.chunks_exact(k + d) {
                out.push(r.to_vec());
            }
        } else {
            for r in item.chunks_exact(k + 4) {
                self.bth_walk(u32_at(r, k), k, d, level - 1, out, seen)?;
            }
        }
        Ok(())
    }
}

fn latin1(b: &[u8]) -> String {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    b.iter().map(|&c| char::from(c)).collect()
}

fn utf16(b: &[u8]) -> String {
    let u: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let s = String::from_utf16_lossy(&u);
    s.strip_suffix('\0').map(str::to_string).unwrap_or(s)
}

/// What a PC or TC reads with: the file, the object's subnodes, the budget.
struct Ctx<'a> {
    ndb: &'a Ndb,
    budget: &'a Budget,
    subs: &'a HashMap<u32, SubNode>,
}

/// The bytes of a variable-size value. HNID 0 is an empty value: Outlook and the PST SDK
/// store zero-length strings and binaries so (an HID never has index 0, [MS-PST] §2.3.1.1).
fn var_bytes(ctx: &Ctx<'_>, heap: &Heap, hnid: u32) -> Result<Vec<u8>> {
    if hnid == 0 {
        return Ok(Vec::new());
    }
    let v = if hnid & 0x1F == 0 {
        heap.get(hnid)?.to_vec()
    } else {
        let s = ctx
            .subs
            .get(&hnid)
            .ok_or_else(|| Error::Corrupt(format!("value subnode {hnid:#x} missing")))?;
        ctx.ndb.stream(s.bid_data)?
    };
    ctx.budget.spend(v.len())?;
    Ok(v)
}

/// Decodes a value from its type and either its inline bytes or its HNID.
fn value(ctx: &Ctx<'_>, heap: &Heap, ptype: u16, inline: &[u8]) -> Result<PropValue> {
    let dw = u32_at(inline, 0);
    Ok(match ptype {
        0x0002 => PropValue::Int(i32::from(u16_at(inline, 0) as i16)),
        0x0003 => PropValue::Int(dw as i32),
        0x000B => PropValue::Int(i32::from(inline.first().copied().unwrap_or(0) != 0)),
        0x0014 | 0x0040 => {
            let v = if inline.len() >= 8 {
                i64_at(inline, 0)
            } else {
                i64_at(&var_bytes(ctx, heap, dw)?, 0)
            };
            if ptype == 0x0040 {
                PropValue::Time(v)
            } else {
                PropValue::Long(v)
            }
        }
        0x001F => PropValue::Str(utf16(&var_bytes(ctx, heap, dw)?)),
        0x001E => PropValue::Str(latin1(&var_bytes(ctx, heap, dw)?)),
        0x0102 => PropValue::Binary(var_bytes(ctx, heap, dw)?),
        0x000D => {
            let b = var_bytes(ctx, heap, dw)?;
            PropValue::Object(u32_at(&b, 0))
        }
        t => PropValue::Other(t),
    })
}

/// Reads a property context (its decoded bytes counted in `budget`).
pub fn read_pc(
    ndb: &Ndb,
    budget: &Budget,
    bid: u64,
    subs: &HashMap<u32, SubNode>,
) -> Result<Props> {
    let ctx = Ctx { ndb, budget, subs };
    let heap = Heap::read(ndb, budget, bid, 0xBC)?;
    let (_, _, records) = heap.bth(heap.root())?;
    let mut props = HashMap::new();
    for r in records {
        let id = u16_at(&r, 0);
        let ptype = u16_at(&r, 2);
        let inline = r.get(4..8).unwrap_or(&[]);
        // A value that cannot be read fails the object: a damaged message is reported,
        // never passed on without the value.
        let v = value(&ctx, &heap, ptype, inline)
            .map_err(|e| with_context(e, &format!("property {id:#06x}")))?;
        props.insert(id, v);
    }
    Ok(props)
}

/// Reads a table context (all rows; its decoded bytes counted in `budget`).
pub fn read_tc(
    ndb: &Ndb,
    budget: &Budget,
    bid: u64,
    subs: &HashMap<u32, SubNode>,
) -> Result<Table> {
    let ctx = Ctx { ndb, budget, subs };
    let heap = Heap::read(ndb, budget, bid, 0x7C)?;
    let info = heap.get(heap.root())?.to_vec();
    if info.first() != Some(&0x7C) {
        return Err(Error::Corrupt("bad TCINFO".into()));
    }
    let ncols = info.get(1).copied().unwrap_or(0) as usize;
    let row_size = u16_at(&info, 8) as usize;
    let ceb_start = u16_at(&info, 6) as usize;
    let hid_index = u32_at(&info, 10);
    let hnid_rows = u32_at(&info, 14);
    let mut cols = Vec::with_capacity(ncols);
    for i in 0..ncols {
        let at = 22 + i * 8;
        let tag = u32_at(&info, at);
        cols.push((
            tag,
            u16_at(&info, at + 4) as usize,
            info.get(at + 6).copied().unwrap_or(0) as usize,
            info.get(at + 7).copied().unwrap_or(0) as usize,
        ));
    }
    let (_, _, index) = heap.bth(hid_index)?;
    let count = index.len();
    let mut rows = Vec::with_capacity(count);
    if hnid_rows == 0 || row_size == 0 || count == 0 {
        return Ok(Table { rows });
    }
    let blocks: Vec<Vec<u8>> = if hnid_rows & 0x1F == 0 {
        vec![heap.get(hnid_rows)?.to_vec()]
    } else {
        let s = subs
            .get(&hnid_rows)
            .ok_or_else(|| Error::Corrupt(format!("row matrix subnode {hnid_rows:#x} missing")))?;
        let blocks = ndb.blocks(s.bid_data)?;
        budget.spend(blocks.iter().map(Vec::len).sum())?;
        blocks
    };
    'outer: for b in &blocks {
        for r in b.chunks_exact(row_size) {
            if rows.len() >= count {
                break 'outer;
            }
            let id = u32_at(r, 0);
            let mut values = HashMap::new();
            for &(tag, ib, cb, bit) in &cols {
                let present = r
                    .get(ceb_start + bit / 8)
                    .is_some_and(|c| c & (0x80 >> (bit % 8)) != 0);
                if !present {
                    continue;
                }
                let Some(cell) = r.get(ib..ib + cb) else {
                    continue;
                };
                let v = value(&ctx, &heap, tag as u16, cell)
                    .map_err(|e| with_context(e, &format!("row {id:#x}, column {tag:#010x}")))?;
                values.insert((tag >> 16) as u16, v);
            }
            rows.push(TableRow { id, values });
        }
    }
    Ok(Table { rows })
}
