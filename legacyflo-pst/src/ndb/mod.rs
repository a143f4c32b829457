//! Node database layer ([MS-PST] §2.2): header, pages, B-trees, blocks.

pub mod alloc;
pub mod btree;
pub mod crc;
pub mod crypt;
pub mod header;
pub mod out;
pub mod page_buf;
#[cfg(target_arch = "x86_64")]
pub mod simd;

/// Size of a page.
pub const PAGE: usize = 512;
/// Bytes covered by one AMap page (the AMap page itself included).
pub const AMAP_RANGE: u64 = 253_952;
/// Offset of the first AMap page.
pub const AMAP_FIRST: u64 = 0x4400;
/// Largest block (data + trailer).
pub const MAX_BLOCK: usize = 8192;
/// Largest data payload of a block.
pub const MAX_BLOCK_DATA: usize = 8176;
/// Block ids an XBLOCK / XXBLOCK can hold.
pub const XBLOCK_FANOUT: usize = 1021;

/// How block data is encoded on disk (`bCryptMethod`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// NDB_CRYPT_PERMUTE, Outlook's default "compressible encryption".
    #[default]
    Permute,
    /// NDB_CRYPT_NONE: data stored as is.
    None,
}

impl Encoding {
    /// The header byte.
    pub fn crypt_method(self) -> u8 {
        match self {
            Encoding::Permute => 1,
            Encoding::None => 0,
        }
    }
}

/// A node in the node B-tree.
#[derive(Clone, Copy, Debug)]
pub struct NbtEntry {
    /// Node id.
    pub nid: u32,
    /// Data block or tree root (0 = empty node).
    pub bid_data: u64,
    /// Subnode tree root (0 = none).
    pub bid_sub: u64,
    /// Parent node (folders, messages) or 0.
    pub parent: u32,
}

/// A subnode entry (SLENTRY).
#[derive(Clone, Copy, Debug)]
pub struct SubEntry {
    /// Subnode id (local to the parent node).
    pub nid: u32,
    /// Data block or tree.
    pub bid_data: u64,
    /// Nested subnode tree (0 = none).
    pub bid_sub: u64,
}

/// Rounds `n` up to a multiple of `a` (a power of two).
pub fn align_up(n: u64, a: u64) -> u64 {
    (n + a - 1) & !(a - 1)
}
