//! The reader on PST files written by Outlook / the PST SDK (testdata/pst, copied from shared/testdata/pst).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use legacyflo_pst::PstReader;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/pst");

/// Total messages per file as pypff counts them (README of the test data).
const PYPFF_TOTALS: &[(&str, usize)] = &[
    ("outlook-pst-rs__Empty.pst", 0),
    ("pstconv__outlook.pst", 3),
    ("pstsdk__sample1.pst", 1),
    ("pstsdk__sample2.pst", 1),
    ("pstsdk__submessage.pst", 1),
    ("pstsdk__test_ansi.pst", 1),
    ("pstsdk__test_unicode.pst", 2),
    ("java-libpst__dist-list.pst", 4),
    ("java-libpst__passworded.pst", 3),
    ("ruby-msg__200-recipients.pst", 1),
    ("ruby-msg__attachAndInline.pst", 1),
    ("ruby-msg__msgInMsg.pst", 1),
];

fn data_dir() -> PathBuf {
    let d = PathBuf::from(std::env::var("PST_TESTDATA").unwrap_or_else(|_| DIR.to_string()));
    assert!(d.is_dir(), "test data directory {} is missing", d.display());
    d
}

fn read_all(p: &Path, all: bool) -> (usize, std::collections::BTreeMap<String, usize>) {
    let r = PstReader::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut total = 0;
    let mut per = std::collections::BTreeMap::new();
    let folders = if all {
        r.all_folders().unwrap()
    } else {
        r.folders().unwrap()
    };
    for f in folders {
        let msgs: Vec<_> = r.messages(&f).unwrap().collect();
        for m in &msgs {
            let m = m
                .as_ref()
                .unwrap_or_else(|e| panic!("{} {:?}: {e}", p.display(), f.path));
            assert!(!m.raw.is_empty());
            assert!(
                mail_parser::MessageParser::default()
                    .parse(&m.raw)
                    .is_some()
            );
        }
        total += msgs.len();
        per.insert(f.path.join("/"), msgs.len());
    }
    (total, per)
}

#[test]
fn every_sample_opens_and_counts_match_pypff_readme() {
    let dir = data_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pst"))
        .collect();
    files.sort();
    assert_eq!(files.len(), PYPFF_TOTALS.len(), "unexpected sample set");
    for p in files {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let want = PYPFF_TOTALS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|x| x.1)
            .unwrap_or_else(|| panic!("{name} not in README table"));
        let (total, _) = read_all(&p, true);
        assert_eq!(total, want, "{name}: messages");
    }
}

#[test]
fn per_folder_counts_match_live_pypff() {
    let dir = data_dir();
    for (name, _) in PYPFF_TOTALS {
        let p = dir.join(name);
        let (_, ours) = read_all(&p, false);
        let theirs = common::pypff_counts_opt(&p, false);
        for (path, n) in &theirs {
            assert_eq!(
                ours.get(path),
                Some(n),
                "{name}: folder {path:?}: ours {ours:?} pypff {theirs:?}"
            );
        }
    }
}

#[test]
fn message_without_subnode_tree_is_read() {
    // pstconv__outlook.pst message 0x200064 has no subnode tree (outlook-pst fails on it).
    let r = PstReader::open(&data_dir().join("pstconv__outlook.pst")).unwrap();
    let m = r.message(0x200064).unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&m.raw).unwrap();
    assert!(parsed.subject().is_some() || parsed.body_text(0).is_some());
}

#[test]
fn ansi_and_unicode_detected() {
    let dir = data_dir();
    assert!(
        !PstReader::open(&dir.join("pstsdk__sample2.pst"))
            .unwrap()
            .is_unicode()
    );
    assert!(
        PstReader::open(&dir.join("pstsdk__sample1.pst"))
            .unwrap()
            .is_unicode()
    );
}

#[test]
fn embedded_message_is_rebuilt() {
    let r = PstReader::open(&data_dir().join("pstsdk__submessage.pst")).unwrap();
    let f = r
        .folders()
        .unwrap()
        .into_iter()
        .find(|f| f.message_count > 0)
        .unwrap();
    let m = r.messages(&f).unwrap().next().unwrap().unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&m.raw).unwrap();
    assert!(
        parsed
            .attachments()
            .any(|a| matches!(a.body, mail_parser::PartType::Message(_))),
        "{}",
        String::from_utf8_lossy(&m.raw)
    );
}
