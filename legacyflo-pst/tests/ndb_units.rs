//! Format primitives checked against files Outlook wrote.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use legacyflo_pst::ndb::{crc, crypt};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/pst/outlook-pst-rs__Empty.pst"
);

#[test]
fn header_crcs_match_outlook() {
    let h = std::fs::read(SAMPLE).unwrap();
    let partial = u32::from_le_bytes(h[4..8].try_into().unwrap());
    let full = u32::from_le_bytes(h[524..528].try_into().unwrap());
    assert_eq!(crc::crc(&h[8..8 + 471]), partial);
    assert_eq!(crc::crc(&h[8..8 + 516]), full);
}

#[test]
fn page_trailers_match_outlook() {
    // The first AMap page (0x4400) and the NBT root page carry CRCs over their 496 bytes.
    let f = std::fs::read(SAMPLE).unwrap();
    let nbt_ib = u64::from_le_bytes(f[180 + 44..180 + 52].try_into().unwrap()) as usize;
    for ib in [0x4400usize, nbt_ib] {
        let page = &f[ib..ib + 512];
        let stored = u32::from_le_bytes(page[500..504].try_into().unwrap());
        assert_eq!(crc::crc(&page[..496]), stored, "page at {ib:#x}");
        let bid = u64::from_le_bytes(page[504..512].try_into().unwrap());
        let sig = u16::from_le_bytes(page[498..500].try_into().unwrap());
        if page[496] != 0x84 {
            assert_eq!(crc::signature(ib as u64, bid), sig, "signature at {ib:#x}");
        }
    }
}

#[test]
fn permute_round_trips_and_is_a_permutation() {
    let all: Vec<u8> = (0..=255).collect();
    let mut x = all.clone();
    crypt::encode(&mut x);
    let mut sorted = x.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, all);
    assert_ne!(x, all);
    crypt::decode(&mut x);
    assert_eq!(x, all);
}

#[test]
fn encode_into_matches_in_place_encoding_at_every_length() {
    let src: Vec<u8> = (0..=255u8).rev().cycle().take(300).collect();
    for n in 0..40 {
        let mut want = src[..n].to_vec();
        crypt::encode(&mut want);
        let mut dst = vec![0x55u8; n + 3];
        crypt::encode_into(&mut dst, &src[..n]);
        assert_eq!(&dst[..n], &want[..], "{n}");
        assert_eq!(
            &dst[n..],
            &[0x55; 3],
            "{n}: bytes past the source were touched"
        );
    }
    let mut all = vec![0u8; 256];
    crypt::encode_into(&mut all, &src[..256]);
    let mut want = src[..256].to_vec();
    crypt::encode(&mut want);
    assert_eq!(all, want);
}

#[test]
fn utf16_matches_std_on_mixed_text() {
    for s in [
        "",
        "plain ascii",
        "Grüße aus Köln",
        "日本語のテスト",
        "emoji 😀 and 𝄞 clef",
        "mixed ä😀b\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}",
    ] {
        let want: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(legacyflo_pst::ltp::utf16(s), want, "{s:?}");
        assert_eq!(legacyflo_pst::ltp::utf16_len(s), want.len(), "{s:?}");
    }
}

#[test]
fn utf16_into_fills_small_buffers_without_splitting_characters() {
    let s = "a long run of plain ASCII text ü then more ASCII text 😀𝄞 end 日本語 and ASCII again";
    let want: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    for (start, _) in s.char_indices() {
        let tail = &s[start..];
        assert_eq!(
            legacyflo_pst::ltp::utf16_len(tail),
            tail.encode_utf16().count() * 2,
            "{tail:?}"
        );
        assert_eq!(
            legacyflo_pst::ltp::utf16(tail),
            tail.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
            "{tail:?}"
        );
    }
    for size in 4..=40 {
        let mut got = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let mut buf = vec![0xEEu8; size];
            let (used, written) = legacyflo_pst::ltp::utf16_into(rest, &mut buf);
            assert!(used > 0 && written <= size, "size {size}: no progress");
            assert!(
                rest.is_char_boundary(used),
                "size {size}: split a character"
            );
            let piece: Vec<u8> = rest[..used]
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            assert_eq!(&buf[..written], &piece[..], "size {size}");
            // It stops only when the next character does not fit.
            if let Some(c) = rest[used..].chars().next() {
                assert!(
                    written + c.len_utf16() * 2 > size,
                    "size {size}: stopped early"
                );
            }
            got.extend_from_slice(&buf[..written]);
            rest = &rest[used..];
        }
        assert_eq!(got, want, "size {size}");
    }
}

