//! The quickstart sample mailbox.

use crate::GenMessage;
use crate::blocks::{
    END_2024, START_2019, address_list, date_header, header_charset, html_of, letter, message_id,
    pdf_like, pick_text_encoding, png_like, quoted_block, random_attachment, received,
    subject_value,
};
use crate::encode::Charset;
use crate::mime::{Body, Cte, Header, Part, h, mailbox, message};
use crate::rng::Rng;
use crate::text::{Lang, OWNER, PEOPLE, Person, subjects};

/// Seed of the sample mailbox. Changing it (or the generator) changes `samples/mailbox`.
pub const SAMPLE_SEED: u64 = 0x1E6A_C7F1_0005_A3B1;

/// Size of the raw attachment of the one large sample message (base64 makes the
/// message about 5.5 MB).
pub const SAMPLE_BIG_ATTACHMENT: usize = 4_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Inbox,
    Invoices,
    Projects,
    Drafts,
    Archive,
    Unicode,
    Sent,
}

struct FolderPlan {
    path: &'static [&'static str],
    count: usize,
    role: Role,
    from: i64,
    to: i64,
}

const Q1_2023_START: i64 = 1_672_531_200; // 2023-01-01
const Q2_2023_START: i64 = 1_680_307_200; // 2023-04-01

const FOLDERS: &[FolderPlan] = &[
    FolderPlan {
        path: &["INBOX"],
        count: 110,
        role: Role::Inbox,
        from: START_2019,
        to: END_2024,
    },
    FolderPlan {
        path: &["INBOX", "Rechnungen"],
        count: 24,
        role: Role::Invoices,
        from: START_2019,
        to: END_2024,
    },
    FolderPlan {
        path: &["Projekte"],
        count: 18,
        role: Role::Projects,
        from: START_2019,
        to: END_2024,
    },
    FolderPlan {
        path: &["Projekte", "Entwürfe"],
        count: 12,
        role: Role::Drafts,
        from: START_2019,
        to: END_2024,
    },
    FolderPlan {
        path: &["Archiv", "2023", "Q1"],
        count: 36,
        role: Role::Archive,
        from: Q1_2023_START,
        to: Q2_2023_START,
    },
    FolderPlan {
        path: &["Ünïcødé", "日本語", "Ordner & Co"],
        count: 30,
        role: Role::Unicode,
        from: START_2019,
        to: END_2024,
    },
    FolderPlan {
        path: &["Sent"],
        count: 70,
        role: Role::Sent,
        from: START_2019,
        to: END_2024,
    },
];

/// The malformations in the sample, with the description reported by [`sample_malformed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Malformed {
    Garbage,
    NoDateNoId,
    UnclosedBoundary,
    HeaderWithoutColon,
    BareLf,
    InvalidUtf8Header,
}

impl Malformed {
    fn describe(self) -> &'static str {
        match self {
            Malformed::Garbage => {
                "garbage: no header section at all, 3000 random binary bytes (NUL, bare CR/LF) ending in LF"
            }
            Malformed::NoDateNoId => {
                "missing Date and Message-ID headers (otherwise a plain text message)"
            }
            Malformed::UnclosedBoundary => {
                "multipart/mixed whose closing boundary never comes; the base64 attachment is cut mid-line"
            }
            Malformed::HeaderWithoutColon => {
                "a line without a colon in the middle of the header section"
            }
            Malformed::BareLf => {
                "bare LF line endings throughout (no CR), otherwise well-formed multipart/alternative"
            }
            Malformed::InvalidUtf8Header => {
                "8-bit header bytes that are invalid UTF-8 (raw Latin-1 and a broken UTF-8 sequence in Subject and From)"
            }
        }
    }
}

