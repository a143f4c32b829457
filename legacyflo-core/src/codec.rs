//! Name and metadata encodings shared by the file sources and the file sinks.
//!
//! Every encoding a sink writes has its exact inverse here, used by the matching source.
//!
//! # Maildir folder names (modified UTF-7, then `~` escapes)
//! A folder segment is first encoded as IMAP modified UTF-7 (RFC 3501 §5.1.3, Dovecot's
//! default on-disk form): printable ASCII (U+0020–U+007E) stands for itself, `&` is written
//! `&-`, and every other character is written inside a `&…-` run holding its UTF-16BE code
//! units in base64 with the alphabet `A–Z a–z 0–9 + ,` and no padding. Then `~`, `.` (the
//! Maildir++ hierarchy separator) and `/` are written as `~7e`, `~2e` and `~2f`
//! (listescape style with `~` as the escape character; as every `~` is escaped, the rule is
//! reversible). `a.b & c/d` becomes `a~2eb &- c~2fd`,
//! `Entwürfe` becomes `Entw&APw-rfe`. This is the rule `legacyflo-corpus` uses for its
//! sample trees. Decoding undoes the three `~` escapes (any hex case), then decodes
//! modified UTF-7, so names written by Dovecot or Courier decode too; an invalid `&…-` run
//! is kept literally.
//!
//! # mbox file names and ZIP directory names (percent escapes)
//! A folder segment is written as itself except that these characters are replaced by
//! `%XX` (the upper-case hex of each UTF-8 byte): `%`, `/`, `\`, `:`, `*`, `?`, `"`,
//! `<`, `>`, `|`, control characters, a leading `.`, a trailing `.` or space, and the `.`
//! of a trailing `.mbox` or `.sbd` (any case). Decoding replaces every `%XX` by its byte;
//! a `%` not followed by two hex digits, or a result that is not UTF-8, is kept literally.
//!
//! # ZIP entry comment (flags, internal date, identity)
//! legacyflo's ZIP sink gives every entry a comment of space-separated fields:
//! `lf1 [d=<RFC 3339 UTC date>] [f=<Maildir letters S R F T D>] [k=<keyword>]… [h=<hex>]`.
//! Keywords are percent-escaped (`%`, space, control and non-ASCII bytes). `h` is the
//! sink's identity of the message (a hash of its folder and source id). A comment that does
//! not start with the token `lf1` is not ours and carries nothing.
#![allow(dead_code)]

use crate::message::Flag;
use chrono::{DateTime, SecondsFormat, Utc};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes one Maildir folder segment (see the module docs).
pub fn maildir_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for c in mutf7_encode(segment).chars() {
        match c {
            '~' => out.push_str("~7e"),
            '.' => out.push_str("~2e"),
            '/' => out.push_str("~2f"),
            _ => out.push(c),
        }
    }
    out
}

/// Encodes `text` as IMAP modified UTF-7.
pub fn mutf7_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run: Vec<u16> = Vec::new();
    for c in text.chars() {
        if (' '..='~').contains(&c) {
            flush_utf7_run(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_utf7_run(&mut run, &mut out);
    out
}

fn flush_utf7_run(run: &mut Vec<u16>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let digits = chunk.len() + 1;
        for i in 0..digits {
            let idx = ((n >> (18 - 6 * i)) & 0x3f) as usize;
            out.push(char::from(B64[idx]));
        }
    }
    out.push('-');
    run.clear();
}

/// Decodes one Maildir folder segment (see the module docs).
pub fn maildir_decode(segment: &str) -> String {
    let mut unescaped = String::with_capacity(segment.len());
    let mut rest = segment;
    while let Some(i) = rest.find('~') {
        unescaped.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).map(str::to_ascii_lowercase);
        match code.as_deref() {
            Some("7e") => unescaped.push('~'),
            Some("2e") => unescaped.push('.'),
            Some("2f") => unescaped.push('/'),
            _ => {
                unescaped.push('~');
                rest = &rest[i + 1..];
                continue;
            }
        }
        rest = &rest[i + 3..];
    }
    unescaped.push_str(rest);
    mutf7_decode(&unescaped)
}

