//! Dependency-free encoders: base64, quoted-printable, RFC 2047 encoded words,
//! a few legacy charsets, RFC 3501 modified UTF-7, RFC 5322 / asctime dates, CRC-32.

use std::fmt::Write as _;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648) with `=` padding, on one line.
#[cfg(test)]
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    base64_into(data, &mut out, true);
    out
}

fn base64_into(data: &[u8], out: &mut String, pad: bool) {
    for chunk in data.chunks(3) {
        let b0 = chunk.first().copied().unwrap_or(0);
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let sextet = |shift: u32| char::from(B64[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        if chunk.len() > 1 {
            out.push(sextet(6));
        } else if pad {
            out.push('=');
        }
        if chunk.len() > 2 {
            out.push(sextet(0));
        } else if pad {
            out.push('=');
        }
    }
}

/// Base64 as a MIME body: 76-character lines, each ending in CRLF.
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(57) * 78);
    for line in data.chunks(57) {
        let mut groups = line.chunks_exact(3);
        for g in &mut groups {
            if let [a, b, c] = *g {
                let n = (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c);
                out.extend_from_slice(&[
                    B64[(n >> 18) as usize & 63],
                    B64[(n >> 12) as usize & 63],
                    B64[(n >> 6) as usize & 63],
                    B64[n as usize & 63],
                ]);
            }
        }
        let rest = groups.remainder();
        if !rest.is_empty() {
            let mut tail = String::with_capacity(4);
            base64_into(rest, &mut tail, true);
            out.extend_from_slice(tail.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Quoted-printable (RFC 2045 6.7). `data` uses CRLF as hard line breaks; the output uses
/// CRLF, soft breaks (`=` CRLF) keep lines at most 76 characters long.
pub fn quoted_printable(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    let mut lines = split_crlf(data).peekable();
    while let Some(line) = lines.next() {
        let mut col = 0usize;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                ((b == b' ' || b == b'\t') && !last) || ((33..=126).contains(&b) && b != b'=');
            let width = if literal { 1 } else { 3 };
            // keep room for the soft-break '=' unless this is the last char of the line
            let limit = if last { 76 } else { 75 };
            if col + width > limit {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            col += width;
        }
        if lines.peek().is_some() || data.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Splits on CRLF; a trailing CRLF does not produce an extra empty line.
fn split_crlf(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = data.strip_suffix(b"\r\n").unwrap_or(data);
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let cur = rest?;
        match cur.windows(2).position(|w| w == b"\r\n") {
            Some(p) => {
                rest = cur.get(p + 2..);
                cur.get(..p)
            }
            None => {
                rest = None;
                Some(cur)
            }
        }
    })
}

/// Character sets the generator can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// US-ASCII (non-ASCII becomes `?`).
    UsAscii,
    /// UTF-8.
    Utf8,
    /// ISO-8859-1.
    Latin1,
    /// Windows-1252.
    Cp1252,
    /// KOI8-R (Russian).
    Koi8R,
    /// ISO-2022-JP (7-bit JIS with escape sequences).
    Iso2022Jp,
    /// Shift_JIS.
    ShiftJis,
}

impl Charset {
    /// The MIME charset label.
    pub fn label(self) -> &'static str {
        match self {
            Charset::UsAscii => "us-ascii",
            Charset::Utf8 => "utf-8",
            Charset::Latin1 => "iso-8859-1",
            Charset::Cp1252 => "windows-1252",
            Charset::Koi8R => "koi8-r",
            Charset::Iso2022Jp => "iso-2022-jp",
            Charset::ShiftJis => "shift_jis",
        }
    }

    /// Whether the charset has the character `c`.
    pub fn can_encode(self, c: char) -> bool {
        match self {
            Charset::Utf8 => true,
            Charset::UsAscii => c.is_ascii(),
            Charset::Latin1 => u32::from(c) <= 0xFF,
            Charset::Cp1252 => c == '?' || cp1252_byte(c) != b'?',
            Charset::Koi8R => c == '?' || koi8r_byte(c) != b'?',
            Charset::Iso2022Jp | Charset::ShiftJis => c.is_ascii() || jis_code(c).is_some(),
        }
    }

    /// Encodes `s`; characters the charset lacks become `?`.
    pub fn encode(self, s: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => s.as_bytes().to_vec(),
            Charset::UsAscii => s
                .chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
                .collect(),
            Charset::Latin1 => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
            Charset::Cp1252 => s.chars().map(cp1252_byte).collect(),
            Charset::Koi8R => s.chars().map(koi8r_byte).collect(),
            Charset::Iso2022Jp => iso2022jp(s),
            Charset::ShiftJis => shift_jis(s),
        }
    }
}

fn cp1252_byte(c: char) -> u8 {
    const HIGH: [(char, u8); 11] = [
        ('€', 0x80),
        ('‚', 0x82),
        ('„', 0x84),
        ('…', 0x85),
        ('‘', 0x91),
        ('’', 0x92),
        ('“', 0x93),
        ('”', 0x94),
        ('–', 0x96),
        ('—', 0x97),
        ('™', 0x99),
    ];
    let cp = u32::from(c);
    if cp < 0x80 || (0xA0..=0xFF).contains(&cp) {
        return cp as u8;
    }
    HIGH.iter().find(|(h, _)| *h == c).map_or(b'?', |(_, b)| *b)
}

fn koi8r_byte(c: char) -> u8 {
    const LOWER: &str = "юабцдефгхийклмнопярстужвьызшэщчъ";
    const UPPER: &str = "ЮАБЦДЕФГХИЙКЛМНОПЯРСТУЖВЬЫЗШЭЩЧЪ";
    if c.is_ascii() {
        return c as u8;
    }
    if c == 'ё' {
        return 0xA3;
    }
    if c == 'Ё' {
        return 0xB3;
    }
    if let Some(i) = LOWER.chars().position(|x| x == c) {
        return 0xC0 + i as u8;
    }
    if let Some(i) = UPPER.chars().position(|x| x == c) {
        return 0xE0 + i as u8;
    }
    b'?'
}

/// JIS X 0208 codes (row/column bytes) of every non-ASCII character the Japanese texts use.
/// Generated with Python's `iso2022_jp` codec; sorted by character for binary search.
const JIS: &[(char, u16)] = &[
    ('、', 0x2122),
    ('。', 0x2123),
    ('〇', 0x213B),
    ('「', 0x2156),
    ('」', 0x2157),
    ('あ', 0x2422),
    ('い', 0x2424),
    ('う', 0x2426),
    ('お', 0x242A),
    ('か', 0x242B),
    ('が', 0x242C),
    ('く', 0x242F),
    ('ご', 0x2434),
    ('さ', 0x2435),
    ('ざ', 0x2436),
    ('し', 0x2437),
    ('す', 0x2439),
    ('せ', 0x243B),
    ('た', 0x243F),
    ('だ', 0x2440),
    ('ち', 0x2441),
    ('っ', 0x2443),
    ('つ', 0x2444),
    ('て', 0x2446),
    ('で', 0x2447),
    ('と', 0x2448),
    ('な', 0x244A),
    ('に', 0x244B),
    ('の', 0x244E),
    ('は', 0x244F),
    ('ま', 0x245E),
    ('ょ', 0x2467),
    ('よ', 0x2468),
    ('ら', 0x2469),
    ('り', 0x246A),
    ('ろ', 0x246D),
    ('わ', 0x246F),
    ('を', 0x2472),
    ('ァ', 0x2521),
    ('ィ', 0x2523),
    ('イ', 0x2524),
    ('ェ', 0x2527),
    ('オ', 0x252A),
    ('ク', 0x252F),
    ('ジ', 0x2538),
    ('ス', 0x2539),
    ('テ', 0x2546),
    ('ト', 0x2548),
    ('フ', 0x2555),
    ('プ', 0x2557),
    ('メ', 0x2561),
    ('ル', 0x256B),
    ('ロ', 0x256D),
    ('ー', 0x213C),
    ('三', 0x3B30),
    ('世', 0x4024),
    ('予', 0x4D3D),
    ('二', 0x4673),
    ('京', 0x357E),
    ('付', 0x4955),
    ('件', 0x376F),
    ('会', 0x3271),
    ('佐', 0x3A34),
    ('午', 0x3861),
    ('合', 0x3967),
    ('名', 0x4C3E),
    ('告', 0x3970),
    ('報', 0x4A73),
    ('太', 0x4240),
    ('子', 0x3B52),
    ('定', 0x446A),
    ('山', 0x3B33),
    ('年', 0x472F),
    ('後', 0x3865),
    ('打', 0x4247),
    ('捗', 0x443D),
    ('料', 0x4E41),
    ('新', 0x3F37),
    ('日', 0x467C),
    ('明', 0x4C40),
    ('時', 0x3B7E),
    ('書', 0x3D71),
    ('本', 0x4B5C),
    ('来', 0x4D68),
    ('東', 0x456C),
    ('様', 0x4D4D),
    ('求', 0x3561),
    ('添', 0x453A),
    ('田', 0x4544),
    ('知', 0x434E),
    ('確', 0x334E),
    ('絡', 0x4D6D),
    ('花', 0x3256),
    ('藤', 0x4623),
    ('話', 0x4F43),
    ('認', 0x4727),
    ('語', 0x386C),
    ('請', 0x4041),
    ('議', 0x3544),
    ('資', 0x3B71),
    ('連', 0x4F22),
    ('週', 0x3D35),
    ('進', 0x3F4A),
    ('郎', 0x4F3A),
    ('願', 0x346A),
    ('（', 0x214A),
    ('）', 0x214B),
];

fn jis_code(c: char) -> Option<u16> {
    JIS.binary_search_by(|(k, _)| k.cmp(&c))
        .ok()
        .and_then(|i| JIS.get(i))
        .map(|(_, v)| *v)
}

fn iso2022jp(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut jis_mode = false;
    for c in s.chars() {
        match jis_code(c) {
            Some(code) if !c.is_ascii() => {
                if !jis_mode {
                    out.extend_from_slice(b"\x1b$B");
                    jis_mode = true;
                }
                out.extend_from_slice(&code.to_be_bytes());
            }
            _ => {
                // back to ASCII before any ASCII char, in particular before CR/LF
                if jis_mode {
                    out.extend_from_slice(b"\x1b(B");
                    jis_mode = false;
                }
                out.push(if c.is_ascii() { c as u8 } else { b'?' });
            }
        }
    }
    if jis_mode {
        out.extend_from_slice(b"\x1b(B");
    }
    out
}

fn shift_jis(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c as u8);
            continue;
        }
        let Some(code) = jis_code(c) else {
            out.push(b'?');
            continue;
        };
        let [j1, j2] = code.to_be_bytes();
        let s1 = ((j1 + 1) >> 1) + if j1 <= 0x5E { 0x70 } else { 0xB0 };
        let s2 = if j1 % 2 == 1 {
            j2 + if j2 >= 0x60 { 0x20 } else { 0x1F }
        } else {
            j2 + 0x7E
        };
        out.push(s1);
        out.push(s2);
    }
    out
}

