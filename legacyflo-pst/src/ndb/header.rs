//! The Unicode HEADER ([MS-PST] §2.2.2.6) and its ROOT.

use super::alloc::NdbTotals;
use super::crc::crc;

/// Header size of a Unicode PST.
pub const HEADER_SIZE: usize = 564;

/// Serialises a Unicode header (wVer 23) with both CRCs.
pub fn unicode_header(t: &NdbTotals, crypt_method: u8, rgnid: &[u32; 32], unique: u32) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_SIZE];
    h[0..4].copy_from_slice(b"!BDN");
    h[8..10].copy_from_slice(b"SM");
    h[10..12].copy_from_slice(&23u16.to_le_bytes());
    h[12..14].copy_from_slice(&19u16.to_le_bytes());
    h[14] = 1;
    h[15] = 1;
    h[32..40].copy_from_slice(&t.dlist_bid.to_le_bytes());
    h[40..44].copy_from_slice(&unique.to_le_bytes());
    for (i, v) in rgnid.iter().enumerate() {
        h[44 + 4 * i..48 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    let r = 180;
    h[r + 4..r + 12].copy_from_slice(&t.eof.to_le_bytes());
    h[r + 12..r + 20].copy_from_slice(&t.amap_last.to_le_bytes());
    h[r + 20..r + 28].copy_from_slice(&t.amap_free.to_le_bytes());
    h[r + 36..r + 44].copy_from_slice(&t.nbt_root.0.to_le_bytes());
    h[r + 44..r + 52].copy_from_slice(&t.nbt_root.1.to_le_bytes());
    h[r + 52..r + 60].copy_from_slice(&t.bbt_root.0.to_le_bytes());
    h[r + 60..r + 68].copy_from_slice(&t.bbt_root.1.to_le_bytes());
    h[r + 68] = 0x02;
    h[256..512].fill(0xFF);
    h[512] = 0x80;
    h[513] = crypt_method;
    h[516..524].copy_from_slice(&t.next_bid.to_le_bytes());
    let partial = crc(&h[8..8 + 471]);
    h[4..8].copy_from_slice(&partial.to_le_bytes());
    let full = crc(&h[8..8 + 516]);
    h[524..528].copy_from_slice(&full.to_le_bytes());
    h
}
