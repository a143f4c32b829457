//! A map of a Unicode PST's NDB structures, parsed here independently of the reader under
//! test: B-tree pages, nodes, blocks and the kind of every block a node uses, so that the
//! damage tests can hit one block or page of a chosen kind. Also CRC fixing, for crafting
//! files whose sizes and counts are hostile but whose checksums are right.

use std::collections::{BTreeMap, HashMap};

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// One B-tree page.
#[derive(Clone, Debug)]
pub struct Page {
    pub bid: u64,
    pub ib: u64,
    pub level: u8,
    /// Keys of its entries.
    pub keys: Vec<u64>,
    /// The page is the tree's root.
    pub root: bool,
    /// Keys of the leaf entries below it (for a leaf: `keys`).
    pub leaf_keys: Vec<u64>,
}

/// What a block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Data,
    XBlock,
    XXBlock,
    SlBlock,
    SiBlock,
}

/// The NDB of a Unicode file.
pub struct Map {
    pub nbt: Vec<Page>,
    pub bbt: Vec<Page>,
    /// nid -> (bid_data, bid_sub, parent)
    pub nodes: BTreeMap<u32, (u64, u64, u32)>,
    /// bid -> (ib, cb)
    pub blocks: HashMap<u64, (u64, u16)>,
}

impl Map {
    pub fn load(f: &[u8]) -> Map {
        assert_eq!(u16_at(f, 10), 23, "Unicode files only");
        let mut m = Map {
            nbt: Vec::new(),
            bbt: Vec::new(),
            nodes: BTreeMap::new(),
            blocks: HashMap::new(),
        };
        let mut nbt = Vec::new();
        walk(f, u64_at(f, 216), u64_at(f, 224), true, &mut nbt);
        let mut bbt = Vec::new();
        walk(f, u64_at(f, 232), u64_at(f, 240), true, &mut bbt);
        for p in &nbt {
            if p.level == 0 {
                for i in 0..p.keys.len() {
                    let e = &f[p.ib as usize + i * 32..];
                    m.nodes.insert(
                        u64_at(e, 0) as u32,
                        (u64_at(e, 8), u64_at(e, 16), u32_at(e, 24)),
                    );
                }
            }
        }
        for p in &bbt {
            if p.level == 0 {
                for i in 0..p.keys.len() {
                    let e = &f[p.ib as usize + i * 24..];
                    m.blocks
                        .insert(u64_at(e, 0) & !1, (u64_at(e, 8), u16_at(e, 16)));
                }
            }
        }
        m.nbt = nbt;
        m.bbt = bbt;
        m
    }

    /// The stored bytes of block `bid` (not decoded).
    pub fn raw<'f>(&self, f: &'f [u8], bid: u64) -> &'f [u8] {
        let (ib, cb) = self.blocks[&(bid & !1)];
        &f[ib as usize..ib as usize + cb as usize]
    }

    /// Every block node `nid` uses (data tree, subnode tree, the subnodes' trees), with
    /// its kind, in a deterministic order.
    pub fn node_blocks(&self, f: &[u8], nid: u32) -> Vec<(u64, Kind)> {
        let mut out = Vec::new();
        let (data, sub, _) = self.nodes[&nid];
        self.data_tree(f, data, &mut out);
        self.sub_tree(f, sub, &mut out);
        out
    }

    fn data_tree(&self, f: &[u8], bid: u64, out: &mut Vec<(u64, Kind)>) {
        if bid == 0 {
            return;
        }
        if bid & 2 == 0 {
            out.push((bid, Kind::Data));
            return;
        }
        let b = self.raw(f, bid);
        out.push((
            bid,
            if b[1] == 2 {
                Kind::XXBlock
            } else {
                Kind::XBlock
            },
        ));
        for i in 0..u16_at(b, 2) as usize {
            self.data_tree(f, u64_at(b, 8 + 8 * i), out);
        }
    }

    fn sub_tree(&self, f: &[u8], bid: u64, out: &mut Vec<(u64, Kind)>) {
        if bid == 0 {
            return;
        }
        let b = self.raw(f, bid);
        assert_eq!(b[0], 2, "subnode block {bid:#x}");
        let n = u16_at(b, 2) as usize;
        if b[1] == 0 {
            out.push((bid, Kind::SlBlock));
            for i in 0..n {
                let at = 8 + 24 * i;
                self.data_tree(f, u64_at(b, at + 8), out);
                self.sub_tree(f, u64_at(b, at + 16), out);
            }
        } else {
            out.push((bid, Kind::SiBlock));
            for i in 0..n {
                self.sub_tree(f, u64_at(b, 8 + 16 * i + 8), out);
            }
        }
    }
}

