//! Property: arbitrary messages in arbitrary folder trees survive
//! mbox sink → mbox source → zip sink → eml-zip source → maildir sink → maildir source
//! byte for byte, in the same folders, with their internal dates (and, from the ZIP on,
//! their flags).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use legacyflo_core::{Filter, Flag, FolderPath, Message, Sink, Source, SourceEvent, WriteOutcome};
use legacyflo_sinks::{maildir::MaildirSink, mbox::MboxSink, zip::ZipSink};
use legacyflo_sources::{emlzip::EmlZipSource, maildir::MaildirSource, mbox::MboxSource};
use proptest::prelude::*;

/// Pieces that stress mbox framing, line endings and quoting.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"From x@y Thu Nov 21 10:00:00 2024\n".to_vec()),
        Just(b"From ".to_vec()),
        Just(b">From ".to_vec()),
        Just(b">>From q\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"Status: RO\nX-Status: AF\n".to_vec()),
        Just(b"Subject: hi\r\n".to_vec()),
        "[a-zA-Z0-9 ]{0,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..24),
    ]
}

fn raw() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..10).prop_map(|v| v.concat())
}

fn segment() -> impl Strategy<Value = String> {
    let chars = proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range('a', 'z'),
            1 => Just('.'),
            1 => Just('/'),
            1 => Just('&'),
            1 => Just('~'),
            1 => Just('%'),
            1 => Just(' '),
            1 => Just('\\'),
            1 => Just('2'),
            1 => Just('ü'),
            1 => Just('日'),
            1 => Just('😀'),
            1 => Just('\u{1}'),
        ],
        1..7,
    )
    .prop_map(|c| c.into_iter().collect::<String>());
    let tricky = proptest::sample::select(vec![
        "~2e",
        "~7e",
        "~2f",
        "%2F",
        "%41",
        "&-",
        "&AOQ-",
        "&",
        "INBOX",
        "inbox",
        "x.mbox",
        "y.sbd",
        "mbox",
        "cur",
        "new",
        "tmp",
        ".",
        "..",
        "...",
        "trailing.",
        "trailing ",
        "Entwürfe",
        "Ordner & Co",
        "日本語",
    ])
    .prop_map(str::to_string);
    prop_oneof![3 => chars, 1 => tricky]
}

fn folder() -> impl Strategy<Value = FolderPath> {
    prop_oneof![
        1 => Just(FolderPath::inbox()),
        4 => proptest::collection::vec(segment(), 1..4).prop_map(FolderPath::new),
    ]
}

fn flags() -> impl Strategy<Value = Vec<Flag>> {
    proptest::sample::subsequence(
        vec![
            Flag::Seen,
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Draft,
        ],
        0..=5,
    )
}

fn mailbox() -> impl Strategy<Value = Vec<Message>> {
    (
        proptest::collection::vec(folder(), 1..4),
        proptest::collection::vec(
            (
                raw(),
                any::<prop::sample::Index>(),
                0i64..4_102_444_800,
                flags(),
            ),
            0..14,
        ),
    )
        .prop_map(|(folders, msgs)| {
            msgs.into_iter()
                .enumerate()
                .map(|(i, (raw, f, secs, flags))| {
                    let mut m = Message::new(raw, f.get(&folders).clone(), format!("p{i}"));
                    m.internal_date = Utc.timestamp_opt(secs, 0).single();
                    m.flags = flags;
                    m
                })
                .collect()
        })
}

async fn store(mut sink: Box<dyn Sink>, messages: &[Message]) {
    sink.open(None).await.expect("open");
    for m in messages {
        sink.begin_folder(&m.folder).await.expect("begin folder");
        let outcome = sink.write(m).await.expect("write");
        assert!(
            matches!(outcome, WriteOutcome::Written { .. }),
            "{} in {}: {outcome:?}",
            m.source_id,
            m.folder
        );
    }
    sink.finish().await.expect("finish");
}