/// RFC 2047 encoding of a header text into encoded words of at most 75 characters,
/// separated by folding whitespace (CRLF SP). `q` selects the Q encoding, else B.
/// Words are split on character boundaries so every word decodes on its own.
pub fn encoded_words(text: &str, cs: Charset, q: bool) -> String {
    let prefix_len = cs.label().len() + 6; // "=?" cs "?B?" ... "?="
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        let mut candidate = current.clone();
        candidate.push(c);
        let encoded = encode_word(&candidate, cs, q);
        if encoded.len() > 75 && !current.is_empty() && prefix_len < 75 {
            words.push(encode_word(&current, cs, q));
            current.clear();
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(encode_word(&current, cs, q));
    }
    words.join("\r\n ")
}

fn encode_word(text: &str, cs: Charset, q: bool) -> String {
    let bytes = cs.encode(text);
    let mut out = format!("=?{}?{}?", cs.label(), if q { 'Q' } else { 'B' });
    if q {
        for &b in &bytes {
            match b {
                b' ' => out.push('_'),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                    out.push(char::from(b))
                }
                _ => {
                    let _ = write!(out, "={b:02X}");
                }
            }
        }
    } else {
        base64_into(&bytes, &mut out, true);
    }
    out.push_str("?=");
    out
}

/// RFC 2231 extended parameter value (`utf-8''…` with %-escapes).
pub fn rfc2231_value(text: &str) -> String {
    let mut out = String::from("utf-8''");
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// IMAP modified UTF-7 (RFC 3501 5.1.3): the same encoder the sinks and sources use.
pub use legacyflo_core::codec::mutf7_encode;

/// Civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
#[cfg(test)]
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Broken {
    wday: &'static str,
    mon: &'static str,
    year: i64,
    day: u32,
    h: i64,
    mi: i64,
    s: i64,
}

fn broken_down(ts: i64) -> Broken {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (year, m, day) = civil_from_days(days);
    Broken {
        wday: WEEKDAYS[days.rem_euclid(7) as usize],
        mon: MONTHS[(m as usize + 11) % 12],
        year,
        day,
        h: secs / 3600,
        mi: secs / 60 % 60,
        s: secs % 60,
    }
}

/// RFC 5322 date-time for the instant `ts` (unix seconds) shown in the zone
/// `offset_minutes` east of UTC, e.g. `Tue, 07 Mar 2023 14:05:09 +0100`.
pub fn rfc5322_date(ts: i64, offset_minutes: i32) -> String {
    let b = broken_down(ts + i64::from(offset_minutes) * 60);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.unsigned_abs();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {}{:02}{:02}",
        b.wday,
        b.day,
        b.mon,
        b.year,
        b.h,
        b.mi,
        b.s,
        sign,
        off / 60,
        off % 60
    )
}

