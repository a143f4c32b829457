//! The [MS-PST] §5.3 CRC: reflected CRC-32 (0xEDB88320) with initial value 0 and no final XOR.

/// CRC of `data` as stored in header, page and block trailers.
pub fn crc(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(0xFFFF_FFFF);
    h.update(data);
    !h.finalize()
}

/// Block / page signature of [MS-PST] §5.5 from the file offset and the block or page id.
pub fn signature(ib: u64, bid: u64) -> u16 {
    let k = (ib ^ bid) as u32;
    ((k >> 16) as u16) ^ (k as u16)
}
