//! AVX2 byte substitution through a 256-entry table (the permute encoding of
//! [`super::crypt`]), 32 bytes per step; used only when the CPU has AVX2
//! (`is_x86_feature_detected!`), the scalar loops of [`super::crypt`] otherwise and for
//! the tail. `crypt`'s tests compare both paths on every byte value at every alignment.
//!
//! The lookup: the low nibble of each byte indexes the 16 rows of the table with
//! `vpshufb` (16 lookups), then bits 4, 5, 6 and 7 pick the right row's result in a
//! tree of 15 `vpblendvb` (each blend looks at bit 7 of its mask byte, so the mask is
//! the input shifted left by 3, 2, 1 and 0). A vector of ASCII bytes needs only the first
//! 8 rows (8 lookups, 7 blends).
//!
//! [`widen_ascii`] widens runs of ASCII to UTF-16LE 32 bytes per step (`vpmovzxbw`) for
//! [`crate::ltp::utf16_into`], whose tests compare it with the standard library's
//! UTF-16 encoder; [`widen_ascii_encoded`] widens and permute-encodes in one pass.
//!
//! This module holds the crate's only `unsafe` code: the unaligned loads and stores of
//! 32-byte vectors and the call into the `avx2` functions once AVX2 is detected.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m256i, _mm_loadu_si128, _mm256_and_si256, _mm256_blendv_epi8, _mm256_broadcastsi128_si256,
    _mm256_castsi256_si128, _mm256_cmpeq_epi8, _mm256_cvtepu8_epi16, _mm256_extracti128_si256,
    _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_permute2x128_si256, _mm256_set1_epi8,
    _mm256_shuffle_epi8, _mm256_slli_epi16, _mm256_storeu_si256, _mm256_unpackhi_epi8,
    _mm256_unpacklo_epi8,
};

/// Substitutes `src` through `table` into `dst` (`dst[i] = table[src[i]]`) for the
/// largest multiple of 32 bytes both slices hold; returns that count (0 without AVX2).
pub fn substitute_into(dst: &mut [u8], src: &[u8], table: &[u8; 256]) -> usize {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return 0;
    }
    // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of the
    // `avx2` target feature the function is compiled with.
    unsafe { substitute_into_avx2(dst, src, table) }
}

/// Substitutes `data` in place through `table` for its largest multiple of 32 bytes;
/// returns that count (0 without AVX2).
pub fn substitute(data: &mut [u8], table: &[u8; 256]) -> usize {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return 0;
    }
    // SAFETY: as in `substitute_into`: AVX2 is available.
    unsafe { substitute_avx2(data, table) }
}

/// Widens the leading 32-byte blocks of `src` that are all ASCII to UTF-16LE in `dst`
/// (64 bytes per block), stopping at the first block with a non-ASCII byte or when
/// either slice runs out; returns the bytes of `src` done (a multiple of 32; 0 without
/// AVX2). `dst` receives twice as many.
pub fn widen_ascii(dst: &mut [u8], src: &[u8]) -> usize {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return 0;
    }
    // SAFETY: as in `substitute_into`: AVX2 is available.
    unsafe { widen_avx2(dst, src, None) }
}

/// For the leading 32-byte blocks of `src`: (bytes done, a multiple of 32; UTF-16 units
/// minus bytes over them): every byte counts one unit, except continuation bytes
/// (`10xxxxxx`, none) and 4-byte leads (`11110xxx`, two). All-ASCII blocks cost one test.
/// (0, 0) without AVX2.
pub fn utf16_units_delta(src: &[u8]) -> (usize, isize) {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return (0, 0);
    }
    // SAFETY: as in `substitute_into`: AVX2 is available.
    unsafe { utf16_units_delta_avx2(src) }
}

