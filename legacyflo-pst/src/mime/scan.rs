//! The fast MIME path: an own zero-copy scanner of the MIME structure (RFC 2045/2046).
//!
//! Header blocks (of the message and of each part) are parsed by mail-parser's header
//! parser, which is cheap because header blocks are small; the bodies are never copied
//! except to undo a transfer encoding (own base64 / quoted-printable decoders) or a
//! charset. Bodies and attachments are classified with the same rules mail-parser
//! applies, so both paths store the same fields.
//!
//! [`scan`] returns `None` for anything it does not handle exactly (a multipart without
//! its boundary, an unknown transfer encoding, invalid base64, a transfer-encoded
//! `message/rfc822`, nesting deeper than [`MAX_DEPTH`]); the caller then parses the whole
//! message with mail-parser, whose recovery rules keep malformed mail.

use std::borrow::Cow;
use std::sync::OnceLock;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{ContentType, HeaderName, Message, MessageParser, MimeHeaders};

use super::{AttachBody, AttachData, MailData, codepage, decode, header_fields};

/// Deepest nesting of multiparts and embedded messages the fast path follows.
pub const MAX_DEPTH: usize = 16;

/// The header parser of a message: only the fields a PST keeps are parsed. The others
/// are skipped, not even copied as text: a skipped field keeps its offsets, and its raw
/// bytes are all [`header_fields`] reads of it (`Message::header_raw`).
fn parser() -> &'static MessageParser {
    static P: OnceLock<MessageParser> = OnceLock::new();
    P.get_or_init(|| {
        MessageParser::new()
            .default_header_ignore()
            .with_mime_headers()
            .header_text(HeaderName::Subject)
            .header_date(HeaderName::Date)
            .header_address(HeaderName::From)
            .header_address(HeaderName::Sender)
            .header_address(HeaderName::To)
            .header_address(HeaderName::Cc)
            .header_address(HeaderName::Bcc)
            .header_id(HeaderName::MessageId)
    })
}

/// The header parser of a body part: the MIME fields only, the others skipped.
fn part_parser() -> &'static MessageParser {
    static P: OnceLock<MessageParser> = OnceLock::new();
    P.get_or_init(|| {
        MessageParser::new()
            .default_header_ignore()
            .with_mime_headers()
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Mixed,
    Alternative,
    Related,
    Digest,
    OtherMultipart,
    TextPlain,
    TextHtml,
    TextOther,
    Inline,
    Message,
    Other,
}

/// (kind, is_multipart, inline candidate, is text), as mail-parser classifies parts.
fn classify(ct: Option<&ContentType<'_>>, parent: Kind) -> (Kind, bool, bool, bool) {
    let Some(ct) = ct else {
        return if parent == Kind::Digest {
            (Kind::Message, false, false, false)
        } else {
            (Kind::TextPlain, false, true, true)
        };
    };
    let sub = ct.subtype();
    match ct.ctype() {
        "multipart" => (
            match sub {
                Some("mixed") => Kind::Mixed,
                Some("alternative") => Kind::Alternative,
                Some("related") => Kind::Related,
                Some("digest") => Kind::Digest,
                _ => Kind::OtherMultipart,
            },
            true,
            false,
            false,
        ),
        "text" => match sub {
            Some("plain") => (Kind::TextPlain, false, true, true),
            Some("html") => (Kind::TextHtml, false, true, true),
            _ => (Kind::TextOther, false, false, true),
        },
        "image" | "audio" | "video" => (Kind::Inline, false, true, false),
        "message" if matches!(sub, Some("rfc822" | "global")) => {
            (Kind::Message, false, false, false)
        }
        _ => (Kind::Other, false, false, false),
    }
}

struct Container {
    kind: Kind,
    in_alternative: bool,
    need_text: bool,
    need_html: bool,
    parts: usize,
}

enum Candidate<'a> {
    Plain(Cow<'a, str>),
    Html(Cow<'a, [u8]>, Option<String>),
}

#[derive(Default)]
struct Walk<'a> {
    candidates: Vec<Candidate<'a>>,
    text_body: Vec<usize>,
    html_body: Vec<usize>,
    attachments: Vec<AttachData<'a>>,
}

/// Splits `raw` at the blank line ending its header block: (header block including the
/// blank line, body). Without a blank line everything is header.
pub fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    if let Some(rest) = raw
        .strip_prefix(b"\r\n")
        .or_else(|| raw.strip_prefix(b"\n"))
    {
        return (&raw[..raw.len() - rest.len()], rest);
    }
    let mut from = 0;
    while let Some(i) = raw.get(from..).and_then(|r| memchr::memchr(b'\n', r)) {
        let at = from + i;
        match (raw.get(at + 1), raw.get(at + 2)) {
            (Some(b'\n'), _) => return (&raw[..at + 2], &raw[at + 2..]),
            (Some(b'\r'), Some(b'\n')) => return (&raw[..at + 3], &raw[at + 3..]),
            _ => from = at + 1,
        }
    }
    (raw, &[])
}

