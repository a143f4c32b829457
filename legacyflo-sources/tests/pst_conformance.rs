//! The testkit's source conformance suite against the PST source, on PSTs written by the
//! PST sink.
//!
//! A PST keeps properties, not bytes, so a message read from a PST is a rebuilt RFC 5322
//! message, not the bytes that were imported; the suite's round trip compares bytes. So
//! the suite runs on messages that already went through a PST once (`through_pst`: the
//! corpus is stored with the sink and read back with the source): storing those again and
//! reading them back must give the same bytes (the rebuild is a fixpoint), flags and dates.
//! The harness stores every message set given with the PST sink and returns a PST source
//! over the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::StreamExt;
use legacyflo_core::{Filter, FolderPath, Message, Sink, Source, SourceEvent};
use legacyflo_sinks::pst::PstSink;
use legacyflo_sources::pst::PstSource;
use legacyflo_testkit::conformance::{
    SourceCaps, SourceHarness, source_filters, source_resume_from_position, source_round_trip,
    source_survives_temporary_errors,
};
use legacyflo_testkit::corpus;

struct Harness {
    dir: tempfile::TempDir,
    n: AtomicUsize,
}

impl Harness {
    fn new() -> Self {
        Harness {
            dir: tempfile::tempdir().expect("tempdir"),
            n: AtomicUsize::new(0),
        }
    }
}

/// Writes `messages` into a new PST at `path` with the sink (committing every 25).
async fn store(path: &std::path::Path, messages: &[Message]) {
    let mut sink = PstSink::new(path);
    sink.open(None).await.expect("open");
    let mut begun: Vec<FolderPath> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if !begun.contains(&m.folder) {
            sink.begin_folder(&m.folder).await.expect("begin_folder");
            begun.push(m.folder.clone());
        }
        let o = sink.write(m).await.expect("write");
        assert!(
            matches!(o, legacyflo_core::WriteOutcome::Written { .. }),
            "{} / {}: {o:?}",
            m.folder,
            m.source_id
        );
        if i % 25 == 24 {
            sink.commit().await.expect("commit");
        }
    }
    sink.finish().await.expect("finish");
}

/// Every message of `source`, folder by folder.
async fn read_all(source: &dyn Source) -> Vec<Message> {
    let mut out = Vec::new();
    for f in source.list_folders().await.expect("list folders") {
        let mut s = source
            .stream(&f.path, &Filter::default(), None)
            .await
            .expect("stream");
        while let Some(ev) = s.next().await {
            match ev.expect("stream item") {
                SourceEvent::Message(item) => out.push(item.message),
                SourceEvent::Expunged { source_id, .. } => panic!("expunged {source_id}"),
                SourceEvent::Unreadable {
                    source_id, reason, ..
                } => panic!("unreadable {source_id} in {}: {reason}", f.path),
            }
        }
    }
    out
}

#[async_trait]
impl SourceHarness for Harness {
    async fn source_with(&self, messages: &[Message]) -> Arc<dyn Source> {
        let n = self.n.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.path().join(format!("in-{n}")).join("x.pst");
        store(&path, messages).await;
        Arc::new(PstSource::new(path))
    }

    fn caps(&self) -> SourceCaps {
        SourceCaps {
            flags: true,
            internal_date: true,
        }
    }
}

/// `messages` as they come out of a PST: stored once with the sink, read with the source.
async fn through_pst(h: &Harness, messages: &[Message]) -> Vec<Message> {
    let source = h.source_with(messages).await;
    let got = read_all(source.as_ref()).await;
    assert_eq!(got.len(), messages.len(), "messages through a PST");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pst_source_conformance() {
    let h = Harness::new();
    let mut all = corpus::edge_cases();
    all.extend(corpus::generated(300, 21));
    let all = through_pst(&h, &all).await;
    source_round_trip(&h, "edge + generated (through a PST)", &all).await;
    let sample = through_pst(&h, &corpus::sample()).await;
    source_round_trip(&h, "sample mailbox (through a PST)", &sample).await;
    source_resume_from_position(&h, &corpus::generated(120, 22)).await;
    source_filters(&h, &corpus::generated(200, 23)).await;
    let flaky = through_pst(&h, &corpus::generated(150, 24)).await;
    source_survives_temporary_errors(&h, &flaky).await;
}
