//! The reference PST files of `testdata/pst/` (written by Outlook and the PST
//! SDK, not by us) stream through the PST source with the message counts their README
//! gives (the pypff column: every item, whatever its class), except the items Outlook keeps
//! outside the IPM subtree ("Freebusy Data": one free/busy item in each java-libpst file),
//! which the source does not migrate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;

use futures::StreamExt;
use legacyflo_core::{Filter, Source, SourceEvent};
use legacyflo_sources::pst::PstSource;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/pst");

/// (file, messages): the README's pypff column, minus the items outside the IPM subtree.
const FILES: &[(&str, usize)] = &[
    ("outlook-pst-rs__Empty.pst", 0),
    ("pstconv__outlook.pst", 3),
    ("pstsdk__sample1.pst", 1),
    ("pstsdk__sample2.pst", 1),
    ("pstsdk__submessage.pst", 1),
    ("pstsdk__test_ansi.pst", 1),
    ("pstsdk__test_unicode.pst", 2),
    ("java-libpst__dist-list.pst", 3),
    ("java-libpst__passworded.pst", 2),
    ("ruby-msg__200-recipients.pst", 1),
    ("ruby-msg__attachAndInline.pst", 1),
    ("ruby-msg__msgInMsg.pst", 1),
];

/// (messages, unreadable, folders) streamed from `path`.
async fn stream_all(path: &Path) -> (usize, Vec<String>, Vec<String>) {
    let source = PstSource::new(path);
    let mut messages = 0;
    let mut unreadable = Vec::new();
    let mut folders = Vec::new();
    for f in source.list_folders().await.expect("list folders") {
        folders.push(format!("{} ({:?})", f.path, f.messages));
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .expect("stream");
        let mut positions = Vec::new();
        while let Some(ev) = s.next().await {
            let ev = ev.expect("stream item");
            positions.push(ev.position().clone());
            match ev {
                SourceEvent::Message(item) => {
                    assert!(!item.message.raw.is_empty(), "empty message in {}", f.path);
                    assert_eq!(item.message.folder, f.path);
                    messages += 1;
                }
                SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
                SourceEvent::Unreadable {
                    source_id, reason, ..
                } => unreadable.push(format!("{source_id}: {reason}")),
            }
        }
        let want: Vec<String> = (0..positions.len()).map(|i| i.to_string()).collect();
        assert_eq!(positions, want, "positions are the indexes in {}", f.path);
    }
    (messages, unreadable, folders)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_files_stream_with_their_counts() {
    assert!(
        Path::new(DIR).is_dir(),
        "{DIR} is missing (the shared PST test data)"
    );
    let mut failures = Vec::new();
    for (file, want) in FILES {
        let (got, unreadable, folders) = stream_all(&Path::new(DIR).join(file)).await;
        println!("{file}: {got} messages, unreadable {unreadable:?}, folders {folders:?}");
        if got != *want || !unreadable.is_empty() {
            failures.push(format!(
                "{file}: {got} messages (want {want}), unreadable {unreadable:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_file_resumes_after_a_position() {
    let source = PstSource::new(Path::new(DIR).join("pstconv__outlook.pst"));
    for f in source.list_folders().await.unwrap() {
        let mut all = Vec::new();
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .unwrap();
        while let Some(ev) = s.next().await {
            all.push(ev.unwrap());
        }
        drop(s);
        for k in 0..all.len() {
            let mut rest = Vec::new();
            let mut s = source
                .stream(&f.path, &Filter::default(), Some(all[k].position()))
                .await
                .unwrap();
            while let Some(ev) = s.next().await {
                rest.push(ev.unwrap().position().clone());
            }
            let want: Vec<String> = all[k + 1..].iter().map(|e| e.position().clone()).collect();
            assert_eq!(rest, want, "{} after {k}", f.path);
        }
    }
}
