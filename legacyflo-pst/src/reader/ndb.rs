//! Reading side of the NDB layer: header, B-trees, blocks, data trees, subnode trees.
//!
//! Nothing read from the file is used unchecked. The header's CRCs; every node and block
//! B-tree page's trailer (type, signature, CRC, page id) and entries (entry size, count,
//! level, key order, each page reached once); every block's trailer (size, signature,
//! CRC, block id, [MS-PST] §2.2.2.8.1); the types, levels and counts of XBLOCKs,
//! XXBLOCKs, SLBLOCKs and SIBLOCKs. Offsets, sizes and counts read from the file are
//! bounded by the file's size before anything is allocated from them.
//!
//! A damaged B-tree page below the root loses only the key range it covers: the nodes (or
//! blocks) of that range read as [`Error::Damaged`] naming the page, and the rest of the
//! file is read. A damaged header or root page makes the file unreadable.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result, io_at};
use crate::ndb::{PAGE, crc, crypt};

/// An NBT entry.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub bid_data: u64,
    pub bid_sub: u64,
    pub parent: u32,
}

/// A subnode entry.
#[derive(Clone, Copy, Debug)]
pub struct SubNode {
    pub bid_data: u64,
    pub bid_sub: u64,
}

/// Where the file's bytes come from.
enum Backing {
    File(File),
    Bytes(Vec<u8>),
}

/// A key range of a B-tree lost with a damaged page: `lo <= key < hi`.
struct Lost {
    lo: u64,
    hi: u64,
    /// The damaged page's error.
    page: Error,
}

impl Lost {
    fn covers(&self, key: u64) -> bool {
        self.lo <= key && key < self.hi
    }

    /// The error of a lookup of `key` (a `kind` id) that fell into this range.
    fn error(&self, kind: &str, key: u64) -> Error {
        match &self.page {
            Error::Damaged {
                what,
                id,
                offset,
                problem,
            } => Error::Damaged {
                what,
                id: *id,
                offset: *offset,
                problem: format!("{problem} (it indexes {kind} {key:#x})"),
            },
            other => Error::Corrupt(format!("{kind} {key:#x}: {other}")),
        }
    }
}

/// Sizes of the on-disk structures, which differ between ANSI and Unicode files.
#[derive(Clone, Copy)]
struct Layout {
    unicode: bool,
}

impl Layout {
    /// Bytes of a BID / IB.
    fn id(self) -> usize {
        if self.unicode { 8 } else { 4 }
    }
    /// Offset of the PAGETRAILER (= bytes covered by the page CRC).
    fn page_trailer(self) -> usize {
        if self.unicode { 496 } else { 500 }
    }
    /// Offset of a BTPAGE's cEnt (= bytes of entries it can hold).
    fn bt_meta(self) -> usize {
        if self.unicode { 488 } else { 496 }
    }
    /// Bytes of a BLOCKTRAILER.
    fn block_trailer(self) -> usize {
        if self.unicode { 16 } else { 12 }
    }
    /// Largest data payload of a block.
    fn max_block_data(self) -> usize {
        8192 - self.block_trailer()
    }
    /// BTENTRY size (intermediate B-tree pages).
    fn bt_entry(self) -> usize {
        3 * self.id()
    }
    /// NBTENTRY size.
    fn nbt_entry(self) -> usize {
        if self.unicode { 32 } else { 16 }
    }
    /// BBTENTRY size.
    fn bbt_entry(self) -> usize {
        if self.unicode { 24 } else { 12 }
    }
    /// A BID or IB at `at`.
    fn id_at(self, b: &[u8], at: usize) -> u64 {
        if self.unicode {
            u64_at(b, at)
        } else {
            u64::from(u32_at(b, at))
        }
    }
}

/// Which B-tree a walk reads.
struct Tree {
    what: &'static str,
    ptype: u8,
    leaf_size: usize,
}