async fn read_all(source: Arc<dyn Source>) -> Vec<Message> {
    let mut out = Vec::new();
    for f in source.list_folders().await.expect("list") {
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .expect("stream");
        while let Some(ev) = s.next().await {
            match ev.expect("item") {
                SourceEvent::Message(item) => out.push(item.message),
                SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
                SourceEvent::Unreadable {
                    source_id, reason, ..
                } => panic!("unreadable {source_id}: {reason}"),
            }
        }
    }
    out
}

type Key = (FolderPath, Vec<u8>, Option<i64>);

fn multiset(msgs: &[Message]) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for x in msgs {
        *m.entry((
            x.folder.clone(),
            x.raw.to_vec(),
            x.internal_date.map(|d| d.timestamp()),
        ))
        .or_insert(0) += 1;
    }
    m
}

fn flag_sets(msgs: &[Message]) -> BTreeMap<(FolderPath, Vec<u8>), Vec<Vec<Flag>>> {
    let mut m: BTreeMap<(FolderPath, Vec<u8>), Vec<Vec<Flag>>> = BTreeMap::new();
    for x in msgs {
        let mut f = x.flags.clone();
        f.sort();
        m.entry((x.folder.clone(), x.raw.to_vec()))
            .or_default()
            .push(f);
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

async fn chain(dir: &Path, input: &[Message]) {
    let mbox = dir.join("mbox");
    store(Box::new(MboxSink::new(&mbox)), input).await;
    let from_mbox = read_all(Arc::new(MboxSource::new(&mbox))).await;
    assert_eq!(multiset(&from_mbox), multiset(input), "after mbox");

    let zip = dir.join("out.zip");
    store(Box::new(ZipSink::new(&zip)), &from_mbox).await;
    let from_zip = read_all(Arc::new(EmlZipSource::new(&zip))).await;
    assert_eq!(multiset(&from_zip), multiset(input), "after zip");
    assert_eq!(
        flag_sets(&from_zip),
        flag_sets(&from_mbox),
        "flags after zip"
    );

    let maildir = dir.join("Maildir");
    store(Box::new(MaildirSink::new(&maildir)), &from_zip).await;
    let from_maildir = read_all(Arc::new(MaildirSource::new(&maildir))).await;
    assert_eq!(multiset(&from_maildir), multiset(input), "after maildir");
    assert_eq!(
        flag_sets(&from_maildir),
        flag_sets(&from_zip),
        "flags after maildir"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mbox_zip_maildir_chain_is_lossless(input in mailbox()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(chain(dir.path(), &input));
    }
}

/// The shipped sample mailbox (an mbox tree) through ZIP and Maildir, byte-exact.
#[test]
fn shipped_sample_mbox_zip_maildir_is_lossless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/mailbox");
        let from_mbox = read_all(Arc::new(MboxSource::new(&sample))).await;
        let expected = legacyflo_testkit::corpus::sample();
        assert_eq!(from_mbox.len(), 300);
        assert_eq!(
            multiset(&from_mbox),
            multiset(&expected),
            "shipped sample = generator output"
        );
        let zip = dir.path().join("sample.zip");
        store(Box::new(ZipSink::new(&zip)), &from_mbox).await;
        let from_zip = read_all(Arc::new(EmlZipSource::new(&zip))).await;
        assert_eq!(multiset(&from_zip), multiset(&expected), "after zip");
        let maildir = dir.path().join("Maildir");
        store(Box::new(MaildirSink::new(&maildir)), &from_zip).await;
        let from_maildir = read_all(Arc::new(MaildirSource::new(&maildir))).await;
        assert_eq!(
            multiset(&from_maildir),
            multiset(&expected),
            "after maildir"
        );
    });
}

/// A generated corpus with the realistic size mix through the whole chain.
#[test]
fn generated_corpus_chain_is_lossless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let input = legacyflo_testkit::corpus::generated(2_000, 99);
    rt.block_on(chain(dir.path(), &input));
}