/// Decodes IMAP modified UTF-7; an invalid `&…-` run is kept literally.
pub fn mutf7_decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match after.find('-') {
            Some(0) => {
                out.push('&');
                rest = &after[1..];
            }
            Some(end) => match decode_utf7_run(&after[..end]) {
                Some(text) => {
                    out.push_str(&text);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push('&');
                    rest = after;
                }
            },
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_utf7_run(run: &str) -> Option<String> {
    let mut bits: u32 = 0;
    let mut nbits = 0u32;
    let mut bytes = Vec::with_capacity(run.len());
    for c in run.bytes() {
        let c = if c == b'/' { b',' } else { c };
        let v = B64.iter().position(|&b| b == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push(((bits >> nbits) & 0xff) as u8);
        }
    }
    if bytes.is_empty() || bytes.len() % 2 != 0 || nbits >= 6 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|p| u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)]))
        .collect();
    String::from_utf16(&units).ok()
}

/// Escapes one folder segment for an mbox file name or a ZIP directory (see the module docs).
pub fn escape_segment(segment: &str) -> String {
    let lower = segment.to_ascii_lowercase();
    let suffix_dot = if lower.ends_with(".mbox") {
        Some(segment.len() - 5)
    } else if lower.ends_with(".sbd") {
        Some(segment.len() - 4)
    } else {
        None
    };
    let last = segment.char_indices().last().map(|(i, _)| i);
    let mut out = String::with_capacity(segment.len());
    for (i, c) in segment.char_indices() {
        let escape = matches!(
            c,
            '%' | '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'
        ) || c.is_control()
            || (i == 0 && c == '.')
            || (Some(i) == last && (c == '.' || c == ' '))
            || Some(i) == suffix_dot;
        if escape {
            push_percent(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

fn push_percent(c: char, out: &mut String) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push('%');
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0xf));
    }
}

fn hex_digit(v: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(v & 0xf)])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Reverses [`escape_segment`] (and [`escape_token`]): `%XX` becomes its byte.
pub fn unescape_segment(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_string();
    }
    let src = segment.as_bytes();
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'%'
            && let (Some(h), Some(l)) = (
                src.get(i + 1).copied().and_then(hex_value),
                src.get(i + 2).copied().and_then(hex_value),
            )
        {
            out.push((h << 4) | l);
            i += 3;
            continue;
        }
        out.push(src[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_string())
}