#[target_feature(enable = "avx2")]
fn utf16_units_delta_avx2(src: &[u8]) -> (usize, isize) {
    let (mut done, mut delta) = (0usize, 0isize);
    let c0 = _mm256_set1_epi8(0xC0u8 as i8);
    let c80 = _mm256_set1_epi8(0x80u8 as i8);
    let f8 = _mm256_set1_epi8(0xF8u8 as i8);
    let f0 = _mm256_set1_epi8(0xF0u8 as i8);
    for s in src.chunks_exact(32) {
        // SAFETY: `s` is 32 bytes long, what the unaligned 256-bit load reads.
        let x = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
        if _mm256_movemask_epi8(x) != 0 {
            let cont = _mm256_cmpeq_epi8(_mm256_and_si256(x, c0), c80);
            let four = _mm256_cmpeq_epi8(_mm256_and_si256(x, f8), f0);
            delta += _mm256_movemask_epi8(four).count_ones() as isize;
            delta -= _mm256_movemask_epi8(cont).count_ones() as isize;
        }
        done += 32;
    }
    (done, delta)
}

/// Like [`widen_ascii`], but writes the UTF-16LE bytes substituted through `table` (the
/// permute encoding, in the same pass): each ASCII byte `c` becomes `table[c]` followed by
/// `table[0]`.
pub fn widen_ascii_encoded(dst: &mut [u8], src: &[u8], table: &[u8; 256]) -> usize {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return 0;
    }
    // SAFETY: as in `substitute_into`: AVX2 is available.
    unsafe { widen_avx2(dst, src, Some(table)) }
}

/// Both widenings: plain, or through `table` (each ASCII byte `c` becomes `table[c]` and
/// `table[0]`).
#[target_feature(enable = "avx2")]
fn widen_avx2(dst: &mut [u8], src: &[u8], table: Option<&[u8; 256]>) -> usize {
    let mut rows_zero = None;
    if let Some(t) = table {
        rows_zero = Some((rows(t), _mm256_set1_epi8(t[0] as i8)));
    }
    let mut done = 0;
    for (d, s) in dst.chunks_exact_mut(64).zip(src.chunks_exact(32)) {
        // SAFETY: `s` is 32 bytes long, what the unaligned 256-bit load reads.
        let x = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
        if _mm256_movemask_epi8(x) != 0 {
            break;
        }
        let (first, second) = match &rows_zero {
            Some((rows, zero)) => {
                // Interleave with the encoded zero byte; unpack works within 128-bit
                // lanes, so the lanes are put back in order afterwards.
                let y = lookup_ascii(rows, x);
                let lo = _mm256_unpacklo_epi8(y, *zero);
                let hi = _mm256_unpackhi_epi8(y, *zero);
                (
                    _mm256_permute2x128_si256::<0x20>(lo, hi),
                    _mm256_permute2x128_si256::<0x31>(lo, hi),
                )
            }
            None => (
                _mm256_cvtepu8_epi16(_mm256_castsi256_si128(x)),
                _mm256_cvtepu8_epi16(_mm256_extracti128_si256::<1>(x)),
            ),
        };
        let (d0, d1) = d.split_at_mut(32);
        // SAFETY: `d0` and `d1` are 32 writable bytes each, what each store writes.
        unsafe {
            _mm256_storeu_si256(d0.as_mut_ptr().cast(), first);
            _mm256_storeu_si256(d1.as_mut_ptr().cast(), second);
        }
        done += 32;
    }
    done
}

/// The 16 rows of `table` (16 bytes each), each broadcast to both 128-bit lanes
/// (`vpshufb` looks up within a lane).
#[target_feature(enable = "avx2")]
fn rows(table: &[u8; 256]) -> [__m256i; 16] {
    let mut rows = [_mm256_set1_epi8(0); 16];
    for (r, row) in rows.iter_mut().zip(table.chunks_exact(16)) {
        // SAFETY: `row` is 16 bytes long, exactly what the unaligned 128-bit load reads.
        let v = unsafe { _mm_loadu_si128(row.as_ptr().cast()) };
        *r = _mm256_broadcastsi128_si256(v);
    }
    rows
}

