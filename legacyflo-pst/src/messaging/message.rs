//! Message objects ([MS-PST] §2.4.5, §2.4.6): PC, recipient TC, attachment TC and PCs.

use std::borrow::Cow;

use super::props::{
    address_search_key, encoded_subject, filetime, hash16, one_off_entry_id, split_subject,
};
use crate::error::Result;
use crate::ltp::pc::{Prop, write_pc};
use crate::ltp::tc::{Column, Row, write_tc};
use crate::ltp::{NodeCtx, Value, stored_size};
use crate::mime::{AttachBody, AttachData, MailData, Mailbox};
use crate::ndb::SubEntry;
use crate::ndb::alloc::NdbWriter;

/// Per-message flags from the source mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageMeta {
    /// `\Seen`: the message is marked read.
    pub read: bool,
    /// `\Flagged`: follow-up flag set.
    pub flagged: bool,
    /// Arrival time (unix seconds); used as delivery time when set.
    pub internal_date: Option<i64>,
}

/// Recipient table columns ([MS-PST] §2.4.5.3.1 plus SMTP address and order).
pub const RECIPIENT_COLUMNS: &[Column] = &[
    (0x0C15, 0x0003),
    (0x0E0F, 0x000B),
    (0x0FF9, 0x0102),
    (0x0FFE, 0x0003),
    (0x0FFF, 0x0102),
    (0x3001, 0x001F),
    (0x3002, 0x001F),
    (0x3003, 0x001F),
    (0x300B, 0x0102),
    (0x3900, 0x0003),
    (0x39FE, 0x001F),
    (0x39FF, 0x001F),
    (0x3A40, 0x000B),
    (0x5FF6, 0x001F),
];

/// Attachment table columns ([MS-PST] §2.4.6.1.1 plus long file name and MIME type).
pub const ATTACHMENT_COLUMNS: &[Column] = &[
    (0x0E20, 0x0003),
    (0x3704, 0x001F),
    (0x3705, 0x0003),
    (0x370B, 0x0003),
    (0x3707, 0x001F),
    (0x370E, 0x001F),
];

/// Contents table columns ([MS-PST] §2.4.4.5.1).
pub const CONTENTS_COLUMNS: &[Column] = &[
    (0x0017, 0x0003),
    (0x001A, 0x001F),
    (0x0036, 0x0003),
    (0x0037, 0x001F),
    (0x0039, 0x0040),
    (0x0042, 0x001F),
    (0x0057, 0x000B),
    (0x0058, 0x000B),
    (0x0070, 0x001F),
    (0x0071, 0x0102),
    (0x0E03, 0x001F),
    (0x0E04, 0x001F),
    (0x0E06, 0x0040),
    (0x0E07, 0x0003),
    (0x0E08, 0x0003),
    (0x0E17, 0x0003),
    (0x0E30, 0x0003),
    (0x0E33, 0x0014),
    (0x0E34, 0x0102),
    (0x0E38, 0x0003),
    (0x0E3C, 0x0102),
    (0x0E3D, 0x0102),
    (0x1097, 0x0003),
    (0x3008, 0x0040),
    (0x65C6, 0x0003),
];

/// What a folder's contents table needs of a message (kept in memory until `finish`, so
/// it is compact: the four strings share one allocation).
#[derive(Clone, Debug)]
pub struct ContentRow {
    /// Message NID (row id).
    pub nid: u32,
    /// PidTagMessageFlags.
    pub flags: i32,
    /// PidTagMessageSize.
    pub size: i32,
    /// PidTagImportance.
    pub importance: i32,
    /// PidTagSensitivity.
    pub sensitivity: i32,
    /// PidTagClientSubmitTime.
    pub submit: Option<i64>,
    /// PidTagMessageDeliveryTime (also last modification time).
    pub delivery: i64,
    /// Stored subject, sender name, DisplayTo, DisplayCc, concatenated.
    text: Box<str>,
    /// End offsets of the four strings in `text`.
    ends: [u32; 4],
}