/// (folder index, index within that folder's slots) of each malformed message.
const MALFORMED_AT: &[(usize, usize, Malformed)] = &[
    (0, 0, Malformed::Garbage),
    (0, 1, Malformed::NoDateNoId),
    (0, 2, Malformed::UnclosedBoundary),
    (0, 3, Malformed::HeaderWithoutColon),
    (4, 0, Malformed::BareLf),
    (5, 0, Malformed::InvalidUtf8Header),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Big,
    Bad(Malformed),
}

struct Slot {
    folder: usize,
    date: i64,
    kind: Kind,
}

#[derive(Clone)]
struct ThreadInfo {
    message_id: String,
    references: Vec<String>,
    subject: String,
    from: Person,
    lang: Lang,
    date: String,
}

struct Generated {
    folder: usize,
    seq: u64,
    msg: GenMessage,
    bad: Option<Malformed>,
}

/// The quickstart sample mailbox: 300 messages in 7 folders (some nested, some non-ASCII),
/// generated from [`SAMPLE_SEED`]. Deterministic: every call returns the same bytes.
///
/// Messages are grouped by folder and sorted by `internal_date` within a folder.
/// Contents: plain text in UTF-8, ISO-8859-1 (8bit and QP), Windows-1252, KOI8-R,
/// ISO-2022-JP and Shift_JIS (base64); HTML-only; multipart/alternative (some with
/// multipart/related inline images); multipart/mixed with PDF-, PNG-like and random binary
/// attachments and forwarded message/rfc822 parts; RFC 2047 subjects and names; To/Cc lists;
/// reply threads with In-Reply-To/References; dates 2019-2024 with the Date header equal to
/// `internal_date`; exactly one message over 5 MB (see [`SAMPLE_BIG_ATTACHMENT`]); body lines
/// starting with `From ` and `>From `; and the malformed messages listed by [`sample_malformed`].
pub fn sample_mailbox() -> Vec<GenMessage> {
    generate().into_iter().map(|g| g.msg).collect()
}

/// The malformed messages of [`sample_mailbox`]: (index in the returned vector, what is
/// wrong with it).
pub fn sample_malformed() -> Vec<(usize, &'static str)> {
    generate()
        .iter()
        .enumerate()
        .filter_map(|(i, g)| g.bad.map(|b| (i, b.describe())))
        .collect()
}

fn generate() -> Vec<Generated> {
    let mut rng = Rng::new(SAMPLE_SEED);
    let mut slots = Vec::new();
    for (fi, f) in FOLDERS.iter().enumerate() {
        for i in 0..f.count {
            let mut kind = Kind::Normal;
            if let Some((_, _, m)) = MALFORMED_AT.iter().find(|(a, b, _)| *a == fi && *b == i) {
                kind = Kind::Bad(*m);
            }
            if f.role == Role::Projects && i == 0 {
                kind = Kind::Big;
            }
            slots.push(Slot {
                folder: fi,
                date: rng.range_i64(f.from, f.to),
                kind,
            });
        }
    }
    // generate in chronological order so that replies follow their parents
    slots.sort_by_key(|s| (s.date, s.folder));
    let mut threads: Vec<ThreadInfo> = Vec::new();
    let mut out = Vec::with_capacity(slots.len());
    for (seq, slot) in slots.iter().enumerate() {
        let mut mrng = rng.fork();
        let seq = seq as u64;
        let Some(plan) = FOLDERS.get(slot.folder) else {
            continue;
        };
        let (raw, flags, bad) = match slot.kind {
            Kind::Bad(m) => (
                malformed(&mut mrng, m, slot.date, seq),
                vec!["\\Seen".to_owned()],
                Some(m),
            ),
            Kind::Big => (
                big_message(&mut mrng, slot.date, seq),
                vec!["\\Seen".to_owned(), "\\Flagged".to_owned()],
                None,
            ),
            Kind::Normal => {
                let (raw, info, flags) = normal(&mut mrng, plan.role, slot.date, seq, &threads);
                threads.push(info);
                (raw, flags, None)
            }
        };
        out.push(Generated {
            folder: slot.folder,
            seq,
            msg: GenMessage {
                folder: plan.path.iter().map(|s| (*s).to_owned()).collect(),
                raw,
                flags,
                internal_date: slot.date,
            },
            bad,
        });
    }
    out.sort_by_key(|g| (g.folder, g.msg.internal_date, g.seq));
    out
}

