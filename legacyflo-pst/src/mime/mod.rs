//! MIME to the fields a PST message keeps: the fast own scanner ([`scan`]) first,
//! mail-parser's full parser for what the scanner does not handle.

pub mod decode;
pub mod scan;

pub use scan::split_header;

use std::borrow::Cow;

use mail_parser::{Address, HeaderName, Message, MessageParser, MimeHeaders, PartType};

/// A name and SMTP address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mailbox {
    /// Display name (the address when the header had none).
    pub name: String,
    /// SMTP address (may be empty for malformed headers).
    pub address: String,
}

/// What an attachment holds.
pub enum AttachBody<'a> {
    /// Bytes, stored by value.
    Bytes(Cow<'a, [u8]>),
    /// A `message/rfc822` part, stored as an embedded message.
    Message(Box<MailData<'a>>),
}

/// One attachment.
pub struct AttachData<'a> {
    /// File name, if any.
    pub name: Option<String>,
    /// MIME type, e.g. `image/png`.
    pub mime: String,
    /// Content-ID without angle brackets.
    pub content_id: Option<String>,
    /// Inline (Content-Disposition inline, or referenced by Content-ID).
    pub inline: bool,
    /// The data.
    pub body: AttachBody<'a>,
}

/// The fields of a message as stored in a PST.
#[derive(Default)]
pub struct MailData<'a> {
    /// Decoded subject.
    pub subject: Option<String>,
    /// From.
    pub from: Option<Mailbox>,
    /// Sender (when different from From).
    pub sender: Option<Mailbox>,
    /// To recipients.
    pub to: Vec<Mailbox>,
    /// Cc recipients.
    pub cc: Vec<Mailbox>,
    /// Bcc recipients.
    pub bcc: Vec<Mailbox>,
    /// Date header, unix seconds.
    pub date: Option<i64>,
    /// First Received: date, unix seconds.
    pub received: Option<i64>,
    /// Message-ID with angle brackets.
    pub message_id: Option<String>,
    /// In-Reply-To as written.
    pub in_reply_to: Option<String>,
    /// References as written.
    pub references: Option<String>,
    /// The header block as written.
    pub headers: String,
    /// Plain text body.
    pub text: Option<Cow<'a, str>>,
    /// HTML body bytes and their Windows code page (PidTagInternetCodepage): the
    /// original charset when it is known, else UTF-8 (65001).
    pub html: Option<(Cow<'a, [u8]>, i32)>,
    /// 0 low, 1 normal, 2 high.
    pub importance: i32,
    /// -1 non-urgent, 0 normal, 1 urgent.
    pub priority: i32,
    /// 0 none, 1 personal, 2 private, 3 confidential.
    pub sensitivity: i32,
    /// Attachments in order.
    pub attachments: Vec<AttachData<'a>>,
    /// Parts that could not be decoded, with a reason.
    pub problems: Vec<String>,
}

fn mailboxes(a: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(a) = a else { return Vec::new() };
    a.iter()
        .map(|m| {
            let address = m.address().unwrap_or_default().trim().to_string();
            let name = m
                .name()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| address.clone());
            Mailbox { name, address }
        })
        .filter(|m| !m.name.is_empty() || !m.address.is_empty())
        .collect()
}