impl ContentRow {
    /// A row from its fixed values and its strings (empty = absent).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        nid: u32,
        flags: i32,
        size: i32,
        importance: i32,
        sensitivity: i32,
        submit: Option<i64>,
        delivery: i64,
        strings: [&str; 4],
    ) -> ContentRow {
        let mut text = String::with_capacity(strings.iter().map(|s| s.len()).sum());
        let mut ends = [0u32; 4];
        for (e, s) in ends.iter_mut().zip(strings) {
            text.push_str(s);
            *e = text.len() as u32;
        }
        ContentRow {
            nid,
            flags,
            size,
            importance,
            sensitivity,
            submit,
            delivery,
            text: text.into_boxed_str(),
            ends,
        }
    }

    fn part(&self, i: usize) -> Option<&str> {
        let start = if i == 0 {
            0
        } else {
            *self.ends.get(i - 1)? as usize
        };
        let end = *self.ends.get(i)? as usize;
        self.text.get(start..end).filter(|s| !s.is_empty())
    }

    /// PidTagSubject as stored (with the prefix marker).
    pub fn subject(&self) -> Option<&str> {
        self.part(0)
    }

    /// PidTagSentRepresentingName.
    pub fn sender(&self) -> Option<&str> {
        self.part(1)
    }

    /// PidTagDisplayTo.
    pub fn display_to(&self) -> Option<&str> {
        self.part(2)
    }

    /// PidTagDisplayCc.
    pub fn display_cc(&self) -> Option<&str> {
        self.part(3)
    }

    /// PidTagConversationTopic: the normalized subject (derived from the stored subject).
    pub fn topic(&self) -> Option<&str> {
        let stored = self.subject()?;
        let mut c = stored.chars();
        c.next();
        c.next();
        let (_, normalized) = split_subject(c.as_str());
        (!normalized.is_empty()).then_some(normalized)
    }

    /// The contents-table row of this message.
    pub fn row(&self) -> Row<'_> {
        fn s(v: Option<&str>) -> Option<Value<'_>> {
            v.map(|x| Value::Str(Cow::Borrowed(x)))
        }
        let cells = CONTENTS_COLUMNS
            .iter()
            .map(|(id, _)| match id {
                0x0017 => Some(Value::I32(self.importance)),
                0x001A => Some(Value::Str(Cow::Borrowed("IPM.Note"))),
                0x0036 => Some(Value::I32(self.sensitivity)),
                0x0037 => s(self.subject()),
                0x0039 => self.submit.map(Value::Time),
                0x0042 => s(self.sender()),
                0x0070 => s(self.topic()),
                0x0E03 => s(self.display_cc()),
                0x0E04 => s(self.display_to()),
                0x0E06 => Some(Value::Time(self.delivery)),
                0x0E07 => Some(Value::I32(self.flags)),
                0x0E08 => Some(Value::I32(self.size)),
                0x0E17 => Some(Value::I32(0)),
                0x3008 => Some(Value::Time(self.delivery)),
                _ => None,
            })
            .collect();
        Row {
            id: self.nid,
            cells,
        }
    }
}

/// A message written to the file: its node blocks and its contents-table row.
pub struct Written {
    /// PC data tree.
    pub bid_data: u64,
    /// Subnode tree.
    pub bid_sub: u64,
    /// Contents-table row.
    pub row: ContentRow,
}

fn join_names(list: &[Mailbox]) -> String {
    list.iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn str_prop<'a>(props: &mut Vec<Prop<'a>>, id: u16, v: Option<&'a str>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        props.push((id, Value::Str(Cow::Borrowed(v))));
    }
}

