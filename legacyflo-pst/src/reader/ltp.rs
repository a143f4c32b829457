//! Reading side of the LTP layer: heap, BTH, PC, TC.

use std::collections::HashMap;

use super::ndb::{Ndb, SubNode};
use crate::error::{Error, Result};

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

impl Heap {
    fn read(ndb: &Ndb, bid: u64, sig: u8) -> Result<Heap> {
        let blocks = ndb.blocks(bid)?;
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
        let mut out = Vec::new();
        if root != 0 && k + d > 0 {
            self.bth_walk(root, k, d, levels, &mut out)?;
        }
        Ok((k, d, out))
    }

    fn bth_walk(
        &self,
        hid: u32,
        k: usize,
        d: usize,
        level: u8,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let item = self.get(hid)?;
        if level == 0 {
            for r in item.chunks_exact(k + d) {
                out.push(r.to_vec());
            }
        } else {
            for r in item.chunks_exact(k + 4) {
                self.bth_walk(u32_at(r, k), k, d, level - 1, out)?;
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

fn var_bytes(ndb: &Ndb, heap: &Heap, subs: &HashMap<u32, SubNode>, hnid: u32) -> Result<Vec<u8>> {
    if hnid == 0 {
        return Ok(Vec::new());
    }
    if hnid & 0x1F == 0 {
        return heap.get(hnid).map(<[u8]>::to_vec);
    }
    let s = subs
        .get(&hnid)
        .ok_or_else(|| Error::Corrupt(format!("value subnode {hnid:#x} missing")))?;
    ndb.stream(s.bid_data)
}

/// Decodes a value from its type and either its inline bytes or its HNID.
fn value(
    ndb: &Ndb,
    heap: &Heap,
    subs: &HashMap<u32, SubNode>,
    ptype: u16,
    inline: &[u8],
) -> Result<PropValue> {
    let dw = u32_at(inline, 0);
    Ok(match ptype {
        0x0002 => PropValue::Int(i32::from(u16_at(inline, 0) as i16)),
        0x0003 => PropValue::Int(dw as i32),
        0x000B => PropValue::Int(i32::from(inline.first().copied().unwrap_or(0) != 0)),
        0x0014 | 0x0040 => {
            let v = if inline.len() >= 8 {
                i64_at(inline, 0)
            } else {
                i64_at(&var_bytes(ndb, heap, subs, dw)?, 0)
            };
            if ptype == 0x0040 {
                PropValue::Time(v)
            } else {
                PropValue::Long(v)
            }
        }
        0x001F => PropValue::Str(utf16(&var_bytes(ndb, heap, subs, dw)?)),
        0x001E => PropValue::Str(latin1(&var_bytes(ndb, heap, subs, dw)?)),
        0x0102 => PropValue::Binary(var_bytes(ndb, heap, subs, dw)?),
        0x000D => {
            let b = var_bytes(ndb, heap, subs, dw)?;
            PropValue::Object(u32_at(&b, 0))
        }
        t => PropValue::Other(t),
    })
}

/// Reads a property context.
pub fn read_pc(ndb: &Ndb, bid: u64, subs: &HashMap<u32, SubNode>) -> Result<Props> {
    let heap = Heap::read(ndb, bid, 0xBC)?;
    let (_, _, records) = heap.bth(heap.root())?;
    let mut props = HashMap::new();
    for r in records {
        let id = u16_at(&r, 0);
        let ptype = u16_at(&r, 2);
        let inline = r.get(4..8).unwrap_or(&[]);
        // A broken value is skipped rather than failing the whole object.
        if let Ok(v) = value(ndb, &heap, subs, ptype, inline) {
            props.insert(id, v);
        }
    }
    Ok(props)
}

/// Reads a table context (all rows).
pub fn read_tc(ndb: &Ndb, bid: u64, subs: &HashMap<u32, SubNode>) -> Result<Table> {
    let heap = Heap::read(ndb, bid, 0x7C)?;
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
        ndb.blocks(s.bid_data)?
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
                if let Ok(v) = value(ndb, &heap, subs, tag as u16, cell) {
                    values.insert((tag >> 16) as u16, v);
                }
            }
            rows.push(TableRow { id, values });
        }
    }
    Ok(Table { rows })
}
