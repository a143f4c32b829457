//! From frames to owned [`Reply`]s (on `imap_proto`), and the small codecs of the protocol:
//! dates, quoted strings, UID sets. Pure: no I/O.

use std::fmt::Write as _;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use imap_proto::types::{
    AttributeValue, Capability, MailboxDatum, NameAttribute, Response, ResponseCode, Status,
    UidSetMember,
};
use tracing::debug;

use super::framer::{Frame, FrameError, FrameLimits, Framer, RawResponse};
use super::{FetchItem, ListEntry, MailboxInfo};

/// A server response, owned.
#[derive(Debug)]
pub enum Reply {
    /// A tagged completion.
    Done {
        /// The tag.
        tag: String,
        /// OK / NO / BAD.
        status: Status,
        /// The response code, when imap-proto knows it.
        code: Option<ResponseCode<'static>>,
        /// The bracketed code as text (`AUTHENTICATIONFAILED`), also for codes imap-proto
        /// does not know.
        code_text: Option<String>,
        /// The human-readable text.
        text: String,
    },
    /// A `+` continuation request.
    Continue(String),
    /// An untagged FETCH.
    Fetch(FetchItem),
    /// Any other untagged response.
    Untagged(Response<'static>),
    /// An untagged response that announced literals over the size limit: its data was
    /// dropped as it arrived. What its text said before the literal is kept.
    Oversized {
        /// The message sequence number, when it is a FETCH.
        seq: Option<u32>,
        /// The UID, when the FETCH named it before the literal.
        uid: Option<u32>,
        /// The size announced.
        announced: u64,
        /// The limit it is over.
        limit: u64,
    },
    /// A response imap-proto could not parse (kept for logging), or one that held a large
    /// literal where no message body goes.
    Unparsed(Bytes),
}

/// Frames and parses `input` in one go: every reply, then the error that stopped the
/// framing if any. For fuzzing and tests: the client does the same as bytes arrive.
pub fn parse_responses(input: &[u8], limits: FrameLimits) -> (Vec<Reply>, Option<FrameError>) {
    let mut framer = Framer::new(limits);
    framer.feed(input);
    let mut out = Vec::new();
    loop {
        match framer.next_frame() {
            Ok(Some(f)) => out.push(parse_frame(f)),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Parses an IMAP date-time (`17-Jul-1996 02:44:25 -0700`).
pub fn parse_internal_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Formats an IMAP date-time in UTC.
pub fn format_internal_date(d: &DateTime<Utc>) -> String {
    d.format("%d-%b-%Y %H:%M:%S +0000").to_string()
}

/// A quoted string for a command argument (`"` and `\` escaped). Returns `None` when the
/// value needs a literal (CR, LF, NUL or non-ASCII).
pub fn quote(s: &str) -> Option<String> {
    if s.bytes()
        .any(|b| b == b'\r' || b == b'\n' || b == 0 || b >= 0x80)
    {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// A compact UID set (`1:5,7,9:12`) of ascending `uids`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}:{end}");
        }
        i += 1;
    }
    out
}

/// The UIDs of a set a server sent (`APPENDUID`, `COPYUID`), in order, refusing a set that
/// names more than `max` UIDs: a peer's range is never expanded beyond what was sent.
pub fn expand_set(set: &[UidSetMember], max: usize) -> Result<Vec<u32>, String> {
    let mut count: u64 = 0;
    for m in set {
        count = count.saturating_add(match m {
            UidSetMember::Uid(_) => 1,
            UidSetMember::UidRange(r) => u64::from(r.start().abs_diff(*r.end())) + 1,
        });
    }
    if count > max as u64 {
        return Err(format!(
            "the server's UID set names {count} UIDs for {max} message(s)"
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    for m in set {
        match m {
            UidSetMember::Uid(u) => out.push(*u),
            UidSetMember::UidRange(r) => {
                let (a, b) = (*r.start().min(r.end()), *r.start().max(r.end()));
                out.extend(a..=b);
            }
        }
    }
    Ok(out)
}

/// Parses one frame into an owned [`Reply`]; bodies are sliced from the frame, large ones
/// are the framer's spilled literals.
pub fn parse_frame(frame: Frame) -> Reply {
    match frame {
        Frame::Response(raw) => parse_response(raw),
        Frame::Search(uids) => Reply::Untagged(Response::MailboxData(MailboxDatum::Search(uids))),
        Frame::Oversized {
            prefix,
            announced,
            limit,
        } => {
            let (seq, uid) = fetch_numbers(&prefix);
            Reply::Oversized {
                seq,
                uid,
                announced,
                limit,
            }
        }
    }
}

/// `* <seq> FETCH (… UID <uid> …` → the numbers it names (before any literal).
fn fetch_numbers(prefix: &[u8]) -> (Option<u32>, Option<u32>) {
    let text = String::from_utf8_lossy(prefix);
    let mut words = text.split(|c: char| c.is_ascii_whitespace() || c == '(' || c == ')');
    if words.next() != Some("*") {
        return (None, None);
    }
    let seq = words.next().and_then(|w| w.parse().ok());
    if !words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("FETCH"))
    {
        return (None, None);
    }
    let rest: Vec<&str> = words.filter(|w| !w.is_empty()).collect();
    let uid = rest
        .windows(2)
        .find(|w| w[0].eq_ignore_ascii_case("UID"))
        .and_then(|w| w[1].parse().ok());
    (seq, uid)
}

fn parse_response(raw: RawResponse) -> Reply {
    let RawResponse { text, spilled } = raw;
    let parsed = imap_proto::parser::parse_response(&text);
    match parsed {
        Ok((_, resp)) => match resp {
            Response::Done {
                tag,
                status,
                code,
                information,
            } => {
                let info = information.map(|s| s.to_string()).unwrap_or_default();
                let (code_text, info) = split_code(code.as_ref(), info);
                Reply::Done {
                    tag: tag.0,
                    status,
                    code: code.map(ResponseCode::into_owned),
                    code_text,
                    text: info,
                }
            }
            Response::Continue { information, .. } => {
                Reply::Continue(information.map(|s| s.to_string()).unwrap_or_default())
            }
            Response::Fetch(seq, attrs) => {
                let (item, used) = fetch_item(&text, &spilled, seq, attrs);
                if used < spilled.len() {
                    return Reply::Unparsed(text);
                }
                Reply::Fetch(item)
            }
            _ if !spilled.is_empty() => Reply::Unparsed(text),
            other => Reply::Untagged(other.into_owned()),
        },
        Err(_) => fallback_parse(text),
    }
}

/// Splits a bracketed response code off the text when imap-proto did not know it.
pub(super) fn split_code(
    code: Option<&ResponseCode<'_>>,
    text: String,
) -> (Option<String>, String) {
    if let Some(c) = code {
        let name = match c {
            ResponseCode::TryCreate => "TRYCREATE",
            ResponseCode::ReadOnly => "READ-ONLY",
            ResponseCode::AppendUid(..) => "APPENDUID",
            _ => "",
        };
        return ((!name.is_empty()).then(|| name.to_string()), text);
    }
    if let Some(rest) = text.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        let inner = &rest[..end];
        let name = inner.split_whitespace().next().unwrap_or("").to_string();
        return (Some(name), rest[end + 1..].trim_start().to_string());
    }
    (None, text)
}

/// What imap-proto cannot parse: tagged completions are recognised by hand so a strange
/// completion never hangs a command; other lines are kept raw.
fn fallback_parse(frame: Bytes) -> Reply {
    let text = String::from_utf8_lossy(&frame);
    let line = text.trim_end_matches(['\r', '\n']);
    let mut it = line.splitn(3, ' ');
    let tag = it.next().unwrap_or("");
    let status = it.next().unwrap_or("").to_ascii_uppercase();
    let rest = it.next().unwrap_or("").to_string();
    if tag == "+" {
        return Reply::Continue(line.get(2..).unwrap_or("").to_string());
    }
    if tag != "*" && !tag.is_empty() {
        let status = match status.as_str() {
            "OK" => Some(Status::Ok),
            "NO" => Some(Status::No),
            "BAD" => Some(Status::Bad),
            _ => None,
        };
        if let Some(status) = status {
            let (code_text, text) = split_code(None, rest);
            return Reply::Done {
                tag: tag.to_string(),
                status,
                code: None,
                code_text,
                text,
            };
        }
    }
    if tag == "*" && status == "BYE" {
        return Reply::Untagged(Response::Data {
            status: Status::Bye,
            code: None,
            information: Some(rest.into()),
        });
    }
    debug!(message = "unparsed response", line = %line.chars().take(200).collect::<String>());
    Reply::Unparsed(frame)
}

/// The bytes of `data` as a slice of `frame` (no copy), or the spilled literal an empty
/// slice at a placeholder stands for (and its index).
fn slice_of(
    frame: &Bytes,
    spilled: &[(usize, Bytes)],
    data: std::borrow::Cow<'_, [u8]>,
) -> (Bytes, Option<usize>) {
    match data {
        std::borrow::Cow::Borrowed(s) => {
            let base = frame.as_ptr() as usize;
            let start = (s.as_ptr() as usize).wrapping_sub(base);
            if start <= frame.len() && start + s.len() <= frame.len() {
                if s.is_empty()
                    && let Some(i) = spilled.iter().position(|(at, _)| *at == start)
                {
                    return (spilled[i].1.clone(), Some(i));
                }
                (frame.slice(start..start + s.len()), None)
            } else {
                (Bytes::copy_from_slice(s), None)
            }
        }
        std::borrow::Cow::Owned(v) => (Bytes::from(v), None),
    }
}

/// The FETCH item, and how many spilled literals it used as bodies.
fn fetch_item(
    frame: &Bytes,
    spilled: &[(usize, Bytes)],
    seq: u32,
    attrs: Vec<AttributeValue<'_>>,
) -> (FetchItem, usize) {
    let mut item = FetchItem {
        seq,
        ..FetchItem::default()
    };
    let mut used = 0;
    for a in attrs {
        match a {
            AttributeValue::BodySection { data, .. }
            | AttributeValue::Rfc822(data)
            | AttributeValue::Rfc822Header(data) => {
                // `NIL` is no body at all (a server that could not read the message), not
                // an empty one.
                item.body = data.map(|d| {
                    let (b, spill) = slice_of(frame, spilled, d);
                    used += usize::from(spill.is_some());
                    b
                });
            }
            AttributeValue::Uid(u) => item.uid = Some(u),
            AttributeValue::Flags(f) => item.flags = f.iter().map(|s| s.to_string()).collect(),
            AttributeValue::InternalDate(d) => item.internal_date = parse_internal_date(&d),
            AttributeValue::Rfc822Size(n) => item.size = Some(n),
            AttributeValue::GmailLabels(l) => {
                item.gmail_labels = l
                    .iter()
                    .map(|s| legacyflo_core::codec::mutf7_decode(s))
                    .collect()
            }
            AttributeValue::GmailMsgId(id) => item.gmail_msgid = Some(id),
            _ => {}
        }
    }
    (item, used)
}

/// Capabilities as upper-case strings (`AUTH=PLAIN`).
pub(super) fn caps_to_strings(c: &[Capability<'_>]) -> Vec<String> {
    c.iter()
        .map(|c| match c {
            Capability::Imap4rev1 => "IMAP4REV1".to_string(),
            Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
            Capability::Atom(a) => a.to_ascii_uppercase(),
        })
        .collect()
}

/// What a `STATUS` answer says.
pub(super) fn mailbox_info(status: &[imap_proto::types::StatusAttribute]) -> MailboxInfo {
    let mut info = MailboxInfo::default();
    for a in status {
        match a {
            imap_proto::types::StatusAttribute::UidValidity(v) => info.uid_validity = *v,
            imap_proto::types::StatusAttribute::UidNext(v) => info.uid_next = *v,
            imap_proto::types::StatusAttribute::Messages(v) => info.exists = *v,
            _ => {}
        }
    }
    info
}

/// A `LIST` answer as a [`ListEntry`]; `None` for any other reply.
pub(super) fn list_entry(r: &Reply) -> Option<ListEntry> {
    let Reply::Untagged(Response::MailboxData(MailboxDatum::List {
        name_attributes,
        delimiter,
        name,
    })) = r
    else {
        return None;
    };
    let mut noselect = false;
    let mut special_use = None;
    let mut attributes = Vec::new();
    for a in name_attributes {
        let s = match a {
            NameAttribute::NoSelect => {
                noselect = true;
                "\\Noselect".to_string()
            }
            NameAttribute::NoInferiors => "\\Noinferiors".into(),
            NameAttribute::Marked => "\\Marked".into(),
            NameAttribute::Unmarked => "\\Unmarked".into(),
            NameAttribute::All => "\\All".into(),
            NameAttribute::Archive => "\\Archive".into(),
            NameAttribute::Drafts => "\\Drafts".into(),
            NameAttribute::Flagged => "\\Flagged".into(),
            NameAttribute::Junk => "\\Junk".into(),
            NameAttribute::Sent => "\\Sent".into(),
            NameAttribute::Trash => "\\Trash".into(),
            NameAttribute::Extension(e) => e.to_string(),
            #[allow(unreachable_patterns)]
            _ => continue,
        };
        let lower = s.to_ascii_lowercase();
        if lower == "\\nonexistent" {
            noselect = true;
        }
        if matches!(
            lower.as_str(),
            "\\all"
                | "\\archive"
                | "\\drafts"
                | "\\flagged"
                | "\\junk"
                | "\\sent"
                | "\\trash"
                | "\\important"
        ) {
            special_use = Some(s.clone());
        }
        attributes.push(s);
    }
    let raw_name = name.to_string();
    Some(ListEntry {
        name: legacyflo_core::codec::mutf7_decode(&raw_name),
        raw_name,
        delimiter: delimiter.as_ref().and_then(|d| d.chars().next()),
        noselect,
        special_use,
        attributes,
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appenduid_sets_are_expanded_only_as_far_as_sent() {
        let range = |a, b| UidSetMember::UidRange(a..=b);
        assert_eq!(expand_set(&[range(10, 12)], 3), Ok(vec![10, 11, 12]));
        assert_eq!(expand_set(&[UidSetMember::Uid(7)], 1), Ok(vec![7]));
        let e = expand_set(&[range(1, u32::MAX)], 3).unwrap_err();
        assert!(e.contains("4294967295 UIDs for 3"), "{e}");
        assert!(expand_set(&[range(5, 4), UidSetMember::Uid(9)], 2).is_err());
    }

    #[test]
    fn oversized_fetches_name_their_uid() {
        assert_eq!(
            fetch_numbers(b"* 12 FETCH (UID 345 BODY[] {999}\r\n"),
            (Some(12), Some(345))
        );
        assert_eq!(
            fetch_numbers(b"* 12 FETCH (BODY[] {999}\r\n"),
            (Some(12), None)
        );
        assert_eq!(fetch_numbers(b"* LIST () \"/\" {99}\r\n"), (None, None));
    }

    #[test]
    fn nil_bodies_are_none_and_spilled_literals_are_found_again() {
        let limits = FrameLimits {
            literal: legacyflo_core::spill::SpillLimits {
                max_bytes: 1 << 20,
                memory_threshold: 4,
            },
            ..FrameLimits::default()
        };
        let (replies, err) = parse_responses(
            b"* 1 FETCH (UID 3 BODY[] NIL)\r\n* 2 FETCH (UID 4 BODY[] {10}\r\n0123456789)\r\n* LIST () \"/\" {6}\r\nabcdef\r\n",
            limits,
        );
        assert!(err.is_none());
        match &replies[..] {
            [Reply::Fetch(a), Reply::Fetch(b), Reply::Unparsed(_)] => {
                assert_eq!((a.uid, a.body.clone()), (Some(3), None));
                assert_eq!(b.body.as_deref(), Some(&b"0123456789"[..]));
            }
            other => panic!("{other:?}"),
        }
    }
}