/// Writes the recipient table; returns the stored size of its rows' properties.
fn write_recipients(ctx: &mut NodeCtx<'_>, mail: &MailData<'_>) -> Result<u64> {
    let all: Vec<(i32, &Mailbox)> = [(1, &mail.to), (2, &mail.cc), (3, &mail.bcc)]
        .into_iter()
        .flat_map(|(kind, list)| list.iter().map(move |m| (kind, m)))
        .collect();
    // Built first, so that the rows borrow them (each appears in two columns).
    let eids: Vec<Vec<u8>> = all
        .iter()
        .map(|(_, m)| one_off_entry_id(&m.name, &m.address))
        .collect();
    let keys: Vec<Vec<u8>> = all
        .iter()
        .map(|(_, m)| address_search_key(&m.address))
        .collect();
    let mut rows = Vec::with_capacity(all.len());
    let mut size = 0u64;
    for (n, ((kind, m), (eid, key))) in all.iter().zip(eids.iter().zip(&keys)).enumerate() {
        let name = (!m.name.is_empty()).then_some(m.name.as_str());
        let address = (!m.address.is_empty()).then_some(m.address.as_str());
        let cells = RECIPIENT_COLUMNS
            .iter()
            .map(|(id, _)| match id {
                0x0C15 => Some(Value::I32(*kind)),
                0x0E0F => Some(Value::Bool(true)),
                0x0FF9 | 0x0FFF => Some(Value::Bin(Cow::Borrowed(eid.as_slice()))),
                0x0FFE => Some(Value::I32(6)),
                0x3001 | 0x39FF | 0x5FF6 => name.map(|v| Value::Str(Cow::Borrowed(v))),
                0x3002 => Some(Value::Str(Cow::Borrowed("SMTP"))),
                0x3003 | 0x39FE => address.map(|v| Value::Str(Cow::Borrowed(v))),
                0x300B => Some(Value::Bin(Cow::Borrowed(key.as_slice()))),
                0x3900 => Some(Value::I32(0)),
                0x3A40 => Some(Value::Bool(false)),
                _ => None,
            })
            .collect::<Vec<_>>();
        size += cells.iter().flatten().map(stored_size).sum::<u64>();
        rows.push(Row {
            id: n as u32,
            cells,
        });
    }
    let mut sub = NodeCtx::new(ctx.ndb);
    let bid = write_tc(&mut sub, RECIPIENT_COLUMNS, rows.into_iter())?;
    let bid_sub = sub.ndb.write_subnodes(&mut sub.subs)?;
    ctx.subs.push(SubEntry {
        nid: 0x692,
        bid_data: bid,
        bid_sub,
    });
    Ok(size)
}

fn extension(name: &str) -> Option<&str> {
    let dot = name.rfind('.')?;
    let ext = &name[dot..];
    (ext.len() > 1 && ext.len() <= 16).then_some(ext)
}

/// Writes one attachment object; returns its NID, its attachment-table row and its
/// PidTagAttachSize.
fn write_attachment(
    ctx: &mut NodeCtx<'_>,
    a: &AttachData<'_>,
    meta: &MessageMeta,
) -> Result<(u32, Row<'static>, u64)> {
    let nid = ctx.new_nid(5);
    let mut sub = NodeCtx::new(ctx.ndb);
    let mut props: Vec<Prop<'_>> = Vec::new();
    let (method, name) = match &a.body {
        AttachBody::Bytes(b) => {
            props.push((0x3701, Value::Bin(Cow::Borrowed(b.as_ref()))));
            (1, a.name.clone())
        }
        AttachBody::Message(m) => {
            let mnid = sub.new_nid(4);
            let w = write_message_node(sub.ndb, m, meta, mnid)?;
            let size = w.row.size.max(0) as u32;
            sub.subs.push(SubEntry {
                nid: mnid,
                bid_data: w.bid_data,
                bid_sub: w.bid_sub,
            });
            props.push((0x3701, Value::Object(mnid, size)));
            let name = a.name.clone().or_else(|| m.subject.clone());
            (5, name)
        }
    };
    let name = name.filter(|n| !n.is_empty());
    if let Some(n) = &name {
        props.push((0x3704, Value::Str(Cow::Owned(n.clone()))));
        props.push((0x3707, Value::Str(Cow::Owned(n.clone()))));
        props.push((0x3001, Value::Str(Cow::Owned(n.clone()))));
        if let Some(ext) = extension(n) {
            props.push((0x3703, Value::Str(Cow::Owned(ext.to_string()))));
        }
    }
    props.push((0x3705, Value::I32(method)));
    props.push((0x370B, Value::I32(-1)));
    props.push((0x370E, Value::Str(Cow::Owned(a.mime.clone()))));
    if let Some(cid) = &a.content_id {
        props.push((0x3712, Value::Str(Cow::Owned(cid.clone()))));
    }
    let hidden = a.inline && a.content_id.is_some();
    props.push((0x3714, Value::I32(if hidden { 4 } else { 0 })));
    props.push((0x7FFE, Value::Bool(hidden)));
    // PidTagAttachSize: the sum of the attachment object's property sizes, itself included.
    let size =
        (props.iter().map(|p| stored_size(&p.1)).sum::<u64>() + 4).min(i32::MAX as u64) as i32;
    props.push((0x0E20, Value::I32(size)));
    let bid_data = write_pc(&mut sub, props)?;
    let bid_sub = sub.ndb.write_subnodes(&mut sub.subs)?;
    ctx.subs.push(SubEntry {
        nid,
        bid_data,
        bid_sub,
    });
    let ns = |v: &Option<String>| v.clone().map(|s| Value::Str(Cow::Owned(s)));
    let cells = ATTACHMENT_COLUMNS
        .iter()
        .map(|(id, _)| match id {
            0x0E20 => Some(Value::I32(size)),
            0x3704 | 0x3707 => ns(&name),
            0x3705 => Some(Value::I32(method)),
            0x370B => Some(Value::I32(-1)),
            0x370E => Some(Value::Str(Cow::Owned(a.mime.clone()))),
            _ => None,
        })
        .collect();
    Ok((nid, Row { id: nid, cells }, size as u64))
}