fn pick_person(rng: &mut Rng, role: Role) -> Person {
    let pool: Vec<Person> = match role {
        Role::Unicode => PEOPLE
            .iter()
            .copied()
            .filter(|p| matches!(p.lang, Lang::Ja | Lang::Ru | Lang::Fr))
            .collect(),
        Role::Invoices => PEOPLE
            .iter()
            .copied()
            .filter(|p| p.lang == Lang::De)
            .collect(),
        _ => PEOPLE.to_vec(),
    };
    rng.pick(&pool).copied().unwrap_or(OWNER)
}

fn others(rng: &mut Rng, n: usize, exclude: &str) -> Vec<Person> {
    let mut v: Vec<Person> = Vec::new();
    while v.len() < n {
        let Some(p) = rng.pick(PEOPLE).copied() else {
            break;
        };
        if p.addr != exclude && !v.iter().any(|q| q.addr == p.addr) {
            v.push(p);
        }
    }
    v
}

fn flag_set(rng: &mut Rng, role: Role) -> Vec<String> {
    let mut f = Vec::new();
    match role {
        Role::Sent => f.push("\\Seen"),
        Role::Drafts => {
            f.push("\\Draft");
            if rng.chance(50) {
                f.push("\\Seen");
            }
        }
        _ => {
            if rng.chance(75) {
                f.push("\\Seen");
            }
            if rng.chance(15) {
                f.push("\\Answered");
            }
            if rng.chance(10) {
                f.push("\\Flagged");
            }
        }
    }
    f.into_iter().map(str::to_owned).collect()
}

