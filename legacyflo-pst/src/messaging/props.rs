//! Property helpers: FILETIME, subject prefix, entry ids, search keys.

/// Seconds between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF: i64 = 11_644_473_600;

/// Unix seconds to FILETIME (100 ns since 1601).
pub fn filetime(unix: i64) -> i64 {
    unix.saturating_add(EPOCH_DIFF).saturating_mul(10_000_000)
}

/// FILETIME to unix seconds.
pub fn unix_from_filetime(ft: i64) -> i64 {
    ft / 10_000_000 - EPOCH_DIFF
}

/// Splits a subject into (prefix incl. ": ", normalized subject) per [MS-OXCMAIL]: a prefix
/// is 1–3 characters without spaces or digits followed by ": ".
pub fn split_subject(s: &str) -> (&str, &str) {
    if let Some(pos) = s.find(": ") {
        let head = &s[..pos];
        let n = head.chars().count();
        if (1..=3).contains(&n) && head.chars().all(|c| c.is_alphabetic()) {
            return (&s[..pos + 2], &s[pos + 2..]);
        }
    }
    ("", s)
}

/// PidTagSubject as Outlook stores it: `\x01`, char(prefix length + 1), subject.
pub fn encoded_subject(s: &str) -> String {
    let (prefix, _) = split_subject(s);
    let n = prefix.chars().count() as u32 + 1;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\u{1}');
    out.push(char::from_u32(n).unwrap_or('\u{1}'));
    out.push_str(s);
    out
}

/// Strips the `\x01 n` marker from a stored subject.
pub fn decode_subject(s: &str) -> String {
    let mut c = s.chars();
    if c.next() == Some('\u{1}') {
        c.next();
        return c.as_str().to_string();
    }
    s.to_string()
}

/// MAPI one-off entry id of an SMTP recipient ([MS-OXCDATA] §2.2.5.1), Unicode strings.
pub fn one_off_entry_id(name: &str, address: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + 2 * (name.len() + address.len() + 8));
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&[
        0x81, 0x2B, 0x1F, 0xA4, 0xBE, 0xA3, 0x10, 0x19, 0x9D, 0x6E, 0x00, 0xDD, 0x01, 0x0F, 0x54,
        0x02,
    ]);
    v.extend_from_slice(&[0, 0, 0x01, 0x90]);
    for s in [name, "SMTP", address] {
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v.extend_from_slice(&[0, 0]);
    }
    v
}

/// PidTagSearchKey of an SMTP address: `SMTP:ADDRESS\0` uppercased (ASCII bytes).
pub fn address_search_key(address: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(address.len() + 6);
    v.extend_from_slice(b"SMTP:");
    if address.is_ascii() {
        v.extend(address.bytes().map(|b| b.to_ascii_uppercase()));
    } else {
        v.extend_from_slice(address.to_uppercase().as_bytes());
    }
    v.push(0);
    v
}

/// A 16-byte key derived from `data`: two multiply-rotate passes with different seeds
/// over its 8-byte words (the tail zero-padded, the length mixed in), so that a message's
/// search key costs a few hundred cycles, not a multiply chain per byte.
pub fn hash16(data: &[u8]) -> [u8; 16] {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    let mut a: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    let mut words = data.chunks_exact(8);
    let mut mix = |w: u64| {
        a = (a ^ w).wrapping_mul(K1).rotate_left(31);
        b = (b ^ w.rotate_left(17)).wrapping_mul(K2).rotate_left(29);
    };
    for w in &mut words {
        let mut x = [0u8; 8];
        x.copy_from_slice(w);
        mix(u64::from_le_bytes(x));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut x = [0u8; 8];
        x[..rest.len()].copy_from_slice(rest);
        mix(u64::from_le_bytes(x));
    }
    // Final avalanche of both halves.
    let fin = |mut h: u64| {
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&fin(a).to_le_bytes());
    out[8..].copy_from_slice(&fin(b ^ a.rotate_left(7)).to_le_bytes());
    out
}

/// Store entry id ([MS-PST] §2.4.3.2): 4 zero bytes, provider record key, NID.
pub fn entry_id(record_key: &[u8; 16], nid: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(record_key);
    v.extend_from_slice(&nid.to_le_bytes());
    v
}