fn walk(f: &[u8], bid: u64, ib: u64, root: bool, out: &mut Vec<Page>) -> Vec<u64> {
    let p = &f[ib as usize..ib as usize + 512];
    assert_eq!(u64_at(p, 504), bid, "page trailer at {ib:#x}");
    let (n, cb, level) = (p[488] as usize, p[490] as usize, p[491]);
    let keys: Vec<u64> = (0..n).map(|i| u64_at(p, i * cb)).collect();
    let mut leaf_keys = Vec::new();
    let at = out.len();
    out.push(Page {
        bid,
        ib,
        level,
        keys: keys.clone(),
        root,
        leaf_keys: Vec::new(),
    });
    if level == 0 {
        leaf_keys = keys;
    } else {
        for i in 0..n {
            let e = &p[i * cb..];
            leaf_keys.extend(walk(f, u64_at(e, 8), u64_at(e, 16), false, out));
        }
    }
    out[at].leaf_keys = leaf_keys.clone();
    leaf_keys
}

/// The [MS-PST] §5.3 CRC, computed here from its definition (table-free, bit by bit).
pub fn crc(data: &[u8]) -> u32 {
    let mut c: u32 = 0;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    c
}

/// Recomputes the CRC of the 512-byte page at `ib`.
pub fn fix_page(f: &mut [u8], ib: u64) {
    let ib = ib as usize;
    let c = crc(&f[ib..ib + 496]);
    f[ib + 500..ib + 504].copy_from_slice(&c.to_le_bytes());
}

/// Recomputes the CRC of block `bid` (its stored bytes).
pub fn fix_block(map: &Map, f: &mut [u8], bid: u64) {
    let (ib, cb) = map.blocks[&(bid & !1)];
    let (ib, cb) = (ib as usize, cb as usize);
    let total = (cb + 16).div_ceil(64) * 64;
    let c = crc(&f[ib..ib + cb]);
    f[ib + total - 12..ib + total - 8].copy_from_slice(&c.to_le_bytes());
}

/// The BBT leaf entry of block `bid`: its offset in the file.
pub fn bbt_entry_at(map: &Map, f: &[u8], bid: u64) -> (u64, usize) {
    for p in map.bbt.iter().filter(|p| p.level == 0) {
        for i in 0..p.keys.len() {
            let at = p.ib as usize + i * 24;
            if u64_at(f, at) & !1 == bid & !1 {
                return (p.ib, at);
            }
        }
    }
    panic!("block {bid:#x} not in the BBT")
}

impl Map {
    /// The entries (nid, bid_data, bid_sub) of the subnode tree at `bid` (SLBLOCKs and
    /// SIBLOCKs).
    pub fn sub_entries(&self, f: &[u8], bid: u64) -> Vec<(u32, u64, u64)> {
        let mut out = Vec::new();
        if bid == 0 {
            return out;
        }
        let b = self.raw(f, bid);
        let n = u16_at(b, 2) as usize;
        for i in 0..n {
            if b[1] == 0 {
                let at = 8 + 24 * i;
                out.push((u64_at(b, at) as u32, u64_at(b, at + 8), u64_at(b, at + 16)));
            } else {
                out.extend(self.sub_entries(f, u64_at(b, 8 + 16 * i + 8)));
            }
        }
        out
    }

    /// File offset and length of heap item `hid` of the one-block heap in block `bid`
    /// (an unencoded file).
    pub fn heap_item(&self, f: &[u8], bid: u64, hid: u32) -> (usize, usize) {
        assert_eq!(hid >> 16, 0, "first heap block only");
        let (ib, _) = self.blocks[&(bid & !1)];
        let b = &f[ib as usize..];
        let map = u16_at(b, 0) as usize;
        let i = ((hid >> 5) & 0x7FF) as usize;
        let start = u16_at(b, map + 4 + 2 * (i - 1)) as usize;
        let end = u16_at(b, map + 4 + 2 * i) as usize;
        (ib as usize + start, end - start)
    }

    /// File offsets of the PC records (8 bytes each: id, type, value) of the one-block
    /// property context in block `bid`, by property id.
    pub fn pc_records(&self, f: &[u8], bid: u64) -> BTreeMap<u16, usize> {
        let (ib, _) = self.blocks[&(bid & !1)];
        let root = u32_at(f, ib as usize + 4);
        let (bth, _) = self.heap_item(f, bid, root);
        assert_eq!(f[bth], 0xB5);
        assert_eq!(f[bth + 3], 0, "one-level BTH");
        let (recs, len) = self.heap_item(f, bid, u32_at(f, bth + 4));
        (0..len / 8)
            .map(|i| (u16_at(f, recs + 8 * i), recs + 8 * i))
            .collect()
    }
}

impl Map {
    /// A copy of `f` with every external data block permute-decoded in place (for
    /// reading structures of an encoded file at their file offsets).
    pub fn decoded(&self, f: &[u8]) -> Vec<u8> {
        let mut d = f.to_vec();
        if f[513] == 1 {
            for (bid, (ib, cb)) in &self.blocks {
                if bid & 2 == 0 {
                    let (ib, cb) = (*ib as usize, *cb as usize);
                    legacyflo_pst::ndb::crypt::decode(&mut d[ib..ib + cb]);
                }
            }
        }
        d
    }
}