/// The parts of a multipart body delimited by `--boundary` lines (preamble and epilogue
/// dropped). `None` when no delimiter or no close delimiter is found.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Option<Vec<&'a [u8]>> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    // A delimiter starts a line with "--". The search is for '-' alone, which memchr
    // finds at memory speed in the bodies in between: base64 has no '-', and text has few;
    // a substring search would pick its own "rare" bytes of the boundary, which in base64
    // are everywhere.
    while let Some(i) = body.get(pos..).and_then(|b| memchr::memchr(b'-', b)) {
        let at = pos + i;
        if !body.get(at..).is_some_and(|b| b.starts_with(&delim)) {
            pos = at + 1;
            continue;
        }
        pos = at + delim.len();
        if at > 0 && body.get(at - 1) != Some(&b'\n') {
            // In mid-line: not a delimiter (RFC 2046 §5.1.1).
            continue;
        }
        // The line break before the delimiter belongs to the delimiter.
        let end = if at >= 2 && body.get(at - 2) == Some(&b'\r') {
            at - 2
        } else {
            at.saturating_sub(1)
        };
        let close = body.get(pos..pos + 2) == Some(b"--");
        let mut e = if close { pos + 2 } else { pos };
        while matches!(body.get(e), Some(b' ' | b'\t')) {
            e += 1;
        }
        let line_end = match (body.get(e), body.get(e + 1)) {
            (Some(b'\r'), Some(b'\n')) => e + 2,
            (Some(b'\n'), _) => e + 1,
            (None, _) => e,
            // "--boundaryX": a longer boundary, not ours.
            _ => continue,
        };
        if let Some(s) = start {
            parts.push(body.get(s..end.max(s))?);
        }
        if close {
            return Some(parts);
        }
        start = Some(line_end);
        pos = line_end;
    }
    None
}

enum Cte {
    Identity,
    Base64,
    QuotedPrintable,
}

fn transfer_encoding(h: Option<&Message<'_>>) -> Option<Cte> {
    let Some(v) = h.and_then(|h| h.content_transfer_encoding()) else {
        return Some(Cte::Identity);
    };
    let v = v.trim();
    Some(if v.eq_ignore_ascii_case("base64") {
        Cte::Base64
    } else if v.eq_ignore_ascii_case("quoted-printable") {
        Cte::QuotedPrintable
    } else if ["7bit", "8bit", "binary", ""]
        .iter()
        .any(|x| v.eq_ignore_ascii_case(x))
    {
        Cte::Identity
    } else {
        return None;
    })
}

fn decode_body<'a>(body: &'a [u8], cte: Cte) -> Option<Cow<'a, [u8]>> {
    Some(match cte {
        Cte::Identity => Cow::Borrowed(body),
        Cte::Base64 => Cow::Owned(decode::base64(body)?),
        Cte::QuotedPrintable => Cow::Owned(decode::quoted_printable(body)),
    })
}

fn is_utf8_label(cs: &str) -> bool {
    let cs = cs.trim();
    cs.eq_ignore_ascii_case("utf-8") || cs.eq_ignore_ascii_case("utf8")
}

/// Charsets whose ASCII bytes do not mean ASCII characters (UTF-7/16/32, the stateful
/// ISO-2022 family and HZ).
fn ascii_unsafe(cs: &str) -> bool {
    let l = cs.trim().to_ascii_lowercase();
    [
        "utf-7",
        "utf7",
        "utf-16",
        "utf16",
        "utf-32",
        "utf32",
        "hz",
        "unicode-1-1-utf-7",
    ]
    .iter()
    .any(|p| l.starts_with(p))
        || l.contains("2022")
}