/// A well-formed message for `role`. Returns raw bytes, its thread info and flags.
fn normal(
    rng: &mut Rng,
    role: Role,
    date: i64,
    seq: u64,
    threads: &[ThreadInfo],
) -> (Vec<u8>, ThreadInfo, Vec<String>) {
    let outgoing = matches!(role, Role::Sent | Role::Drafts);
    let correspondent = pick_person(rng, role);
    let (from, to) = if outgoing {
        (OWNER, correspondent)
    } else {
        (correspondent, OWNER)
    };
    let lang = match role {
        Role::Invoices => Lang::De,
        _ if outgoing && rng.chance(50) => OWNER.lang,
        _ => correspondent.lang,
    };

    // reply to an earlier message?
    let reply_pct = match role {
        Role::Sent => 80,
        Role::Inbox | Role::Archive | Role::Unicode => 30,
        Role::Projects | Role::Drafts => 20,
        Role::Invoices => 0,
    };
    let parent = if !threads.is_empty() && rng.chance(reply_pct) {
        // prefer recent messages
        let n = threads.len();
        let back = rng.index(n.min(40));
        threads.get(n - 1 - back).cloned()
    } else {
        None
    };

    let (mut cs, mut cte) = match role {
        Role::Invoices if rng.chance(50) => (Charset::Latin1, Cte::Qp),
        _ => pick_text_encoding(rng, lang),
    };
    let base_subject = match role {
        Role::Invoices => {
            let n = rng.range(1000, 9999);
            match rng.below(3) {
                0 => format!("Rechnung Nr. {n}"),
                1 => format!("Ihre Rechnung {n} – Zahlungserinnerung"),
                _ => format!("Gutschrift zu Rechnung {n}"),
            }
        }
        _ => {
            let stem = rng.word(subjects(lang));
            if rng.chance(30) && lang != Lang::Ja {
                format!("{stem} #{}", rng.range(1, 500))
            } else {
                stem.to_owned()
            }
        }
    };
    let subject = match &parent {
        Some(p) => {
            let pre = if lang == Lang::De { "AW: " } else { "Re: " };
            if p.subject.starts_with("Re: ") || p.subject.starts_with("AW: ") {
                p.subject.clone()
            } else {
                format!("{pre}{}", p.subject)
            }
        }
        None => base_subject,
    };
    // when replying, write to the parent's author
    let to = match (&parent, outgoing) {
        (Some(p), true) if p.from.addr != OWNER.addr => p.from,
        _ => to,
    };
    let date_str = date_header(rng, date);
    let msg_id = message_id(rng, seq, from.addr);

    // body text
    let size = match rng.below(10) {
        0..=5 => rng.range(300, 1500),
        6..=8 => rng.range(1500, 5000),
        _ => rng.range(5000, 14000),
    } as usize;
    let from_lines = rng.chance(30);
    let mut text = letter(rng, lang, &to, &from, size, from_lines);
    if let Some(p) = &parent {
        text.push('\n');
        text.push_str(&quoted_block(rng, p.lang, &p.from, &p.date));
    }
    // a legacy charset that cannot represent the text (mixed languages in a reply) falls
    // back to UTF-8
    if !lossless(cs, &text) || !lossless(cs, &subject) {
        cs = Charset::Utf8;
        cte = Cte::Qp;
    }

    let mut headers: Vec<Header> = Vec::new();
    if !outgoing {
        headers.push(h("Return-Path", format!("<{}>", from.addr)));
        headers.push(received(rng, from.addr, to.addr, date));
    }
    headers.push(h("Date", &date_str));
    headers.push(h(
        "From",
        mailbox(from.name, from.addr, header_charset(&from, cs)),
    ));
    let mut to_list = vec![to];
    if rng.chance(25) {
        let n = rng.range(1, 4) as usize;
        to_list.extend(others(rng, n, from.addr));
    }
    if !(role == Role::Drafts && rng.chance(15)) {
        headers.push(h("To", address_list(&to_list, cs)));
    }
    if rng.chance(20) {
        let n = rng.range(1, 3) as usize;
        let cc = others(rng, n, from.addr);
        headers.push(h("Cc", address_list(&cc, cs)));
    }
    let raw_utf8 = cs == Charset::Utf8 && rng.chance(5);
    headers.push(h("Subject", subject_value(&subject, cs, raw_utf8)));
    headers.push(h("Message-ID", &msg_id));
    let mut references = Vec::new();
    if let Some(p) = &parent {
        references = p.references.clone();
        references.push(p.message_id.clone());
        if references.len() > 8 {
            references.drain(..references.len() - 8);
        }
        headers.push(h("In-Reply-To", &p.message_id));
        headers.push(h("References", references.join("\r\n ")));
    }
    if rng.chance(40) {
        let mailer = rng.word(&[
            "Mozilla Thunderbird 102.4",
            "Microsoft Outlook 16.0",
            "Apple Mail (2.3696)",
            "Roundcube Webmail/1.6.1",
            "Mutt/2.2.9",
        ]);
        headers.push(h("X-Mailer", mailer));
    }

    let shape = match role {
        Role::Invoices => 3,
        Role::Projects => [1u64, 2, 3, 3, 3, 4][rng.index(6)],
        Role::Drafts => 0,
        _ => [0u64, 0, 0, 0, 1, 2, 2, 3, 3, 5][rng.index(10)],
    };
    let body_root = match shape {
        // plain text
        0 => Part::text("plain", &text, cs, cte),
        // HTML only
        1 => Part::text(
            "html",
            &html_of(&text, &subject, None),
            Charset::Utf8,
            Cte::Qp,
        ),
        // multipart/alternative (sometimes with related inline image)
        2 => alternative(rng, &text, &subject, cs, cte),
        // multipart/mixed with attachments
        3 => {
            let mut parts = vec![if rng.chance(50) {
                Part::text("plain", &text, cs, cte)
            } else {
                alternative(rng, &text, &subject, cs, cte)
            }];
            if role == Role::Invoices {
                let name = if rng.chance(50) {
                    format!("Rechnung_{}.pdf", rng.range(2019, 2025))
                } else {
                    "Rechnung März.pdf".to_owned()
                };
                let sz = rng.range(8_000, 30_000) as usize;
                parts.push(Part::attachment(
                    "application/pdf",
                    &name,
                    &pdf_like(rng, sz),
                    rng.chance(50),
                ));
            } else {
                for _ in 0..rng.range(1, 3) {
                    let sz = rng.range(1_000, 40_000) as usize;
                    parts.push(random_attachment(rng, sz, lang));
                }
            }
            if rng.chance(20) {
                parts.push(csv_part(rng));
            }
            Part::multi("mixed", &boundary(rng), parts)
        }
        // forwarded message as message/rfc822
        4 => {
            let inner = forwarded_inner(rng, date);
            let fwd = Part {
                headers: vec![
                    h("Content-Type", "message/rfc822"),
                    h(
                        "Content-Disposition",
                        "attachment; filename=\"forwarded.eml\"",
                    ),
                    h("Content-Transfer-Encoding", "8bit"),
                ],
                body: Body::Leaf(inner),
            };
            Part::multi(
                "mixed",
                &boundary(rng),
                vec![Part::text("plain", &text, cs, cte), fwd],
            )
        }
        // newsletter: HTML-only with List-Id
        _ => {
            headers.push(h("List-Id", "Firmen-Newsletter <news.firma.example>"));
            headers.push(h(
                "List-Unsubscribe",
                "<mailto:unsubscribe@news.firma.example>",
            ));
            Part::text(
                "html",
                &html_of(&text, &subject, None),
                Charset::Utf8,
                Cte::Qp,
            )
        }
    };
    let raw = message(&headers, &body_root);
    let info = ThreadInfo {
        message_id: msg_id,
        references,
        subject,
        from,
        lang,
        date: date_str,
    };
    (raw, info, flag_set(rng, role))
}