/// State of one B-tree walk: leaf entries (flat), lost ranges, pages seen.
struct Walk<'t> {
    tree: &'t Tree,
    leaves: Vec<u8>,
    lost: Vec<Lost>,
    seen: HashSet<u64>,
}

/// How many levels a B-tree may have: 20 entries per page, so 8 levels index far more
/// entries than a file can hold.
const MAX_BTREE_LEVEL: u8 = 8;

/// How the file is checked while it is read.
#[derive(Clone, Copy, Debug)]
pub struct Checks {
    /// Verify the header, page and block CRCs.
    pub crc: bool,
}

/// The node database of an open file.
pub struct Ndb {
    src: Backing,
    len: u64,
    layout: Layout,
    pub unicode: bool,
    crypt: u8,
    checks: Checks,
    nodes: HashMap<u32, Node>,
    blocks: HashMap<u64, (u64, u16)>,
    lost_nodes: Vec<Lost>,
    lost_blocks: Vec<Lost>,
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

fn damaged(what: &'static str, id: u64, offset: u64, problem: impl Into<String>) -> Error {
    Error::Damaged {
        what,
        id,
        offset,
        problem: problem.into(),
    }
}

fn crc_problem(stored: u32, computed: u32) -> String {
    format!("CRC {stored:#010x} stored, {computed:#010x} computed")
}

impl Ndb {
    /// Opens the file at `path`.
    pub fn open(path: &Path, checks: Checks) -> Result<Ndb> {
        let file = File::open(path).map_err(io_at(path))?;
        let len = file.metadata().map_err(io_at(path))?.len();
        Ndb::load(Backing::File(file), len, checks).map_err(|e| crate::error::with_path(e, path))
    }