/// Decodes text bytes in `charset` to UTF-8, borrowing when they already are.
pub fn to_text<'a>(bytes: Cow<'a, [u8]>, charset: Option<&str>) -> Cow<'a, str> {
    let decoder = charset
        .filter(|cs| !is_utf8_label(cs))
        .and_then(|cs| charset_decoder(cs.trim().as_bytes()));
    if let (Some(dec), Some(cs)) = (decoder, charset)
        && (ascii_unsafe(cs) || !bytes.is_ascii())
    {
        return Cow::Owned(dec(&bytes));
    }
    match bytes {
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(b),
        },
        Cow::Owned(v) => Cow::Owned(
            String::from_utf8(v)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    }
}

fn mime_name(h: Option<&Message<'_>>) -> String {
    h.and_then(|h| h.content_type())
        .map(|c| match c.subtype() {
            Some(s) => format!("{}/{}", c.ctype(), s),
            None => c.ctype().to_string(),
        })
        .unwrap_or_else(|| "text/plain".to_string())
        .to_ascii_lowercase()
}

fn attach_meta(
    h: Option<&Message<'_>>,
    default_mime: &str,
) -> (Option<String>, String, Option<String>, bool) {
    let mime = if h.and_then(|h| h.content_type()).is_some() {
        mime_name(h)
    } else {
        default_mime.to_string()
    };
    let content_id = h.and_then(|h| h.content_id()).map(|c| {
        c.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string()
    });
    let inline = h
        .and_then(|h| h.content_disposition())
        .map(|c| c.ctype().eq_ignore_ascii_case("inline"))
        .unwrap_or(content_id.is_some());
    let name = h.and_then(|h| h.attachment_name()).map(str::to_string);
    (name, mime, content_id, inline)
}

impl<'a> Walk<'a> {
    /// Walks one part: `raw` is its header block and body (`has_headers`) or its body
    /// only; `headers`, when given, are its header block already parsed (the message's).
    fn part(
        &mut self,
        raw: &'a [u8],
        has_headers: bool,
        headers: Option<&Message<'a>>,
        st: &mut Container,
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let (head, body) = if has_headers {
            split_header(raw)
        } else {
            (&raw[..0], raw)
        };
        let parsed = if headers.is_some() || head.iter().all(|b| b.is_ascii_whitespace()) {
            None
        } else {
            Some(part_parser().parse_headers(head)?)
        };
        let h = headers.or(parsed.as_ref());
        st.parts += 1;
        let ct = h.and_then(|h| h.content_type());
        let (kind, multipart, inline_kind, is_text) = classify(ct, st.kind);
        if multipart {
            let boundary = ct.and_then(|c| c.attribute("boundary"))?;
            let children = split_multipart(body, boundary.as_bytes())?;
            let mut inner = Container {
                kind,
                in_alternative: st.in_alternative || kind == Kind::Alternative,
                need_text: st.need_text,
                need_html: st.need_html,
                parts: 0,
            };
            let (t0, h0) = (self.text_body.len(), self.html_body.len());
            for c in children {
                self.part(c, true, None, &mut inner, depth + 1)?;
            }
            if kind == Kind::Alternative && inner.need_html && inner.need_text {
                let (t1, h1) = (self.text_body.len(), self.html_body.len());
                if t0 == t1 && h0 != h1 {
                    let extra: Vec<usize> = self.html_body.get(h0..)?.to_vec();
                    self.text_body.extend(extra);
                }
                if h0 == h1 && t0 != t1 {
                    let extra: Vec<usize> = self.text_body.get(t0..)?.to_vec();
                    self.html_body.extend(extra);
                }
            }
            return Some(());
        }
        let cte = transfer_encoding(h)?;
        if kind == Kind::Message {
            if !matches!(cte, Cte::Identity) {
                return None;
            }
            let nested = scan_at(body, depth + 1)?;
            let (name, mime, content_id, inline) = attach_meta(h, "message/rfc822");
            self.attachments.push(AttachData {
                name,
                mime,
                content_id,
                inline,
                body: AttachBody::Message(Box::new(nested)),
            });
            return Some(());
        }
        let bytes = decode_body(body, cte)?;
        let attachment_disp = h
            .and_then(|h| h.content_disposition())
            .is_some_and(|d| d.is_attachment());
        let is_inline = inline_kind
            && !attachment_disp
            && (st.parts == 1
                || st.kind != Kind::Related
                    && (kind == Kind::Inline || ct.is_none_or(|c| !c.has_attribute("name"))));
        let (add_html, add_text) = if st.kind == Kind::Alternative {
            match kind {
                Kind::TextHtml => (true, false),
                Kind::TextPlain => (false, true),
                _ => (false, false),
            }
        } else if is_inline {
            if st.in_alternative && (st.need_text || st.need_html) {
                match kind {
                    Kind::TextHtml => st.need_text = false,
                    Kind::TextPlain => st.need_html = false,
                    _ => {}
                }
            }
            (st.need_html, st.need_text)
        } else {
            (false, false)
        };
        let charset = ct.and_then(|c| c.attribute("charset"));
        if is_text {
            let is_html = kind == Kind::TextHtml;
            let to_attach = (!add_html && is_html) || (!add_text && !is_html);
            let attach_bytes = to_attach.then(|| bytes.clone());
            if add_html || add_text {
                let idx = self.candidates.len();
                self.candidates.push(if is_html {
                    Candidate::Html(bytes, charset.map(str::to_string))
                } else {
                    Candidate::Plain(to_text(bytes, charset))
                });
                if add_html {
                    self.html_body.push(idx);
                }
                if add_text {
                    self.text_body.push(idx);
                }
            }
            if let Some(b) = attach_bytes {
                let text = to_text(b, charset);
                let (name, mime, content_id, inline) = attach_meta(h, "application/octet-stream");
                self.attachments.push(AttachData {
                    name,
                    mime,
                    content_id,
                    inline,
                    body: AttachBody::Bytes(match text {
                        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
                    }),
                });
            }
        } else {
            let (name, mime, content_id, inline) = attach_meta(h, "application/octet-stream");
            self.attachments.push(AttachData {
                name,
                mime,
                content_id,
                inline,
                body: AttachBody::Bytes(bytes),
            });
        }
        Some(())
    }
}

