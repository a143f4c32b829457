//! The fast MIME path (`mime::scan`) stores the same fields as mail-parser's full parse,
//! on every generated corpus and on hand-made edge cases (charsets, QP, base64, nested
//! multiparts, embedded messages, malformed structure).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Write as _;

use legacyflo_pst::mime::{AttachBody, MailData, extract, scan::scan};
use mail_parser::MessageParser;

fn summary(d: &MailData<'_>, out: &mut String) {
    summary_at(d, out, 0)
}

fn summary_at(d: &MailData<'_>, out: &mut String, depth: usize) {
    let _ = writeln!(
        out,
        "subject={:?} from={:?} sender={:?} to={:?} cc={:?} bcc={:?} date={:?} recv={:?} id={:?} irt={:?} refs={:?} imp={} prio={} sens={}",
        d.subject,
        d.from,
        d.sender,
        d.to,
        d.cc,
        d.bcc,
        d.date,
        d.received,
        d.message_id,
        d.in_reply_to,
        d.references,
        d.importance,
        d.priority,
        d.sensitivity
    );
    // mail-parser's header block of an embedded message runs to its end; ours stops at
    // the blank line, so only the top level is compared.
    if depth == 0 {
        let _ = writeln!(out, "headers={:?}", d.headers);
    }
    let _ = writeln!(out, "text={:?}", d.text.as_deref());
    let _ = writeln!(
        out,
        "html={:?}",
        d.html
            .as_ref()
            .map(|(b, cp)| (String::from_utf8_lossy(b).into_owned(), *cp))
    );
    for a in &d.attachments {
        let _ = writeln!(
            out,
            "att name={:?} mime={} cid={:?} inline={}",
            a.name, a.mime, a.content_id, a.inline
        );
        match &a.body {
            AttachBody::Bytes(b) => {
                let _ = writeln!(out, "  bytes len={} crc={:08x}", b.len(), crc(b));
            }
            AttachBody::Message(m) => {
                out.push_str("  embedded {\n");
                summary_at(m, out, depth + 1);
                out.push_str("  }\n");
            }
        }
    }
}

fn crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b);
    h.finalize()
}

/// Fast path result, or None when it defers to mail-parser.
fn fast(raw: &[u8]) -> Option<String> {
    scan(raw).map(|d| {
        let mut s = String::new();
        summary(&d, &mut s);
        s
    })
}

fn full(raw: &[u8]) -> String {
    let m = MessageParser::default().parse(raw).unwrap();
    let mut s = String::new();
    summary(&extract(&m), &mut s);
    s
}

fn check_same(raw: &[u8], what: &str) -> bool {
    match fast(raw) {
        Some(f) => {
            let g = full(raw);
            if f != g {
                let at = f.bytes().zip(g.bytes()).take_while(|(a, b)| a == b).count();
                let lo = at.saturating_sub(300);
                panic!(
                    "fast path differs from mail-parser for {what} at {at}:\n fast: {:?}\n full: {:?}",
                    f.get(lo..(at + 300).min(f.len())),
                    g.get(lo..(at + 300).min(g.len()))
                );
            }
            true
        }
        None => false,
    }
}

#[test]
fn fast_path_matches_mail_parser_on_the_sample_mailbox() {
    let msgs = legacyflo_corpus::sample_mailbox();
    let malformed: Vec<usize> = legacyflo_corpus::sample_malformed()
        .iter()
        .map(|m| m.0)
        .collect();
    let mut fast_count = 0;
    for (i, m) in msgs.iter().enumerate() {
        if check_same(&m.raw, &format!("sample message {i}")) {
            fast_count += 1;
        } else {
            assert!(
                malformed.contains(&i),
                "well-formed sample message {i} left the fast path"
            );
        }
    }
    assert!(fast_count >= msgs.len() - malformed.len(), "{fast_count}");
}

#[test]
fn fast_path_matches_mail_parser_on_the_bench_and_test_corpora() {
    let spec = legacyflo_corpus::CorpusSpec {
        seed: 7,
        messages: 0,
        total_bytes: Some(40_000_000),
        big_attachments: 1,
        folders: 5,
    };
    let mut n = 0;
    for (i, m) in legacyflo_corpus::bench_corpus(&spec).enumerate() {
        assert!(
            check_same(&m.raw, &format!("bench message {i}")),
            "bench message {i} left the fast path"
        );
        n += 1;
    }
    assert!(n > 100);
    for (i, m) in common::corpus::corpus().iter().enumerate() {
        check_same(&m.raw, &format!("test corpus message {i}"));
    }
}

const QP_LATIN1: &[u8] = b"From: =?iso-8859-1?Q?J=F6rg?= <j@example.com>\r\n\
To: a@example.com, \"B, C\" <b@example.com>\r\n\
Subject: =?utf-8?B?R3LDvMOfZQ==?= qp\r\n\
Date: Tue, 1 Dec 2026 08:00:00 +0100\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=FC=DFe aus K=F6ln, =\r\n\
soft break   \r\n\
=3D end\r\n";

