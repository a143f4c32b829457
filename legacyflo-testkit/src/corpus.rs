//! Test messages: edge cases, the sample mailbox and generated corpora as [`Message`]s.

use chrono::{TimeZone, Utc};
use legacyflo_core::{Flag, FolderPath, Message};

/// Converts a generated message into a [`Message`] with `source_id`.
pub fn from_generated(g: legacyflo_corpus::GenMessage, source_id: String) -> Message {
    let mut m = Message::new(g.raw, FolderPath::new(g.folder), source_id);
    m.flags = g.flags.iter().filter_map(|f| Flag::from_imap(f)).collect();
    m.internal_date = Utc.timestamp_opt(g.internal_date, 0).single();
    m
}

/// The quickstart sample mailbox (about 300 messages, nested and non-ASCII folders, one
/// message over 5 MB, a few malformed ones).
pub fn sample() -> Vec<Message> {
    legacyflo_corpus::sample_mailbox()
        .into_iter()
        .enumerate()
        .map(|(i, g)| from_generated(g, format!("s{i}")))
        .collect()
}

/// `n` generated messages with the realistic size mix, from `seed`.
pub fn generated(n: usize, seed: u64) -> Vec<Message> {
    let spec = legacyflo_corpus::CorpusSpec {
        seed,
        messages: n,
        total_bytes: None,
        big_attachments: 0,
        folders: 6,
    };
    legacyflo_corpus::bench_corpus(&spec)
        .enumerate()
        .map(|(i, g)| from_generated(g, format!("g{i}")))
        .collect()
}

fn msg(folder: &[&str], id: &str, raw: Vec<u8>, flags: Vec<Flag>, ts: i64) -> Message {
    let mut m = Message::new(raw, FolderPath::new(folder.iter().copied()), id);
    m.flags = flags;
    m.internal_date = Utc.timestamp_opt(ts, 0).single();
    m
}

/// The awkward messages every backend must carry unchanged: empty, 8-bit, LF-only,
/// CRLF, no trailing newline, `From ` lines in the body, NUL bytes, a 12 MB message, no
/// headers at all, in folders with non-ASCII names, `&`, `.` and spaces.
pub fn edge_cases() -> Vec<Message> {
    let mut big = b"From: big@example.test\r\nSubject: big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while big.len() < 12 * 1024 * 1024 {
        big.extend_from_slice(line);
    }
    vec![
        msg(&["INBOX"], "e1", b"From: a@example.test\r\nSubject: plain CRLF\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\nMessage-ID: <e1@x>\r\n\r\nHello\r\n".to_vec(), vec![Flag::Seen], 1672653600),
        msg(&["INBOX"], "e2", b"From: a@example.test\nSubject: LF only\n\nline one\nline two\n".to_vec(), vec![], 1672740000),
        msg(&["INBOX"], "e3", b"Subject: no trailing newline\r\n\r\nlast line".to_vec(), vec![Flag::Flagged, Flag::Answered], 1672826400),
        msg(&["INBOX"], "e4", b"Subject: from lines\r\n\r\nFrom here on\r\n>From quoted\r\n>>From twice\r\nFrom \r\n\r\nFrom the end\r\n".to_vec(), vec![], 1672912800),
        msg(&["INBOX"], "e5", Vec::new(), vec![], 1672999200),
        msg(&["Ünïcødé", "日本語", "Ordner & Co"], "e6", "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln — 日本語\r\n".as_bytes().to_vec(), vec![Flag::Seen, Flag::Keyword("$Forwarded".into())], 1673085600),
        msg(&["Ünïcødé", "日本語", "Ordner & Co"], "e7", b"Subject: latin1 8bit\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe \xe0 tous\r\n".to_vec(), vec![], 1673172000),
        msg(&["Projekte", "v1.2 release"], "e8", b"Subject: binary junk\r\n\r\n\x00\x01\x02\xff\xfe\r\n\x00\r\n".to_vec(), vec![Flag::Draft], 1673258400),
        msg(&["Projekte", "v1.2 release"], "e9", b"\x89PNG\r\n\x1a\n this is not a mail at all \x00\xff".to_vec(), vec![], 1673344800),
        msg(&["Big mail"], "e10", big, vec![Flag::Seen], 1673431200),
        msg(&["INBOX"], "e11", b"Subject: mixed endings\r\n\nline\rline\r\n\n".to_vec(), vec![], 1673517600),
    ]
}