#[test]
fn crc_is_the_reflected_table_crc_with_initial_zero() {
    // Bitwise reference of [MS-PST] §5.3: reflected 0xEDB88320, initial 0, no final xor.
    let reference = common::ndb_map::crc;
    let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
    for n in [0, 1, 3, 15, 16, 17, 496, 516, 8176, 70_000] {
        assert_eq!(crc::crc(&data[..n]), reference(&data[..n]), "{n}");
    }
}

/// Long ASCII runs (the 32-byte widening path) between non-ASCII characters, converted
/// whole and in pieces of every size around the 64-byte output of one widening step.
#[test]
fn utf16_into_long_ascii_runs_match_std() {
    let mut s = String::new();
    for n in [0usize, 1, 31, 32, 33, 63, 64, 65, 100, 200] {
        s.extend(std::iter::repeat_n('x', n));
        s.push('ü');
        s.extend((0..n).map(|i| char::from(b'a' + (i % 26) as u8)));
        s.push('😀');
        s.push('\u{7f}');
    }
    let want: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(legacyflo_pst::ltp::utf16(&s), want);
    for (start, _) in s.char_indices().take(80) {
        let tail = &s[start..];
        let want: Vec<u8> = tail.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(legacyflo_pst::ltp::utf16(tail), want, "start {start}");
    }
    for size in (4..=140).chain([8176]) {
        let mut got = Vec::new();
        let mut rest = s.as_str();
        while !rest.is_empty() {
            let mut buf = vec![0xEEu8; size];
            let (used, written) = legacyflo_pst::ltp::utf16_into(rest, &mut buf);
            assert!(used > 0 && written <= size, "size {size}: no progress");
            if let Some(c) = rest[used..].chars().next() {
                assert!(written + c.len_utf16() * 2 > size, "size {size}: early");
            }
            got.extend_from_slice(&buf[..written]);
            rest = &rest[used..];
        }
        assert_eq!(got, want, "size {size}");
    }
}

/// The widening that encodes as it goes writes exactly the permute encoding of what the
/// plain one writes, consumes the same, and leaves the bytes past what it wrote alone: long
/// ASCII runs (the fused 32-byte path), non-ASCII characters between them, pieces of every
/// size around the 64-byte output of one step.
#[test]
fn utf16_into_encoded_is_the_encoding_of_utf16_into() {
    let mut s = String::new();
    for n in [0usize, 1, 31, 32, 33, 63, 64, 65, 100, 200, 4000] {
        s.extend((0..n).map(|i| char::from(b' ' + (i % 95) as u8)));
        s.push('ü');
        s.push('\0');
        s.push('😀');
        s.push('日');
    }
    for size in (4..=140).chain([1000, 8176, 20_000]) {
        let mut rest = s.as_str();
        while !rest.is_empty() {
            let mut plain = vec![0xEEu8; size];
            let mut enc = vec![0xEEu8; size];
            let (u1, w1) = legacyflo_pst::ltp::utf16_into(rest, &mut plain);
            let (u2, w2) = legacyflo_pst::ltp::utf16_into_encoded(rest, &mut enc);
            assert_eq!((u1, w1), (u2, w2), "size {size}");
            legacyflo_pst::ndb::crypt::encode(&mut plain[..w1]);
            assert_eq!(plain, enc, "size {size}");
            rest = &rest[u1..];
        }
    }
}

/// The UTF-16 length counted 32 bytes at a time (AVX2) and 8 at a time agrees with the
/// standard library's encoder for every start and end around the block edges, with 2-, 3-
/// and 4-byte characters straddling them.
#[test]
fn utf16_len_of_long_mixed_strings_matches_std() {
    let mut s = String::new();
    for i in 0..400usize {
        match i % 7 {
            0 => s.push('ä'),
            1 => s.push('😀'),
            2 => s.push('日'),
            3 => s.push_str("plain ascii text run "),
            4 => s.push('\u{10FFFF}'),
            5 => s.push('\u{7FF}'),
            _ => s.push('x'),
        }
    }
    let starts: Vec<usize> = s.char_indices().map(|(i, _)| i).take(70).collect();
    for &a in &starts {
        for (b, _) in s.char_indices().skip(900).step_by(13).take(40) {
            if b <= a {
                continue;
            }
            let t = &s[a..b];
            assert_eq!(
                legacyflo_pst::ltp::utf16_len(t),
                t.encode_utf16().count() * 2,
                "{a}..{b}"
            );
        }
    }
    let t = s.as_str();
    assert_eq!(
        legacyflo_pst::ltp::utf16_len(t),
        t.encode_utf16().count() * 2
    );
}