    /// A file held in memory.
    pub fn from_bytes(bytes: Vec<u8>, checks: Checks) -> Result<Ndb> {
        let len = bytes.len() as u64;
        Ndb::load(Backing::Bytes(bytes), len, checks)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        match &self.src {
            Backing::File(f) => Ok(f.read_exact_at(buf, at)?),
            Backing::Bytes(b) => {
                let src = usize::try_from(at)
                    .ok()
                    .and_then(|s| b.get(s..s.checked_add(buf.len())?))
                    .ok_or_else(|| {
                        Error::from(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
                    })?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }

    fn load(src: Backing, len: u64, checks: Checks) -> Result<Ndb> {
        let mut ndb = Ndb {
            src,
            len,
            layout: Layout { unicode: true },
            unicode: true,
            crypt: 0,
            checks,
            nodes: HashMap::new(),
            blocks: HashMap::new(),
            lost_nodes: Vec::new(),
            lost_blocks: Vec::new(),
        };
        // The Unicode header is 564 bytes, the ANSI one 512.
        let mut h = [0u8; 564];
        let head = h.len().min(usize::try_from(len).unwrap_or(h.len()));
        if head < 512 {
            return Err(Error::NotPst(format!(
                "{len} bytes: too short for a header"
            )));
        }
        ndb.read_at(&mut h[..head], 0)?;
        if &h[0..4] != b"!BDN" {
            return Err(Error::NotPst("bad magic".into()));
        }
        let unicode = match u16_at(&h, 10) {
            14 | 15 => false,
            23 if head == h.len() => true,
            v => return Err(Error::NotPst(format!("unsupported wVer {v}"))),
        };
        ndb.layout = Layout { unicode };
        ndb.unicode = unicode;
        if checks.crc {
            // dwCRCPartial covers the 471 bytes from wMagicClient; the Unicode dwCRCFull the 516.
            let mut sums = vec![("dwCRCPartial", u32_at(&h, 4), crc::crc(&h[8..479]))];
            if unicode {
                sums.push(("dwCRCFull", u32_at(&h, 524), crc::crc(&h[8..524])));
            }
            for (name, stored, computed) in sums {
                if stored != computed {
                    return Err(damaged(
                        "header",
                        0,
                        0,
                        format!("{name}: {}", crc_problem(stored, computed)),
                    ));
                }
            }
        }
        // ROOT: Unicode at 180 (BREFNBT at +36, BREFBBT at +52), ANSI at 164 (+20, +28).
        let (crypt, nbt, bbt) = if unicode {
            (
                h[513],
                (u64_at(&h, 216), u64_at(&h, 224)),
                (u64_at(&h, 232), u64_at(&h, 240)),
            )
        } else {
            (
                h[461],
                (u64::from(u32_at(&h, 184)), u64::from(u32_at(&h, 188))),
                (u64::from(u32_at(&h, 192)), u64::from(u32_at(&h, 196))),
            )
        };
        if crypt > 2 {
            return Err(damaged(
                "header",
                0,
                0,
                format!("unknown encoding bCryptMethod {crypt:#x}"),
            ));
        }
        ndb.crypt = crypt;
        let layout = ndb.layout;
        let nbt_tree = Tree {
            what: "node B-tree page",
            ptype: 0x81,
            leaf_size: layout.nbt_entry(),
        };
        let leaves = ndb.load_tree(&nbt_tree, nbt, true)?;
        for e in leaves.chunks_exact(layout.nbt_entry()) {
            let w = layout.id();
            let nid = layout.id_at(e, 0) as u32;
            ndb.nodes.insert(
                nid,
                Node {
                    bid_data: layout.id_at(e, w),
                    bid_sub: layout.id_at(e, 2 * w),
                    parent: u32_at(e, 3 * w),
                },
            );
        }
        let bbt_tree = Tree {
            what: "block B-tree page",
            ptype: 0x80,
            leaf_size: layout.bbt_entry(),
        };
        let leaves = ndb.load_tree(&bbt_tree, bbt, false)?;
        for e in leaves.chunks_exact(layout.bbt_entry()) {
            let w = layout.id();
            ndb.blocks.insert(
                layout.id_at(e, 0) & !1,
                (layout.id_at(e, w), u16_at(e, 2 * w)),
            );
        }
        Ok(ndb)
    }

    /// Walks a whole B-tree from its root `(bid, ib)`; returns its leaf entries and
    /// records the ranges of damaged pages below the root.
    fn load_tree(&mut self, tree: &Tree, root: (u64, u64), nodes: bool) -> Result<Vec<u8>> {
        let mut walk = Walk {
            tree,
            leaves: Vec::new(),
            lost: Vec::new(),
            seen: HashSet::new(),
        };
        walk.seen.insert(root.1);
        // The root page must be sound: without it nothing of the tree can be trusted.
        self.walk_page(&mut walk, root.0, root.1, None, 0, u64::MAX)?;
        for l in &walk.lost {
            tracing::warn!(message = "damaged PST B-tree page; its range is lost", error = %l.page);
        }
        if nodes {
            self.lost_nodes = walk.lost;
        } else {
            self.lost_blocks = walk.lost;
        }
        Ok(walk.leaves)
    }

    /// Reads and checks one B-tree page (`level` = the level its parent implies), appends
    /// its leaf entries, and walks its children. An error is about this page itself;
    /// damaged children are recorded in `walk.lost`.
    fn walk_page(
        &self,
        walk: &mut Walk<'_>,
        bid: u64,
        ib: u64,
        level: Option<u8>,
        lo: u64,
        hi: u64,
    ) -> Result<()> {
        let what = walk.tree.what;
        let p = self.page(what, walk.tree.ptype, bid, ib)?;
        let l = self.layout;
        let meta = l.bt_meta();
        let (c_ent, c_ent_max, cb_ent, c_level) = (
            usize::from(p[meta]),
            usize::from(p[meta + 1]),
            usize::from(p[meta + 2]),
            p[meta + 3],
        );
        let bad = |problem: String| damaged(what, bid, ib, problem);
        if let Some(want) = level
            && c_level != want
        {
            return Err(bad(format!("level {c_level}, its parent implies {want}")));
        }
        if c_level > MAX_BTREE_LEVEL {
            return Err(bad(format!("level {c_level} is too deep")));
        }
        let want_cb = if c_level == 0 {
            walk.tree.leaf_size
        } else {
            l.bt_entry()
        };
        if cb_ent != want_cb {
            return Err(bad(format!("entry size {cb_ent}, expected {want_cb}")));
        }
        if c_ent > c_ent_max || c_ent * cb_ent > meta {
            return Err(bad(format!(
                "{c_ent} entries (at most {c_ent_max}) of {cb_ent} bytes do not fit"
            )));
        }
        let key = |i: usize| l.id_at(&p, i * cb_ent);
        for i in 0..c_ent {
            let k = key(i);
            if k < lo || k >= hi || (i > 0 && k <= key(i - 1)) {
                return Err(bad(format!(
                    "key {k:#x} of entry {i} is out of order (range {lo:#x}..{hi:#x})"
                )));
            }
        }
        let Some(entries) = p.get(..c_ent * cb_ent) else {
            return Err(bad("entries out of the page".into()));
        };
        if c_level == 0 {
            walk.leaves.extend_from_slice(entries);
            return Ok(());
        }
        let w = l.id();
        for i in 0..c_ent {
            let e = &entries[i * cb_ent..(i + 1) * cb_ent];
            let (child_lo, child_hi) = (key(i), if i + 1 < c_ent { key(i + 1) } else { hi });
            let (child_bid, child_ib) = (l.id_at(e, w), l.id_at(e, 2 * w));
            let result = if walk.seen.insert(child_ib) {
                self.walk_page(
                    walk,
                    child_bid,
                    child_ib,
                    Some(c_level - 1),
                    child_lo,
                    child_hi,
                )
            } else {
                Err(damaged(
                    what,
                    child_bid,
                    child_ib,
                    format!("referenced a second time, by page {bid:#x}"),
                ))
            };
            if let Err(page) = result {
                walk.lost.push(Lost {
                    lo: child_lo,
                    hi: child_hi,
                    page,
                });
            }
        }
        Ok(())
    }

    /// Reads the page `bid` at `ib` and checks its trailer.
    fn page(&self, what: &'static str, ptype: u8, bid: u64, ib: u64) -> Result<[u8; PAGE]> {
        let bad = |problem: String| damaged(what, bid, ib, problem);
        if !ib.is_multiple_of(PAGE as u64)
            || ib.checked_add(PAGE as u64).is_none_or(|e| e > self.len)
        {
            return Err(bad(format!(
                "offset is not a page of the file ({} bytes)",
                self.len
            )));
        }
        let mut p = [0u8; PAGE];
        self.read_at(&mut p, ib)?;
        let l = self.layout;
        let t = l.page_trailer();
        let (sig, stored_crc, trailer_bid) = if l.unicode {
            (u16_at(&p, t + 2), u32_at(&p, t + 4), u64_at(&p, t + 8))
        } else {
            (
                u16_at(&p, t + 2),
                u32_at(&p, t + 8),
                u64::from(u32_at(&p, t + 4)),
            )
        };
        if p[t] != ptype || p[t + 1] != ptype {
            return Err(bad(format!(
                "page type {:#x}/{:#x}, expected {ptype:#x}",
                p[t],
                p[t + 1]
            )));
        }
        if self.checks.crc {
            let computed = crc::crc(&p[..t]);
            if stored_crc != computed {
                return Err(bad(crc_problem(stored_crc, computed)));
            }
        }
        let want_sig = crc::signature(ib, bid);
        if sig != want_sig {
            return Err(bad(format!(
                "signature {sig:#06x} stored, {want_sig:#06x} expected"
            )));
        }
        if trailer_bid != bid {
            return Err(bad(format!("its trailer names page {trailer_bid:#x}")));
        }
        Ok(p)
    }

    /// The node `nid`: `None` when the node B-tree has no such node, an error when it
    /// would be indexed by a damaged page.
    pub fn node(&self, nid: u32) -> Result<Option<Node>> {
        if let Some(n) = self.nodes.get(&nid) {
            return Ok(Some(*n));
        }
        match self.lost_nodes.iter().find(|l| l.covers(u64::from(nid))) {
            Some(l) => Err(l.error("node", u64::from(nid))),
            None => Ok(None),
        }
    }

    /// The nodes of type `nid_type` whose parent is `parent`, in NID order.
    pub fn children(&self, parent: u32, nid_type: u32) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .nodes
            .iter()
            .filter(|(nid, n)| n.parent == parent && *nid & 0x1F == nid_type && **nid != parent)
            .map(|(nid, _)| *nid)
            .collect();
        v.sort_unstable();
        v
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The first damaged node B-tree page, if any (its range of nodes is lost).
    pub fn node_damage(&self) -> Option<&Error> {
        self.lost_nodes.first().map(|l| &l.page)
    }

    /// The file offset of block `bid` (0 when unknown), for error messages.
    fn offset_of(&self, bid: u64) -> u64 {
        self.blocks.get(&(bid & !1)).map(|b| b.0).unwrap_or(0)
    }

    /// The data of one block, checked against its trailer and decoded (external blocks).
    fn block(&self, bid: u64) -> Result<Vec<u8>> {
        let key = bid & !1;
        let Some(&(ib, cb)) = self.blocks.get(&key) else {
            return Err(match self.lost_blocks.iter().find(|l| l.covers(key)) {
                Some(l) => l.error("block", key),
                None => Error::Corrupt(format!("block {key:#x} is not in the block B-tree")),
            });
        };
        let l = self.layout;
        let bad = |problem: String| damaged("block", key, ib, problem);
        let cb = usize::from(cb);
        if cb > l.max_block_data() {
            return Err(bad(format!(
                "{cb} bytes, more than a block holds ({})",
                l.max_block_data()
            )));
        }
        let total = (cb + l.block_trailer()).div_ceil(64) * 64;
        if ib.checked_add(total as u64).is_none_or(|e| e > self.len) {
            return Err(bad(format!(
                "{total} bytes from its offset do not fit in the file ({} bytes)",
                self.len
            )));
        }
        let mut data = vec![0u8; total];
        self.read_at(&mut data, ib)?;
        let t = total - l.block_trailer();
        let (trailer_cb, sig, stored_crc, trailer_bid) = if l.unicode {
            (
                usize::from(u16_at(&data, t)),
                u16_at(&data, t + 2),
                u32_at(&data, t + 4),
                u64_at(&data, t + 8),
            )
        } else {
            (
                usize::from(u16_at(&data, t)),
                u16_at(&data, t + 2),
                u32_at(&data, t + 8),
                u64::from(u32_at(&data, t + 4)),
            )
        };
        if trailer_cb != cb {
            return Err(bad(format!(
                "its trailer says {trailer_cb} bytes, the block B-tree {cb}"
            )));
        }
        if trailer_bid & !1 != key {
            return Err(bad(format!("its trailer names block {trailer_bid:#x}")));
        }
        let want_sig = crc::signature(ib, key);
        if sig != want_sig {
            return Err(bad(format!(
                "signature {sig:#06x} stored, {want_sig:#06x} expected"
            )));
        }
        data.truncate(cb);
        if self.checks.crc {
            let computed = crc::crc(&data);
            if stored_crc != computed {
                return Err(bad(crc_problem(stored_crc, computed)));
            }
        }
        if key & 2 == 0 {
            match self.crypt {
                1 => crypt::decode(&mut data),
                2 => crypt::decode_cyclic(&mut data, key as u32),
                _ => {}
            }
        }
        Ok(data)
    }

    /// The data blocks of a data tree, in order.
    pub fn blocks(&self, bid: u64) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut total = 0u64;
        self.collect(bid, None, &mut out, &mut total)?;
        Ok(out)
    }

    /// Appends the data blocks of the tree at `bid` (an XBLOCK / XXBLOCK one level below
    /// `parent`, or any block at the root). `total` bounds the bytes gathered by the file
    /// size: a tree that references blocks over and over cannot grow without bound.
    fn collect(
        &self,
        bid: u64,
        parent: Option<u8>,
        out: &mut Vec<Vec<u8>>,
        total: &mut u64,
    ) -> Result<()> {
        let data = self.block(bid)?;
        if bid & 2 == 0 {
            if parent == Some(2) {
                return Err(damaged(
                    "XXBLOCK",
                    bid,
                    self.offset_of(bid),
                    "an entry is a data block, not an XBLOCK",
                ));
            }
            *total += data.len() as u64;
            if *total > self.len {
                return Err(damaged(
                    "data tree",
                    bid,
                    self.offset_of(bid),
                    format!("holds more than the file's {} bytes", self.len),
                ));
            }
            out.push(data);
            return Ok(());
        }
        let what = if data.get(1) == Some(&2) {
            "XXBLOCK"
        } else {
            "XBLOCK"
        };
        let bad = |problem: String| damaged(what, bid, self.offset_of(bid), problem);
        let level = data.get(1).copied().unwrap_or(0);
        if data.first() != Some(&1) {
            return Err(bad(format!("block type {:?}, expected 1", data.first())));
        }
        let want = parent.map_or(level, |p| p.saturating_sub(1));
        if !(1..=2).contains(&level) || level != want {
            return Err(bad(format!("level {level}, expected {want} (1 or 2)")));
        }
        let n = usize::from(u16_at(&data, 2));
        let lcb_total = u64::from(u32_at(&data, 4));
        let w = self.layout.id();
        if 8 + n * w > data.len() {
            return Err(bad(format!(
                "{n} entries do not fit in {} bytes",
                data.len()
            )));
        }
        let start = *total;
        for i in 0..n {
            let child = self.layout.id_at(&data, 8 + i * w);
            self.collect(child, Some(level), out, total)?;
        }
        if *total - start != lcb_total {
            return Err(bad(format!(
                "its blocks hold {} bytes, its lcbTotal says {lcb_total}",
                *total - start
            )));
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
            self.sub_walk(bid, None, &mut out)?;
        }
        Ok(out)
    }

    /// Adds the entries of the SLBLOCK / SIBLOCK at `bid` (one level below `parent`).
    fn sub_walk(
        &self,
        bid: u64,
        parent: Option<u8>,
        out: &mut HashMap<u32, SubNode>,
    ) -> Result<()> {
        let b = self.block(bid)?;
        let bad = |problem: String| damaged("subnode block", bid, self.offset_of(bid), problem);
        if b.first() != Some(&2) {
            return Err(bad(format!("block type {:?}, expected 2", b.first())));
        }
        let level = b.get(1).copied().unwrap_or(0);
        let want = parent.map_or(level, |p| p.saturating_sub(1));
        if level > 1 || level != want {
            return Err(bad(format!("level {level}, expected {want} (0 or 1)")));
        }
        let n = usize::from(u16_at(&b, 2));
        let l = self.layout;
        let w = l.id();
        let (base, size) = (
            if l.unicode { 8 } else { 4 },
            if level == 0 { 3 * w } else { 2 * w },
        );
        if base + n * size > b.len() {
            return Err(bad(format!("{n} entries do not fit in {} bytes", b.len())));
        }
        for i in 0..n {
            let at = base + i * size;
            if level == 0 {
                out.insert(
                    l.id_at(&b, at) as u32,
                    SubNode {
                        bid_data: l.id_at(&b, at + w),
                        bid_sub: l.id_at(&b, at + 2 * w),
                    },
                );
            } else {
                self.sub_walk(l.id_at(&b, at + w), Some(level), out)?;
            }
        }
        Ok(())
    }
}