#[test]
fn quoted_printable_and_charsets() {
    assert!(check_same(QP_LATIN1, "qp latin1"));
    let d = scan(QP_LATIN1).unwrap();
    assert_eq!(
        d.text.as_deref(),
        Some("Grüße aus Köln, soft break\r\n= end\r\n")
    );
    assert_eq!(d.subject.as_deref(), Some("Grüße qp"));
    assert_eq!(d.from.as_ref().unwrap().name, "Jörg");
    assert_eq!(d.to.len(), 2);
    for cs in [
        "koi8-r",
        "windows-1251",
        "shift_jis",
        "iso-2022-jp",
        "utf-8",
        "us-ascii",
        "x-unknown",
    ] {
        let mut raw = format!(
            "From: a@example.com\r\nSubject: cs\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset={cs}\r\nContent-Transfer-Encoding: base64\r\n\r\n0PLl8fI=\r\n\
--b\r\nContent-Type: text/html; charset=\"{cs}\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>"
        )
        .into_bytes();
        raw.extend_from_slice(b"\xf2\xe5\xf1\xf2</p>\r\n--b--\r\n");
        assert!(check_same(&raw, cs), "{cs} left the fast path");
    }
    // HTML in a legacy charset keeps its bytes and code page.
    let raw = b"Subject: h\r\nContent-Type: text/html; charset=windows-1251\r\n\r\n<p>\xf2\xe5\xf1\xf2</p>";
    let d = scan(raw).unwrap();
    assert_eq!(
        d.html.as_ref().map(|h| (h.0.as_ref(), h.1)),
        Some((&b"<p>\xf2\xe5\xf1\xf2</p>"[..], 1251))
    );
    assert_eq!(d.text.as_deref().map(str::trim), Some("тест"));
}

const NESTED: &[u8] = b"From: x@example.com\r\nTo: y@example.com\r\nSubject: nested\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
--rel\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain \xc3\xa4\r\n\
--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<img src=3D\"cid:img1\">=C3=A4\r\n\
--alt--\r\n\
--rel\r\nContent-Type: image/png; name=\"a.png\"\r\nContent-ID: <img1>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
--rel--\r\n\
--outer\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\nJSVFT0YK\r\n\
--outer\r\nContent-Type: text/plain; name=\"notes.txt\"\r\nContent-Disposition: attachment\r\n\r\nnotes\r\n\
--outer\r\nContent-Type: message/rfc822\r\n\r\n\
From: inner@example.com\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=\"in\"\r\n\r\n\
--in\r\nContent-Type: text/plain\r\n\r\ninner body\r\n\
--in\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n\
--in--\r\n\
--outer--\r\nepilogue\r\n";

#[test]
fn nested_multiparts_inline_images_and_embedded_messages() {
    assert!(check_same(NESTED, "nested"));
    let d = scan(NESTED).unwrap();
    assert_eq!(d.text.as_deref(), Some("plain ä"));
    assert_eq!(
        d.html.as_ref().map(|h| h.0.as_ref()),
        Some(&b"<img src=\"cid:img1\">\xc3\xa4"[..])
    );
    let names: Vec<_> = d.attachments.iter().map(|a| a.name.clone()).collect();
    assert_eq!(
        names,
        [
            Some("a.png".into()),
            Some("r.pdf".into()),
            Some("notes.txt".into()),
            None
        ]
    );
    let img = &d.attachments[0];
    assert!(img.inline);
    assert_eq!(img.content_id.as_deref(), Some("img1"));
    match &img.body {
        AttachBody::Bytes(b) => assert_eq!(b.as_ref(), b"\x89PNG\r\n\x1a\n"),
        AttachBody::Message(_) => panic!("image as message"),
    }
    match &d.attachments[1].body {
        AttachBody::Bytes(b) => assert_eq!(b.as_ref(), b"%PDF-1.4\n%%EOF\n"),
        AttachBody::Message(_) => panic!("pdf as message"),
    }
    match &d.attachments[3].body {
        AttachBody::Message(m) => {
            assert_eq!(m.subject.as_deref(), Some("inner"));
            assert_eq!(m.text.as_deref(), Some("inner body"));
            assert_eq!(m.attachments.len(), 1);
        }
        AttachBody::Bytes(_) => panic!("embedded message as bytes"),
    }
}