fn boundary(rng: &mut Rng) -> String {
    format!(
        "----=_Part_{:08x}_{:016x}",
        rng.below(1 << 32),
        rng.next_u64()
    )
}

fn alternative(rng: &mut Rng, text: &str, subject: &str, cs: Charset, cte: Cte) -> Part {
    let plain = Part::text("plain", text, cs, cte);
    if rng.chance(25) {
        let cid = format!("logo.{:08x}@firma.example", rng.below(1 << 32));
        let html = Part::text(
            "html",
            &html_of(text, subject, Some(&cid)),
            Charset::Utf8,
            Cte::Qp,
        );
        let mut img = Part::attachment("image/png", "logo.png", &png_like(rng, 3000), false);
        img.headers = vec![
            h("Content-Type", "image/png; name=\"logo.png\""),
            h("Content-Disposition", "inline; filename=\"logo.png\""),
            h("Content-ID", format!("<{cid}>")),
            h("Content-Transfer-Encoding", "base64"),
        ];
        let related = Part::multi("related", &boundary(rng), vec![html, img]);
        Part::multi("alternative", &boundary(rng), vec![plain, related])
    } else {
        let html = Part::text(
            "html",
            &html_of(text, subject, None),
            Charset::Utf8,
            Cte::Qp,
        );
        Part::multi("alternative", &boundary(rng), vec![plain, html])
    }
}

fn csv_part(rng: &mut Rng) -> Part {
    let mut csv = String::from("Datum;Beschreibung;Betrag\n");
    for _ in 0..rng.range(5, 40) {
        let (y, m, d) = crate::encode::civil_from_days(rng.range_i64(17_900, 20_000));
        csv.push_str(&format!(
            "{y}-{m:02}-{d:02};Position {};{},{:02} €\n",
            rng.range(1, 99),
            rng.range(1, 5000),
            rng.below(100)
        ));
    }
    Part::attachment(
        "text/csv; charset=utf-8",
        "Umsätze.csv",
        crate::mime::crlf(&csv).as_bytes(),
        false,
    )
}