/// `table[x]` for each of the 32 bytes of `x`: the upper half of the rows where bit 7
/// is set, the lower half elsewhere.
#[target_feature(enable = "avx2")]
#[inline]
fn lookup(rows: &[__m256i; 16], x: __m256i) -> __m256i {
    let (low, high) = rows.split_at(8);
    _mm256_blendv_epi8(half(low, x), half(high, x), x)
}

/// `table[x]` for 32 bytes that are all below 0x80: only the first 8 rows can match, so
/// half the lookups and blends of [`lookup`] suffice.
#[target_feature(enable = "avx2")]
#[inline]
fn lookup_ascii(rows: &[__m256i; 16], x: __m256i) -> __m256i {
    half(rows.get(..8).unwrap_or(&[]), x)
}

/// The lookup in 8 rows (`rows`, 128 table entries) by bits 0–6 of each byte of `x`.
#[target_feature(enable = "avx2")]
#[inline]
fn half(rows: &[__m256i], x: __m256i) -> __m256i {
    let lo = _mm256_and_si256(x, _mm256_set1_epi8(0x0F));
    // Bit 4 of each byte to bit 7 (a 16-bit shift: bits crossing into the next byte land
    // below bit 7, which vpblendvb ignores), and likewise bits 5 and 6. Plain loops, no
    // closures: closures would not inherit the `avx2` feature and would not be inlined.
    let m4 = _mm256_slli_epi16::<3>(x);
    let m5 = _mm256_slli_epi16::<2>(x);
    let m6 = _mm256_slli_epi16::<1>(x);
    let mut a = [lo; 4];
    for (a, pair) in a.iter_mut().zip(rows.chunks_exact(2)) {
        let even = _mm256_shuffle_epi8(pair[0], lo);
        let odd = _mm256_shuffle_epi8(pair[1], lo);
        *a = _mm256_blendv_epi8(even, odd, m4);
    }
    let b0 = _mm256_blendv_epi8(a[0], a[1], m5);
    let b1 = _mm256_blendv_epi8(a[2], a[3], m5);
    _mm256_blendv_epi8(b0, b1, m6)
}

/// [`lookup`], through [`lookup_ascii`] when all 32 bytes are ASCII (text bodies, HTML and
/// headers mostly are).
#[target_feature(enable = "avx2")]
#[inline]
fn lookup_any(rows: &[__m256i; 16], x: __m256i) -> __m256i {
    if _mm256_movemask_epi8(x) == 0 {
        lookup_ascii(rows, x)
    } else {
        lookup(rows, x)
    }
}

#[target_feature(enable = "avx2")]
fn substitute_into_avx2(dst: &mut [u8], src: &[u8], table: &[u8; 256]) -> usize {
    let rows = rows(table);
    let n = dst.len().min(src.len()) / 32 * 32;
    let (Some(dst), Some(src)) = (dst.get_mut(..n), src.get(..n)) else {
        return 0;
    };
    for (d, s) in dst.chunks_exact_mut(32).zip(src.chunks_exact(32)) {
        // SAFETY: `s` is 32 bytes long, what the unaligned 256-bit load reads.
        let x = unsafe { _mm256_loadu_si256(s.as_ptr().cast()) };
        let y = lookup_any(&rows, x);
        // SAFETY: `d` is 32 writable bytes, what the unaligned 256-bit store writes.
        unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), y) };
    }
    n
}

#[target_feature(enable = "avx2")]
fn substitute_avx2(data: &mut [u8], table: &[u8; 256]) -> usize {
    let rows = rows(table);
    let n = data.len() / 32 * 32;
    let Some(data) = data.get_mut(..n) else {
        return 0;
    };
    for d in data.chunks_exact_mut(32) {
        // SAFETY: `d` is 32 bytes long, read by the unaligned load and then written by
        // the unaligned store.
        let x = unsafe { _mm256_loadu_si256(d.as_ptr().cast()) };
        let y = lookup_any(&rows, x);
        // SAFETY: as above.
        unsafe { _mm256_storeu_si256(d.as_mut_ptr().cast(), y) };
    }
    n
}
