//! Content-Transfer-Encoding decoders of the fast MIME path: base64 and quoted-printable.
//!
//! Both are lenient where mail is lenient (line breaks, spaces, a missing final padding)
//! and strict where guessing would corrupt data: an invalid base64 character makes
//! [`base64`] return `None`, so the caller falls back to mail-parser's recovery.

const WS: u8 = 0x40;
const PAD: u8 = 0x41;
const BAD: u8 = 0xFF;

const B64: [u8; 256] = {
    let mut t = [BAD; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    t[b'+' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'=' as usize] = PAD;
    t[b'\r' as usize] = WS;
    t[b'\n' as usize] = WS;
    t[b' ' as usize] = WS;
    t[b'\t' as usize] = WS;
    t
};

const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes MIME base64 (RFC 2045 §6.8): line breaks and blanks are skipped, decoding stops
/// at the first `=`. Returns `None` on any other character outside the alphabet, or on
/// a dangling single character at the end.
///
/// The common shape (lines of base64 separated by CRLF or LF) is compacted, 64 KiB at a
/// time (so a large attachment costs no second copy of its text), and decoded by the
/// `base64` crate; anything else takes a lenient scalar loop.
pub fn base64(input: &[u8]) -> Option<Vec<u8>> {
    thread_local! {
        /// The compaction buffer of [`base64`], kept between calls (one 64 KiB allocation
        /// per attachment saved).
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let kept = BUF.try_with(|b| {
        b.try_borrow_mut().ok().map(|mut buf| {
            let out = base64_in(input, &mut buf);
            if buf.capacity() > 2 * CHUNK {
                // A long unbroken line grew it: not kept at that size.
                *buf = Vec::new();
            }
            out
        })
    });
    match kept {
        Ok(Some(out)) => out,
        _ => base64_in(input, &mut Vec::new()),
    }
}

/// Compaction chunk of [`base64`].
const CHUNK: usize = 64 * 1024;

/// [`base64`] with `buf` as its compaction buffer (cleared first).
fn base64_in(input: &[u8], buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    // The compacted text, with room for `SLACK` bytes past `CHUNK` so that a short line is
    // copied by fixed-size moves (see `copy_line`).
    buf.clear();
    buf.reserve(CHUNK.min(input.len()) + SLACK);
    let mut rest = input;
    // The previous line's length and line break: lines of one length are the rule, so the
    // next line is taken when the same break follows at the same length, without a search.
    // (Should such a line hold a CR or LF, the decoders below refuse the chunk and the
    // lenient decoder takes the whole input.)
    let mut line: Option<(usize, &[u8])> = None;
    loop {
        while buf.len() < CHUNK && !rest.is_empty() {
            // The break is compared byte by byte: a slice comparison of unknown length
            // would call `memcmp` once per line.
            if let Some((len, brk)) = line
                && match *brk {
                    [a] => rest.get(len) == Some(&a),
                    [a, b] => rest.get(len) == Some(&a) && rest.get(len + 1) == Some(&b),
                    _ => false,
                }
            {
                copy_line(buf, rest, len);
                rest = rest.get(len + brk.len()..).unwrap_or(&[]);
                continue;
            }
            let (i, brk): (usize, &[u8]) = match memchr::memchr2(b'\r', b'\n', rest) {
                Some(i) if rest.get(i..i + 2) == Some(b"\r\n") => (i, b"\r\n"),
                Some(i) if rest.get(i) == Some(&b'\r') => (i, b"\r"),
                Some(i) => (i, b"\n"),
                None => (rest.len(), b""),
            };
            copy_line(buf, rest, i);
            line = (i > 0 && !brk.is_empty()).then_some((i, brk));
            rest = rest.get(i + brk.len()..).unwrap_or(&[]);
        }
        let last = rest.is_empty();
        let take = if last { buf.len() } else { buf.len() / 4 * 4 };
        let part = buf.get(..take).unwrap_or(&[]);
        if !last && part.last() == Some(&b'=') {
            return base64_lenient(input);
        }
        // The SIMD decoder takes canonical padded base64 (nearly all mail); anything it
        // refuses (no padding, trailing bits) goes to the `base64` crate's engine, which
        // accepts the same alphabet with those relaxations, and only then to the scalar one.
        let mark = out.len();
        if base64_simd::STANDARD.decode_append(part, &mut out).is_err() {
            use base64::Engine as _;
            out.truncate(mark);
            if ENGINE.decode_vec(part, &mut out).is_err() {
                return base64_lenient(input);
            }
        }
        if last {
            return Some(out);
        }
        buf.drain(..take);
    }
}

/// The longest line [`copy_line`] copies as one fixed-size move.
const SLACK: usize = 96;

/// Appends the first `len` bytes of `src` to `buf`. A line of up to [`SLACK`] bytes (with
/// that many bytes readable) is appended as `SLACK` bytes and cut back: a move of a size
/// known when compiling, where a length known only at run time costs a `memcpy` call per
/// line.
fn copy_line(buf: &mut Vec<u8>, src: &[u8], len: usize) {
    let keep = buf.len() + len;
    match src
        .get(..SLACK)
        .and_then(|s| <&[u8; SLACK]>::try_from(s).ok())
    {
        Some(s) if len <= SLACK => {
            buf.extend_from_slice(s);
            buf.truncate(keep);
        }
        _ => buf.extend_from_slice(src.get(..len).unwrap_or(src)),
    }
}

/// The scalar decoder behind [`base64`] for input with blanks, data after the padding, or
/// errors.
pub fn base64_lenient(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; input.len() / 4 * 3 + 3];
    let mut o = 0usize;
    let mut acc = 0u32;
    let mut k = 0u32;
    let mut i = 0usize;
    let n = input.len();
    while i < n {
        if k == 0
            && let (Some(c), Some(d)) = (input.get(i..i + 8), out.get_mut(o..o + 6))
        {
            let v = [
                B64[c[0] as usize],
                B64[c[1] as usize],
                B64[c[2] as usize],
                B64[c[3] as usize],
                B64[c[4] as usize],
                B64[c[5] as usize],
                B64[c[6] as usize],
                B64[c[7] as usize],
            ];
            if (v[0] | v[1] | v[2] | v[3] | v[4] | v[5] | v[6] | v[7]) < 64 {
                let a = (u32::from(v[0]) << 18)
                    | (u32::from(v[1]) << 12)
                    | (u32::from(v[2]) << 6)
                    | u32::from(v[3]);
                let b = (u32::from(v[4]) << 18)
                    | (u32::from(v[5]) << 12)
                    | (u32::from(v[6]) << 6)
                    | u32::from(v[7]);
                d[0] = (a >> 16) as u8;
                d[1] = (a >> 8) as u8;
                d[2] = a as u8;
                d[3] = (b >> 16) as u8;
                d[4] = (b >> 8) as u8;
                d[5] = b as u8;
                o += 6;
                i += 8;
                continue;
            }
        }
        let v = B64[input[i] as usize];
        i += 1;
        if v < 64 {
            acc = (acc << 6) | u32::from(v);
            k += 1;
            if k == 4 {
                let d = out.get_mut(o..o + 3)?;
                d[0] = (acc >> 16) as u8;
                d[1] = (acc >> 8) as u8;
                d[2] = acc as u8;
                o += 3;
                k = 0;
                acc = 0;
            }
        } else if v == WS {
            continue;
        } else if v == PAD {
            break;
        } else {
            return None;
        }
    }
    match k {
        0 => {}
        2 => {
            *out.get_mut(o)? = (acc >> 4) as u8;
            o += 1;
        }
        3 => {
            let d = out.get_mut(o..o + 2)?;
            d[0] = (acc >> 10) as u8;
            d[1] = (acc >> 2) as u8;
            o += 2;
        }
        _ => return None,
    }
    out.truncate(o);
    Some(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Decodes quoted-printable (RFC 2045 §6.7): `=XX` escapes, soft line breaks (`=` at the
/// end of a line) removed, blanks before a line break dropped, line breaks kept as
/// written. A `=` not followed by two hex digits is kept literally.
pub fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    // Literal blanks at the end of `out` (dropped before a line break; encoded ones stay).
    let mut ws = 0usize;
    let mut i = 0usize;
    while i < input.len() {
        let rest = input.get(i..).unwrap_or(&[]);
        let Some(j) = memchr::memchr3(b'=', b'\n', b'\r', rest) else {
            out.extend_from_slice(rest);
            break;
        };
        let run = rest.get(..j).unwrap_or(&[]);
        let blanks = run
            .iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        ws = if blanks == run.len() {
            ws + blanks
        } else {
            blanks
        };
        out.extend_from_slice(run);
        i += j;
        match input.get(i) {
            Some(b'=') => {
                let a = input.get(i + 1).copied();
                let b = input.get(i + 2).copied();
                if let (Some(h), Some(l)) = (a.and_then(hex), b.and_then(hex)) {
                    out.push((h << 4) | l);
                    ws = 0;
                    i += 3;
                    continue;
                }
                // Soft line break: "=" then optional blanks then CRLF / LF / end.
                let mut e = i + 1;
                while matches!(input.get(e), Some(b' ' | b'\t')) {
                    e += 1;
                }
                match (input.get(e), input.get(e + 1)) {
                    (Some(b'\r'), Some(b'\n')) => i = e + 2,
                    (Some(b'\n'), _) => i = e + 1,
                    (None, _) => i = e,
                    _ => {
                        out.push(b'=');
                        ws = 0;
                        i += 1;
                    }
                }
            }
            Some(b'\r') if input.get(i + 1) == Some(&b'\n') => {
                out.truncate(out.len() - ws.min(out.len()));
                ws = 0;
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            Some(b'\n') => {
                out.truncate(out.len() - ws.min(out.len()));
                ws = 0;
                out.push(b'\n');
                i += 1;
            }
            Some(&c) => {
                out.push(c);
                ws = 0;
                i += 1;
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors_and_lines() {
        for (i, o) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zm9v\r\nYmFy\r\n", "foobar"),
            ("Zm 9v\tYm\nFy", "foobar"),
            ("Zm9vYg", "foob"),
            ("Zh==", "f"),
            ("Zm9=", "fo"),
            ("Zm9vYh", "foob"),
        ] {
            assert_eq!(base64(i.as_bytes()).unwrap(), o.as_bytes(), "{i:?}");
        }
        for (i, o) in [("Zm9vYg==\r\nZm9v", "foob"), ("Zm 9v\r\n", "foo")] {
            assert_eq!(base64_lenient(i.as_bytes()).unwrap(), o.as_bytes(), "{i:?}");
            assert_eq!(base64(i.as_bytes()).unwrap(), o.as_bytes(), "{i:?}");
        }
        assert!(base64(b"Zm9v!mFy").is_none());
        assert!(base64(b"Zm9vY").is_none());
        for n in [10_000, 200_000, 1_000_001] {
            let data: Vec<u8> = (0..=255u8).cycle().take(n).collect();
            let enc = legacy_b64(&data);
            assert_eq!(base64(&enc).unwrap(), data, "{n}");
        }
    }

    /// Line lengths around the fixed-size copy (96), LF and CRLF breaks, one unbroken
    /// line longer than the kept buffer, and calls after a refused input: the buffer
    /// kept between calls never leaks one input into the next.
    #[test]
    fn base64_line_shapes_and_kept_buffer() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let one_line = legacy_b64_lines(&data, usize::MAX, b"");
        for (len, brk) in [
            (64, &b"\r\n"[..]),
            (72, b"\n"),
            (76, b"\r\n"),
            (96, b"\r\n"),
            (100, b"\n"),
            (4, b"\r\n"),
        ] {
            let enc = legacy_b64_lines(&data, len, brk);
            assert_eq!(base64(&enc).unwrap(), data, "{len}");
            assert!(base64(b"Zm9v!mFy").is_none());
            assert_eq!(base64(&one_line).unwrap(), data, "one line after {len}");
            assert_eq!(base64(b"Zm9v\r\nYmFy").unwrap(), b"foobar");
        }
    }

    /// `data` in base64, broken after every `len` characters with `brk`.
    fn legacy_b64_lines(data: &[u8], len: usize, brk: &[u8]) -> Vec<u8> {
        let flat: Vec<u8> = legacy_b64(data)
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let mut out = Vec::new();
        for line in flat.chunks(len.min(flat.len().max(1))) {
            out.extend_from_slice(line);
            out.extend_from_slice(brk);
        }
        out
    }

    fn legacy_b64(data: &[u8]) -> Vec<u8> {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = Vec::new();
        for (n, c) in data.chunks(3).enumerate() {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= c.len() {
                    s.push(A[((v >> (18 - 6 * k)) & 63) as usize]);
                } else {
                    s.push(b'=');
                }
            }
            if n % 19 == 18 {
                s.extend_from_slice(b"\r\n");
            }
        }
        s
    }

    #[test]
    fn quoted_printable_rules() {
        assert_eq!(quoted_printable(b"Gr=C3=BC=C3=9Fe"), "Grüße".as_bytes());
        assert_eq!(quoted_printable(b"long=\r\nline"), b"longline");
        assert_eq!(quoted_printable(b"long= \nline"), b"longline");
        assert_eq!(quoted_printable(b"a  \r\nb\t\nc"), b"a\r\nb\nc");
        assert_eq!(quoted_printable(b"1+1=2 =zz"), b"1+1=2 =zz");
        assert_eq!(quoted_printable(b"=3D=3d end="), b"== end");
        assert_eq!(quoted_printable(b"lone\rcr"), b"lone\rcr");
        assert_eq!(
            quoted_printable(b"sig --=20\r\nx \t=20 \r\n"),
            b"sig -- \r\nx \t \r\n"
        );
    }
}