fn forwarded_inner(rng: &mut Rng, date: i64) -> Vec<u8> {
    let p = pick_person(rng, Role::Inbox);
    let earlier = date - rng.range_i64(3_600, 30 * 86_400);
    let headers = vec![
        h("Date", date_header(rng, earlier)),
        h("From", mailbox(p.name, p.addr, Charset::Utf8)),
        h("To", mailbox(OWNER.name, OWNER.addr, Charset::Utf8)),
        h(
            "Subject",
            subject_value(rng.word(subjects(p.lang)), Charset::Utf8, false),
        ),
        h("Message-ID", message_id(rng, 0, p.addr)),
    ];
    let text = letter(rng, p.lang, &OWNER, &p, 600, false);
    message(
        &headers,
        &Part::text("plain", &text, Charset::Utf8, Cte::EightBit),
    )
}

fn big_message(rng: &mut Rng, date: i64, seq: u64) -> Vec<u8> {
    let from = PEOPLE.get(4).copied().unwrap_or(OWNER);
    let headers = vec![
        h("Return-Path", format!("<{}>", from.addr)),
        received(rng, from.addr, OWNER.addr, date),
        h("Date", date_header(rng, date)),
        h("From", mailbox(from.name, from.addr, Charset::Utf8)),
        h("To", mailbox(OWNER.name, OWNER.addr, Charset::Utf8)),
        h(
            "Subject",
            subject_value("Präsentation final (große Datei)", Charset::Utf8, false),
        ),
        h("Message-ID", message_id(rng, seq, from.addr)),
    ];
    let text = letter(rng, Lang::De, &OWNER, &from, 400, false);
    let parts = vec![
        Part::text("plain", &text, Charset::Utf8, Cte::Qp),
        Part::attachment(
            "application/pdf",
            "Präsentation_final.pdf",
            &pdf_like(rng, SAMPLE_BIG_ATTACHMENT),
            false,
        ),
    ];
    message(&headers, &Part::multi("mixed", &boundary(rng), parts))
}