/// Writes a message node (PC + subnode tree) for `mail`; `nid` is only used as row id.
pub fn write_message_node(
    ndb: &mut NdbWriter,
    mail: &MailData<'_>,
    meta: &MessageMeta,
    nid: u32,
) -> Result<Written> {
    let mut ctx = NodeCtx::new(ndb);
    // Attachments first: they set the has-attachment flag.
    let mut att_rows = Vec::new();
    let mut att_size = 0u64;
    for a in &mail.attachments {
        let (_, row, size) = write_attachment(&mut ctx, a, meta)?;
        att_rows.push(row);
        att_size += size;
    }
    let has_attach = !att_rows.is_empty();
    if has_attach {
        let mut sub = NodeCtx::new(ctx.ndb);
        let bid = write_tc(&mut sub, ATTACHMENT_COLUMNS, att_rows.into_iter())?;
        let bid_sub = sub.ndb.write_subnodes(&mut sub.subs)?;
        ctx.subs.push(SubEntry {
            nid: 0x671,
            bid_data: bid,
            bid_sub,
        });
    }
    let recipients_size = write_recipients(&mut ctx, mail)?;

    let submit = mail.date.map(filetime);
    let delivery = filetime(
        meta.internal_date
            .or(mail.received)
            .or(mail.date)
            .unwrap_or(0),
    );
    let mut flags = 0;
    if meta.read {
        flags |= 0x1;
    }
    if has_attach {
        flags |= 0x10;
    }
    // Empty bodies are left out (a reader sees no body): libpff 20180714 fails on an
    // empty PidTagHtml ("missing value data"). Other zero-length values are stored as
    // Outlook stores them, HNID 0 (see `ltp::pc::store_var`).
    let text = mail.text.as_ref().filter(|t| !t.is_empty());
    let html = mail.html.as_ref().filter(|h| !h.0.is_empty());
    let subject = mail.subject.as_deref().map(encoded_subject);
    let (prefix, normalized) = mail
        .subject
        .as_deref()
        .map(split_subject)
        .unwrap_or(("", ""));
    let from = mail.from.as_ref();
    let sender = mail.sender.as_ref().or(from);
    let display_to = join_names(&mail.to);
    let display_cc = join_names(&mail.cc);
    let display_bcc = join_names(&mail.bcc);

    // Sized for every property below: no regrowth while they are pushed.
    let mut props: Vec<Prop<'_>> = Vec::with_capacity(48);
    props.extend([
        (0x001A, Value::Str(Cow::Borrowed("IPM.Note"))),
        (0x0017, Value::I32(mail.importance)),
        (0x0026, Value::I32(mail.priority)),
        (0x0036, Value::I32(mail.sensitivity)),
        (0x0E06, Value::Time(delivery)),
        (0x0E07, Value::I32(flags)),
        (0x0E17, Value::I32(0)),
        (0x0E1F, Value::Bool(false)),
        (0x3007, Value::Time(delivery)),
        (0x3008, Value::Time(delivery)),
        (0x3FDE, Value::I32(html.map_or(65001, |h| h.1))),
        (0x3FFD, Value::I32(65001)),
        (0x1016, Value::I32(if html.is_some() { 3 } else { 1 })),
    ]);
    // PidTagSearchKey: derived from the start of the header block, the Message-ID and
    // the NID (cheap; it only has to be unique).
    let head = mail.headers.as_bytes();
    let mut key_src = head.get(..512).unwrap_or(head).to_vec();
    key_src.extend_from_slice(mail.message_id.as_deref().unwrap_or("").as_bytes());
    key_src.extend_from_slice(&nid.to_le_bytes());
    props.push((0x300B, Value::Bin(Cow::Owned(hash16(&key_src).to_vec()))));
    if let Some(t) = submit {
        props.push((0x0039, Value::Time(t)));
    }
    if meta.flagged {
        props.push((0x1090, Value::I32(2)));
    }
    str_prop(&mut props, 0x0037, subject.as_deref());
    str_prop(&mut props, 0x003D, Some(prefix));
    str_prop(&mut props, 0x0E1D, Some(normalized));
    str_prop(&mut props, 0x0070, Some(normalized));
    str_prop(&mut props, 0x0E04, Some(&display_to));
    str_prop(&mut props, 0x0E03, Some(&display_cc));
    str_prop(&mut props, 0x0E02, Some(&display_bcc));
    if let Some(f) = from {
        str_prop(&mut props, 0x0042, Some(&f.name));
        str_prop(&mut props, 0x0065, Some(&f.address));
        str_prop(&mut props, 0x0064, Some("SMTP"));
        str_prop(&mut props, 0x5D02, Some(&f.address));
        props.push((
            0x0041,
            Value::Bin(Cow::Owned(one_off_entry_id(&f.name, &f.address))),
        ));
        props.push((
            0x003B,
            Value::Bin(Cow::Owned(address_search_key(&f.address))),
        ));
    }
    if let Some(s) = sender {
        str_prop(&mut props, 0x0C1A, Some(&s.name));
        str_prop(&mut props, 0x0C1F, Some(&s.address));
        str_prop(&mut props, 0x0C1E, Some("SMTP"));
        str_prop(&mut props, 0x5D01, Some(&s.address));
        props.push((
            0x0C19,
            Value::Bin(Cow::Owned(one_off_entry_id(&s.name, &s.address))),
        ));
        props.push((
            0x0C1D,
            Value::Bin(Cow::Owned(address_search_key(&s.address))),
        ));
    }
    str_prop(&mut props, 0x007D, Some(&mail.headers));
    str_prop(&mut props, 0x1035, mail.message_id.as_deref());
    str_prop(&mut props, 0x1042, mail.in_reply_to.as_deref());
    str_prop(&mut props, 0x1039, mail.references.as_deref());
    if let Some(t) = text {
        props.push((0x1000, Value::Str(Cow::Borrowed(t.as_ref()))));
    }
    if let Some(h) = html {
        props.push((0x1013, Value::Bin(Cow::Borrowed(h.0.as_ref()))));
    }
    // PidTagMessageSize: the sum of the sizes of the message's properties (itself
    // included), its recipients' and its attachments' ([MS-OXCMSG] §2.2.1.7).
    let size =
        (props.iter().map(|p| stored_size(&p.1)).sum::<u64>() + 4 + recipients_size + att_size)
            .min(i32::MAX as u64) as i32;
    props.push((0x0E08, Value::I32(size)));
    let bid_data = write_pc(&mut ctx, props)?;
    let bid_sub = ctx.ndb.write_subnodes(&mut ctx.subs)?;
    let row = ContentRow::new(
        nid,
        flags,
        size,
        mail.importance,
        mail.sensitivity,
        submit,
        delivery,
        [
            subject.as_deref().unwrap_or(""),
            from.map(|f| f.name.as_str()).unwrap_or(""),
            &display_to,
            &display_cc,
        ],
    );
    Ok(Written {
        bid_data,
        bid_sub,
        row,
    })
}