fn scan_at(raw: &[u8], depth: usize) -> Option<MailData<'_>> {
    let (head, body) = split_header(raw);
    if body.is_empty() && !(head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n")) {
        // No blank line: not a message the scanner can split; mail-parser recovers it.
        return None;
    }
    let headers = parser().parse_headers(head)?;
    let mut d = header_fields(&headers, head);
    let mut walk = Walk::default();
    let mut root = Container {
        kind: Kind::Message,
        in_alternative: false,
        need_text: true,
        need_html: true,
        parts: 0,
    };
    walk.part(raw, true, Some(&headers), &mut root, depth)?;
    let Walk {
        mut candidates,
        text_body,
        html_body,
        attachments,
    } = walk;
    let html_idx = html_body
        .first()
        .copied()
        .filter(|&i| matches!(candidates.get(i), Some(Candidate::Html(..))));
    if let Some(&t) = text_body.first() {
        d.text = match candidates.get_mut(t)? {
            Candidate::Plain(s) => Some(std::mem::take(s)),
            Candidate::Html(b, cs) => Some(Cow::Owned(mail_parser::decoders::html::html_to_text(
                &to_text(Cow::Borrowed(b.as_ref()), cs.as_deref()),
            ))),
        };
    }
    if let Some(i) = html_idx
        && let Some(Candidate::Html(b, cs)) = candidates.get_mut(i)
    {
        let b = std::mem::take(b);
        let cp = cs.as_deref().and_then(codepage).unwrap_or(65001);
        d.html = Some(if cp == 65001 {
            let t = to_text(b, cs.as_deref());
            (
                match t {
                    Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                    Cow::Owned(s) => Cow::Owned(s.into_bytes()),
                },
                65001,
            )
        } else {
            (b, cp)
        });
    }
    d.attachments = attachments;
    Some(d)
}

/// Extracts the PST fields of `raw` with the fast path, or `None` when the message needs
/// mail-parser's full parser (see the module documentation).
pub fn scan(raw: &[u8]) -> Option<MailData<'_>> {
    scan_at(raw, 0)
}