fn malformed(rng: &mut Rng, kind: Malformed, date: i64, seq: u64) -> Vec<u8> {
    let from = pick_person(rng, Role::Inbox);
    let date_str = date_header(rng, date);
    let msg_id = message_id(rng, seq, from.addr);
    let text = letter(rng, from.lang, &OWNER, &from, 500, false);
    match kind {
        Malformed::Garbage => {
            let mut v = rng.bytes(2999);
            // make sure there is a NUL, a bare CR and no header-looking start
            if let Some(b) = v.get_mut(0) {
                *b = 0;
            }
            if let Some(b) = v.get_mut(100) {
                *b = b'\r';
            }
            v.push(b'\n');
            v
        }
        Malformed::NoDateNoId => {
            let headers = vec![
                h("From", mailbox(from.name, from.addr, Charset::Utf8)),
                h("To", mailbox(OWNER.name, OWNER.addr, Charset::Utf8)),
                h("Subject", "Message without Date and Message-ID"),
            ];
            message(
                &headers,
                &Part::text("plain", &text, Charset::Utf8, Cte::EightBit),
            )
        }
        Malformed::UnclosedBoundary => {
            let headers = vec![
                h("Date", &date_str),
                h("From", mailbox(from.name, from.addr, Charset::Utf8)),
                h("To", mailbox(OWNER.name, OWNER.addr, Charset::Utf8)),
                h("Subject", "Broken MIME: the boundary is never closed"),
                h("Message-ID", &msg_id),
            ];
            let mut att = Part::attachment(
                "application/pdf",
                "truncated.pdf",
                &pdf_like(rng, 6000),
                false,
            );
            if let Body::Leaf(b) = &mut att.body {
                // cut in the middle of a base64 line
                b.truncate(b.len() / 2 + 17);
                b.extend_from_slice(b"\r\n");
            }
            let mut root = Part::multi(
                "mixed",
                "unclosed-boundary-0001",
                vec![
                    Part::text("plain", &text, Charset::Utf8, Cte::EightBit),
                    att,
                ],
            );
            if let Body::Multi { closed, .. } = &mut root.body {
                *closed = false;
            }
            message(&headers, &root)
        }
        Malformed::HeaderWithoutColon => {
            let mut raw = Vec::new();
            raw.extend_from_slice(format!("Date: {date_str}\r\n").as_bytes());
            raw.extend_from_slice(
                format!("From: {}\r\n", mailbox(from.name, from.addr, Charset::Utf8)).as_bytes(),
            );
            raw.extend_from_slice(
                format!("To: {}\r\n", mailbox(OWNER.name, OWNER.addr, Charset::Utf8)).as_bytes(),
            );
            raw.extend_from_slice(b"Subject: Header section with a line without colon\r\n");
            raw.extend_from_slice(b"This line has no colon and is not a valid header\r\n");
            raw.extend_from_slice(format!("Message-ID: {msg_id}\r\n").as_bytes());
            raw.extend_from_slice(b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
            raw.extend_from_slice(crate::mime::crlf(&text).as_bytes());
            raw
        }
        Malformed::BareLf => {
            let headers = vec![
                h("Date", &date_str),
                h("From", mailbox(from.name, from.addr, Charset::Utf8)),
                h("To", mailbox(OWNER.name, OWNER.addr, Charset::Utf8)),
                h("Subject", "Bare LF line endings"),
                h("Message-ID", &msg_id),
            ];
            let root = alternative(rng, &text, "Bare LF", Charset::Utf8, Cte::EightBit);
            let crlf = message(&headers, &root);
            let mut lf = Vec::with_capacity(crlf.len());
            let mut i = 0;
            while let Some(&b) = crlf.get(i) {
                if b == b'\r' && crlf.get(i + 1) == Some(&b'\n') {
                    i += 1;
                    continue;
                }
                lf.push(b);
                i += 1;
            }
            lf
        }
        Malformed::InvalidUtf8Header => {
            let mut raw = Vec::new();
            raw.extend_from_slice(format!("Date: {date_str}\r\n").as_bytes());
            raw.extend_from_slice(b"From: J\xfcrgen M\xfcller <juergen.mueller@firma.example>\r\n");
            raw.extend_from_slice(
                format!("To: {}\r\n", mailbox(OWNER.name, OWNER.addr, Charset::Utf8)).as_bytes(),
            );
            raw.extend_from_slice(
                b"Subject: Gr\xfc\xdfe \x80 100 \xc3\x28 invalid \xff\xfe UTF-8\r\n",
            );
            raw.extend_from_slice(format!("Message-ID: {msg_id}\r\n").as_bytes());
            raw.extend_from_slice(b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
            raw.extend_from_slice(&Charset::Latin1.encode(&crate::mime::crlf(&text)));
            raw
        }
    }
}

/// True when `cs` can represent every character of `text`.
fn lossless(cs: Charset, text: &str) -> bool {
    text.chars().all(|c| cs.can_encode(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::days_from_civil;
    use crate::text::JA_SUBJECTS;

    fn ymd(y: i64, m: u32, d: u32) -> i64 {
        days_from_civil(y, m, d) * 86_400
    }

    #[test]
    fn folder_date_constants() {
        assert_eq!(ymd(2019, 1, 1), START_2019);
        assert_eq!(ymd(2025, 1, 1), END_2024);
        assert_eq!(ymd(2023, 1, 1), Q1_2023_START);
        assert_eq!(ymd(2023, 4, 1), Q2_2023_START);
    }

    #[test]
    fn subjects_in_japanese_are_encodable() {
        for s in JA_SUBJECTS {
            assert!(lossless(Charset::Iso2022Jp, s));
            assert!(lossless(Charset::ShiftJis, s));
        }
    }
}
