//! Reading side of the NDB layer: header, B-trees, blocks, data trees, subnode trees.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result, io_at};
use crate::ndb::crypt;

/// An NBT entry.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub bid_data: u64,
    pub bid_sub: u64,
}

/// A subnode entry.
#[derive(Clone, Copy, Debug)]
pub struct SubNode {
    pub bid_data: u64,
    pub bid_sub: u64,
}

/// The node database of an open file.
pub struct Ndb {
    file: File,
    pub unicode: bool,
    crypt: u8,
    nodes: HashMap<u32, Node>,
    blocks: HashMap<u64, (u64, u16)>,
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
fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map(|x| u64::from_le_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]))
        .unwrap_or(0)
}

impl Ndb {
    pub fn open(path: &Path) -> Result<Ndb> {
        let file = File::open(path).map_err(io_at(path))?;
        let mut h = [0u8; 564];
        file.read_exact_at(&mut h, 0).map_err(io_at(path))?;
        if &h[0..4] != b"!BDN" {
            return Err(Error::NotPst("bad magic".into()));
        }
        let ver = u16_at(&h, 10);
        let unicode = match ver {
            14 | 15 => false,
            23 => true,
            v => return Err(Error::NotPst(format!("unsupported wVer {v}"))),
        };
        let (crypt, nbt_ib, bbt_ib) = if unicode {
            (h[513], u64_at(&h, 180 + 44), u64_at(&h, 180 + 60))
        } else {
            (
                h[461],
                u64::from(u32_at(&h, 164 + 24)),
                u64::from(u32_at(&h, 164 + 32)),
            )
        };
        let mut ndb = Ndb {
            file,
            unicode,
            crypt,
            nodes: HashMap::new(),
            blocks: HashMap::new(),
        };
        let mut nbt = Vec::new();
        ndb.walk_btree(nbt_ib, 0x81, &mut nbt, 0)?;
        for e in nbt {
            let (nid, data, sub) = if unicode {
                (u32_at(&e, 0), u64_at(&e, 8), u64_at(&e, 16))
            } else {
                (
                    u32_at(&e, 0),
                    u64::from(u32_at(&e, 4)),
                    u64::from(u32_at(&e, 8)),
                )
            };
            ndb.nodes.insert(
                nid,
                Node {
                    bid_data: data,
                    bid_sub: sub,
                },
            );
        }
        let mut bbt = Vec::new();
        ndb.walk_btree(bbt_ib, 0x80, &mut bbt, 0)?;
        for e in bbt {
            let (bid, ib, cb) = if unicode {
                (u64_at(&e, 0), u64_at(&e, 8), u16_at(&e, 16))
            } else {
                (
                    u64::from(u32_at(&e, 0)),
                    u64::from(u32_at(&e, 4)),
                    u16_at(&e, 8),
                )
            };
            ndb.blocks.insert(bid & !1, (ib, cb));
        }
        Ok(ndb)
    }

    fn walk_btree(&self, ib: u64, ptype: u8, out: &mut Vec<Vec<u8>>, depth: usize) -> Result<()> {
        if depth > 16 {
            return Err(Error::Corrupt("B-tree too deep".into()));
        }
        let mut p = [0u8; 512];
        self.file.read_exact_at(&mut p, ib)?;
        let (meta, trailer) = if self.unicode { (488, 496) } else { (496, 500) };
        if p[trailer] != ptype {
            return Err(Error::Corrupt(format!(
                "page at {ib:#x}: type {:#x}, expected {ptype:#x}",
                p[trailer]
            )));
        }
        let c_ent = p[meta] as usize;
        let cb_ent = p[meta + 2] as usize;
        let level = p[meta + 3];
        if cb_ent == 0 || c_ent * cb_ent > meta {
            return Err(Error::Corrupt(format!("page at {ib:#x}: bad entries")));
        }
        for i in 0..c_ent {
            let Some(e) = p.get(i * cb_ent..(i + 1) * cb_ent) else {
                break;
            };
            if level > 0 {
                let child = if self.unicode {
                    u64_at(e, 16)
                } else {
                    u64::from(u32_at(e, 8))
                };
                self.walk_btree(child, ptype, out, depth + 1)?;
            } else {
                out.push(e.to_vec());
            }
        }
        Ok(())
    }

    pub fn node(&self, nid: u32) -> Option<Node> {
        self.nodes.get(&nid).copied()
    }

    /// The raw (decoded for external blocks) data of one block.
    fn block(&self, bid: u64) -> Result<Vec<u8>> {
        let &(ib, cb) = self
            .blocks
            .get(&(bid & !1))
            .ok_or_else(|| Error::Corrupt(format!("block {bid:#x} not found")))?;
        let mut data = vec![0u8; cb as usize];
        self.file.read_exact_at(&mut data, ib)?;
        let internal = bid & 2 != 0;
        if !internal {
            match self.crypt {
                1 => crypt::decode(&mut data),
                2 => crypt::decode_cyclic(&mut data, bid as u32),
                _ => {}
            }
        }
        Ok(data)
    }

    /// The data blocks of a data tree, in order.
    pub fn blocks(&self, bid: u64) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        self.collect(bid, &mut out, 0)?;
        Ok(out)
    }

    fn collect(&self, bid: u64, out: &mut Vec<Vec<u8>>, depth: usize) -> Result<()> {
        let data = self.block(bid)?;
        if bid & 2 == 0 {
            out.push(data);
            return Ok(());
        }
        if depth > 2 || data.first() != Some(&1) {
            return Err(Error::Corrupt(format!("block {bid:#x}: bad XBLOCK")));
        }
        let n = u16_at(&data, 2) as usize;
        let w = if self.unicode { 8 } else { 4 };
        for i in 0..n {
            let child = if self.unicode {
                u64_at(&data, 8 + i * w)
            } else {
                u64::from(u32_at(&data, 8 + i * w))
            };
            self.collect(child, out, depth + 1)?;
        }
        Ok(())
    }

    /// A whole data tree as one buffer.
    pub fn stream(&self, bid: u64) -> Result<Vec<u8>> {
        Ok(self.blocks(bid)?.concat())
    }

    /// The subnode tree rooted at `bid` (empty when `bid` is 0).
    pub fn subnodes(&self, bid: u64) -> Result<HashMap<u32, SubNode>> {
        let mut out = HashMap::new();
        if bid != 0 {
            self.sub_walk(bid, &mut out, 0)?;
        }
        Ok(out)
    }

    fn sub_walk(&self, bid: u64, out: &mut HashMap<u32, SubNode>, depth: usize) -> Result<()> {
        if depth > 4 {
            return Err(Error::Corrupt("subnode tree too deep".into()));
        }
        let b = self.block(bid)?;
        if b.first() != Some(&2) {
            return Err(Error::Corrupt(format!(
                "block {bid:#x}: not a subnode block"
            )));
        }
        let level = b.get(1).copied().unwrap_or(0);
        let n = u16_at(&b, 2) as usize;
        let (base, w) = if self.unicode { (8, 8) } else { (4, 4) };
        let get = |at: usize| {
            if self.unicode {
                u64_at(&b, at)
            } else {
                u64::from(u32_at(&b, at))
            }
        };
        for i in 0..n {
            if level == 0 {
                let at = base + i * 3 * w;
                out.insert(
                    get(at) as u32,
                    SubNode {
                        bid_data: get(at + w),
                        bid_sub: get(at + 2 * w),
                    },
                );
            } else {
                let at = base + i * 2 * w;
                self.sub_walk(get(at + w), out, depth + 1)?;
            }
        }
        Ok(())
    }
}
