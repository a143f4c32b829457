//! `legacyflo types` lists every request type of the core table.
// Test helpers outside #[test] functions fail by panicking too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use legacyflo_core::RequestType;

const MUST_LIST: &[&str] = &[
    "GMAIL-S3-ZIP",
    "GMAILOAUTH-S3-PST",
    "GMAILAPI-S3-PST",
    "O365-S3-ZIP",
    "M365API-S3-PST",
    "YAHOO-S3-ZIP",
    "MITHI-S3-ZIP",
    "IMAP-VAULTASTIC4",
    "GMAIL-VAULTASTIC4",
    "O365-VAULTASTIC4",
    "EXCHANGE-VAULTASTIC4",
    "PST-VAULTASTIC4",
    "EML-VAULTASTIC4",
    "MBOX-VAULTASTIC4",
    "MBOX-S3-ZIP",
    "MBOX-S3-PST",
    "EML-S3-PST",
    "PST-S3-ZIP",
    "MAILDIR-S3-ZIP",
    "MAILDIR-S3-PST",
];

#[test]
fn lists_every_core_type_once_with_its_status() {
    let o = bin().arg("types").output().expect("run");
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for t in RequestType::all() {
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(t.name))
            .collect();
        assert_eq!(lines.len(), 1, "{} must be listed once:\n{out}", t.name);
        let status = t.support.to_string();
        assert!(
            lines[0].contains(&status),
            "{}: `{status}` missing in `{}`",
            t.name,
            lines[0]
        );
        assert!(
            lines[0].contains(t.summary),
            "{}: summary missing in `{}`",
            t.name,
            lines[0]
        );
    }
    let first_words: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for n in MUST_LIST {
        assert!(
            first_words.contains(n),
            "{n} missing from `legacyflo types`:\n{out}"
        );
    }
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("MBOX-S3-ZIP").contains("implemented"));
    assert!(line("GMAIL-S3-ZIP").contains("implemented"));
    for cloud in [
        "GMAILAPI-S3-ZIP",
        "GMAILAPI-S3-PST",
        "GMAILOAUTH-S3-ZIP",
        "O365-S3-PST",
        "M365API-S3-ZIP",
        "M365API-VAULTASTIC4",
        "EXCHANGE-VAULTASTIC4",
    ] {
        assert!(line(cloud).contains("implemented"), "{cloud}");
    }
    assert!(line("TEAMS-S3-ZIP").contains("out of scope"));
}

#[test]
fn json_matches_the_core_table() {
    let o = bin().args(["types", "--json"]).output().expect("run");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let list = v.as_array().expect("array");
    let names: Vec<&str> = list.iter().filter_map(|t| t["name"].as_str()).collect();
    let core: Vec<&str> = RequestType::all().iter().map(|t| t.name).collect();
    assert_eq!(names, core);
    for n in MUST_LIST {
        assert!(names.contains(n), "{n} missing from --json");
    }
    for t in list {
        let support = t["support"].as_str().unwrap_or_default();
        assert!(
            ["implemented", "not_yet", "out_of_scope"].contains(&support),
            "{t}"
        );
        assert!(!t["summary"].as_str().unwrap_or_default().is_empty(), "{t}");
    }
}