#[test]
fn malformed_structure_defers_to_mail_parser() {
    let cases: &[&[u8]] = &[
        // boundary never closed
        b"Subject: a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n",
        // no boundary parameter
        b"Subject: a\r\nContent-Type: multipart/mixed\r\n\r\n--b\r\n\r\ntext\r\n--b--\r\n",
        // invalid base64
        b"Subject: a\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!notbase64!!\r\n",
        // unknown transfer encoding
        b"Subject: a\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n",
        // base64-encoded message/rfc822
        b"Subject: a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5\r\n--b--\r\n",
    ];
    for c in cases {
        assert!(fast(c).is_none(), "{}", String::from_utf8_lossy(c));
    }
    // Longer boundaries sharing a prefix are not delimiters (RFC 2046 §5.1.1; mail-parser
    // splits there).
    let raw = b"Subject: a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--bb\r\nstill one\r\n--b--\r\n";
    assert_eq!(
        scan(raw).unwrap().text.as_deref(),
        Some("one\r\n--bb\r\nstill one")
    );
    // A part without headers is text/plain.
    let raw = b"Subject: a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbare\r\n--b--\r\n";
    assert!(check_same(raw, "bare part"));
    // LF-only line ends.
    let raw = b"Subject: lf\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: text/html\n\n<b>x</b>\n--b--\n";
    assert!(check_same(raw, "lf"));
}

/// The fields the fast path reads raw from headers it otherwise skips (priority,
/// sensitivity, threading, the last Received date), in odd case and folded over lines,
/// come out as mail-parser's full parse gives them, with the expected values.
#[test]
fn skipped_headers_are_read_raw() {
    let raw = concat!(
        "Received: from relay.example.net\r\n",
        "\tby mx.example.com; Tue, 1 Dec 2026 10:00:07 +0000\r\n",
        "From: Ann <ann@example.com>\r\n",
        "To: Bob <bob@example.com>\r\n",
        "Subject: skipped headers\r\n",
        "Date: Tue, 1 Dec 2026 09:59:00 +0000\r\n",
        "Message-ID: <m2@example.com>\r\n",
        "In-Reply-To:\r\n <m1@example.com>\r\n",
        "References: <m0@example.com>\r\n\t<m1@example.com>\r\n",
        "X-PRIORITY: 1 (Highest)\r\n",
        "sensitivity: Company-Confidential\r\n",
        "X-Unused-Long-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n bbbbbbbbbbbbbbbbbbbb\r\n",
        "\r\n",
        "body\r\n"
    )
    .as_bytes();
    assert!(check_same(raw, "skipped headers"), "left the fast path");
    let d = scan(raw).unwrap();
    assert_eq!(d.in_reply_to.as_deref(), Some("<m1@example.com>"));
    assert_eq!(
        d.references.as_deref(),
        Some("<m0@example.com> <m1@example.com>")
    );
    assert_eq!((d.importance, d.priority, d.sensitivity), (2, 1, 3));
    // 2026-12-01T10:00:07Z
    assert_eq!(d.received, Some(1_796_119_207));
    assert!(d.headers.contains("X-Unused-Long-Header"));
    // Importance (a name mail-parser knows) alone, and Sensitivity in another value.
    let raw = b"From: a@example.com\r\nimportance: Low\r\nSensitivity: private\r\n\r\nx\r\n";
    assert!(check_same(raw, "importance"), "left the fast path");
    let d = scan(raw).unwrap();
    assert_eq!((d.importance, d.priority, d.sensitivity), (0, -1, 2));
}

/// Delimiter search: dashes in the bodies are told apart from delimiters as mail-parser
/// tells them; the delimiter in mid-line is not one (RFC 2046 §5.1.1, like a longer
/// boundary above; mail-parser splits there).
#[test]
fn boundary_search_among_dashes() {
    let mid = b"Subject: a\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n\r\none\r\nx--b1 in mid-line\r\n--b1--\r\n";
    assert_eq!(
        scan(mid).unwrap().text.as_deref(),
        Some("one\r\nx--b1 in mid-line")
    );
    let raw = concat!(
        "From: a@example.com\r\n",
        "Subject: dashes\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n",
        "\r\n",
        "--b1\r\n",
        "Content-Type: text/plain\r\n",
        "\r\n",
        "one - two -- three ---- four\r\n",
        "-- \r\n",
        "signature\r\n",
        "--b1\r\n",
        "Content-Type: application/octet-stream; name=\"d.bin\"\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "LS0tLS0t\r\n",
        "--b1--\r\n",
        "epilogue -- ignored\r\n"
    )
    .as_bytes();
    assert!(check_same(raw, "dashes"), "left the fast path");
    let d = scan(raw).unwrap();
    let text = d.text.as_deref().unwrap_or("");
    assert!(text.ends_with("signature"), "{text:?}");
    assert_eq!(d.attachments.len(), 1);
    match &d.attachments[0].body {
        AttachBody::Bytes(b) => assert_eq!(b.as_ref(), b"------"),
        AttachBody::Message(_) => panic!("not an embedded message"),
    }
}