/// Escapes a token of a ZIP entry comment: `%`, space, control and non-ASCII characters.
pub fn escape_token(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        if c == '%' || c == ' ' || c.is_control() || !c.is_ascii() {
            push_percent(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

/// What legacyflo's ZIP sink keeps about an entry in its comment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// The message's internal date.
    pub date: Option<DateTime<Utc>>,
    /// Its flags (system flags and keywords).
    pub flags: Vec<Flag>,
    /// The sink's identity of the message, lower-case hex.
    pub key: Option<String>,
}

/// The first token of every comment legacyflo writes.
pub const COMMENT_TAG: &str = "lf1";

impl EntryMeta {
    /// The entry comment (see the module docs).
    pub fn to_comment(&self) -> String {
        let mut out = String::from(COMMENT_TAG);
        if let Some(d) = self.date {
            out.push_str(" d=");
            out.push_str(&d.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
        let letters: String = self.flags.iter().filter_map(Flag::maildir_letter).collect();
        if !letters.is_empty() {
            out.push_str(" f=");
            out.push_str(&letters);
        }
        for f in &self.flags {
            if let Flag::Keyword(k) = f {
                out.push_str(" k=");
                out.push_str(&escape_token(k));
            }
        }
        if let Some(k) = &self.key {
            out.push_str(" h=");
            out.push_str(k);
        }
        out
    }

    /// Parses a comment written by [`EntryMeta::to_comment`]; `None` when it is not ours.
    /// Unknown fields are ignored, so later versions may add some.
    pub fn from_comment(comment: &str) -> Option<EntryMeta> {
        let mut tokens = comment.split(' ');
        if tokens.next() != Some(COMMENT_TAG) {
            return None;
        }
        let mut meta = EntryMeta::default();
        for token in tokens {
            let Some((key, value)) = token.split_once('=') else {
                continue;
            };
            match key {
                "d" => {
                    meta.date = DateTime::parse_from_rfc3339(value)
                        .ok()
                        .map(|d| d.with_timezone(&Utc));
                }
                "f" => meta
                    .flags
                    .extend(value.chars().filter_map(Flag::from_maildir_letter)),
                "k" => {
                    let k = unescape_segment(value);
                    if !k.is_empty() {
                        meta.flags.push(Flag::Keyword(k));
                    }
                }
                "h" => meta.key = Some(value.to_string()),
                _ => {}
            }
        }
        meta.flags.sort();
        meta.flags.dedup();
        Some(meta)
    }
}

/// The token legacyflo's mbox sink appends to the `From ` line of a message whose last byte
/// is not a line feed: the sink then writes one line feed to end the line, and the source
/// removes it again.
pub const MBOX_NO_EOL_TOKEN: &str = "legacyflo-no-eol";

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &[
        "INBOX",
        "Ünïcødé",
        "日本語",
        "Ordner & Co",
        "Ünïcødé/日本語/Ordner & Co",
        "v1.2 release",
        ".hidden",
        "..",
        ".",
        "a~2eb",
        "~",
        "%41",
        "tab\there",
        "x.mbox",
        "y.SBD",
        "trailing. ",
        "C:\\*?\"<>|",
        "emoji 😀 & more",
        "&",
        "&-",
        "nul\0byte",
    ];

    #[test]
    fn maildir_names_round_trip() {
        for n in NAMES {
            let enc = maildir_encode(n);
            assert!(!enc.contains('.') && !enc.contains('/'), "{n} -> {enc}");
            assert_eq!(maildir_decode(&enc), *n, "{n} -> {enc}");
        }
        assert_eq!(maildir_encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(maildir_encode("a.b & c/d"), "a~2eb &- c~2fd");
        assert_eq!(maildir_encode("日本語"), "&ZeVnLIqe-");
    }

    #[test]
    fn maildir_decodes_foreign_names() {
        assert_eq!(maildir_decode("Entw&APw-rfe"), "Entwürfe");
        assert_eq!(maildir_decode("Tom & Jerry"), "Tom & Jerry");
        assert_eq!(maildir_decode("&Jjo!"), "&Jjo!");
        assert_eq!(maildir_decode("~backup"), "~backup");
        assert_eq!(maildir_decode("a~2Eb"), "a.b");
        assert_eq!(maildir_decode("&ZeVnLIqe-"), "日本語");
    }

    #[test]
    fn percent_names_round_trip() {
        for n in NAMES {
            let enc = escape_segment(n);
            assert!(
                !enc.contains('/') && !enc.contains('\\') && !enc.starts_with('.'),
                "{n} -> {enc}"
            );
            assert!(!enc.to_ascii_lowercase().ends_with(".mbox"), "{n} -> {enc}");
            assert!(!enc.to_ascii_lowercase().ends_with(".sbd"), "{n} -> {enc}");
            assert!(!enc.chars().any(char::is_control), "{n} -> {enc}");
            assert_eq!(unescape_segment(&enc), *n, "{n} -> {enc}");
        }
        assert_eq!(escape_segment("Ünïcødé"), "Ünïcødé");
        assert_eq!(escape_segment("a/b"), "a%2Fb");
        assert_eq!(unescape_segment("100%"), "100%");
        assert_eq!(unescape_segment("%zz"), "%zz");
        assert_eq!(unescape_segment("%FF"), "%FF");
    }

    #[test]
    fn entry_comments_round_trip() {
        let meta = EntryMeta {
            date: DateTime::parse_from_rfc3339("2024-11-21T10:00:00.5Z")
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            flags: vec![
                Flag::Seen,
                Flag::Deleted,
                Flag::Keyword("$Forwarded".into()),
                Flag::Keyword("a b%ü".into()),
            ],
            key: Some("00ff".into()),
        };
        let c = meta.to_comment();
        assert_eq!(
            c,
            "lf1 d=2024-11-21T10:00:00.500Z f=ST k=$Forwarded k=a%20b%25%C3%BC h=00ff"
        );
        assert_eq!(EntryMeta::from_comment(&c), Some(meta));
        assert_eq!(EntryMeta::from_comment("lf1"), Some(EntryMeta::default()));
        assert_eq!(EntryMeta::from_comment("lf10 d=x"), None);
        assert_eq!(EntryMeta::from_comment("exported by X"), None);
    }
}