/// asctime(3) form of `ts` in UTC as used on mbox `From ` lines,
/// e.g. `Tue Mar  7 13:05:09 2023`.
pub fn asctime_utc(ts: i64) -> String {
    let b = broken_down(ts);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        b.wday, b.mon, b.day, b.h, b.mi, b.s, b.year
    )
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE, as in PNG and zip).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (i, o) in cases {
            assert_eq!(base64(i.as_bytes()), o);
        }
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for n in [0usize, 1, 2, 3, 56, 57, 58, 114, 1000] {
            let expect: String = base64(&data[..n])
                .as_bytes()
                .chunks(76)
                .map(|l| format!("{}\r\n", String::from_utf8_lossy(l)))
                .collect();
            assert_eq!(
                String::from_utf8_lossy(&base64_lines(&data[..n])),
                expect,
                "{n}"
            );
        }
        let lines = base64_lines(&[0u8; 100]);
        let text = String::from_utf8_lossy(&lines);
        assert!(text.lines().all(|l| l.len() <= 76));
        assert!(lines.ends_with(b"\r\n"));
    }

    #[test]
    fn quoted_printable_rules() {
        let qp = quoted_printable("Grüße = ok \r\nend\t\r\n".as_bytes());
        assert_eq!(qp, b"Gr=C3=BC=C3=9Fe =3D ok=20\r\nend=09\r\n");
        let long = "x".repeat(200);
        let qp = quoted_printable(long.as_bytes());
        let text = String::from_utf8_lossy(&qp);
        assert!(text.split("\r\n").all(|l| l.len() <= 76), "{text}");
        assert_eq!(text.replace("=\r\n", ""), long);
    }

    #[test]
    fn legacy_charsets_match_python_codecs() {
        // Expected bytes produced with Python 3.11 codecs.
        assert_eq!(
            Charset::ShiftJis.encode("会議のお知らせ"),
            [
                0x89, 0xEF, 0x8B, 0x63, 0x82, 0xCC, 0x82, 0xA8, 0x92, 0x6D, 0x82, 0xE7, 0x82, 0xB9
            ]
        );
        assert_eq!(
            Charset::Iso2022Jp.encode("会議のお知らせ"),
            b"\x1b$B2q5D$N$*CN$i$;\x1b(B"
        );
        assert_eq!(
            Charset::Koi8R.encode("Привет Ёж"),
            [0xF0, 0xD2, 0xC9, 0xD7, 0xC5, 0xD4, 0x20, 0xB3, 0xD6]
        );
        assert_eq!(
            Charset::Cp1252.encode("€‚„…‘’“”–—™"),
            [
                0x80, 0x82, 0x84, 0x85, 0x91, 0x92, 0x93, 0x94, 0x96, 0x97, 0x99
            ]
        );
        assert_eq!(Charset::Latin1.encode("Grüße"), b"Gr\xfc\xdfe");
    }

    #[test]
    fn jis_table_is_sorted() {
        assert!(JIS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn encoded_words_are_short_and_split_on_chars() {
        let s = encoded_words(
            "日本語の件名テスト、来週の予定について確認してください",
            Charset::Utf8,
            false,
        );
        for w in s.split("\r\n ") {
            assert!(w.len() <= 75, "{w}");
            assert!(w.starts_with("=?utf-8?B?") && w.ends_with("?="));
        }
        assert_eq!(
            encoded_words("Jürgen Müller", Charset::Utf8, true),
            "=?utf-8?Q?J=C3=BCrgen_M=C3=BCller?="
        );
    }

    #[test]
    fn mutf7_examples() {
        assert_eq!(mutf7_encode("INBOX"), "INBOX");
        assert_eq!(mutf7_encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(mutf7_encode("Ünïcødé"), "&ANw-n&AO8-c&APg-d&AOk-");
        assert_eq!(mutf7_encode("日本語"), "&ZeVnLIqe-");
        assert_eq!(mutf7_encode("Ordner & Co"), "Ordner &- Co");
        assert_eq!(
            mutf7_encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0, 0), "Thu, 01 Jan 1970 00:00:00 +0000");
        // 2023-03-07 13:05:09 UTC
        let ts = days_from_civil(2023, 3, 7) * 86_400 + 13 * 3600 + 5 * 60 + 9;
        assert_eq!(ts, 1_678_194_309);
        assert_eq!(rfc5322_date(ts, 60), "Tue, 07 Mar 2023 14:05:09 +0100");
        assert_eq!(rfc5322_date(ts, -330), "Tue, 07 Mar 2023 07:35:09 -0530");
        assert_eq!(asctime_utc(ts), "Tue Mar  7 13:05:09 2023");
        for d in [-1000i64, 0, 59, 60, 10_000, 19_000, 20_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
