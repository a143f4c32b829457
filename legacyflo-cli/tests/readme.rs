//! The README starts with the quickstart and the test command, and documents every field,
//! content-list column and exit code.
// Test helpers outside #[test] functions fail by panicking too.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use legacyflo_core::Field;
use legacyflo_core::contentlist::HEADER;

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md at the repository root")
}

#[test]
fn starts_with_quickstart_then_tests() {
    let text = readme();
    let sections: Vec<&str> = text.lines().filter(|l| l.starts_with("## ")).collect();
    assert!(sections.len() >= 2, "{sections:?}");
    assert!(
        sections[0].starts_with("## Quickstart"),
        "first section: {}",
        sections[0]
    );
    assert!(
        sections[1].starts_with("## Test"),
        "second section: {}",
        sections[1]
    );
    let quick = text.find("## Quickstart").expect("quickstart");
    let tests = text.find(sections[1]).expect("tests");
    let cmd = "cargo run --release -p legacyflo-cli -- run MBOX-S3-ZIP --source-url samples/mailbox --dest-url out/";
    let at = text.find(cmd).expect("the quickstart command");
    assert!(
        quick < at && at < tests,
        "the quickstart command is not in the first section"
    );
    assert!(
        text[quick..tests].contains("mailbox.zip") && text[quick..tests].contains("mailbox.csv")
    );
    let t = text.find("bash scripts/test.sh").expect("the test command");
    assert!(t > tests, "the test command is not in the second section");
    // Nothing but the title comes before the quickstart.
    let before: Vec<&str> = text[..quick]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(before, vec!["# legacyflo"]);
}

#[test]
fn every_field_is_in_the_flags_table() {
    let text = readme();
    for f in Field::ALL.iter().filter(|f| **f != Field::Type) {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", f.flag())))
            .unwrap_or_else(|| panic!("no table row for {}", f.flag()));
        assert!(row.contains(&format!("`{}`", f.service_name())), "{row}");
    }
    assert!(text.contains("`Request Type`"));
}

#[test]
fn content_list_columns_and_exit_codes_are_documented() {
    let text = readme();
    for col in HEADER {
        assert!(
            text.contains(&format!("| `{col}` |")),
            "content-list column {col} missing"
        );
    }
    for code in ["0", "1", "2", "3"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("| {code} |"))),
            "exit code {code} missing"
        );
    }
}
