//! Tests of the sample mailbox, the bench corpus and the writers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use legacyflo_corpus::{
    CorpusSpec, GenMessage, bench_corpus, envelope_sender, maildir_flag_letters, mbox_file_path,
    mbox_from_line, sample_mailbox, sample_malformed, write_maildir_tree, write_mbox_tree,
};
use mail_parser::MessageParser;

fn sample() -> &'static [GenMessage] {
    static S: OnceLock<Vec<GenMessage>> = OnceLock::new();
    S.get_or_init(sample_mailbox)
}

fn malformed() -> &'static [(usize, &'static str)] {
    static M: OnceLock<Vec<(usize, &'static str)>> = OnceLock::new();
    M.get_or_init(sample_malformed)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn header_block(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    &raw[..end]
}

fn has_header(raw: &[u8], name: &str) -> bool {
    let head = header_block(raw);
    head.split(|&b| b == b'\n').any(|l| {
        l.len() > name.len()
            && l[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            && l[name.len()] == b':'
    })
}

#[test]
fn sample_is_deterministic() {
    let again = sample_mailbox();
    assert_eq!(sample(), &again[..]);
    assert_eq!(malformed(), &sample_malformed()[..]);
}

#[test]
fn bench_is_deterministic_and_seed_dependent() {
    let spec = CorpusSpec {
        seed: 42,
        messages: 300,
        ..CorpusSpec::default()
    };
    let a: Vec<GenMessage> = bench_corpus(&spec).collect();
    let b: Vec<GenMessage> = bench_corpus(&spec).collect();
    assert_eq!(a.len(), 300);
    assert_eq!(a, b);
    let other = CorpusSpec { seed: 43, ..spec };
    let c: Vec<GenMessage> = bench_corpus(&other).take(10).collect();
    assert_ne!(&a[..10], &c[..]);
}

#[test]
fn sample_has_about_300_messages_in_the_expected_folders() {
    let s = sample();
    assert!((280..=320).contains(&s.len()), "{} messages", s.len());
    let folders: BTreeSet<String> = s.iter().map(|m| m.folder_name('/')).collect();
    let expected: BTreeSet<String> = [
        "INBOX",
        "INBOX/Rechnungen",
        "Projekte",
        "Projekte/Entwürfe",
        "Archiv/2023/Q1",
        "Ünïcødé/日本語/Ordner & Co",
        "Sent",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(folders, expected);
    // grouped by folder, chronological within a folder
    for w in s.windows(2) {
        if w[0].folder == w[1].folder {
            assert!(w[0].internal_date <= w[1].internal_date);
        }
    }
    for m in s {
        assert!(m.raw.ends_with(b"\n"));
        if m.folder == ["Archiv", "2023", "Q1"] {
            assert!((1_672_531_200..1_680_307_200).contains(&m.internal_date));
        } else {
            assert!((1_546_300_800..1_735_689_600).contains(&m.internal_date));
        }
    }
    let total: usize = s.iter().map(|m| m.raw.len()).sum();
    assert!(total < 12 * 1024 * 1024, "sample is {total} bytes");
}

#[test]
fn sample_has_exactly_one_message_over_5_mb() {
    let big: Vec<&GenMessage> = sample()
        .iter()
        .filter(|m| m.raw.len() > 5 * 1024 * 1024)
        .collect();
    assert_eq!(big.len(), 1);
    let others_max = sample()
        .iter()
        .filter(|m| m.raw.len() <= 5 * 1024 * 1024)
        .map(|m| m.raw.len())
        .max()
        .unwrap();
    assert!(others_max < 1024 * 1024, "second largest is {others_max}");
    let msg = MessageParser::default().parse(&big[0].raw).unwrap();
    assert_eq!(msg.attachment_count(), 1);
    let n = msg.attachment(0).unwrap().contents().len();
    let want = legacyflo_corpus::SAMPLE_BIG_ATTACHMENT;
    assert!(n.abs_diff(want) < 1000, "attachment of {n} bytes");
}

#[test]
fn sample_malformed_messages_are_present() {
    let s = sample();
    let m = malformed();
    assert!((4..=6).contains(&m.len()), "{m:?}");
    let mut seen = BTreeSet::new();
    for &(i, what) in m {
        let raw = &s[i].raw;
        let kind = what.split(':').next().unwrap_or(what);
        if what.starts_with("garbage") {
            assert!(raw.contains(&0), "garbage has a NUL");
            assert!(!has_header(raw, "From") && !has_header(raw, "Date"));
            seen.insert("garbage");
        } else if what.contains("missing Date and Message-ID") {
            assert!(!has_header(raw, "Date") && !has_header(raw, "Message-ID"));
            assert!(has_header(raw, "From"));
            seen.insert("nodate");
        } else if what.contains("boundary never comes") {
            assert!(contains(raw, b"boundary=\"unclosed-boundary-0001\""));
            assert!(!contains(raw, b"--unclosed-boundary-0001--"));
            seen.insert("boundary");
        } else if what.contains("without a colon") {
            let head = header_block(raw);
            assert!(
                head.split(|&b| b == b'\n')
                    .any(|l| !l.is_empty() && !l.contains(&b':') && !l.starts_with(b" "))
            );
            seen.insert("colon");
        } else if what.contains("bare LF") {
            assert!(!contains(raw, b"\r\n") && !raw.contains(&b'\r'));
            assert!(raw.iter().filter(|&&b| b == b'\n').count() > 10);
            seen.insert("lf");
        } else if what.contains("invalid UTF-8") {
            assert!(std::str::from_utf8(header_block(raw)).is_err());
            seen.insert("utf8");
        } else {
            panic!("unexpected malformation {kind}");
        }
        // the parser must not choke on them either
        let _ = MessageParser::default().parse(raw.as_slice());
    }
    assert_eq!(seen.len(), m.len());
}

#[test]
fn every_well_formed_sample_message_parses() {
    let bad: BTreeSet<usize> = malformed().iter().map(|(i, _)| *i).collect();
    for (i, m) in sample().iter().enumerate() {
        if bad.contains(&i) {
            continue;
        }
        assert!(
            m.raw
                .windows(2)
                .filter(|w| w[1] == b'\n')
                .all(|w| w[0] == b'\r'),
            "#{i}: bare LF"
        );
        let msg = MessageParser::default()
            .parse(&m.raw)
            .unwrap_or_else(|| panic!("#{i} does not parse"));
        let date = msg.date().unwrap_or_else(|| panic!("#{i} has no date"));
        assert_eq!(
            date.to_timestamp(),
            m.internal_date,
            "#{i}: Date header != internal_date"
        );
        assert!(msg.from().is_some(), "#{i}: no From");
        assert!(msg.message_id().is_some(), "#{i}: no Message-ID");
        let subject = msg.subject().unwrap_or_else(|| panic!("#{i}: no Subject"));
        assert!(
            !subject.contains('\u{FFFD}') && !subject.contains("=?"),
            "#{i}: subject {subject:?}"
        );
        for addr in msg.from().into_iter().chain(msg.to()).chain(msg.cc()) {
            for a in addr.iter() {
                let name = a.name().unwrap_or_default();
                assert!(
                    !name.contains('\u{FFFD}') && !name.contains("=?"),
                    "#{i}: name {name:?}"
                );
                assert!(
                    a.address().is_some_and(|x| x.contains('@')),
                    "#{i}: address"
                );
            }
        }
        let texts = msg.text_body_count() + msg.html_body_count();
        assert!(texts > 0, "#{i}: no text body");
        for j in 0..msg.text_body_count() {
            let t = msg.body_text(j).unwrap();
            assert!(!t.contains('\u{FFFD}'), "#{i}: undecodable body text");
            assert!(!t.contains("??"), "#{i}: lossy charset encoding: {t}");
        }
    }
}

#[test]
fn sample_covers_the_advertised_variety() {
    let all: Vec<u8> = sample()
        .iter()
        .flat_map(|m| m.raw.iter().copied())
        .collect();
    for needle in [
        &b"charset=utf-8"[..],
        b"charset=iso-8859-1",
        b"charset=windows-1252",
        b"charset=koi8-r",
        b"charset=iso-2022-jp",
        b"charset=shift_jis",
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Transfer-Encoding: base64",
        b"Content-Transfer-Encoding: 8bit",
        b"multipart/alternative",
        b"multipart/mixed",
        b"multipart/related",
        b"message/rfc822",
        b"application/pdf",
        b"image/png",
        b"application/octet-stream",
        b"=?utf-8?B?",
        b"=?utf-8?Q?",
        b"=?iso-8859-1?Q?",
        b"=?koi8-r?B?",
        b"=?iso-2022-jp?B?",
        b"filename*=utf-8''",
        b"\r\nIn-Reply-To: ",
        b"\r\nReferences: ",
        b"\r\nCc: ",
        b"\nFrom ",
        b"\n>From ",
        b"\n>>From ",
    ] {
        assert!(
            contains(&all, needle),
            "missing {}",
            String::from_utf8_lossy(needle)
        );
    }
    // HTML-only messages
    let html_only = sample()
        .iter()
        .filter(|m| contains(header_block(&m.raw), b"Content-Type: text/html"))
        .count();
    assert!(html_only >= 5, "{html_only} html-only messages");
    // 8-bit Latin-1 body bytes, and dates spread over 2019-2024
    assert!(sample().iter().any(|m| contains(
        &m.raw,
        b"charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit"
    )));
    let years: BTreeSet<i64> = sample()
        .iter()
        .map(|m| 1970 + m.internal_date / 31_556_952)
        .collect();
    assert_eq!(years, (2019..=2024).collect());
    // flags
    let flags: BTreeSet<&str> = sample()
        .iter()
        .flat_map(|m| m.flags.iter().map(String::as_str))
        .collect();
    for f in ["\\Seen", "\\Answered", "\\Flagged", "\\Draft"] {
        assert!(flags.contains(f), "{f}");
    }
}

#[test]
fn bench_size_mix_on_10000_messages() {
    let spec = CorpusSpec {
        seed: 7,
        messages: 10_000,
        ..CorpusSpec::default()
    };
    let mut classes = [0usize; 3];
    let mut folders = BTreeSet::new();
    for m in bench_corpus(&spec) {
        let n = m.raw.len();
        let c = match n {
            1024..8192 => 0,
            8192..102_400 => 1,
            102_400..1_048_576 => 2,
            _ => panic!("message of {n} bytes outside the mix"),
        };
        classes[c] += 1;
        folders.insert(m.folder_name('/'));
    }
    let pct: Vec<f64> = classes.iter().map(|&c| c as f64 / 100.0).collect();
    assert!((pct[0] - 70.0).abs() < 1.5, "{pct:?}");
    assert!((pct[1] - 27.0).abs() < 1.5, "{pct:?}");
    assert!((pct[2] - 3.0).abs() < 0.7, "{pct:?}");
    assert_eq!(folders.len(), 10);
}

#[test]
fn bench_big_attachments_and_parse() {
    let spec = CorpusSpec {
        seed: 11,
        messages: 40,
        total_bytes: None,
        big_attachments: 1,
        folders: 5,
    };
    let msgs: Vec<GenMessage> = bench_corpus(&spec).collect();
    assert_eq!(msgs.len(), 40);
    let big: Vec<&GenMessage> = msgs
        .iter()
        .filter(|m| m.raw.len() > 9 * 1024 * 1024)
        .collect();
    assert_eq!(big.len(), 1);
    assert!(big[0].raw.len() < 11 * 1024 * 1024);
    for m in &msgs {
        let p = MessageParser::default().parse(&m.raw).unwrap();
        assert_eq!(p.date().unwrap().to_timestamp(), m.internal_date);
        assert!(p.subject().is_some() && p.message_id().is_some());
    }
}

/// Minimal mboxrd reader for the round-trip test.
fn read_mboxrd(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            out.push((String::from_utf8(line.to_vec()).unwrap(), Vec::new()));
            continue;
        }
        let cur = &mut out.last_mut().expect("data before first From line").1;
        let gts = line.iter().take_while(|&&b| b == b'>').count();
        if gts > 0 && line[gts..].starts_with(b"From ") {
            cur.extend_from_slice(&line[1..]);
        } else {
            cur.extend_from_slice(line);
        }
    }
    for (_, m) in &mut out {
        assert_eq!(m.pop(), Some(b'\n'), "separator line");
    }
    out
}

#[test]
fn mbox_tree_round_trips_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    write_mbox_tree(dir.path(), sample().to_vec()).unwrap();
    for rel in [
        "INBOX.mbox",
        "INBOX/Rechnungen.mbox",
        "Projekte.mbox",
        "Projekte/Entwürfe.mbox",
        "Archiv/2023/Q1.mbox",
        "Ünïcødé/日本語/Ordner & Co.mbox",
        "Sent.mbox",
    ] {
        assert!(dir.path().join(rel).is_file(), "{rel}");
    }
    let mut by_folder: BTreeMap<Vec<String>, Vec<&GenMessage>> = BTreeMap::new();
    for m in sample() {
        by_folder.entry(m.folder.clone()).or_default().push(m);
    }
    for (folder, msgs) in by_folder {
        let data = std::fs::read(mbox_file_path(dir.path(), &folder)).unwrap();
        let back = read_mboxrd(&data);
        assert_eq!(back.len(), msgs.len(), "{folder:?}");
        for ((from_line, raw), m) in back.iter().zip(&msgs) {
            assert_eq!(raw, &m.raw, "{folder:?}");
            assert_eq!(
                from_line,
                &format!("{}\n", mbox_from_line(&m.raw, m.internal_date))
            );
        }
    }
    // envelope senders: Return-Path, else From, else MAILER-DAEMON
    assert_eq!(
        envelope_sender(b"Return-Path: <a@b.example>\r\nFrom: X <c@d.example>\r\n\r\n"),
        "a@b.example"
    );
    assert_eq!(
        envelope_sender(b"From: X Y <c@d.example>\r\n\r\nbody"),
        "c@d.example"
    );
    assert_eq!(envelope_sender(b"from: c@d.example\n\n"), "c@d.example");
    assert_eq!(
        envelope_sender(b"Return-Path: <>\r\nFrom: c@d.example\r\n\r\n"),
        "MAILER-DAEMON"
    );
    assert_eq!(envelope_sender(b"\x00\x01garbage"), "MAILER-DAEMON");
    assert_eq!(
        mbox_from_line(b"From: a@b.example\r\n\r\n", 1_678_194_309),
        "From a@b.example Tue Mar  7 13:05:09 2023"
    );
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn maildir_tree_layout_names_flags_and_mtimes() {
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<GenMessage> = sample()
        .iter()
        .filter(|m| m.raw.len() < 1_000_000)
        .cloned()
        .collect();
    write_maildir_tree(dir.path(), msgs.clone()).unwrap();
    let root = dir.path();
    for d in [
        "cur",
        "new",
        "tmp",
        ".INBOX.Rechnungen/cur",
        ".Projekte/cur",
        ".Projekte.Entw&APw-rfe/cur",
        ".Archiv.2023.Q1/cur",
        ".&ANw-n&AO8-c&APg-d&AOk-.&ZeVnLIqe-.Ordner &- Co/cur",
        ".Sent/tmp",
    ] {
        assert!(root.join(d).is_dir(), "{d}");
    }
    assert!(root.join(".Sent/maildirfolder").is_file());
    let mut files = Vec::new();
    walk(root, &mut files);
    let mails: Vec<_> = files
        .iter()
        .filter(|p| p.parent().unwrap().ends_with("cur"))
        .collect();
    assert_eq!(mails.len(), msgs.len());
    let mut by_content: BTreeMap<&[u8], &GenMessage> = BTreeMap::new();
    for m in &msgs {
        by_content.insert(&m.raw, m);
    }
    for p in mails {
        let name = p.file_name().unwrap().to_str().unwrap();
        let raw = std::fs::read(p).unwrap();
        let m = by_content
            .get(raw.as_slice())
            .expect("content matches a message");
        let (base, info) = name.split_once(":2,").unwrap();
        assert!(
            base.starts_with(&format!("{}.M", m.internal_date)),
            "{name}"
        );
        assert!(base.ends_with("P1.legacyflo"), "{name}");
        assert_eq!(info, maildir_flag_letters(&m.flags));
        let mtime = std::fs::metadata(p).unwrap().modified().unwrap();
        let secs = mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert_eq!(secs, m.internal_date);
    }
    assert_eq!(
        maildir_flag_letters(&["\\Seen".into(), "\\Draft".into(), "\\Flagged".into()]),
        "DFS"
    );
}

#[test]
fn cli_writes_a_bench_maildir_and_refuses_non_empty_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_legacyflo-corpus"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "bench",
        "--messages",
        "25",
        "--seed",
        "3",
        "--folders",
        "4",
        "--format",
        "maildir",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("wrote 25 messages"), "{stdout}");
    assert!(out.join("cur").is_dir());
    let o = run(&["bench", "--messages", "5", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an empty directory"));
    let o = run(&["bench", "--out", dir.path().join("x").to_str().unwrap()]);
    assert!(!o.status.success());
}

/// The committed `samples/mailbox` must be exactly what the generator writes.
#[test]
fn committed_sample_matches_the_generator() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/mailbox");
    assert!(committed.is_dir(), "{} is missing", committed.display());
    let dir = tempfile::tempdir().unwrap();
    write_mbox_tree(dir.path(), sample().to_vec()).unwrap();
    let mut fresh = Vec::new();
    walk(dir.path(), &mut fresh);
    let mut shipped = Vec::new();
    walk(&committed, &mut shipped);
    let rel = |root: &Path, v: &[std::path::PathBuf]| -> BTreeSet<std::path::PathBuf> {
        v.iter()
            .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(
        rel(dir.path(), &fresh),
        rel(&committed, &shipped),
        "samples/mailbox has other files than the generator writes"
    );
    for p in &fresh {
        let r = p.strip_prefix(dir.path()).unwrap();
        assert!(
            std::fs::read(p).unwrap() == std::fs::read(committed.join(r)).unwrap(),
            "samples/mailbox/{} differs from the generator: regenerate with\n  rm -rf samples/mailbox && cargo run -p legacyflo-corpus -- sample --out samples/mailbox",
            r.display()
        );
    }
}
