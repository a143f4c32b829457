//! The committed sample mailbox (`samples/mailbox`, an mboxrd tree written by
//! `legacyflo-corpus`) reads back as exactly the generator's messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::StreamExt;
use legacyflo_core::{Filter, FolderPath, Source, SourceEvent};
use legacyflo_sources::mbox::MboxSource;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_mailbox_reads_back_exactly() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/mailbox");
    assert!(root.is_dir(), "{} is missing", root.display());
    let source = MboxSource::new(&root);
    let mut got: BTreeMap<FolderPath, Vec<(Vec<u8>, i64)>> = BTreeMap::new();
    for f in source.list_folders().await.unwrap() {
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .unwrap();
        while let Some(ev) = s.next().await {
            match ev.unwrap() {
                SourceEvent::Message(item) => got.entry(f.path.clone()).or_default().push((
                    item.message.raw.to_vec(),
                    item.message
                        .internal_date
                        .map(|d| d.timestamp())
                        .unwrap_or(i64::MIN),
                )),
                SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
                SourceEvent::Unreadable {
                    source_id, reason, ..
                } => panic!("{source_id}: {reason}"),
            }
        }
    }
    let mut want: BTreeMap<FolderPath, Vec<(Vec<u8>, i64)>> = BTreeMap::new();
    for m in legacyflo_testkit::corpus::sample() {
        want.entry(m.folder.clone()).or_default().push((
            m.raw.to_vec(),
            m.internal_date.map(|d| d.timestamp()).unwrap_or(i64::MIN),
        ));
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (folder, msgs) in &want {
        let g = &got[folder];
        assert_eq!(g.len(), msgs.len(), "{folder}");
        for (i, (a, b)) in g.iter().zip(msgs).enumerate() {
            assert!(a.0 == b.0, "{folder} message {i}: bytes differ");
            assert_eq!(a.1, b.1, "{folder} message {i}: date");
        }
    }
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 300);
}

/// Messages by folder: bytes, internal date, flags.
type Tree = BTreeMap<FolderPath, Vec<(Vec<u8>, i64, Vec<legacyflo_core::Flag>)>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_maildir_tree_reads_back_with_flags_and_dates() {
    use legacyflo_core::Flag;
    use legacyflo_sources::maildir::MaildirSource;

    let dir = tempfile::tempdir().unwrap();
    let mut generated = legacyflo_corpus::sample_mailbox();
    // Names the corpus escapes: `.`, `/`, `~` and non-ASCII.
    generated[0].folder = vec!["v1.2 release".into(), "a/b ~ c".into()];
    legacyflo_corpus::write_maildir_tree(dir.path(), generated.clone()).unwrap();
    let source = MaildirSource::new(dir.path());
    let mut got: Tree = BTreeMap::new();
    for f in source.list_folders().await.unwrap() {
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .unwrap();
        while let Some(ev) = s.next().await {
            let SourceEvent::Message(item) = ev.unwrap() else {
                panic!("unreadable")
            };
            let m = item.message;
            got.entry(f.path.clone()).or_default().push((
                m.raw.to_vec(),
                m.internal_date.map(|d| d.timestamp()).unwrap_or(i64::MIN),
                m.flags,
            ));
        }
    }
    let mut want: Tree = BTreeMap::new();
    for g in generated {
        let mut flags: Vec<Flag> = g.flags.iter().filter_map(|f| Flag::from_imap(f)).collect();
        flags.sort();
        want.entry(FolderPath::new(g.folder))
            .or_default()
            .push((g.raw, g.internal_date, flags));
    }
    assert_eq!(got.len(), want.len());
    for (folder, mut msgs) in want {
        let mut g = got
            .remove(&folder)
            .unwrap_or_else(|| panic!("folder {folder} missing"));
        msgs.sort();
        g.sort();
        assert!(g == msgs, "{folder}");
    }
}