/// `b` as text, invalid UTF-8 replaced by U+FFFD (validated first: for the usual valid
/// header block that is several times faster than the lossy decoder's chunk walk).
fn text_lossy(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// The raw value of header `name`, its whitespace runs folded to one space. `name` is a
/// `HeaderName` built by the caller: a `&str` would be lower-cased into a new `String` on
/// every lookup. A name mail-parser knows must be given as its variant: `Other("Sensitivity")`
/// never equals `HeaderName::Sensitivity`.
fn raw_header(msg: &Message<'_>, name: HeaderName<'static>) -> Option<String> {
    msg.header_raw(name)
        .map(fold_whitespace)
        .filter(|v| !v.is_empty())
}

/// `v` with its whitespace runs (folding included) made one space, trimmed.
fn fold_whitespace(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for w in v.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// The header fields a PST keeps (subject, addresses, dates, ids, importance, priority,
/// sensitivity) from a message whose headers are parsed, and `head`, its raw header block.
pub fn header_fields(msg: &Message<'_>, head: &[u8]) -> MailData<'static> {
    let mut d = MailData {
        subject: msg.subject().map(str::to_string),
        importance: 1,
        ..MailData::default()
    };
    d.from = mailboxes(msg.from()).into_iter().next();
    d.sender = mailboxes(msg.sender()).into_iter().next();
    d.to = mailboxes(msg.to());
    d.cc = mailboxes(msg.cc());
    d.bcc = mailboxes(msg.bcc());
    d.date = msg.date().map(|t| t.to_timestamp());
    d.received = msg
        .received()
        .and_then(|r| r.date())
        .map(|t| t.to_timestamp())
        .or_else(|| {
            // Received left raw (the fast path): its date follows the last ';'.
            let raw = msg.header_raw(HeaderName::Received)?;
            let (_, date) = raw.rsplit_once(';')?;
            mail_parser::DateTime::parse_rfc822(&fold_whitespace(date)).map(|t| t.to_timestamp())
        });
    d.message_id = msg.message_id().map(|id| format!("<{id}>"));
    d.in_reply_to = raw_header(msg, HeaderName::InReplyTo);
    d.references = raw_header(msg, HeaderName::References);
    d.headers = text_lossy(head);
    let prio = raw_header(msg, HeaderName::Importance)
        .or_else(|| raw_header(msg, HeaderName::Other(Cow::Borrowed("X-Priority"))))
        .unwrap_or_default()
        .to_ascii_lowercase();
    (d.importance, d.priority) = match prio.trim() {
        p if p.starts_with("high") || p.starts_with('1') || p.starts_with('2') => (2, 1),
        p if p.starts_with("low") || p.starts_with('4') || p.starts_with('5') => (0, -1),
        _ => (1, 0),
    };
    d.sensitivity = match raw_header(msg, HeaderName::Sensitivity)
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "personal" => 1,
        "private" => 2,
        "company-confidential" => 3,
        _ => 0,
    };
    d
}

/// Extracts the PST fields of a parsed message.
pub fn extract<'a>(msg: &'a Message<'a>) -> MailData<'a> {
    let raw = msg.raw_message();
    let end = (msg.root_part().offset_body as usize).min(raw.len());
    let mut d = header_fields(msg, raw.get(..end).unwrap_or(raw));
    if msg.text_body_count() > 0 || msg.html_body_count() > 0 {
        d.text = msg.body_text(0);
    }
    if let Some(p) = msg.html_part(0)
        && let PartType::Html(h) = &p.body
    {
        d.html = Some(original_html(msg, p).unwrap_or((Cow::Borrowed(h.as_bytes()), 65001)));
    }
    for (i, part) in msg.parts.iter().enumerate() {
        if part.is_encoding_problem {
            d.problems.push(format!("part {i}: could not be decoded"));
        }
    }
    for part in msg.attachments() {
        let mime = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".to_string())
            .to_ascii_lowercase();
        let content_id = part.content_id().map(|c| {
            c.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        });
        let inline = part
            .content_disposition()
            .map(|c| c.ctype().eq_ignore_ascii_case("inline"))
            .unwrap_or(content_id.is_some());
        let body = match &part.body {
            PartType::Message(m) => AttachBody::Message(Box::new(extract(m))),
            PartType::Text(t) | PartType::Html(t) => AttachBody::Bytes(Cow::Borrowed(t.as_bytes())),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                AttachBody::Bytes(Cow::Borrowed(b.as_ref()))
            }
            PartType::Multipart(_) => continue,
        };
        d.attachments.push(AttachData {
            name: part.attachment_name().map(str::to_string),
            mime,
            content_id,
            inline,
            body,
        });
    }
    d
}

/// Windows code page of a MIME charset name (the ones Outlook maps).
pub fn codepage(charset: &str) -> Option<i32> {
    Some(match charset.trim().to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "us-ascii" | "ascii" => 65001,
        "iso-8859-1" | "latin1" => 28591,
        "iso-8859-2" => 28592,
        "iso-8859-15" => 28605,
        "windows-1250" => 1250,
        "windows-1251" => 1251,
        "windows-1252" => 1252,
        "shift_jis" | "shift-jis" | "sjis" => 932,
        "euc-jp" => 51932,
        "iso-2022-jp" => 50220,
        "gb2312" | "gbk" => 936,
        "big5" => 950,
        "euc-kr" | "ks_c_5601-1987" => 949,
        "koi8-r" => 20866,
        "koi8-u" => 21866,
        _ => return None,
    })
}

/// The HTML part's bytes in its own charset (transfer encoding undone), with the code page.
fn original_html<'a>(
    msg: &'a Message<'a>,
    part: &mail_parser::MessagePart<'a>,
) -> Option<(Cow<'a, [u8]>, i32)> {
    let cs = part.content_type()?.attribute("charset")?;
    let cp = codepage(cs)?;
    if cp == 65001 {
        return None;
    }
    let raw = msg
        .raw_message()
        .get(part.offset_body as usize..part.offset_end as usize)?;
    let cte = part
        .content_transfer_encoding()
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    let bytes = match cte.as_str() {
        "base64" => mail_parser::decoders::base64::base64_decode(raw)?,
        "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(raw)?
        }
        _ => raw.to_vec(),
    };
    Some((Cow::Owned(bytes), cp))
}

/// Fields for bytes `mail-parser` could not parse at all: the header block as transport
/// headers and the rest as plain text.
pub fn fallback(raw: &[u8]) -> MailData<'static> {
    let (head, body) = split_header(raw);
    let head = head
        .strip_suffix(b"\n")
        .map_or(head, |h| h.strip_suffix(b"\r").unwrap_or(h));
    MailData {
        headers: text_lossy(head),
        text: Some(Cow::Owned(String::from_utf8_lossy(body).into_owned())),
        importance: 1,
        problems: vec!["message could not be parsed as MIME; stored headers and raw body".into()],
        ..MailData::default()
    }
}

/// Parses `raw` and calls `f` with the extracted fields.
pub fn with_parsed<T>(raw: &[u8], f: impl FnOnce(&MailData<'_>) -> T) -> T {
    if let Some(d) = scan::scan(raw) {
        return f(&d);
    }
    let parsed = MessageParser::default().parse(raw);
    match parsed.as_ref() {
        Some(m) if !m.parts.is_empty() => f(&extract(m)),
        _ => f(&fallback(raw)),
    }
}
